package classify

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/llmfence/llmfence/internal/service"
)

// labelled is one line of testdata/labelled_*.jsonl.
type labelled struct {
	Text   string   `json:"text"`
	Lang   string   `json:"lang"`
	Labels []string `json:"labels"`
}

func loadLabelled(t testing.TB, path string) []labelled {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []labelled
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for line := 1; sc.Scan(); line++ {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		var l labelled
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("%s:%d: %v", path, line, err)
		}
		if l.Lang != "en" && l.Lang != "ja" {
			t.Fatalf("%s:%d: lang %q", path, line, l.Lang)
		}
		for _, c := range l.Labels {
			if !slices.Contains(service.Categories, c) {
				t.Fatalf("%s:%d: unknown label %q", path, line, c)
			}
		}
		out = append(out, l)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// counts holds true positives, false positives and false negatives.
type counts struct{ tp, fp, fn int }

func (c counts) precision() float64 {
	if c.tp+c.fp == 0 {
		return 1
	}
	return float64(c.tp) / float64(c.tp+c.fp)
}

func (c counts) recall() float64 {
	if c.tp+c.fn == 0 {
		return 1
	}
	return float64(c.tp) / float64(c.tp+c.fn)
}

type evaluation struct {
	perCat map[string]counts
	micro  counts
	n      int
	errors []string
}

func evaluate(c *Classifier, set []labelled) evaluation {
	ev := evaluation{perCat: map[string]counts{}, n: len(set)}
	for _, l := range set {
		got := c.SystemPrompt(l.Text)
		for _, cat := range service.Categories {
			want, have := slices.Contains(l.Labels, cat), slices.Contains(got, cat)
			k := ev.perCat[cat]
			switch {
			case want && have:
				k.tp++
				ev.micro.tp++
			case !want && have:
				k.fp++
				ev.micro.fp++
			case want && !have:
				k.fn++
				ev.micro.fn++
			}
			ev.perCat[cat] = k
		}
		if !slices.Equal(got, sortedLabels(l.Labels)) {
			ev.errors = append(ev.errors, fmt.Sprintf("want %v got %v: %s", l.Labels, got, l.Text))
		}
	}
	return ev
}

func sortedLabels(labels []string) []string {
	out := []string{}
	for _, c := range service.Categories {
		if slices.Contains(labels, c) {
			out = append(out, c)
		}
	}
	return out
}

func (ev evaluation) table(name string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s (%d prompts)\n", name, ev.n)
	fmt.Fprintf(&b, "| %-26s | %3s | %3s | %3s | %9s | %6s |\n", "category", "TP", "FP", "FN", "precision", "recall")
	fmt.Fprintf(&b, "|%s|%s|%s|%s|%s|%s|\n", strings.Repeat("-", 28), "-----", "-----", "-----", "-----------", "--------")
	for _, cat := range service.Categories {
		k := ev.perCat[cat]
		fmt.Fprintf(&b, "| %-26s | %3d | %3d | %3d | %9.2f | %6.2f |\n", cat, k.tp, k.fp, k.fn, k.precision(), k.recall())
	}
	fmt.Fprintf(&b, "| %-26s | %3d | %3d | %3d | %9.2f | %6.2f |\n", "micro average", ev.micro.tp, ev.micro.fp, ev.micro.fn, ev.micro.precision(), ev.micro.recall())
	return b.String()
}

// floors are the minimum scores the classifier must keep on each labelled
// set. Every set here is now training data for the statistical layer
// (model.tsv), so these are in-sample figures: regression guards, not
// estimates. The honest figures are out-of-fold (TestModelUpToDateAndCrossValidated)
// and the blind5 measurement in docs/classifier.md. History of the sets:
// dev was written with the rules; holdout beside it; blind1 to blind4 came
// from independent authors and were each measured blind once
// (docs/classifier.md) before they were tuned or trained on; extra was
// written as training data.
var floors = map[string]struct {
	microP, microR float64
	catP, catR     float64 // applied to every category with any positives
}{
	"dev":     {microP: 0.95, microR: 0.97, catP: 0.90, catR: 0.95},
	"holdout": {microP: 0.97, microR: 0.97, catP: 0.90, catR: 0.90},
	"blind1":  {microP: 0.97, microR: 0.97, catP: 0.90, catR: 0.90},
	"blind2":  {microP: 0.93, microR: 0.97, catP: 0.80, catR: 0.90},
	"blind3":  {microP: 0.93, microR: 0.97, catP: 0.90, catR: 0.90},
	"blind4":  {microP: 0.97, microR: 0.97, catP: 0.90, catR: 0.90},
	"extra":   {microP: 0.97, microR: 0.97, catP: 0.90, catR: 0.90},
}

func TestClassifierReport(t *testing.T) {
	c := mustNew(t)
	for _, name := range []string{"dev", "holdout", "blind1", "blind2", "blind3", "blind4", "extra"} {
		set := loadLabelled(t, "testdata/labelled_"+name+".jsonl")
		ev := evaluate(c, set)
		t.Log("\n" + ev.table(name))
		for _, e := range ev.errors {
			t.Logf("%s miss: %s", name, e)
		}
		fl := floors[name]
		if p := ev.micro.precision(); p < fl.microP {
			t.Errorf("%s: micro precision %.3f below floor %.2f", name, p, fl.microP)
		}
		if r := ev.micro.recall(); r < fl.microR {
			t.Errorf("%s: micro recall %.3f below floor %.2f", name, r, fl.microR)
		}
		for _, cat := range service.Categories {
			k := ev.perCat[cat]
			if k.tp+k.fn == 0 {
				continue
			}
			if p := k.precision(); p < fl.catP {
				t.Errorf("%s: %s precision %.3f below floor %.2f", name, cat, p, fl.catP)
			}
			if r := k.recall(); r < fl.catR {
				t.Errorf("%s: %s recall %.3f below floor %.2f", name, cat, r, fl.catR)
			}
		}
	}
}

func mustNew(t testing.TB) *Classifier {
	t.Helper()
	c, err := New()
	if err != nil {
		t.Fatal(err)
	}
	return c
}
