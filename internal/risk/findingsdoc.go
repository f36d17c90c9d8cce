package risk

import (
	"bufio"
	"fmt"
	"io"
	"sort"
	"strings"
)

// WriteMarkdown writes docs/findings.md: the findings catalogue and the CVE
// table, generated from the embedded YAML.
func (e *Engine) WriteMarkdown(w io.Writer) error {
	b := bufio.NewWriter(w)
	p := func(format string, a ...any) { fmt.Fprintf(b, format, a...) }

	p("# llmfence findings\n\n")
	p("<!-- Generated from internal/risk/catalogue.yaml and the OSV records in internal/vulndb/osv")
	p(" by `go generate ./internal/risk`. Do not edit by hand; a test fails when it is stale. -->\n\n")
	p("Findings catalogue version %d. Vulnerability data: %s.\n\n", e.catalogueVersion, e.db.Describe())
	p("A service's **risk** is the highest severity among its findings (`none` without findings). ")
	p("Its **remediation** lists the distinct fixes of its findings, most useful first (catalogue `rank`).\n\n")

	p("## Catalogue\n\n")
	p("| ID | Severity | Finding |\n|---|---|---|\n")
	for _, en := range e.Catalogue() {
		p("| [%s](#%s) | %s | %s |\n", en.ID, anchor(en.ID+" "+en.Slug), en.Severity, mdCell(en.Title))
	}
	p("\n")
	for _, en := range e.Catalogue() {
		p("### %s %s\n\n", en.ID, en.Slug)
		p("**%s**\n\n", en.Title)
		p("- Severity: %s", en.Severity)
		if len(en.Variants) > 0 {
			names := make([]string, 0, len(en.Variants))
			for k := range en.Variants {
				names = append(names, k)
			}
			sort.Strings(names)
			var vs []string
			for _, k := range names {
				vs = append(vs, fmt.Sprintf("%s when `%s`", en.Variants[k], k))
			}
			p(" (%s)", strings.Join(vs, "; "))
		}
		p("\n- Remediation rank: %d\n\n", en.Rank)
		p("%s\n\n", strings.TrimSpace(en.Why))
		p("Fix:\n\n")
		keys := make([]string, 0, len(en.Fix))
		for k := range en.Fix {
			if k != "default" {
				keys = append(keys, k)
			}
		}
		sort.Strings(keys)
		keys = append([]string{"default"}, keys...)
		for _, k := range keys {
			p("- *%s*: %s\n", k, strings.Join(strings.Fields(en.Fix[k]), " "))
		}
		p("\nReferences:\n\n")
		for _, r := range en.References {
			p("- <%s>\n", r)
		}
		p("\n")
	}

	p("## Known vulnerabilities\n\n")
	p("The vulnerability data is a set of OSV records (internal/vulndb/osv, one file per vulnerability), each checked against its upstream record. ")
	p("A vulnerability is claimed only when the service reports a comparable version inside an affected range (OSV semantics: ")
	p("`introduced`, `fixed`, `last_affected`, `limit`) or named in the record's version list, and the entry is verified. ")
	p("A range with no `fixed` or `last_affected` bound means no fix exists yet: every version from its introduction is claimed. ")
	p("Unknown versions (empty, or placeholders such as `0.0.0`) claim nothing and raise LLMF-012 instead. ")
	p("`llmfence vulndb import` refreshes the data from OSV exports (Go vulnerability database, GitHub advisories); ")
	p("`llmfence vulndb list` shows what is in use and its date.\n\n")
	p("| ID | Product | Affected | Severity | Verified | Title |\n|---|---|---|---|---|---|\n")
	for _, c := range e.CVEs() {
		verified := "yes"
		if !c.Verified {
			verified = "**no**"
		}
		p("| [%s](%s) | %s | %s | %s | %s | %s |\n", c.ID, c.Advisory, c.Product, mdCell(c.RangesText()), c.Severity, verified, mdCell(c.Title))
	}
	p("\n### Sources and notes\n\n")
	for _, c := range e.CVEs() {
		p("- **%s** (%s): %s", c.ID, c.Product, mdCell(strings.TrimSpace(c.Summary)))
		p(" Severity: %s, score: %s. Source: %s.", c.Severity, mdCell(c.Score), mdCell(c.Source))
		if len(c.Aliases) > 0 {
			p(" Aliases: %s.", strings.Join(c.Aliases, ", "))
		}
		if n := strings.TrimSpace(c.Note); n != "" {
			p(" Note: %s", mdCell(strings.Join(strings.Fields(n), " ")))
		}
		p("\n")
	}
	return b.Flush()
}

func mdCell(s string) string {
	return strings.ReplaceAll(strings.Join(strings.Fields(s), " "), "|", `\|`)
}

// anchor is the GitHub heading anchor of a "### text" heading.
func anchor(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-', r == '_':
			b.WriteRune(r)
		case r == ' ':
			b.WriteRune('-')
		}
	}
	return b.String()
}
