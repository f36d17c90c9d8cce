package report

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/llmfence/llmfence/internal/inspect"
	"github.com/llmfence/llmfence/internal/service"
	"github.com/llmfence/llmfence/internal/verdict"
)

// InspectWriter renders `llmfence inspect` results as they arrive: JSON
// Lines (one inspect.Result per line, docs/schemas/inspect-result.json)
// or a table of one line per file with its findings indented below.
// File names, member names and details come from the inspected files
// and are stripped of control characters in the table.
type InspectWriter struct {
	w    io.Writer
	enc  *json.Encoder
	json bool
	err  error
}

// NewInspectWriter returns a writer of JSON Lines (asJSON) or the table;
// the table's header is written at once.
func NewInspectWriter(w io.Writer, asJSON bool) *InspectWriter {
	iw := &InspectWriter{w: w, json: asJSON}
	if asJSON {
		iw.enc = json.NewEncoder(w)
	} else {
		_, iw.err = fmt.Fprint(w, inspectRow("VERDICT", "FORMAT", "SIZE", "PATH"))
	}
	return iw
}

// inspectRow lays out one file in the table.
func inspectRow(verdict, format, size, path string) string {
	return fmt.Sprintf("%-10s  %-15s  %7s  %s\n", verdict, format, size, path)
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
	v := strings.ToUpper(string(r.Verdict))
	if r.Error != "" {
		v = "ERROR"
	}
	var b strings.Builder
	b.WriteString(inspectRow(v, printable(r.Format), HumanSize(r.Size), printable(r.Path)))
	if r.Error != "" {
		fmt.Fprintf(&b, "  error: %s\n", printable(r.Error))
	}
	for _, fd := range r.Findings {
		line := fmt.Sprintf("  %-8s %s %s", fd.Severity, fd.ID, PlainText(printable(fd.Title)))
		if fd.Detail != "" {
			line += ": " + clip(PlainText(printable(fd.Detail)), 160)
		}
		if fd.Member != "" {
			line += " [in " + clip(printable(fd.Member), 100) + "]"
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
	parts := []string{}
	for _, v := range verdict.All {
		if n := s.Verdicts[v]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, v))
		}
	}
	if s.Errors > 0 {
		parts = append(parts, fmt.Sprintf("%d unreadable", s.Errors))
	}
	files := "files"
	if s.Files == 1 {
		files = "file"
	}
	_, iw.err = fmt.Fprintf(iw.w, "\n%d %s inspected: %s; %d at or above %s\n", s.Files, files, strings.Join(parts, ", "), s.Failed, failOn)
	return iw.err
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
