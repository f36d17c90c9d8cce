package redact

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

//go:generate go test -run TestDocUpToDate -update .

// writeMarkdown writes docs/redaction.md, generated from the pattern data.
func (r *Redactor) writeMarkdown(w io.Writer) error {
	b := bufio.NewWriter(w)
	p := func(format string, a ...any) { fmt.Fprintf(b, format, a...) }
	p("# llmfence redaction patterns\n\n")
	p("<!-- Generated from internal/redact/patterns.yaml by `go generate ./internal/redact`.")
	p(" Do not edit by hand; a test fails when it is stale. -->\n\n")
	p("Pattern data version %d. When `llmfence guard` stores prompts and responses ", r.version)
	p("(capture enabled), every match below is replaced by `[REDACTED:<label>]` before anything is written; ")
	p("the stored capture keeps the number of replacements per pattern and this version. ")
	p("`llmfence datascan` reports the same matches in training data as findings of kind `secret` or `pii` (the Kind column).\n\n")
	p("Of overlapping matches, the one that starts first wins, then the longest, then the pattern listed first. ")
	p("A candidate its validator rejects is not redacted, and no other pattern redacts a part of it. ")
	p("How the patterns work, and their limits: the package documentation of `internal/redact`.\n\n")
	p("| ID | Kind | Label | Validator | What |\n|---|---|---|---|---|\n")
	for _, e := range r.entries {
		v := e.Validator
		if v == "" || v == "none" {
			v = "—"
		}
		p("| [`%s`](#%s) | %s | `%s` | %s | %s |\n", e.ID, e.ID, e.Category, e.Replacement, v, mdCell(e.Description))
	}
	p("\n")
	for _, e := range r.entries {
		p("## %s\n\n", e.ID)
		p("%s.\n\n", strings.TrimSuffix(strings.TrimSpace(e.Description), "."))
		p("- Kind: %s\n", e.Category)
		p("- Replaced by: `%s`", e.marker)
		if len(e.valueGroups) > 0 {
			p(" (only the value; the rest of the match is kept)")
		}
		p("\n")
		if e.Validator != "" && e.Validator != "none" {
			p("- Validator: `%s`\n", e.Validator)
		}
		if len(e.Keywords) > 0 {
			p("- Only looked for in text containing: %s\n", quoteList(e.Keywords))
		}
		p("- Regex: `` %s ``\n\n", e.Regex)
		p("Redacted:\n\n")
		for _, ex := range e.Examples.Match {
			p("- %s\n", mdCode(ex))
		}
		if len(e.Examples.NoMatch) > 0 {
			p("\nLeft alone:\n\n")
			for _, ex := range e.Examples.NoMatch {
				p("- %s\n", mdCode(ex))
			}
		}
		p("\n")
	}
	return b.Flush()
}

func quoteList(ks []string) string {
	q := make([]string, len(ks))
	for i, k := range ks {
		q[i] = "`` " + k + " ``"
	}
	return strings.Join(q, ", ")
}

func mdCell(s string) string {
	return strings.ReplaceAll(strings.Join(strings.Fields(s), " "), "|", `\|`)
}

// mdCode renders an example as inline code on one line (newlines shown as
// ⏎).
func mdCode(s string) string {
	s = strings.ReplaceAll(s, "\n", "⏎")
	return "`` " + s + " ``"
}
