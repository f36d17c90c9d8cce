package audit

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"sort"
	"strings"

	"github.com/llmfence/llmfence/internal/service"
)

// The renderers live here rather than in internal/report because their
// records (runtime, store, machine) are the audit's own.

// Records returns the records in output order: the machine, then the
// runtimes (running first, by PID), then the stores (by path).
func (r *Result) Records() []any {
	rts := append([]*Runtime(nil), r.Runtimes...)
	sort.SliceStable(rts, func(i, j int) bool {
		if rts[i].Running != rts[j].Running {
			return rts[i].Running
		}
		if rts[i].PID != rts[j].PID {
			return rts[i].PID < rts[j].PID
		}
		return rts[i].Unit < rts[j].Unit
	})
	sts := append([]*Store(nil), r.Stores...)
	sort.SliceStable(sts, func(i, j int) bool { return sts[i].Path < sts[j].Path })
	out := []any{r.Machine}
	for _, x := range rts {
		out = append(out, x)
	}
	for _, x := range sts {
		out = append(out, x)
	}
	return out
}

// WriteJSONL writes the result as JSON Lines, one record per line.
func WriteJSONL(w io.Writer, r *Result) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	for _, rec := range r.Records() {
		if err := enc.Encode(rec); err != nil {
			return err
		}
	}
	return nil
}

// WriteTable writes the result for a terminal: per runtime and store a
// line, then the fix first, the settings, the findings and the notes.
func WriteTable(w io.Writer, r *Result) error {
	ew := &errWriter{w: w}
	m := r.Machine
	as := "as a normal user: other users' processes and files may be hidden"
	if m.Privileged {
		as = "as root"
	}
	ew.printf("Audit of %s (%s, %s) at %s: %s, %s; risk %s\n", orUnknown(m.Host), m.OS, as,
		m.AuditedAt.Format("2006-01-02 15:04:05Z"), plural(m.Runtimes, "runtime", "runtimes"), plural(m.Stores, "model store", "model stores"), m.Risk)
	for _, n := range m.Notes {
		ew.printf("  note: %s\n", n)
	}
	recs := r.Records()[1:]
	first := true
	for _, x := range recs {
		rt, ok := x.(*Runtime)
		if !ok {
			continue
		}
		if first {
			ew.printf("\n"+runtimeRow, "RUNTIME", "VERSION", "PID", "USER", "EXPOSED", "RISK", "LISTEN")
			first = false
		}
		pid, exposed := fmt.Sprint(rt.PID), yesNo(rt.Exposed)
		if !rt.Running {
			pid = "-"
		}
		if rt.Exposure == ExposureUnknown && !rt.Exposed {
			exposed = "unknown"
		}
		listen := strings.Join(rt.Listen, " ")
		if !rt.Running {
			listen = "(not running: " + rt.Unit + ")"
		}
		ew.printf(runtimeRow, rt.Product, orDash(rt.Version), pid, orDash(rt.User), exposed, rt.Risk, orDash(listen))
		writeFix(ew, rt.Remediation)
		if len(rt.Settings) > 0 {
			var parts []string
			for _, k := range sortedKeys(rt.Settings) {
				parts = append(parts, fmt.Sprintf("%s=%s (%s)", k, rt.Settings[k], rt.SettingSources[k]))
			}
			ew.printf("  settings: %s\n", strings.Join(parts, "; "))
		}
		if rt.Probe != nil {
			ew.printf("  probe:    %s answered as %s %s, auth %s\n", rt.Probe.Addr, orDash(rt.Probe.Product), rt.Probe.Version, orDash(string(rt.Probe.Auth)))
		}
		writeFindings(ew, rt.Findings, rt.Notes)
	}
	first = true
	for _, x := range recs {
		st, ok := x.(*Store)
		if !ok {
			continue
		}
		if first {
			ew.printf("\n"+storeRow, "STORE", "RUNTIME", "MODELS", "SIZE", "RISK")
			first = false
		}
		ew.printf(storeRow, st.Path, st.Runtime, fmt.Sprint(st.Models), humanBytes(st.Bytes), st.Risk)
		writeFix(ew, st.Remediation)
		if len(st.Largest) > 0 {
			var parts []string
			for _, l := range st.Largest {
				parts = append(parts, l.Name+" "+humanBytes(l.Bytes))
			}
			ew.printf("  largest:  %s\n", strings.Join(parts, ", "))
		}
		writeFindings(ew, st.Findings, st.Notes)
	}
	if m.Runtimes == 0 && m.Stores == 0 {
		ew.printf("\nNo LLM runtime or model store found.\n")
	}
	return ew.err
}

const (
	runtimeRow = "%-22s %-9s %-7s %-10s %-8s %-9s %s\n"
	storeRow   = "%-52s %-12s %6s %8s  %s\n"
)

func writeFix(ew *errWriter, fix string) {
	for i, l := range strings.Split(fix, "\n") {
		if l == "" {
			continue
		}
		label := "  fix:      "
		if i > 0 {
			label = "            "
		}
		ew.printf("%s%s\n", label, l)
	}
}

func writeFindings(ew *errWriter, fs []service.Finding, notes []string) {
	for _, f := range fs {
		line := fmt.Sprintf("  %-8s %s %s", f.Severity, f.ID, f.Title)
		if f.Detail != "" {
			line += ": " + f.Detail
		}
		ew.printf("%s\n", line)
	}
	for _, n := range notes {
		ew.printf("  note: %s\n", n)
	}
}

type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) printf(format string, a ...any) {
	if e.err == nil {
		_, e.err = fmt.Fprintf(e.w, format, a...)
	}
}

func plural(n int, one, many string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, one)
	}
	return fmt.Sprintf("%d %s", n, many)
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<40:
		return fmt.Sprintf("%.1fT", float64(n)/(1<<40))
	case n >= 1<<30:
		return fmt.Sprintf("%.1fG", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1fM", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1fK", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%dB", n)
}

//go:embed audit.html.tmpl
var htmlSource string

var htmlTemplate = template.Must(template.New("audit").Funcs(template.FuncMap{
	"bytes": humanBytes,
	"lines": func(s string) []string {
		if s == "" {
			return nil
		}
		return strings.Split(s, "\n")
	},
	"join": strings.Join,
}).Parse(htmlSource))

// WriteHTML writes a self-contained HTML report of the result.
func WriteHTML(w io.Writer, r *Result) error {
	var rts []*Runtime
	var sts []*Store
	for _, x := range r.Records()[1:] {
		switch v := x.(type) {
		case *Runtime:
			rts = append(rts, v)
		case *Store:
			sts = append(sts, v)
		}
	}
	return htmlTemplate.Execute(w, struct {
		M        *MachineRecord
		Runtimes []*Runtime
		Stores   []*Store
	}{r.Machine, rts, sts})
}
