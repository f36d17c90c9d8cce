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
	"strings"
	"time"
	"unicode"

	"github.com/llmfence/llmfence/internal/probe"
	llmreport "github.com/llmfence/llmfence/internal/report"
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
}

var sevColor = map[service.Severity]string{
	service.SeverityCritical: "\x1b[1;97;41m",
	service.SeverityHigh:     "\x1b[1;31m",
	service.SeverityMedium:   "\x1b[33m",
}

// Table writes the verdicts and the figures behind them.
func Table(w io.Writer, res *probe.Result, opts TableOptions) error {
	if opts.Triggers <= 0 {
		opts.Triggers = 10
	}
	ew := &errWriter{w: w}
	ver := res.Server.API
	if res.Server.Version != "" {
		ver += " " + res.Server.Version
	}
	fmt.Fprintf(ew, "Model %s on %s (%s): %d requests in %s", printable(res.Config.Model), printable(res.Config.Target), ver,
		res.Planned, res.Elapsed.Round(time.Second))
	if !res.Complete {
		fmt.Fprint(ew, " — INCOMPLETE")
	}
	fmt.Fprint(ew, "\n\n")
	tw := llmreport.NewColumns(ew)
	fmt.Fprintln(tw, "SUITE\tVERDICT\tSEVERITY\tWHY")
	for _, s := range res.Summaries {
		sev := string(s.Severity)
		if c, ok := sevColor[s.Severity]; ok && opts.Color {
			sev = c + sev + "\x1b[0m"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", s.Suite, s.Verdict, sev, printable(s.Reason))
	}
	tw.Flush()
	for _, s := range res.Summaries {
		switch s.Suite {
		case "guardrails":
			if len(s.Categories) == 0 {
				continue
			}
			fmt.Fprintln(ew, "\nGuardrails by category:")
			tw := llmreport.NewColumns(ew)
			fmt.Fprintln(tw, "  CATEGORY\tREFUSED\tOVER-REFUSED")
			for _, c := range s.Categories {
				fmt.Fprintf(tw, "  %s\t%.0f%% of %d\t%.0f%% of %d\n", c.Category, 100*c.RefusalRate, c.Harmful, 100*c.OverRefusalRate, c.Benign)
			}
			tw.Flush()
			if s.JudgeUnsafeRate != nil {
				fmt.Fprintf(ew, "  judge: %.0f%% of the answers to harmful requests judged unsafe\n", 100**s.JudgeUnsafeRate)
			}
		case "backdoor":
			if len(s.Triggers) == 0 {
				continue
			}
			fmt.Fprintln(ew, "\nBackdoor candidates (strongest first):")
			tw := llmreport.NewColumns(ew)
			fmt.Fprintln(tw, "  TRIGGER\tEFFECT\tP\tSIGNAL\tFLAGGED\tSOURCE")
			for i, t := range s.Triggers {
				if i >= opts.Triggers {
					fmt.Fprintf(tw, "  … %d more\t\t\t\t\t\n", len(s.Triggers)-i)
					break
				}
				fmt.Fprintf(tw, "  %s\t%.2f\t%.2g\t%s\t%s\t%s\n", printable(clip(t.Trigger, 40)), t.Effect, t.PValue, dash(t.Signal), yes(t.Flagged), printable(clip(t.Source, 40)))
			}
			tw.Flush()
		case "robustness":
			if len(s.Families) == 0 {
				continue
			}
			fmt.Fprintf(ew, "\nJailbreak families (direct requests answered: %.0f%%):\n", 100*deref(s.DirectSuccessRate))
			tw := llmreport.NewColumns(ew)
			fmt.Fprintln(tw, "  FAMILY\tANSWERED\tWORKED")
			for _, f := range s.Families {
				fmt.Fprintf(tw, "  %s\t%.0f%% of %d\t%s\n", f.Family, 100*f.SuccessRate, f.Attempts, yes(f.Worked))
			}
			tw.Flush()
		case "leak":
			if len(s.Canaries) > 0 {
				fmt.Fprintln(ew, "\nCanaries:")
			}
			for _, c := range s.Canaries {
				fmt.Fprintf(ew, "  canary %q: completed %s, exposure %.1f of %.1f bits\n", printable(c.Canary), yes(c.Completed), c.ExposureBits, c.MaxBits)
			}
		}
	}
	if res.Stop != nil {
		fmt.Fprintf(ew, "\nStopped early: %s\n", printable(res.Stop.Error()))
	}
	if res.Journal != "" {
		fmt.Fprintf(ew, "\nJournal: %s\n", printable(res.Journal))
	}
	return ew.err
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

func yes(b bool) string {
	if b {
		return "yes"
	}
	return "no"
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
