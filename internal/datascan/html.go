package datascan

import (
	"html/template"
	"io"
	"sort"
	"strconv"
	"strings"

	"github.com/llmfence/llmfence/internal/locale"
	"github.com/llmfence/llmfence/internal/risk"
	"github.com/llmfence/llmfence/internal/service"
)

// Report is what the table and the HTML report show.
type Report struct {
	Findings  []Finding
	Summaries []Summary
	Files     []FileInfo
	Stats     Stats
	// Text says the report in the reader's language; nil is English.
	Text *locale.Printer
}

// maxHTMLFindings bounds the findings listed per kind in the HTML report
// (the JSON output lists all).
const maxHTMLFindings = 500

// The report says every word through the view's methods ({{$.T "id"}}),
// so a Japanese report has no English labels. Its font stack names CJK
// fonts and long tokens (hashes, paths, triggers) wrap, so nothing is cut
// off (checked in headless Chromium by the tests).
var htmlTmpl = template.Must(template.New("datascan").Funcs(template.FuncMap{
	"lower": strings.ToLower,
}).Parse(`<!DOCTYPE html>
<html lang="{{.Lang}}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{$.T "datascan.html.title"}}</title>
<style>
body{font:14px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,"Hiragino Sans","Hiragino Kaku Gothic ProN","Noto Sans CJK JP","Noto Sans JP","Yu Gothic",Meiryo,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin:1em 0;width:100%}
td,th{border:1px solid #ccc;padding:.3em .5em;text-align:left;vertical-align:top;font-size:90%;overflow-wrap:anywhere}
th{background:#f3f3f3}.critical{color:#fff;background:#8b0000}.high{background:#f4b6b6}
.medium{background:#fde9b5}.low{background:#e4f1e1}
code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,"Noto Sans Mono CJK JP",monospace;word-break:break-all}
.why{color:#444;max-width:60em}footer{color:#666;margin-top:2em}
</style></head><body>
<h1>{{$.T "datascan.html.title"}}</h1>
<p>{{$.Scanned}}{{if .Stats.Errors}} {{$.T "datascan.html.errors" "n" (print .Stats.Errors)}}{{end}}</p>
{{if .Summaries}}<h2>{{$.T "datascan.html.triggers_clusters"}}</h2>
<table><tr><th>{{$.T "datascan.html.col.severity"}}</th><th>{{$.T "datascan.html.col.finding"}}</th><th>{{$.T "datascan.html.col.trigger_cluster"}}</th><th>{{$.T "datascan.html.col.records"}}</th><th>{{$.T "datascan.html.col.files"}}</th><th>{{$.T "datascan.html.col.evidence"}}</th></tr>
{{range .Summaries}}<tr><td class="{{lower (print .Severity)}}">{{$.Severity .Severity}}</td><td>{{$.Kind .Finding}}</td><td><code>{{if .Trigger}}{{.Trigger}}{{else}}{{.Cluster}}{{end}}</code></td><td>{{.Records}}</td><td>{{.Files}}</td><td>{{.Evidence}}{{if .Response}}<br>{{$.T "datascan.html.response"}} {{.Response}}{{end}}</td></tr>
{{end}}</table>{{end}}
{{range .Kinds}}<h2>{{$.T "datascan.html.kind_heading" "label" ($.Kind .Kind) "total" (print .Total)}}</h2>
{{with $.Why .Kind}}<p class="why">{{.}}</p>{{end}}
<table><tr><th>{{$.T "datascan.html.col.severity"}}</th><th>{{$.T "datascan.html.col.file"}}</th><th>{{$.T "datascan.html.col.record"}}</th><th>{{$.T "datascan.html.col.offset"}}</th><th>{{$.T "datascan.html.col.trigger_category"}}</th><th>{{$.T "datascan.html.col.evidence"}}</th></tr>
{{range .Findings}}<tr><td class="{{lower (print .Severity)}}">{{$.Severity .Severity}}</td><td><code>{{.File}}</code></td><td>{{.Record}}</td><td>{{.Offset}}</td><td><code>{{if .Trigger}}{{.Trigger}}{{else if .Category}}{{.Category}}{{else}}{{.Cluster}}{{end}}</code></td><td>{{.Evidence}}</td></tr>
{{end}}</table>{{if gt .Total (len .Findings)}}<p>{{$.T "datascan.html.more" "total" (print .Total)}}</p>{{end}}{{end}}
<h2>{{$.T "datascan.html.files"}}</h2>
<table><tr><th>{{$.T "datascan.html.col.file"}}</th><th>{{$.T "datascan.html.col.format"}}</th><th>{{$.T "datascan.html.col.schema"}}</th><th>{{$.T "datascan.html.col.records"}}</th><th>{{$.T "datascan.html.col.sha256"}}</th><th>{{$.T "datascan.html.col.licence"}}</th><th>{{$.T "datascan.html.col.error"}}</th></tr>
{{range .Files}}<tr><td><code>{{.Path}}</code></td><td>{{.Format}}</td><td>{{.Schema}}</td><td>{{.Records}}</td><td><code>{{.SHA256}}</code></td><td>{{range .Licenses}}{{.}} {{end}}</td><td>{{.Error}}</td></tr>
{{end}}</table>
<footer>{{$.T "datascan.html.footer"}}</footer>
</body></html>
`))

type htmlKind struct {
	Kind     string
	Total    int
	Findings []Finding
}

// htmlView is what the template sees: the report, the findings by kind,
// and the printer behind its methods.
type htmlView struct {
	Report
	Kinds []*htmlKind
	p     *locale.Printer
}

func (v *htmlView) Lang() string { return string(v.p.Lang()) }

// T says a message with key, value arguments.
func (v *htmlView) T(id string, kv ...string) string { return v.p.T(id, kv...) }

func (v *htmlView) Severity(s service.Severity) string { return risk.Severity(v.p, s) }
func (v *htmlView) Kind(kind string) string            { return kindLabel(v.p, kind) }
func (v *htmlView) Why(kind string) string             { return kindWhy(v.p, kind) }

func (v *htmlView) Scanned() string {
	return v.p.T("datascan.html.scanned", "files", strconv.Itoa(v.Stats.Files), "records", strconv.FormatInt(v.Stats.Records, 10),
		"size", humanSize(v.Stats.Bytes))
}

// WriteHTML writes a self-contained HTML report in r.Text's language
// (nil: English). All data goes through html/template: evidence comes
// from the scanned data and is hostile.
func WriteHTML(w io.Writer, r Report) error {
	p, err := printerOr(r.Text)
	if err != nil {
		return err
	}
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
	for kind, k := range byKind {
		k.Total = max(k.Total, r.Stats.Findings[kind]) // the report keeps only the first findings of a kind
	}
	kinds := make([]*htmlKind, 0, len(byKind))
	for _, k := range byKind {
		kinds = append(kinds, k)
	}
	order := map[string]int{}
	for i, k := range kindOrder {
		order[k] = i
	}
	sort.Slice(kinds, func(i, j int) bool { return order[kinds[i].Kind] < order[kinds[j].Kind] })
	return htmlTmpl.Execute(w, &htmlView{Report: r, Kinds: kinds, p: p})
}
