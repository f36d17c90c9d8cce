package report

import (
	"html/template"
	"strings"
)

// Texts from the findings catalogue (remediation, titles, details) mark
// commands and paths as code spans between backticks, as Markdown does:
// "put `llmfence guard` in front". The HTML report draws them as <code>;
// the terminal table and CSV, which cannot, drop the backticks. JSON
// keeps the text as the catalogue wrote it.

// PlainText drops the backticks of code spans: every backtick that has a
// partner later in the text. An unpaired backtick is kept as it is.
func PlainText(s string) string {
	if strings.Count(s, "`") < 2 {
		return s
	}
	parts := strings.Split(s, "`")
	var b strings.Builder
	for i, p := range parts {
		// parts alternate outside/inside; with an odd number of
		// backticks the last one has no partner.
		if i > 0 && i == len(parts)-1 && len(parts)%2 == 0 {
			b.WriteByte('`')
		}
		b.WriteString(p)
	}
	return b.String()
}

// CodeSpansHTML escapes s for HTML and turns its code spans into <code>
// elements. Everything in s is escaped: hostile text from a scanned
// server cannot add markup, only the backticks become elements.
func CodeSpansHTML(s string) template.HTML {
	if strings.Count(s, "`") < 2 {
		return template.HTML(template.HTMLEscapeString(s))
	}
	parts := strings.Split(s, "`")
	var b strings.Builder
	for i, p := range parts {
		unpaired := i == len(parts)-1 && len(parts)%2 == 0
		switch {
		case unpaired:
			b.WriteString("`" + template.HTMLEscapeString(p))
		case i%2 == 1:
			b.WriteString("<code>" + template.HTMLEscapeString(p) + "</code>")
		default:
			b.WriteString(template.HTMLEscapeString(p))
		}
	}
	return template.HTML(b.String())
}
