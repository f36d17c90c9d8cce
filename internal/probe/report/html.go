package report

import (
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"strconv"
	"strings"

	"github.com/llmfence/llmfence/internal/locale"
	"github.com/llmfence/llmfence/internal/probe"
)

//go:embed templates/probe.html.tmpl
var htmlSource string

var htmlTemplate = template.Must(template.New("probe").Funcs(template.FuncMap{
	"pct": func(f float64) string { return fmt.Sprintf("%.0f%%", 100*f) },
	"pctp": func(f *float64) string {
		if f == nil {
			return "–"
		}
		return fmt.Sprintf("%.0f%%", 100**f)
	},
	"p":     func(f float64) string { return fmt.Sprintf("%.2g", f) },
	"f2":    func(f float64) string { return fmt.Sprintf("%.2f", f) },
	"f1":    func(f float64) string { return fmt.Sprintf("%.1f", f) },
	"deref": func(b *bool) bool { return b != nil && *b },
}).Parse(htmlSource))

// maxAttemptRows caps the attempts table of the HTML report.
const maxAttemptRows = 2000

// bar is one bar of an SVG chart, laid out in Go so the template stays
// simple.
type bar struct {
	Label         string
	Value         float64 // 0..1
	Y, W, TextY   int
	LoX, HiX      int // CI whiskers (0 when none)
	HasCI         bool
	Class, Value2 string
}

type chart struct {
	Title  string
	Height int
	Bars   []bar
}

const chartWidth = 300 // px of the bar area

func makeChart(title string, labels []string, values []float64, cis [][2]float64, classes []string) chart {
	c := chart{Title: title, Height: 28*len(labels) + 10}
	for i, l := range labels {
		b := bar{Label: locale.Truncate(l, 30), Value: values[i], Y: 28*i + 4, W: int(values[i] * chartWidth), TextY: 28*i + 20, Class: classes[i],
			Value2: fmt.Sprintf("%.0f%%", 100*values[i])}
		if cis != nil {
			b.HasCI, b.LoX, b.HiX = true, 200+int(cis[i][0]*chartWidth), 200+int(cis[i][1]*chartWidth)
		}
		c.Bars = append(c.Bars, b)
	}
	return c
}

type htmlView struct {
	*probe.Result
	Worst    probe.Summary
	Charts   []chart
	Attempts []*probe.Attempt
	Omitted  int
	p        *locale.Printer
}

// Lang is the report's language, for <html lang>.
func (v *htmlView) Lang() string { return string(v.p.Lang()) }

// T says a message with key, value arguments.
func (v *htmlView) T(id string, kv ...string) string { return v.p.T(id, kv...) }

// Word says a value of a fixed vocabulary: a suite, a verdict, a role.
func (v *htmlView) Word(group, value string) string { return word(v.p, group, value) }

// Reason says why a suite's verdict is what it is.
func (v *htmlView) Reason(s probe.Summary) string { return Reason(v.p, s) }

// StartedLine is the line under the title: target, server, start, size.
func (v *htmlView) StartedLine() string {
	return v.p.T("probe.html.started", "target", v.Config.Target, "server", strings.TrimSpace(v.Server.API+" "+v.Server.Version),
		"when", v.p.DateTime(v.Started), "requests", strconv.Itoa(v.Planned), "elapsed", v.p.Duration(v.Elapsed))
}

// Incomplete says that the run is incomplete, and why.
func (v *htmlView) Incomplete() string {
	why := ""
	if v.Stop != nil {
		why = ": " + v.Stop.Error()
	}
	return v.p.T("probe.html.incomplete", "why", why)
}

// HTML writes the self-contained report in English.
func HTML(w io.Writer, res *probe.Result) error { return HTMLIn(w, res, nil) }

// HTMLIn writes the self-contained report in the printer's language (nil:
// English). The report names CJK fonts in its font stack and lets long
// tokens wrap, so Japanese is drawn and nothing is cut off.
func HTMLIn(w io.Writer, res *probe.Result, p *locale.Printer) error {
	p, err := printerOr(p)
	if err != nil {
		return err
	}
	v := htmlView{Result: res, Worst: res.Worst(), Attempts: res.Attempts, p: p}
	if len(v.Attempts) > maxAttemptRows {
		v.Omitted = len(v.Attempts) - maxAttemptRows
		v.Attempts = v.Attempts[:maxAttemptRows]
	}
	for _, s := range res.Summaries {
		switch s.Suite {
		case "guardrails":
			var labels, classes []string
			var vals []float64
			var cis [][2]float64
			if s.RefusalRate != nil {
				labels, vals, classes = append(labels, p.T("probe.html.bar_harmful")), append(vals, *s.RefusalRate), append(classes, "good")
				cis = append(cis, *s.RefusalRateCI)
			}
			if s.OverRefusalRate != nil && s.OverRefusalRateCI != nil {
				labels, vals, classes = append(labels, p.T("probe.html.bar_benign")), append(vals, *s.OverRefusalRate), append(classes, "bad")
				cis = append(cis, *s.OverRefusalRateCI)
			}
			if s.Baseline != nil {
				labels, vals, classes = append(labels, p.T("probe.html.bar_baseline")), append(vals, s.Baseline.RefusalRate), append(classes, "neutral")
				cis = append(cis, [2]float64{s.Baseline.RefusalRate, s.Baseline.RefusalRate})
			}
			for _, c := range s.Categories {
				labels, vals, classes = append(labels, category(p, c.Category)), append(vals, c.RefusalRate), append(classes, "good")
				cis = append(cis, [2]float64{c.RefusalRate, c.RefusalRate})
			}
			if len(labels) > 0 {
				v.Charts = append(v.Charts, makeChart(p.T("probe.html.chart_guardrails"), labels, vals, cis, classes))
			}
		case "robustness":
			labels, vals, classes := []string{p.T("probe.html.bar_direct")}, []float64{deref(s.DirectSuccessRate)}, []string{"neutral"}
			var cis [][2]float64
			cis = append(cis, [2]float64{deref(s.DirectSuccessRate), deref(s.DirectSuccessRate)})
			for _, f := range s.Families {
				cls := "good"
				if f.Worked {
					cls = "bad"
				}
				labels, vals, classes, cis = append(labels, f.Family), append(vals, f.SuccessRate), append(classes, cls), append(cis, f.CI)
			}
			v.Charts = append(v.Charts, makeChart(p.T("probe.html.chart_robustness"), labels, vals, cis, classes))
		case "backdoor":
			var labels, classes []string
			var vals []float64
			for i, t := range s.Triggers {
				if i >= 12 {
					break
				}
				cls := "neutral"
				if t.Flagged {
					cls = "bad"
				}
				labels, vals, classes = append(labels, clip(t.Trigger, 28)), append(vals, max(0, t.Effect)), append(classes, cls)
			}
			if len(labels) > 0 {
				v.Charts = append(v.Charts, makeChart(p.T("probe.html.chart_backdoor"), labels, vals, nil, classes))
			}
		}
	}
	return htmlTemplate.Execute(w, &v)
}
