package classify

import (
	"fmt"
	"os"
	"slices"
	"testing"

	"github.com/llmfence/llmfence/internal/service"
)

func TestTmpVeto(t *testing.T) {
	if os.Getenv("EXP") == "" {
		t.Skip()
	}
	rules, _ := parseWith(rulesYAML, lexiconYAML, nil)
	var ex []Example
	var group []int
	names := []string{"dev", "holdout", "blind1", "blind2", "blind3"}
	for gi, n := range names {
		for _, l := range loadLabelled(t, "testdata/labelled_"+n+".jsonl") {
			ex = append(ex, Example{Text: l.Text, Lang: l.Lang, Labels: l.Labels})
			group = append(group, gi)
		}
	}
	oof := crossValidate(ex, group, 5, DefaultTrainOptions)
	nc := len(service.Categories)
	rh := make([][]bool, len(ex))
	lh := make([][]bool, len(ex))
	for i, e := range ex {
		v := rules.verdict(e.Text, true)
		rh[i], lh[i] = make([]bool, nc), make([]bool, nc)
		for _, m := range v.matches {
			c := categoryIndex(m.Category)
			if m.Lexicon != nil {
				lh[i][c] = true
			} else {
				rh[i][c] = true
			}
		}
	}
	for _, variant := range []string{"veto-all", "veto-lexicon", "no-veto"} {
		for _, a := range []float64{0.15, 0.2, 0.3} {
			for _, r := range []float64{0.05, 0.1, 0.15} {
				var per [5]pr
				for i, e := range ex {
					g := group[i]
					for c, cat := range service.Categories {
						p := oof[i][c]
						var have bool
						switch variant {
						case "veto-all":
							have = p >= a || ((rh[i][c] || lh[i][c]) && p >= r)
						case "veto-lexicon":
							have = p >= a || rh[i][c] || (lh[i][c] && p >= r)
						default:
							have = p >= a || rh[i][c] || lh[i][c]
						}
						want := slices.Contains(e.Labels, cat)
						switch {
						case want && have:
							per[g].tp++
						case !want && have:
							per[g].fp++
						case want && !have:
							per[g].fn++
						}
					}
				}
				var all pr
				for _, x := range per {
					all.tp += x.tp
					all.fp += x.fp
					all.fn += x.fn
				}
				fmt.Printf("%-13s a=%.2f r=%.2f all P%.2f R%.2f | b3 P%.2f R%.2f F%.2f | b2 P%.2f R%.2f | b1 P%.2f R%.2f\n", variant, a, r, all.p(), all.r(), per[4].p(), per[4].r(), per[4].f1(), per[3].p(), per[3].r(), per[2].p(), per[2].r())
			}
		}
	}
}
