package datascan

import (
	"html/template"
	"io"
	"sort"
	"strings"
)

// Report is what the HTML report shows.
type Report struct {
	Findings  []Finding
	Summaries []Summary
	Files     []FileInfo
	Stats     Stats
}

// maxHTMLFindings bounds the findings listed per kind in the HTML report
// (the JSON output lists all).
const maxHTMLFindings = 500

var htmlTmpl = template.Must(template.New("datascan").Funcs(template.FuncMap{
	"lower": strings.ToLower,
}).Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>llmfence datascan</title>
<style>
body{font-family:system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin:1em 0;width:100%}
td,th{border:1px solid #ccc;padding:.3em .5em;text-align:left;vertical-align:top;font-size:90%}
th{background:#f3f3f3}.critical{color:#fff;background:#8b0000}.high{background:#f4b6b6}
.medium{background:#fde9b5}.low{background:#e4f1e1}code{word-break:break-all}
</style></head><body>
<h1>llmfence datascan</h1>
<p>{{.Stats.Files}} files, {{.Stats.Records}} records scanned{{if .Stats.Errors}}; {{.Stats.Errors}} files with errors{{end}}.</p>
{{if .Summaries}}<h2>Triggers and clusters</h2>
<table><tr><th>Severity</th><th>Finding</th><th>Trigger / cluster</th><th>Records</th><th>Files</th><th>Evidence</th></tr>
{{range .Summaries}}<tr><td class="{{lower (print .Severity)}}">{{.Severity}}</td><td>{{.Finding}}</td><td><code>{{if .Trigger}}{{.Trigger}}{{else}}{{.Cluster}}{{end}}</code></td><td>{{.Records}}</td><td>{{.Files}}</td><td>{{.Evidence}}{{if .Response}}<br>response: {{.Response}}{{end}}</td></tr>
{{end}}</table>{{end}}
{{range .Kinds}}<h2>{{.Kind}} ({{.Total}})</h2>
<table><tr><th>Severity</th><th>File</th><th>Record</th><th>Offset</th><th>Trigger / category</th><th>Evidence</th></tr>
{{range .Findings}}<tr><td class="{{lower (print .Severity)}}">{{.Severity}}</td><td><code>{{.File}}</code></td><td>{{.Record}}</td><td>{{.Offset}}</td><td><code>{{if .Trigger}}{{.Trigger}}{{else if .Category}}{{.Category}}{{else}}{{.Cluster}}{{end}}</code></td><td>{{.Evidence}}</td></tr>
{{end}}</table>{{if gt .Total (len .Findings)}}<p>… {{.Total}} in all; the JSON output lists every one.</p>{{end}}{{end}}
<h2>Files</h2>
<table><tr><th>File</th><th>Format</th><th>Schema</th><th>Records</th><th>SHA-256</th><th>Licence</th><th>Error</th></tr>
{{range .Files}}<tr><td><code>{{.Path}}</code></td><td>{{.Format}}</td><td>{{.Schema}}</td><td>{{.Records}}</td><td><code>{{.SHA256}}</code></td><td>{{range .Licenses}}{{.}} {{end}}</td><td>{{.Error}}</td></tr>
{{end}}</table>
</body></html>
`))

type htmlKind struct {
	Kind     string
	Total    int
	Findings []Finding
}

// WriteHTML writes a self-contained HTML report. All data goes through
// html/template: evidence comes from the scanned data and is hostile.
func WriteHTML(w io.Writer, r Report) error {
	byKind := map[string]*htmlKind{}
	for _, f := range r.Findings {
		k := byKind[f.Kind]
		if k == nil {
			k = &htmlKind{Kind: f.Kind}
			byKind[f.Kind] = k
		}
		k.Total++
		if len(k.Findings) < maxHTMLFindings {
			k.Findings = append(k.Findings, f)
		}
	}
	kinds := make([]*htmlKind, 0, len(byKind))
	for _, k := range byKind {
		kinds = append(kinds, k)
	}
	order := map[string]int{KindBackdoorTrigger: 0, KindInstructionBackdoor: 1, KindPromptInjection: 2, KindSecret: 3, KindPII: 4, KindDuplicateCluster: 5}
	sort.Slice(kinds, func(i, j int) bool { return order[kinds[i].Kind] < order[kinds[j].Kind] })
	return htmlTmpl.Execute(w, struct {
		Report
		Kinds []*htmlKind
	}{r, kinds})
}
