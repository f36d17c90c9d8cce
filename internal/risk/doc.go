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
	p("<!-- Generated from internal/risk/catalogue.yaml and internal/risk/cves.yaml")
	p(" by `go generate ./internal/risk`. Do not edit by hand; a test fails when it is stale. -->\n\n")
	p("Findings catalogue version %d, CVE table version %d.\n\n", e.catalogueVersion, e.cveVersion)
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

	p("## CVE table\n\n")
	p("A CVE is claimed only when the service reports a comparable version inside an affected range and the entry is verified. ")
	p("Unknown versions (empty, or placeholders such as `0.0.0`) claim nothing and raise LLMF-012 instead.\n\n")
	p("| CVE | Product | Affected | Severity | Verified | Title |\n|---|---|---|---|---|---|\n")
	for _, c := range e.CVEs() {
		verified := "yes"
		if !c.Verified {
			verified = "**no**"
		}
		p("| [%s](%s) | %s | %s | %s | %s | %s |\n", c.ID, c.Advisory, c.Product, mdCell(rangesText(c.Affected)), c.Severity, verified, mdCell(c.Title))
	}
	p("\n### Sources and notes\n\n")
	for _, c := range e.CVEs() {
		p("- **%s** (%s): %s", c.ID, c.Product, mdCell(strings.TrimSpace(c.Summary)))
		p(" CVSS: %s. Source: %s.", mdCell(c.CVSS), mdCell(c.Source))
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

func rangesText(rs []Range) string {
	if len(rs) == 0 {
		return "not verified"
	}
	var parts []string
	for _, r := range rs {
		var s []string
		if r.Introduced != "" && r.Introduced != "0" {
			s = append(s, ">= "+r.Introduced)
		}
		if r.Fixed != "" {
			s = append(s, "< "+r.Fixed)
		}
		if r.LastAffected != "" {
			s = append(s, "<= "+r.LastAffected)
		}
		parts = append(parts, strings.Join(s, ", "))
	}
	return strings.Join(parts, "; ")
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
