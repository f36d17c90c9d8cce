package report

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/llmfence/llmfence/internal/inspect"
	"github.com/llmfence/llmfence/internal/locale"
	"github.com/llmfence/llmfence/internal/risk"
	"github.com/llmfence/llmfence/internal/service"
	"github.com/llmfence/llmfence/internal/verdict"
)

// InspectWriter renders `llmfence inspect` results as they arrive: JSON
// Lines (one inspect.Result per line, docs/schemas/inspect-result.json)
// or a table of one line per file with its findings indented below.
// File names, member names and details come from the inspected files
// and are stripped of control characters in the table.
//
// The table, its summary and CannotInspect's line are said in the
// printer's language (messages.{en,ja}.yaml, report.inspect.*); finding
// titles and details stay English, as the inspect catalogues have no
// other language. JSON Lines never change with the language.
type InspectWriter struct {
	w    io.Writer
	p    *locale.Printer
	enc  *json.Encoder
	json bool
	err  error
}

// NewInspectWriter returns a writer of JSON Lines (asJSON) or the table
// in English; the table's header is written at once.
func NewInspectWriter(w io.Writer, asJSON bool) *InspectWriter {
	return NewInspectWriterIn(w, asJSON, nil)
}

// NewInspectWriterIn is NewInspectWriter with the table in p's language;
// a nil p is English.
func NewInspectWriterIn(w io.Writer, asJSON bool, p *locale.Printer) *InspectWriter {
	iw := &InspectWriter{w: w, json: asJSON}
	if asJSON {
		iw.enc = json.NewEncoder(w)
		return iw
	}
	iw.p, iw.err = printerOr(p)
	if iw.err != nil {
		return iw
	}
	_, iw.err = io.WriteString(w, inspectRow(iw.p.T("report.inspect.verdict_col"), iw.p.T("report.inspect.format_col"),
		iw.p.T("report.inspect.size_col"), iw.p.T("report.inspect.path_col")))
	return iw
}

// inspectRow lays out one file in the table, aligned by display width
// (a full-width character takes two columns).
func inspectRow(verdict, format, size, path string) string {
	return locale.PadRight(verdict, 10) + "  " + locale.PadRight(format, 15) + "  " + locale.PadLeft(size, 7) + "  " + path + "\n"
}

// CannotInspect is the line said on standard error for a file that could
// not be inspected, in p's language (English when p is nil).
func CannotInspect(p *locale.Printer, path, reason string) string {
	p, err := printerOr(p)
	if err != nil {
		return fmt.Sprintf("llmfence: cannot inspect %s: %s", path, reason)
	}
	return p.T("report.inspect.cannot_inspect", "path", path, "error", reason)
}

// Write renders one result. After a write error every later call
// returns it.
func (iw *InspectWriter) Write(r *inspect.Result) error {
	if iw.err != nil {
		return iw.err
	}
	if iw.json {
		iw.err = iw.enc.Encode(r)
		return iw.err
	}
	p := iw.p
	v := strings.ToUpper(string(r.Verdict))
	if id := "report.inspect.label." + string(r.Verdict); p.Has(id) {
		v = p.T(id)
	}
	if r.Error != "" {
		v = p.T("report.inspect.label.error")
	}
	var b strings.Builder
	b.WriteString(inspectRow(v, printable(r.Format), HumanSize(r.Size), printable(r.Path)))
	if r.Error != "" {
		b.WriteString("  " + p.T("report.inspect.error", "error", printable(r.Error)) + "\n")
	}
	for _, fd := range r.Findings {
		line := "  " + locale.PadRight(severityName(p, fd.Severity), 8) + " " + fd.ID + " " + PlainText(printable(fd.Title))
		if fd.Detail != "" {
			line += ": " + clip(PlainText(printable(fd.Detail)), 160)
		}
		if fd.Member != "" {
			line += " " + p.T("report.inspect.member", "member", clip(printable(fd.Member), 100))
		}
		b.WriteString(line + "\n")
	}
	_, iw.err = io.WriteString(iw.w, b.String())
	return iw.err
}

// Summary ends the table with a count of files by verdict; JSON Lines
// carry no summary line.
func (iw *InspectWriter) Summary(s inspect.Summary, failOn service.Severity) error {
	if iw.json || iw.err != nil {
		return iw.err
	}
	p := iw.p
	parts := []string{}
	for _, v := range verdict.All {
		if n := s.Verdicts[v]; n > 0 {
			name := string(v)
			if id := "report.inspect.verdict." + name; p.Has(id) {
				name = p.T(id)
			}
			parts = append(parts, p.T("report.inspect.count", "n", strconv.Itoa(n), "verdict", name))
		}
	}
	if s.Errors > 0 {
		parts = append(parts, p.T("report.inspect.unreadable", "n", strconv.Itoa(s.Errors)))
	}
	line := p.T("report.inspect.summary", "count", strconv.Itoa(s.Files),
		"verdicts", strings.Join(parts, p.T("report.inspect.separator")),
		"failed", strconv.Itoa(s.Failed), "threshold", severityName(p, failOn))
	_, iw.err = io.WriteString(iw.w, "\n"+line+"\n")
	return iw.err
}

// severityName is a severity as the scan table says it (JVN's names in
// Japanese); an empty severity stays empty.
func severityName(p *locale.Printer, s service.Severity) string {
	if s == "" {
		return ""
	}
	return risk.Severity(p, s)
}

// Err returns the first write error.
func (iw *InspectWriter) Err() error { return iw.err }

// HumanSize is a byte count as "512B", "1.5K", "3.2M", "1.1G".
func HumanSize(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1fG", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1fM", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1fK", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%dB", n)
}
