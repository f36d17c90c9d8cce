package classify

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/llmfence/llmfence/internal/service"
)

// TestBlind4Report measures the classifier on blind4, a set written by an
// author who saw neither the rules nor the training data, and prints the
// per-category figures, the figures per language and the confusion between
// categories. blind4 is not training data (./trainmodel never reads it):
// its figures are the estimate docs/classifier.md quotes. Reproduce with
//
//	go test -run TestBlind4Report -v ./internal/classify
func TestBlind4Report(t *testing.T) {
	const path = "testdata/labelled_blind4.jsonl"
	if _, err := os.Stat(path); err != nil {
		t.Skip("no blind4 set")
	}
	c := mustNew(t)
	set := loadLabelled(t, path)
	ev := evaluate(c, set)
	t.Log("\n" + ev.table("blind4"))
	for _, lang := range []string{"en", "ja"} {
		var sub []labelled
		for _, l := range set {
			if l.Lang == lang {
				sub = append(sub, l)
			}
		}
		e := evaluate(c, sub)
		t.Logf("blind4 %s: %d prompts, micro P %.2f R %.2f (TP %d FP %d FN %d)", lang, len(sub), e.micro.precision(), e.micro.recall(), e.micro.tp, e.micro.fp, e.micro.fn)
	}
	t.Log("\n" + confusion(c, set))
	// Each layer alone, for the diagnosis (not a configuration that ships).
	rulesOnly, err := parseWith(rulesYAML, lexiconYAML, nil)
	if err != nil {
		t.Fatal(err)
	}
	er := evaluate(rulesOnly, set)
	t.Logf("blind4, rules and lexicon alone: micro P %.2f R %.2f", er.micro.precision(), er.micro.recall())
	var mp pr
	for _, l := range set {
		probs := c.mdl.probabilities(Normalize(l.Text), nil)
		for i, cat := range service.Categories {
			want, have := slices.Contains(l.Labels, cat), probs[i] >= c.mdl.alone
			switch {
			case want && have:
				mp.tp++
			case !want && have:
				mp.fp++
			case want && !have:
				mp.fn++
			}
		}
	}
	t.Logf("blind4, statistical layer alone (p >= %.2f): micro P %.2f R %.2f", c.mdl.alone, mp.p(), mp.r())
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
		t.Logf("blind4 prompts %s: %d prompts, micro P %.2f R %.2f", b.name, len(sub), e.micro.precision(), e.micro.recall())
	}
	for _, e := range ev.errors {
		t.Logf("blind4 miss: %s", e)
	}
	// Floors just below the first (blind) measurement; they guard against
	// regressions only.
	if p, r := ev.micro.precision(), ev.micro.recall(); p < blind4Floor[0] || r < blind4Floor[1] {
		t.Errorf("blind4 micro P %.3f R %.3f below the floor %.2f / %.2f", p, r, blind4Floor[0], blind4Floor[1])
	}
}

// blind4Floor is {micro precision, micro recall}, just below the blind
// measurement (classifier of commit dd602ba: micro P 0.94, R 0.55).
var blind4Floor = [2]float64{0.92, 0.53}

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
