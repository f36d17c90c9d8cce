package classify

import (
	"fmt"
	"math"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/llmfence/llmfence/internal/service"
)

// TestLexiconDump writes, for tuning, one line per prompt and category
// with the lexicon components and whether the rules fired. It runs only
// with LEXICON_DUMP=<file>.
func TestLexiconDump(t *testing.T) {
	out := os.Getenv("LEXICON_DUMP")
	if out == "" {
		t.Skip("set LEXICON_DUMP to a file name")
	}
	c := mustNew(t)
	lx := *c.lex
	lx.threshold, lx.minTerm = map[string]float64{}, map[string]float64{}
	for _, cat := range service.Categories {
		lx.threshold[cat], lx.minTerm[cat] = math.Inf(-1), 0
	}
	raw := *c
	raw.lex = &lx
	var b strings.Builder
	for _, name := range []string{"dev", "holdout", "blind1", "blind2"} {
		for i, l := range loadLabelled(t, "testdata/labelled_"+name+".jsonl") {
			rules := map[string]bool{}
			for _, m := range c.Explain(l.Text) {
				if m.Lexicon == nil {
					rules[m.Category] = true
				}
			}
			d := raw.newDoc(Normalize(l.Text))
			for _, m := range raw.scoreLexicon(d, nil) {
				s := m.Lexicon
				var ids []string
				for _, h := range s.Hits {
					ids = append(ids, h.ID)
				}
				fmt.Fprintf(&b, "%s\t%d\t%s\t%t\t%t\t%.2f\t%.2f\t%.2f\t%.2f\t%s\n", name, i, m.Category,
					slices.Contains(l.Labels, m.Category), rules[m.Category], s.Terms, s.Intent, s.Covert, s.Defensive, strings.Join(ids, ","))
			}
		}
	}
	if err := os.WriteFile(out, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestRulesDump writes which categories the rules alone assign, per prompt,
// as JSON, for tuning. It runs only with RULES_DUMP=<file>.
func TestRulesDump(t *testing.T) {
	out := os.Getenv("RULES_DUMP")
	if out == "" {
		t.Skip("set RULES_DUMP to a file name")
	}
	c := mustNew(t)
	var b strings.Builder
	b.WriteString("{")
	first := true
	for _, name := range []string{"dev", "holdout", "blind1", "blind2"} {
		for i, l := range loadLabelled(t, "testdata/labelled_"+name+".jsonl") {
			var cats []string
			for _, m := range c.Explain(l.Text) {
				if m.Lexicon == nil {
					cats = append(cats, fmt.Sprintf("%q", m.Category))
				}
			}
			if !first {
				b.WriteString(",")
			}
			first = false
			fmt.Fprintf(&b, "%q:[%s]", fmt.Sprintf("%s:%d", name, i), strings.Join(cats, ","))
		}
	}
	b.WriteString("}")
	if err := os.WriteFile(out, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}
