package report

import (
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/llmfence/llmfence/internal/service"
)

//go:embed templates/report.html.tmpl
var reportTemplate string

var htmlTemplate = template.Must(template.New("report").Parse(reportTemplate))

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
	Categories         []string
	PromptPreview      string
	PromptFull         string
	PromptTruncated    bool
	PromptRunes        int
}

type serviceView struct {
	Key, URL, Product, Version, Auth, Risk, Error string
	Hostname                                      string
	TLS, ManagementOpen                           bool
	CORS                                          string
	Findings                                      []service.Finding
	Models                                        []modelView
	Loaded                                        []service.LoadedModel
	Remediation                                   []string
	ScannedAt                                     string
}

type htmlView struct {
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

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

// HTML writes the report as one self-contained HTML file: inline CSS and
// SVG, no scripts, no external assets.
func HTML(w io.Writer, r Report) error {
	services := SortByRisk(r.Services)
	byRisk := CountByRisk(services)
	v := htmlView{
		RunID:    r.RunID,
		Started:  fmtTime(r.Started),
		Finished: fmtTime(r.Finished),
		Total:    len(services),
		Summary:  Summary(services),

		VulnDataDate: r.VulnDataDate,
	}
	if v.VulnDataDate == "" {
		v.VulnDataDate = VulnDataDate(services)
	}
	if !r.Started.IsZero() && !r.Finished.IsZero() && !r.Finished.Before(r.Started) {
		v.Duration = r.Finished.Sub(r.Started).Round(time.Second).String()
	}
	v.Targets = r.Targets
	if len(v.Targets) > maxTargetsShown {
		v.TargetsMore = len(v.Targets) - maxTargetsShown
		v.Targets = v.Targets[:maxTargetsShown]
	}

	riskLabels := make([]string, 0, len(riskOrder))
	riskCounts := map[string]int{}
	for _, s := range riskOrder {
		riskLabels = append(riskLabels, string(s))
		riskCounts[string(s)] = byRisk[s]
		v.RiskCounts = append(v.RiskCounts, bar{Label: string(s), Count: byRisk[s], Class: "sev-" + string(s)})
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
		makeChart("Services by risk", riskLabels, riskCounts, func(l string) string { return "sev-" + l }),
		makeChart("Services by product", products, byProduct, func(string) string { return "product" }),
	}

	for _, s := range services {
		sv := serviceView{
			Key: s.Key(), URL: s.URL, Hostname: s.Hostname, Product: s.Product, Version: s.Version,
			Auth: string(s.Auth), Risk: string(riskOf(&s)), Error: s.Error, TLS: s.TLS,
			ManagementOpen: s.ManagementOpen, CORS: s.CORS, Findings: s.Findings, Loaded: s.Loaded,
		}
		if !s.ScannedAt.IsZero() {
			sv.ScannedAt = fmtTime(s.ScannedAt)
		}
		for _, line := range strings.Split(s.Remediation, "\n") {
			if line = strings.TrimSpace(line); line != "" {
				sv.Remediation = append(sv.Remediation, line)
			}
		}
		for _, m := range s.Models {
			mv := modelView{
				Name: printable(m.Name), Remote: m.Remote, Guardrails: m.GuardrailsRemoved,
				GuardrailEvidence: m.GuardrailEvidence, Categories: m.SystemPromptCategories,
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
	if err := htmlTemplate.Execute(w, v); err != nil {
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
