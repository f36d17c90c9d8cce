package classify

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/llmfence/llmfence/internal/service"
)

// experimentSets are every training set, the old ones first.
var (
	oldSets        = []string{"dev", "holdout", "blind1", "blind2", "blind3"}
	experimentSets = append(append([]string(nil), oldSets...), "blind4", "extra")
)

// TestTrainExperiments compares training settings by grouped
// cross-validation over every training set, so choices are made on
// out-of-fold figures and never on a blind set. It runs only when
// CLASSIFY_EXPERIMENTS names the variants (comma-separated, or "all");
// each takes minutes:
//
//	CLASSIFY_EXPERIMENTS=all go test -run TestTrainExperiments -v -timeout 3h ./internal/classify
func TestTrainExperiments(t *testing.T) {
	want := os.Getenv("CLASSIFY_EXPERIMENTS")
	if want == "" {
		t.Skip("set CLASSIFY_EXPERIMENTS to the variants to run (or all)")
	}
	var sets []Set
	var ex []Example
	for _, n := range experimentSets {
		var s Set
		s.Name = n
		for _, l := range loadLabelled(t, "testdata/labelled_"+n+".jsonl") {
			s.Examples = append(s.Examples, Example{Text: l.Text, Lang: l.Lang, Labels: l.Labels})
		}
		sets = append(sets, s)
		ex = append(ex, s.Examples...)
	}
	hits, err := ruleHits(ex)
	if err != nil {
		t.Fatal(err)
	}
	base := DefaultTrainOptions
	base.ThresholdSets = []string{"blind3", "blind4", "extra"}
	old := base
	old.Epochs, old.MaxFeatures, old.JaWords, old.Segments, old.PerCategory, old.PerLanguage = 40, 40000, false, 0, false, false
	type variant struct {
		name string
		opt  func(o *TrainOptions)
	}
	variants := []variant{
		{"old-data", func(o *TrainOptions) { *o = old; o.trainSets = oldSets }},
		{"all-data", func(o *TrainOptions) { *o = old }},
		{"all-data-e20", func(o *TrainOptions) { *o = old; o.Epochs = 20 }},
		{"percat", func(o *TrainOptions) { *o = old; o.Epochs = 20; o.PerCategory = true }},
		{"percat-lang", func(o *TrainOptions) { *o = old; o.Epochs = 20; o.PerCategory = true; o.PerLanguage = true }},
		{"jawords", func(o *TrainOptions) { *o = old; o.Epochs = 20; o.PerCategory = true; o.JaWords = true }},
		{"seg1-mil0", func(o *TrainOptions) { o.Segments, o.MILRounds = 1, 0 }},
		{"seg2-mil0", func(o *TrainOptions) { o.Segments, o.MILRounds = 2, 0 }},
		{"seg2-mil1", func(o *TrainOptions) { o.Segments, o.MILRounds = 2, 1 }},
		{"seg2-mil2", func(o *TrainOptions) { o.Segments, o.MILRounds = 2, 2 }},
		{"seg3-mil1", func(o *TrainOptions) { o.Segments, o.MILRounds = 3, 1 }},
		{"seg2-mil1-w05", func(o *TrainOptions) { o.Segments, o.MILRounds, o.SegWeight = 2, 1, 0.5 }},
		{"seg2-mil1-nojw", func(o *TrainOptions) { o.JaWords = false }},
		{"seg2-mil1-pos75", func(o *TrainOptions) { o.PosPower = 0.75 }},
		{"seg2-mil1-lang", func(o *TrainOptions) { o.PerLanguage = true }},
		{"seg2-mil1-p92", func(o *TrainOptions) { o.MinPrecision = 0.92 }},
		{"seg2-mil1-f40k", func(o *TrainOptions) { o.MaxFeatures = 40000 }},
		{"seg2-mil1-e30", func(o *TrainOptions) { o.Epochs = 30 }},
		{"seg2-mil1-l2", func(o *TrainOptions) { o.L2 = 1e-3 }},
	}
	t.Logf("%-40s | %-11s | %-11s | %-11s | %-11s | %-11s | %-11s | %-11s | %-11s | %-20s",
		"variant / decision", "nested", "th-sets", "blind4", "extra", "blind3", "th-sets en", "th-sets ja", "model alone", "weakest category")
	names := strings.Split(want, ",")
	for _, n := range names {
		if !slices.ContainsFunc(variants, func(v variant) bool { return v.name == n }) && n != "all" {
			variants = append(variants, variant{n, func(o *TrainOptions) { parseVariant(t, n, o) }})
		}
	}
	for _, v := range variants {
		if want != "all" && !slices.Contains(names, v.name) {
			continue
		}
		opt := base
		v.opt(&opt)
		opt.ThresholdSets = base.ThresholdSets
		start := time.Now()
		run, err := crossValidateSets(sets, opt, hits)
		if err != nil {
			t.Errorf("%s: %v", v.name, err)
			continue
		}
		t.Logf("%s: trained in %s", v.name, time.Since(start).Round(time.Second))
		decisions := []struct {
			name string
			set  func(o *TrainOptions)
		}{
			{"as set", func(o *TrainOptions) {}},
			{"max, per category p.9", func(o *TrainOptions) {
				o.Stack, o.MicroThresholds, o.PerLanguage, o.MinPrecision = false, false, false, 0.9
			}},
			{"p.93", func(o *TrainOptions) { o.MinPrecision = 0.93 }},
			{"no lang", func(o *TrainOptions) { o.PerLanguage = false }},
			{"not micro", func(o *TrainOptions) { o.MicroThresholds = false }},
			{"no stack", func(o *TrainOptions) { o.Stack = false }},
			{"with_rule>=.1", func(o *TrainOptions) { o.MinWithRule = 0.1 }},
			{"with_rule>=.15", func(o *TrainOptions) { o.MinWithRule = 0.15 }},
			{"with_rule>=.2", func(o *TrainOptions) { o.MinWithRule = 0.2 }},
			{"with_rule>=.3", func(o *TrainOptions) { o.MinWithRule = 0.3 }},
		}
		for _, dc := range decisions {
			o := opt
			dc.set(&o)
			run.decide(o)
			logRun(t, v.name+" / "+dc.name, run)
		}
		run.decide(opt)
		if dir := os.Getenv("CLASSIFY_EXPERIMENTS_DUMP"); dir != "" {
			dumpRun(t, run, dir+"/"+v.name+".jsonl")
		}
		if os.Getenv("CLASSIFY_EXPERIMENTS_DETAIL") != "" {
			ev := evalCombined(run.d, run.th, run.inTh, modeCombined)
			t.Log("\n" + combineTable(run.comb) + thresholdTable(run.th) + ev.table(v.name+", threshold sets") + run.nested.table(v.name+", nested"))
		}
	}
}

func andMask(a, b []bool) []bool {
	out := make([]bool, len(a))
	for i := range a {
		out[i] = a[i] && b[i]
	}
	return out
}

// dumpRun writes every example's out-of-fold scores, for analysis.
func dumpRun(t *testing.T, run *cvRun, path string) {
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	enc := json.NewEncoder(f)
	for i, e := range run.ex {
		sc := run.d.sc[i]
		type row struct {
			Set    string    `json:"set"`
			Fold   int       `json:"fold"`
			Group  int       `json:"group"`
			Lang   string    `json:"lang"`
			Labels []string  `json:"labels"`
			P      []float64 `json:"p"`
			Whole  []float64 `json:"whole"`
			Window []float64 `json:"window"`
			Rules  []bool    `json:"rules"`
			Win    []string  `json:"win"`
			Text   string    `json:"text"`
		}
		r := row{Set: run.names[run.setOf[i]], Fold: run.fold[i], Group: run.groups[i], Lang: e.Lang, Labels: e.Labels, Rules: run.d.rules[i], Text: e.Text}
		n := run.cp.ex[i].n
		for c := range service.Categories {
			r.P = append(r.P, sc.p[c])
			r.Whole = append(r.Whole, sc.whole[c])
			r.Window = append(r.Window, sc.window[c])
			r.Win = append(r.Win, n[sc.win[c].lo:sc.win[c].hi])
		}
		if err := enc.Encode(r); err != nil {
			t.Fatal(err)
		}
	}
}

// parseVariant applies settings written as key=value pairs joined by "+"
// to the default options: seg, mil, w (window weight), pos (positive
// weight power), lang, cat, p (min precision), jw, feat, ep, l2, rate,
// stack, micro, mcp (min category precision), shared (MILShared), seed.
func parseVariant(t *testing.T, name string, o *TrainOptions) {
	for _, kv := range strings.Split(name, "+") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			t.Fatalf("variant %q: want key=value+key=value", name)
		}
		x, err := strconv.ParseFloat(v, 64)
		if err != nil {
			t.Fatalf("variant %q: %v", name, err)
		}
		switch k {
		case "seg":
			o.Segments = int(x)
		case "mil":
			o.MILRounds = int(x)
		case "w":
			o.SegWeight = x
		case "pos":
			o.PosPower = x
		case "lang":
			o.PerLanguage = x != 0
		case "cat":
			o.PerCategory = x != 0
		case "p":
			o.MinPrecision = x
		case "jw":
			o.JaWords = x != 0
		case "feat":
			o.MaxFeatures = int(x)
		case "ep":
			o.Epochs = int(x)
		case "seed":
			o.Seed = uint64(x)
		case "shared":
			o.MILShared = x != 0
		case "stack":
			o.Stack = x != 0
		case "micro":
			o.MicroThresholds = x != 0
		case "minrule":
			o.MinWithRule = x
		case "mcp":
			o.MinCategoryPrecision = x
		case "l2":
			o.L2 = x
		case "rate":
			o.LearnRate = x
		default:
			t.Fatalf("variant %q: unknown key %q", name, k)
		}
	}
}

// logRun prints one line of figures for a cross-validation.
func logRun(t *testing.T, name string, run *cvRun) {
	f := func(in []bool, mode int) string {
		ev := evalCombined(run.d, run.th, in, mode)
		return fmt.Sprintf("%.3f/%.3f", ev.micro.p(), ev.micro.r())
	}
	ths := run.inTh
	ev := evalCombined(run.d, run.th, ths, modeCombined)
	weak := ""
	worst := 2.0
	for c, cat := range service.Categories {
		x := ev.per[c]
		if s := min(x.p()/0.75, x.r()/0.6); s < worst {
			worst, weak = s, fmt.Sprintf("%s %.2f/%.2f", cat[:min(5, len(cat))], x.p(), x.r())
		}
	}
	floor := ""
	if !run.floorMet {
		floor = " (floor not met)"
	}
	t.Logf("%-40s | %.3f/%.3f | %s | %s | %s | %s | %s | %s | %s | %-20s%s",
		name, run.nested.micro.p(), run.nested.micro.r(), f(ths, modeCombined),
		f(run.subset(-1, "blind4"), modeCombined), f(run.subset(-1, "extra"), modeCombined), f(run.subset(-1, "blind3"), modeCombined),
		f(andMask(ths, run.subset(langEN)), modeCombined), f(andMask(ths, run.subset(langJA)), modeCombined),
		f(ths, modeModel), weak, floor)
}
