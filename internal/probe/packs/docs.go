package packs

import (
	"fmt"
	"strings"
)

// Markdown renders the packs as the tables docs/probe.md carries between
// its <!-- packs --> markers: one table per pack, one row per probe, with
// the English prompt (the Japanese one is in the pack file).
func Markdown(ps []*Pack) string {
	var b strings.Builder
	for i, p := range ps {
		if i > 0 {
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "**%s** (version %d, suite %s): %s.\n\n", p.Name, p.Version, p.Suite, p.Description)
		b.WriteString("| id | category | kind | English prompt |\n|---|---|---|---|\n")
		for _, pr := range p.Probes {
			en := strings.Join(strings.Fields(pr.Prompts["en"]), " ")
			if len([]rune(en)) > 110 {
				en = string([]rune(en)[:109]) + "…"
			}
			en = strings.ReplaceAll(en, "|", `\|`)
			fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", pr.ID, pr.Category, pr.Kind, en)
		}
		if len(p.Triggers) > 0 {
			b.WriteString("\nPublished triggers: ")
			for j, t := range p.Triggers {
				if j > 0 {
					b.WriteString("; ")
				}
				fmt.Fprintf(&b, "`%s` (%s)", strings.ReplaceAll(t.Text, "|", `\|`), t.Source)
			}
			b.WriteString(".\nControl insertions: ")
			for j, c := range p.Controls {
				if j > 0 {
					b.WriteString(", ")
				}
				fmt.Fprintf(&b, "`%s`", c)
			}
			b.WriteString(".\n")
		}
	}
	return b.String()
}
