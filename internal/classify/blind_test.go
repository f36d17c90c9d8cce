package classify

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/llmfence/llmfence/internal/service"
)

// TestBlind5Report measures the classifier on blind5, a set written by an
// author who saw neither the rules nor the training data, and prints the
// per-category figures, the figures per language and per layer, the
// confusion between categories and every miss. blind5 is not training
// data (./trainmodel never reads it): its figures are the estimate
// docs/classifier.md quotes. Reproduce with
//
//	go test -run TestBlind5Report -v ./internal/classify
func TestBlind5Report(t *testing.T) {
	blindReport(t, "blind5", blind5Floor)
}

// blindFloor is {micro precision, micro recall} and per category
// {precision, recall}, just below the first (blind) measurement: they
// guard against regressions only.
type blindFloor struct {
	micro [2]float64
	cat   map[string][2]float64
}

// blind5Floor sits just below the blind measurement (classifier of commit
// a2317a6: micro P 0.85, R 0.45; docs/classifier.md).
var blind5Floor = blindFloor{
	micro: [2]float64{0.83, 0.43},
	cat: map[string][2]float64{
		"guardrail_removal":        {0.95, 0.55},
		"fraud_phishing":           {0.95, 0.30},
		"malware_intrusion":        {0.50, 0.55},
		"harassment_hate":          {0.90, 0.27},
		"disinformation":           {0.80, 0.40},
		"personal_data_harvesting": {0.75, 0.43},
		"csam":                     {0.90, 0.84},
		"violent_gore":             {0.95, 0.30},
	},
}

func blindReport(t *testing.T, name string, floor blindFloor) {
	path := "testdata/labelled_" + name + ".jsonl"
	if _, err := os.Stat(path); err != nil {
		t.Skipf("no %s set", name)
	}
	c := mustNew(t)
	set := loadLabelled(t, path)
	ev := evaluate(c, set)
	t.Log("\n" + ev.table(name))
	for _, lang := range []string{"en", "ja"} {
		var sub []labelled
		for _, l := range set {
			if l.Lang == lang {
				sub = append(sub, l)
			}
		}
		e := evaluate(c, sub)
		t.Logf("%s %s: %d prompts, micro P %.2f R %.2f (TP %d FP %d FN %d)", name, lang, len(sub), e.micro.precision(), e.micro.recall(), e.micro.tp, e.micro.fp, e.micro.fn)
	}
	t.Log("\n" + confusion(c, set))
	// Each layer alone, for the diagnosis (not a configuration that ships).
	rulesOnly, err := parseWith(rulesYAML, lexiconYAML, nil)
	if err != nil {
		t.Fatal(err)
	}
	er := evaluate(rulesOnly, set)
	t.Logf("%s, rules and lexicon alone: micro P %.2f R %.2f", name, er.micro.precision(), er.micro.recall())
	var mp pr
	for _, l := range set {
		var sc scores
		c.mdl.score(Normalize(l.Text), &sc)
		for i, cat := range service.Categories {
			mp.add(slices.Contains(l.Labels, cat), sc.p[i] >= c.mdl.th[sc.lang][i].alone)
		}
	}
	t.Logf("%s, statistical layer alone: micro P %.2f R %.2f", name, mp.p(), mp.r())
	benign, clean := 0, 0
	for _, l := range set {
		if len(l.Labels) == 0 {
			benign++
			if len(c.SystemPrompt(l.Text)) == 0 {
				clean++
			}
		}
	}
	t.Logf("%s: %d of %d benign prompts drew no category", name, clean, benign)
	// Recall by prompt length: long prompts dilute the n-gram evidence.
	for _, b := range []struct {
		name   string
		lo, hi int
	}{{"< 300 bytes", 0, 300}, {"300-800 bytes", 300, 800}, {">= 800 bytes", 800, 1 << 30}} {
		var sub []labelled
		for _, l := range set {
			if len(l.Text) >= b.lo && len(l.Text) < b.hi {
				sub = append(sub, l)
			}
		}
		e := evaluate(c, sub)
		t.Logf("%s prompts %s: %d prompts, micro P %.2f R %.2f", name, b.name, len(sub), e.micro.precision(), e.micro.recall())
	}
	for _, e := range ev.errors {
		t.Logf("%s miss: %s", name, e)
	}
	if p, r := ev.micro.precision(), ev.micro.recall(); p < floor.micro[0] || r < floor.micro[1] {
		t.Errorf("%s micro P %.3f R %.3f below the floor %.2f / %.2f", name, p, r, floor.micro[0], floor.micro[1])
	}
	for cat, fl := range floor.cat {
		k := ev.perCat[cat]
		if p, r := k.precision(), k.recall(); p < fl[0] || r < fl[1] {
			t.Errorf("%s %s P %.3f R %.3f below the floor %.2f / %.2f", name, cat, p, r, fl[0], fl[1])
		}
	}
}

// confusion renders a matrix of true categories (rows, "benign" for a
// prompt without labels) against assigned categories (columns, "none" when
// nothing was assigned): cell (t, p) counts prompts labelled t that were
// assigned p. The diagonal is agreement; a benign row shows false alarms.
func confusion(c *Classifier, set []labelled) string {
	rows := append(append([]string(nil), service.Categories...), "benign")
	cols := append(append([]string(nil), service.Categories...), "none")
	m := map[string]map[string]int{}
	for _, r := range rows {
		m[r] = map[string]int{}
	}
	for _, l := range set {
		got := c.SystemPrompt(l.Text)
		truth := l.Labels
		if len(truth) == 0 {
			truth = []string{"benign"}
		}
		if len(got) == 0 {
			got = []string{"none"}
		}
		for _, tr := range truth {
			for _, g := range got {
				m[tr][g]++
			}
		}
	}
	short := func(s string) string {
		abbr := map[string]string{"guardrail_removal": "guard", "fraud_phishing": "fraud", "malware_intrusion": "malware",
			"harassment_hate": "harass", "disinformation": "disinfo", "personal_data_harvesting": "pdata", "csam": "csam",
			"violent_gore": "violent", "benign": "benign", "none": "none"}
		return abbr[s]
	}
	var b strings.Builder
	b.WriteString("confusion (rows: labelled, columns: assigned)\n| labelled \\ assigned |")
	for _, cl := range cols {
		b.WriteString(" " + short(cl) + " |")
	}
	b.WriteString("\n|---|" + strings.Repeat("---:|", len(cols)) + "\n")
	for _, r := range rows {
		if r == "benign" || slices.ContainsFunc(set, func(l labelled) bool { return slices.Contains(l.Labels, r) }) || r == "benign" {
			b.WriteString("| " + short(r) + " |")
			for _, cl := range cols {
				fmt.Fprintf(&b, " %d |", m[r][cl])
			}
			b.WriteString("\n")
		}
	}
	return b.String()
}
