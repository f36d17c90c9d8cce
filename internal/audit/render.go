package audit

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"sort"
	"strconv"
	"strings"

	"github.com/llmfence/llmfence/internal/locale"
	"github.com/llmfence/llmfence/internal/risk"
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

// WriteTable writes the result for a terminal, in English: per runtime
// and store a line, then the fix first, the settings, the findings and
// the notes.
func WriteTable(w io.Writer, r *Result) error { return WriteTableIn(w, r, nil) }

// WriteTableIn is WriteTable in the printer's language (nil is English).
// Columns are padded by display width, so Japanese headings stay aligned.
// The audit's notes, details and setting sources are said from the
// messages the records carry beside their English; the fix written for
// this machine says its explanation in the printer's language around
// the commands.
func WriteTableIn(w io.Writer, r *Result, p *locale.Printer) error {
	p, err := printerOr(p)
	if err != nil {
		return err
	}
	ew := &errWriter{w: w}
	m := r.Machine
	as := p.T("audit.as_user")
	if m.Privileged {
		as = p.T("audit.as_root")
	}
	when := m.AuditedAt.Format("2006-01-02 15:04:05Z")
	if p.Lang() != locale.English {
		when = p.DateTime(m.AuditedAt) // 2026年1月2日 03:04:05 UTC
	}
	ew.printf("%s\n", p.T("audit.header", "host", orUnknown(m.Host), "os", m.OS, "as", as,
		"when", when,
		"runtimes", p.T("audit.runtimes", "count", strconv.Itoa(m.Runtimes)),
		"stores", p.T("audit.stores", "count", strconv.Itoa(m.Stores)), "risk", riskText(p, m.Risk)))
	for _, n := range sayAll(p, m.Notes, m.NoteMsgs) {
		ew.printf("  %s %s\n", p.T("audit.label.note"), n)
	}
	recs := r.Records()[1:]
	rtHead := []string{p.T("audit.col.runtime"), p.T("audit.col.version"), p.T("audit.col.pid"), p.T("audit.col.user"),
		p.T("audit.col.exposed"), p.T("audit.col.risk"), p.T("audit.col.listen")}
	stHead := []string{p.T("audit.col.store"), p.T("audit.col.runtime"), p.T("audit.col.models"), p.T("audit.col.size"), p.T("audit.col.risk")}
	rtCols, stCols := fit(runtimeCols, rtHead), fit(storeCols, stHead)
	first := true
	for _, x := range recs {
		rt, ok := x.(*Runtime)
		if !ok {
			continue
		}
		if first {
			ew.printf("\n")
			ew.row(rtCols, rtHead...)
			first = false
		}
		pid, exposed := fmt.Sprint(rt.PID), yesNo(p, rt.Exposed)
		if !rt.Running {
			pid = "-"
		}
		if rt.Exposure == ExposureUnknown && !rt.Exposed {
			exposed = p.T("audit.unknown")
		}
		listen := strings.Join(rt.Listen, " ")
		if !rt.Running {
			listen = p.T("audit.not_running", "unit", rt.Unit)
		}
		ew.row(rtCols, rt.Product, orDash(rt.Version), pid, orDash(rt.User), exposed, riskText(p, rt.Risk), orDash(listen))
		writeFix(ew, p, risk.Remediation(p, &service.Service{Remediation: rt.Remediation, RemediationMsgs: rt.RemediationMsgs}))
		if len(rt.Settings) > 0 {
			var parts []string
			for _, k := range sortedKeys(rt.Settings) {
				parts = append(parts, fmt.Sprintf("%s=%s (%s)", k, rt.Settings[k], settingSource(p, rt, k)))
			}
			ew.printf("%s%s\n", label(p, "settings"), strings.Join(parts, "; "))
		}
		if rt.Probe != nil {
			ew.printf("%s%s\n", label(p, "probe"), p.T("audit.probe", "addr", rt.Probe.Addr, "product", orDash(rt.Probe.Product),
				"version", rt.Probe.Version, "auth", orDash(string(rt.Probe.Auth))))
		}
		writeFindings(ew, p, rt.Findings, sayAll(p, rt.Notes, rt.NoteMsgs))
	}
	first = true
	for _, x := range recs {
		st, ok := x.(*Store)
		if !ok {
			continue
		}
		if first {
			ew.printf("\n")
			ew.row(stCols, stHead...)
			first = false
		}
		ew.row(stCols, st.Path, st.Runtime, fmt.Sprint(st.Models), humanBytes(st.Bytes), riskText(p, st.Risk))
		writeFix(ew, p, risk.Remediation(p, &service.Service{Remediation: st.Remediation, RemediationMsgs: st.RemediationMsgs}))
		if len(st.Largest) > 0 {
			var parts []string
			for _, l := range st.Largest {
				parts = append(parts, l.Name+" "+humanBytes(l.Bytes))
			}
			ew.printf("%s%s\n", label(p, "largest"), strings.Join(parts, ", "))
		}
		writeFindings(ew, p, st.Findings, sayAll(p, st.Notes, st.NoteMsgs))
	}
	if m.Runtimes == 0 && m.Stores == 0 {
		ew.printf("\n%s\n", p.T("audit.none_found"))
	}
	return ew.err
}

// column is a table column: its width in terminal columns, whether it is
// right-aligned, and the gap after it.
type column struct {
	width int
	right bool
	gap   string
}

var (
	runtimeCols = []column{{22, false, " "}, {9, false, " "}, {7, false, " "}, {10, false, " "}, {8, false, " "}, {9, false, " "}, {0, false, ""}}
	storeCols   = []column{{52, false, " "}, {12, false, " "}, {6, true, " "}, {8, true, "  "}, {0, false, ""}}
)

// fit widens columns to their headings (Japanese headings can be wider
// than the English ones the widths were chosen for).
func fit(cols []column, head []string) []column {
	out := append([]column(nil), cols...)
	for i := range out {
		if out[i].width > 0 {
			out[i].width = max(out[i].width, locale.Width(head[i]))
		}
	}
	return out
}

// row writes one table row, each cell padded by display width.
func (e *errWriter) row(cols []column, cells ...string) {
	var b strings.Builder
	for i, c := range cells {
		col := cols[i]
		switch {
		case col.width == 0:
			b.WriteString(c)
		case col.right:
			b.WriteString(locale.PadLeft(c, col.width))
		default:
			b.WriteString(locale.PadRight(c, col.width))
		}
		b.WriteString(col.gap)
	}
	e.printf("%s\n", b.String())
}

// label is a detail line's label, padded to the detail column.
func label(p *locale.Printer, name string) string {
	return locale.PadRight("  "+p.T("audit.label."+name), 12)
}

func writeFix(ew *errWriter, p *locale.Printer, lines []string) {
	for i, l := range lines {
		if l == "" {
			continue
		}
		lead := label(p, "fix")
		if i > 0 {
			lead = strings.Repeat(" ", 12)
		}
		ew.printf("%s%s\n", lead, l)
	}
}

func writeFindings(ew *errWriter, p *locale.Printer, fs []service.Finding, notes []string) {
	for _, f := range fs {
		line := "  " + locale.PadRight(risk.Severity(p, f.Severity), 8) + " " + f.ID + " " + risk.Title(p, f)
		if d := risk.Detail(p, f); d != "" {
			line += ": " + d
		}
		ew.printf("%s\n", line)
	}
	for _, n := range notes {
		ew.printf("  %s %s\n", p.T("audit.label.note"), n)
	}
}

// settingSource says where a runtime's setting was read.
func settingSource(p *locale.Printer, rt *Runtime, name string) string {
	return sayOne(p, rt.SettingSources[name], rt.SettingSourceMsgs[name])
}

// riskText is a record's risk as a person reads it.
func riskText(p *locale.Printer, s service.Severity) string {
	if s == RiskUnknown {
		return p.T("audit.unknown")
	}
	return risk.Severity(p, s)
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

func yesNo(p *locale.Printer, b bool) string {
	if b {
		return p.T("audit.yes")
	}
	return p.T("audit.no")
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
	"join":  strings.Join,
}).Parse(htmlSource))

// htmlView is what the HTML template sees: the records, and the printer
// behind its methods, so every word is said in the reader's language.
type htmlView struct {
	M        *MachineRecord
	Runtimes []*Runtime
	Stores   []*Store
	p        *locale.Printer
}

func (v *htmlView) Lang() string                     { return string(v.p.Lang()) }
func (v *htmlView) T(id string, kv ...string) string { return v.p.T(id, kv...) }
func (v *htmlView) Risk(s service.Severity) string   { return riskText(v.p, s) }
func (v *htmlView) Title(f service.Finding) string   { return risk.Title(v.p, f) }
func (v *htmlView) Detail(f service.Finding) string  { return risk.Detail(v.p, f) }
func (v *htmlView) StoreFix(st *Store) []string {
	return risk.Remediation(v.p, &service.Service{Remediation: st.Remediation, RemediationMsgs: st.RemediationMsgs})
}

// Notes are a record's notes in the reader's language.
func (v *htmlView) Notes(notes []string, msgs []service.Message) []string {
	return sayAll(v.p, notes, msgs)
}

// Source says where a runtime's setting was read.
func (v *htmlView) Source(rt *Runtime, name string) string { return settingSource(v.p, rt, name) }

// Exposure says where a runtime listens (its exposure value).
func (v *htmlView) Exposure(e string) string {
	if id := "audit.exposure." + e; v.p.Has(id) {
		return v.p.T(id)
	}
	return e
}
func (v *htmlView) RuntimeFix(rt *Runtime) []string {
	return risk.Remediation(v.p, &service.Service{Remediation: rt.Remediation, RemediationMsgs: rt.RemediationMsgs})
}

// Audited says when, as whom and by which llmfence the audit ran.
func (v *htmlView) Audited() string {
	as := v.p.T("audit.html.as_user")
	if v.M.Privileged {
		as = v.p.T("audit.html.as_root")
	}
	return v.p.T("audit.html.audited", "when", v.p.DateTime(v.M.AuditedAt), "as", as, "version", v.M.Llmfence)
}

// WriteHTML writes a self-contained HTML report of the result in English.
func WriteHTML(w io.Writer, r *Result) error { return WriteHTMLIn(w, r, nil) }

// WriteHTMLIn writes the HTML report in the printer's language (nil is
// English): labels, severities, findings, notes and fixes.
func WriteHTMLIn(w io.Writer, r *Result, p *locale.Printer) error {
	p, err := printerOr(p)
	if err != nil {
		return err
	}
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
	return htmlTemplate.Execute(w, &htmlView{M: r.Machine, Runtimes: rts, Stores: sts, p: p})
}
