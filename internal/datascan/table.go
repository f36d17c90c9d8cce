package datascan

import (
	"bytes"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"unicode"

	"github.com/llmfence/llmfence/internal/locale"
	"github.com/llmfence/llmfence/internal/risk"
	"github.com/llmfence/llmfence/internal/service"
)

// TableOptions tune the terminal table.
type TableOptions struct {
	// FailOn is the --fail-on threshold the summary line names; AtOrAbove
	// counts every finding at or above it (not only those in the Report).
	FailOn    service.Severity
	AtOrAbove int
	// PerKind caps the findings listed per kind (default 20).
	PerKind int
}

// kindOrder is the order kinds are shown in: what a person reads first.
var kindOrder = []string{KindBackdoorTrigger, KindInstructionBackdoor, KindPromptInjection, KindSecret, KindPII, KindDuplicateCluster}

// WriteTable writes what a person reads first, in the report's language
// (r.Text; nil is English): triggers and clusters, then findings by kind
// (the first few), then the summary line. Columns are padded by display
// width, so Japanese labels stay aligned; text from the scanned data is
// stripped of control characters and cut without splitting a wide
// character.
func WriteTable(w io.Writer, r Report, o TableOptions) error {
	p, err := printerOr(r.Text)
	if err != nil {
		return err
	}
	if o.PerKind <= 0 {
		o.PerKind = 20
	}
	var b bytes.Buffer
	// Column widths fit the English labels and widen to the headings.
	sevW := max(9, locale.Width(p.T("datascan.table.severity")))
	findW := max(21, locale.Width(p.T("datascan.table.finding")))
	recW := max(7, locale.Width(p.T("datascan.table.records")))
	if len(r.Summaries) > 0 {
		fmt.Fprintf(&b, "%s  %s  %s  %s\n", locale.PadRight(p.T("datascan.table.severity"), sevW),
			locale.PadRight(p.T("datascan.table.finding"), findW), locale.PadLeft(p.T("datascan.table.records"), recW),
			p.T("datascan.table.trigger_cluster"))
		indent := strings.Repeat(" ", sevW+2+findW+2+recW+2)
		for _, s := range r.Summaries {
			what := s.Trigger
			if what == "" {
				what = s.Cluster
			} else {
				what = strconv.Quote(s.Trigger)
			}
			fmt.Fprintf(&b, "%s  %s  %s  %s\n", locale.PadRight(risk.Severity(p, s.Severity), sevW),
				locale.PadRight(kindLabel(p, s.Finding), findW), locale.PadLeft(strconv.Itoa(s.Records), recW), termClip(what, 80))
			if s.Response != "" {
				fmt.Fprintf(&b, "%s%s %s\n", indent, p.T("datascan.table.response"), termClip(s.Response, 100))
			}
			if s.Evidence != "" {
				fmt.Fprintf(&b, "%s%s %s\n", indent, p.T("datascan.table.example"), termClip(s.Evidence, 100))
			}
		}
		b.WriteString("\n")
	}
	byKind := map[string][]Finding{}
	for _, f := range r.Findings {
		byKind[f.Kind] = append(byKind[f.Kind], f)
	}
	for _, k := range kindOrder {
		fs := byKind[k]
		if len(fs) == 0 {
			continue
		}
		total := r.Stats.Findings[k]
		fmt.Fprintf(&b, "%s\n", p.T("datascan.table.kind_heading", "label", kindLabel(p, k), "total", strconv.Itoa(total)))
		for i, f := range fs {
			if i == o.PerKind {
				fmt.Fprintf(&b, "  %s\n", p.T("datascan.table.more", "more", strconv.Itoa(total-o.PerKind)))
				break
			}
			label := f.Category
			if f.Trigger != "" {
				label = strconv.Quote(f.Trigger)
			} else if label == "" {
				label = f.Cluster
			}
			fmt.Fprintf(&b, "  %s %s:%d  %s  %s\n", locale.PadRight(risk.Severity(p, f.Severity), 8), termClip(f.File, 60), f.Record,
				termClip(label, 40), termClip(f.Evidence, 90))
		}
		b.WriteString("\n")
	}
	kinds := make([]string, 0, len(r.Stats.Findings))
	for k := range r.Stats.Findings {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	var parts []string
	for _, k := range kinds {
		parts = append(parts, p.T("datascan.summary.kind", "n", strconv.Itoa(r.Stats.Findings[k]), "label", kindLabel(p, k)))
	}
	if len(parts) == 0 {
		parts = append(parts, p.T("datascan.summary.none"))
	}
	b.WriteString(p.T("datascan.summary.line", "files", strconv.Itoa(r.Stats.Files), "records", strconv.FormatInt(r.Stats.Records, 10),
		"size", humanSize(r.Stats.Bytes), "findings", strings.Join(parts, p.T("datascan.summary.separator")),
		"failed", strconv.Itoa(o.AtOrAbove), "threshold", risk.Severity(p, o.FailOn)))
	if r.Stats.Errors > 0 {
		b.WriteString(p.T("datascan.summary.errors", "n", strconv.Itoa(r.Stats.Errors)))
	}
	b.WriteString("\n")
	_, err = w.Write(b.Bytes())
	return err
}

// termClip makes text from the scanned data safe for a terminal: control
// and format characters (escape sequences, bidi overrides) are dropped, runs of white space become
// one space, and the result is cut to n columns (display width).
func termClip(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) && r != '\n' && r != '\t' || unicode.Is(unicode.Cf, r) {
			return -1 // escape sequences, and format characters such as bidi overrides
		}
		return r
	}, s)
	return locale.Truncate(strings.Join(strings.Fields(s), " "), n)
}
