package report

import (
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/llmfence/llmfence/internal/datascan"
	"github.com/llmfence/llmfence/internal/service"
)

// DatascanResult is what the datascan table shows: the findings kept
// (the first of each kind), the per-trigger and per-cluster summaries,
// the scan's counts, and how many findings reached the --fail-on
// threshold.
type DatascanResult struct {
	Findings  []datascan.Finding
	Summaries []datascan.Summary
	Stats     datascan.Stats
	FailOn    service.Severity
	Failed    int
	// PerKind caps the findings listed per kind.
	PerKind int
}

// DatascanTable writes what a person reads first: triggers and
// clusters, then findings by kind (the first PerKind), then a line of
// totals. Text from the scanned data (triggers, evidence, file names)
// is stripped of control characters.
func DatascanTable(w io.Writer, r DatascanResult) error {
	var b strings.Builder
	if len(r.Summaries) > 0 {
		fmt.Fprintf(&b, "%-9s  %-21s  %7s  %s\n", "SEVERITY", "FINDING", "RECORDS", "TRIGGER / CLUSTER")
		for _, s := range r.Summaries {
			what := s.Trigger
			if what == "" {
				what = s.Cluster
			} else {
				what = fmt.Sprintf("%q", s.Trigger)
			}
			fmt.Fprintf(&b, "%-9s  %-21s  %7d  %s\n", s.Severity, s.Finding, s.Records, dataClip(what, 80))
			if s.Response != "" {
				fmt.Fprintf(&b, "%33s response: %s\n", "", dataClip(s.Response, 100))
			}
			if s.Evidence != "" {
				fmt.Fprintf(&b, "%33s e.g.: %s\n", "", dataClip(s.Evidence, 100))
			}
		}
		b.WriteString("\n")
	}
	byKind := map[string][]datascan.Finding{}
	for _, f := range r.Findings {
		byKind[f.Kind] = append(byKind[f.Kind], f)
	}
	for _, k := range []string{datascan.KindBackdoorTrigger, datascan.KindInstructionBackdoor, datascan.KindPromptInjection,
		datascan.KindSecret, datascan.KindPII, datascan.KindDuplicateCluster} {
		fs := byKind[k]
		if len(fs) == 0 {
			continue
		}
		total := r.Stats.Findings[k]
		fmt.Fprintf(&b, "%s (%d)\n", k, total)
		for i, f := range fs {
			if i == r.PerKind {
				fmt.Fprintf(&b, "  ... %d more (--format json lists all)\n", total-r.PerKind)
				break
			}
			label := f.Category
			if f.Trigger != "" {
				label = fmt.Sprintf("%q", f.Trigger)
			} else if label == "" {
				label = f.Cluster
			}
			fmt.Fprintf(&b, "  %-8s %s:%d  %s  %s\n", f.Severity, dataClip(f.File, 60), f.Record, dataClip(label, 40), dataClip(f.Evidence, 90))
		}
		b.WriteString("\n")
	}
	kinds := make([]string, 0, len(r.Stats.Findings))
	for k := range r.Stats.Findings {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	parts := []string{}
	for _, k := range kinds {
		parts = append(parts, fmt.Sprintf("%d %s", r.Stats.Findings[k], k))
	}
	if len(parts) == 0 {
		parts = append(parts, "no findings")
	}
	fmt.Fprintf(&b, "%d files, %d records, %s scanned: %s; %d at or above %s", r.Stats.Files, r.Stats.Records,
		HumanSize(r.Stats.Bytes), strings.Join(parts, ", "), r.Failed, r.FailOn)
	if r.Stats.Errors > 0 {
		fmt.Fprintf(&b, "; %d files with errors", r.Stats.Errors)
	}
	b.WriteString("\n")
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("writing the datascan table: %w", err)
	}
	return nil
}

// dataClip clips text from scanned data for a terminal: control
// characters (escape sequences) are dropped, white space collapsed.
func dataClip(s string, n int) string {
	return clip(strings.Map(func(r rune) rune {
		if r == '\n' || r == '\t' {
			return ' '
		}
		if printable(string(r)) != string(r) {
			return -1
		}
		return r
	}, s), n)
}
