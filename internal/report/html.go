package report

import (
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"sort"
	"strings"

	"github.com/llmfence/llmfence/internal/locale"
	"github.com/llmfence/llmfence/internal/risk"
	"github.com/llmfence/llmfence/internal/service"
)

//go:embed templates/report.html.tmpl
var reportTemplate string

// htmlTemplate is parsed once; each render clones it and binds T to the
// reader's language.
var htmlTemplate = template.Must(template.New("report").Funcs(template.FuncMap{
	"T": func(string, ...string) string { return "" },
}).Parse(reportTemplate))

// PromptPreviewRunes is how much of a system prompt the HTML report shows
// before folding the rest into a <details> expander.
const PromptPreviewRunes = 280

// maxTargetsShown caps the target list in the run metadata.
const maxTargetsShown = 20

type bar struct {
	Label string
	Count int
	Class string
	Y     int // top of the bar, px
	TextY int // baseline of the labels, px
	Width int // px
	EndX  int // x of the count label, px
}

type chart struct {
	Title  string
	Height int
	Bars   []bar
}

type modelView struct {
	Name, Details      string
	Remote, Guardrails bool
	GuardrailEvidence  string
	Categories         []categoryView
	PromptPreview      string
	PromptFull         string
	PromptTruncated    bool
	PromptRunes        int
}

// categoryView is a system-prompt category: its machine label and how a
// person reads it.
type categoryView struct{ Label, Text string }

// findingView is a finding as the reader reads it.
type findingView struct {
	ID, Severity, SeverityText string
	Title, Detail              template.HTML // code spans drawn
}

type serviceView struct {
	Key, URL, Product, Version, Auth, Risk, Error string
	Gateway                                       string
	AuthText, RiskText                            string
	Hostname                                      string
	TLS, ManagementOpen                           bool
	CORS                                          string
	Findings                                      []findingView
	Models                                        []modelView
	Loaded                                        []service.LoadedModel
	Remediation                                   []template.HTML
	ScannedAt                                     string
}

type htmlView struct {
	Lang                               string
	RunID, Started, Finished, Duration string
	VulnDataDate                       string
	Targets                            []string
	TargetsMore                        int
	Total                              int
	Summary                            string
	RiskCounts                         []bar
	Charts                             []chart
	Services                           []serviceView
}

const (
	chartBarMax  = 320
	chartRowStep = 28
	chartBarH    = 18
	chartLabelW  = 150
)

func makeChart(title string, labels []string, counts map[string]int, class func(string) string) chart {
	maxCount := 0
	for _, l := range labels {
		maxCount = max(maxCount, counts[l])
	}
	c := chart{Title: title, Height: len(labels)*chartRowStep + 4}
	for i, l := range labels {
		n := counts[l]
		w := 0
		if maxCount > 0 {
			w = n * chartBarMax / maxCount
		}
		if n > 0 && w < 2 {
			w = 2
		}
		y := 2 + i*chartRowStep
		c.Bars = append(c.Bars, bar{
			Label: l, Count: n, Class: class(l),
			Y: y, TextY: y + chartBarH - 4, Width: w, EndX: chartLabelW + w + 6,
		})
	}
	return c
}

// HTML writes the report as one self-contained HTML file: inline CSS and
// SVG, no scripts, no external assets, in the language of r.Text.
func HTML(w io.Writer, r Report) error {
	p, err := printerOr(r.Text)
	if err != nil {
		return err
	}
	services := SortByRisk(r.Services)
	byRisk := CountByRisk(services)
	v := htmlView{
		Lang:     string(p.Lang()),
		RunID:    r.RunID,
		Started:  p.DateTime(r.Started),
		Finished: p.DateTime(r.Finished),
		Total:    len(services),
		Summary:  summary(p, services),

		VulnDataDate: r.VulnDataDate,
	}
	if v.VulnDataDate == "" {
		v.VulnDataDate = VulnDataDate(services)
	}
	v.VulnDataDate = p.DateString(v.VulnDataDate)
	if !r.Started.IsZero() && !r.Finished.IsZero() && !r.Finished.Before(r.Started) {
		v.Duration = p.Duration(r.Finished.Sub(r.Started))
	}
	v.Targets = r.Targets
	if len(v.Targets) > maxTargetsShown {
		v.TargetsMore = len(v.Targets) - maxTargetsShown
		v.Targets = v.Targets[:maxTargetsShown]
	}

	riskLabels := make([]string, 0, len(riskOrder))
	riskCounts := map[string]int{}
	riskClass := map[string]string{}
	for _, s := range riskOrder {
		label := risk.Severity(p, s)
		riskLabels = append(riskLabels, label)
		riskCounts[label] = byRisk[s]
		riskClass[label] = "sev-" + string(s)
		v.RiskCounts = append(v.RiskCounts, bar{Label: label, Count: byRisk[s], Class: "sev-" + string(s)})
	}
	byProduct := CountByProduct(services)
	products := make([]string, 0, len(byProduct))
	for p := range byProduct {
		products = append(products, p)
	}
	sort.Slice(products, func(i, j int) bool {
		if byProduct[products[i]] != byProduct[products[j]] {
			return byProduct[products[i]] > byProduct[products[j]]
		}
		return products[i] < products[j]
	})
	v.Charts = []chart{
		makeChart(p.T("report.html.by_risk"), riskLabels, riskCounts, func(l string) string { return riskClass[l] }),
		makeChart(p.T("report.html.by_product"), products, byProduct, func(string) string { return "product" }),
	}

	for _, s := range services {
		sv := serviceView{
			Key: s.Key(), URL: s.URL, Hostname: s.Hostname, Product: s.Product, Version: s.Version,
			Auth: string(s.Auth), Risk: string(riskOf(&s)), Error: s.Error, TLS: s.TLS,
			ManagementOpen: s.ManagementOpen, CORS: s.CORS, Loaded: s.Loaded, Gateway: printable(s.Gateway),
			AuthText: authText(p, s.Auth), RiskText: risk.Severity(p, riskOf(&s)),
		}
		if !s.ScannedAt.IsZero() {
			sv.ScannedAt = p.DateTime(s.ScannedAt)
		}
		for _, f := range s.Findings {
			sv.Findings = append(sv.Findings, findingView{ID: f.ID, Severity: string(f.Severity),
				SeverityText: risk.Severity(p, f.Severity), Title: CodeSpansHTML(risk.Title(p, f)), Detail: CodeSpansHTML(risk.Detail(p, f))})
		}
		for _, line := range risk.Remediation(p, &s) {
			sv.Remediation = append(sv.Remediation, CodeSpansHTML(line))
		}
		for _, m := range s.Models {
			mv := modelView{
				Name: printable(m.Name), Remote: m.Remote, Guardrails: m.GuardrailsRemoved,
				GuardrailEvidence: m.GuardrailEvidence,
			}
			for _, c := range m.SystemPromptCategories {
				text := c
				if p.Lang() != locale.English && p.Has(risk.CategoryID(c)) {
					text = p.T(risk.CategoryID(c))
				}
				mv.Categories = append(mv.Categories, categoryView{Label: c, Text: text})
			}
			var details []string
			for _, d := range []string{m.Family, m.ParameterSize, m.Quantization} {
				if d != "" {
					details = append(details, d)
				}
			}
			mv.Details = strings.Join(details, " · ")
			if p := strings.TrimSpace(keepLines(m.SystemPrompt)); p != "" {
				mv.PromptFull = p
				mv.PromptRunes = len([]rune(p))
				mv.PromptPreview = truncate(p, PromptPreviewRunes)
				mv.PromptTruncated = mv.PromptPreview != p
			}
			sv.Models = append(sv.Models, mv)
		}
		v.Services = append(v.Services, sv)
	}
	t, err := htmlTemplate.Clone()
	if err != nil {
		return fmt.Errorf("writing the HTML report: %w", err)
	}
	t.Funcs(template.FuncMap{"T": p.T})
	if err := t.Execute(w, v); err != nil {
		return fmt.Errorf("writing the HTML report: %w", err)
	}
	return nil
}

// keepLines is printable but keeps newlines and tabs, for multi-line text
// shown in <pre>.
func keepLines(s string) string {
	lines := strings.Split(strings.ReplaceAll(s, "\r\n", "\n"), "\n")
	for i, l := range lines {
		parts := strings.Split(l, "\t")
		for j, p := range parts {
			parts[j] = printable(p)
		}
		lines[i] = strings.Join(parts, "\t")
	}
	return strings.Join(lines, "\n")
}
