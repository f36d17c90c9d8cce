// Package report renders `llmfence probe` results: JSON Lines (the attempt
// records, then one summary per suite), a terminal table and a single
// self-contained HTML report with charts.
//
// Answers come from the model under test and are treated as hostile: HTML
// goes through html/template, terminal text is stripped of control
// characters, and records carry only redacted excerpts of answers.
package report

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode"

	"github.com/llmfence/llmfence/internal/locale"
	"github.com/llmfence/llmfence/internal/probe"
	llmreport "github.com/llmfence/llmfence/internal/report"
	"github.com/llmfence/llmfence/internal/risk"
	"github.com/llmfence/llmfence/internal/service"
)

// JSONLines writes every attempt (kind "attempt"), in plan order, then one
// summary per suite (kind "summary").
func JSONLines(w io.Writer, res *probe.Result) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	for _, a := range res.Attempts {
		if err := enc.Encode(a); err != nil {
			return err
		}
	}
	for _, s := range res.Summaries {
		if err := enc.Encode(s); err != nil {
			return err
		}
	}
	return nil
}

// TableOptions tune the terminal table.
type TableOptions struct {
	// Color paints the severity column; set it only for a terminal.
	Color bool
	// Triggers caps the backdoor candidates listed (default 10).
	Triggers int
	// Text says the table in the reader's language; nil is English.
	Text *locale.Printer
}

var sevColor = map[service.Severity]string{
	service.SeverityCritical: "\x1b[1;97;41m",
	service.SeverityHigh:     "\x1b[1;31m",
	service.SeverityMedium:   "\x1b[33m",
}

// Table writes the verdicts and the figures behind them, in the
// language of opts.Text. Columns are aligned by display width (a
// full-width character takes two columns), so Japanese stays aligned.
func Table(w io.Writer, res *probe.Result, opts TableOptions) error {
	p, err := printerOr(opts.Text)
	if err != nil {
		return err
	}
	if opts.Triggers <= 0 {
		opts.Triggers = 10
	}
	ew := &errWriter{w: w}
	ver := res.Server.API
	if res.Server.Version != "" {
		ver += " " + res.Server.Version
	}
	fmt.Fprint(ew, p.T("probe.table.header", "model", printable(res.Config.Model), "target", printable(res.Config.Target), "server", ver,
		"requests", strconv.Itoa(res.Planned), "elapsed", p.Duration(res.Elapsed)))
	if !res.Complete {
		fmt.Fprint(ew, p.T("probe.table.incomplete"))
	}
	fmt.Fprint(ew, "\n\n")
	g := &grid{}
	g.add(p.T("probe.table.suite"), p.T("probe.table.verdict"), p.T("probe.table.severity"), p.T("probe.table.why"))
	for _, s := range res.Summaries {
		sev := cell{text: risk.Severity(p, s.Severity)}
		if c, ok := sevColor[s.Severity]; ok && opts.Color {
			sev.pre, sev.post = c, "\x1b[0m"
		}
		g.addCells(cell{text: word(p, "suite", s.Suite)}, cell{text: word(p, "verdict", s.Verdict)}, sev, cell{text: printable(Reason(p, s))})
	}
	g.write(ew, "")
	for _, s := range res.Summaries {
		switch s.Suite {
		case "guardrails":
			if len(s.Categories) == 0 {
				continue
			}
			fmt.Fprintf(ew, "\n%s\n", p.T("probe.table.guardrails"))
			g := &grid{}
			g.add(p.T("probe.table.category"), p.T("probe.table.refused"), p.T("probe.table.over_refused"))
			for _, c := range s.Categories {
				g.add(category(p, c.Category), rateOf(p, c.RefusalRate, c.Harmful), rateOf(p, c.OverRefusalRate, c.Benign))
			}
			g.write(ew, "  ")
			if s.JudgeUnsafeRate != nil {
				fmt.Fprintf(ew, "  %s\n", p.T("probe.table.judge", "pct", fmt.Sprintf("%.0f", 100**s.JudgeUnsafeRate)))
			}
		case "backdoor":
			if len(s.Triggers) == 0 {
				continue
			}
			fmt.Fprintf(ew, "\n%s\n", p.T("probe.table.backdoor"))
			g := &grid{}
			g.add(p.T("probe.table.trigger"), p.T("probe.table.effect"), p.T("probe.table.p"), p.T("probe.table.signal"),
				p.T("probe.table.flagged"), p.T("probe.table.source"))
			more := 0
			for i, t := range s.Triggers {
				if i >= opts.Triggers {
					more = len(s.Triggers) - i
					break
				}
				g.add(locale.Truncate(printable(t.Trigger), 40), fmt.Sprintf("%.2f", t.Effect), fmt.Sprintf("%.2g", t.PValue), dash(t.Signal),
					yesNo(p, t.Flagged), locale.Truncate(printable(t.Source), 40))
			}
			g.write(ew, "  ")
			if more > 0 {
				fmt.Fprintf(ew, "  %s\n", p.T("probe.table.more", "n", strconv.Itoa(more)))
			}
		case "robustness":
			if len(s.Families) == 0 {
				continue
			}
			fmt.Fprintf(ew, "\n%s\n", p.T("probe.table.robustness", "pct", fmt.Sprintf("%.0f", 100*deref(s.DirectSuccessRate))))
			g := &grid{}
			g.add(p.T("probe.table.family"), p.T("probe.table.answered"), p.T("probe.table.worked"))
			for _, f := range s.Families {
				g.add(f.Family, rateOf(p, f.SuccessRate, f.Attempts), yesNo(p, f.Worked))
			}
			g.write(ew, "  ")
		case "leak":
			if len(s.Canaries) > 0 {
				fmt.Fprintf(ew, "\n%s\n", p.T("probe.table.canaries"))
			}
			for _, c := range s.Canaries {
				fmt.Fprintf(ew, "  %s\n", p.T("probe.table.canary", "canary", strconv.Quote(printable(c.Canary)), "completed", yesNo(p, c.Completed),
					"bits", fmt.Sprintf("%.1f", c.ExposureBits), "max", fmt.Sprintf("%.1f", c.MaxBits)))
			}
		}
	}
	if res.Stop != nil {
		fmt.Fprintf(ew, "\n%s\n", p.T("probe.table.stopped", "error", printable(res.Stop.Error())))
	}
	if res.Journal != "" {
		fmt.Fprintf(ew, "\n%s\n", p.T("probe.table.journal", "path", printable(res.Journal)))
	}
	return ew.err
}

func rateOf(p *locale.Printer, rate float64, n int) string {
	return p.T("probe.table.rate_of", "pct", fmt.Sprintf("%.0f", 100*rate), "n", strconv.Itoa(n))
}

// cell is a table cell: its text, and escape sequences (colour) around
// it that take no columns.
type cell struct{ text, pre, post string }

// grid collects rows for internal/report's Columns, which lays them out
// by display width (escape sequences take no columns, a full-width
// character two).
type grid struct{ rows [][]cell }

func (g *grid) add(cells ...string) {
	row := make([]cell, len(cells))
	for i, c := range cells {
		row[i] = cell{text: c}
	}
	g.rows = append(g.rows, row)
}

func (g *grid) addCells(cells ...cell) { g.rows = append(g.rows, cells) }

func (g *grid) write(w io.Writer, indent string) {
	cols := llmreport.NewColumns(w)
	for _, r := range g.rows {
		parts := make([]string, len(r))
		for i, c := range r {
			parts[i] = c.pre + strings.ReplaceAll(c.text, "\t", " ") + c.post
		}
		fmt.Fprintln(cols, indent+strings.Join(parts, "\t"))
	}
	cols.Flush()
}

type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(p)
	e.err = err
	return n, err
}

func deref(p *float64) float64 {
	if p == nil {
		return 0
	}
	return *p
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// printable drops control characters (terminal escapes from a model's
// answer must not reach the terminal).
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\n' || r == '\t' {
			return ' '
		}
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			return -1
		}
		return r
	}, s)
}

func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
