package classify

import (
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"

	"github.com/llmfence/llmfence/internal/service"
)

// Example is one labelled system prompt.
type Example struct {
	Text   string   `json:"text"`
	Lang   string   `json:"lang"`
	Labels []string `json:"labels"`
}

// TrainOptions are the statistical layer's training settings.
type TrainOptions struct {
	Epochs      int     // passes over the data
	LearnRate   float64 // AdaGrad base rate
	L2          float64 // weight decay per update
	MinDF       int     // features seen in fewer documents are dropped
	MaxFeatures int     // the model keeps at most this many features (largest weights)
	Seed        uint64  // shuffling order; training is deterministic for a seed
	// ThresholdSets names the sets whose out-of-fold scores choose the
	// combination thresholds (all sets when empty).
	ThresholdSets []string
}

// DefaultTrainOptions are the settings model.tsv was trained with.
var DefaultTrainOptions = TrainOptions{Epochs: 40, LearnRate: 0.5, L2: 2e-3, MinDF: 2, MaxFeatures: 40000, Seed: 11}

// doc is one example as sparse features.
type sparse struct {
	idx []int32
	val []float32
	y   []bool // per category
}

type vocab struct {
	ids   map[uint64]int32
	texts []string
}

func docCounts(text string) (map[uint64]float64, map[uint64]string, int) {
	counts := map[uint64]float64{}
	texts := map[uint64]string{}
	total := 0
	eachFeature(Normalize(text), true, func(h uint64, kind byte, t string) {
		total++
		counts[h]++
		if _, ok := texts[h]; !ok {
			texts[h] = string(kind) + ":" + t
		}
	})
	return counts, texts, total
}

// trainModel fits one logistic regression per category.
func trainModel(ex []Example, opt TrainOptions) *model {
	cats := service.Categories
	nc := len(cats)
	// Vocabulary: features in at least MinDF documents, in hash order.
	df := map[uint64]int{}
	names := map[uint64]string{}
	type raw struct {
		counts map[uint64]float64
		total  int
	}
	raws := make([]raw, len(ex))
	for i, e := range ex {
		c, t, n := docCounts(e.Text)
		raws[i] = raw{c, n}
		for h := range c {
			df[h]++
			if _, ok := names[h]; !ok {
				names[h] = t[h]
			}
		}
	}
	var hs []uint64
	for h, n := range df {
		if n >= opt.MinDF && h != 0 {
			hs = append(hs, h)
		}
	}
	slices.Sort(hs)
	v := vocab{ids: map[uint64]int32{}}
	for i, h := range hs {
		v.ids[h] = int32(i)
		v.texts = append(v.texts, names[h])
	}
	docs := make([]sparse, len(ex))
	for i, r := range raws {
		scale := 1 / math.Sqrt(float64(max(r.total, 1)))
		var keys []uint64
		for h := range r.counts {
			if _, ok := v.ids[h]; ok {
				keys = append(keys, h)
			}
		}
		slices.Sort(keys)
		d := sparse{y: make([]bool, nc)}
		for _, h := range keys {
			d.idx = append(d.idx, v.ids[h])
			d.val = append(d.val, float32(r.counts[h]*scale))
		}
		for c, cat := range cats {
			d.y[c] = slices.Contains(ex[i].Labels, cat)
		}
		docs[i] = d
	}
	nf := len(v.texts)
	w := make([]float64, nf*nc)
	g2 := make([]float64, nf*nc)
	bias := make([]float64, nc)
	bg2 := make([]float64, nc)
	pos := make([]int, nc)
	for _, d := range docs {
		for c := range cats {
			if d.y[c] {
				pos[c]++
			}
		}
	}
	cw := make([]float64, nc) // weight of a positive example
	for c := range cats {
		cw[c] = 1
		if pos[c] > 0 {
			cw[c] = math.Sqrt(float64(len(docs)-pos[c]) / float64(pos[c]))
		}
	}
	order := make([]int, len(docs))
	for i := range order {
		order[i] = i
	}
	rng := rand.New(rand.NewPCG(opt.Seed, 0x5eed))
	for ep := 0; ep < opt.Epochs; ep++ {
		rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		for _, di := range order {
			d := &docs[di]
			for c := 0; c < nc; c++ {
				z := bias[c]
				for k, fi := range d.idx {
					z += w[int(fi)*nc+c] * float64(d.val[k])
				}
				p := sigmoid(z)
				y, wt := 0.0, 1.0
				if d.y[c] {
					y, wt = 1, cw[c]
				}
				g := (p - y) * wt
				bg2[c] += g * g
				bias[c] -= opt.LearnRate * g / (math.Sqrt(bg2[c]) + 1e-8)
				for k, fi := range d.idx {
					j := int(fi)*nc + c
					gr := g*float64(d.val[k]) + opt.L2*w[j]
					g2[j] += gr * gr
					w[j] -= opt.LearnRate * gr / (math.Sqrt(g2[j]) + 1e-8)
				}
			}
		}
	}
	// Keep the features with the largest weights.
	type fw struct {
		i   int
		max float64
	}
	var keep []fw
	for i := 0; i < nf; i++ {
		mx := 0.0
		for c := 0; c < nc; c++ {
			mx = max(mx, math.Abs(w[i*nc+c]))
		}
		if mx >= 0.0005 {
			keep = append(keep, fw{i, mx})
		}
	}
	slices.SortStableFunc(keep, func(a, b fw) int {
		if a.max != b.max {
			if a.max > b.max {
				return -1
			}
			return 1
		}
		return a.i - b.i
	})
	if len(keep) > opt.MaxFeatures {
		keep = keep[:opt.MaxFeatures]
	}
	slices.SortFunc(keep, func(a, b fw) int { return strings.Compare(v.texts[a.i], v.texts[b.i]) })
	m := &model{version: 1, cats: append([]string(nil), cats...), bias: bias}
	feats := make([]string, 0, len(keep))
	ws := make([]float32, 0, len(keep)*nc)
	for _, k := range keep {
		feats = append(feats, v.texts[k.i])
		for c := 0; c < nc; c++ {
			ws = append(ws, float32(math.Round(w[k.i*nc+c]*1000)/1000))
		}
	}
	for c := range m.bias {
		m.bias[c] = math.Round(m.bias[c]*10000) / 10000
	}
	if err := m.setFeatures(feats, ws); err != nil {
		panic(err) // a duplicate feature text is a bug in docCounts
	}
	return m
}

// crossValidate returns out-of-fold probabilities: each example scored by
// a model trained on the other folds. Folds are assigned round-robin
// within each source set (given by group), so every fold holds every set.
func crossValidate(ex []Example, group []int, folds int, opt TrainOptions) [][]float64 {
	fold := make([]int, len(ex))
	seen := map[int]int{}
	for i := range ex {
		fold[i] = seen[group[i]] % folds
		seen[group[i]]++
	}
	out := make([][]float64, len(ex))
	for f := 0; f < folds; f++ {
		var train []Example
		for i, e := range ex {
			if fold[i] != f {
				train = append(train, e)
			}
		}
		m := trainModel(train, opt)
		for i, e := range ex {
			if fold[i] == f {
				out[i] = m.probabilities(Normalize(e.Text), nil)
			}
		}
	}
	return out
}

// Set is one labelled set given to GenerateModel.
type Set struct {
	Name     string
	Examples []Example
}

// Generated is what GenerateModel produces.
type Generated struct {
	TSV    []byte // model.tsv
	Report string // the cross-validated figures that chose the thresholds
	// OutOfFold holds the combined classifier's out-of-fold micro
	// precision and recall, per set name and for "all".
	OutOfFold map[string][2]float64
}

// cvFolds is the number of cross-validation folds.
const cvFolds = 5

// minPrecision is the micro precision the chosen thresholds must keep over
// the out-of-fold scores of every set.
const minPrecision = 0.9

// GenerateModel trains the statistical layer on the sets and picks the
// combination thresholds by cross-validation: every example is scored by a
// model trained on the other folds, and the thresholds are the pair that
// maximises micro F1 over the out-of-fold scores of opt.ThresholdSets (the
// sets whose text the rules were not tuned on; all sets when empty) while
// keeping micro precision over every set at or above minPrecision. The
// model written is then trained on everything.
func GenerateModel(sets []Set, opt TrainOptions) (*Generated, error) {
	rules, err := parseWith(rulesYAML, lexiconYAML, nil)
	if err != nil {
		return nil, err
	}
	var ex []Example
	var group []int
	var names []string
	for gi, s := range sets {
		ex = append(ex, s.Examples...)
		for range s.Examples {
			group = append(group, gi)
		}
		names = append(names, s.Name)
	}
	oof := crossValidate(ex, group, cvFolds, opt)
	ruleHits := make([][]bool, len(ex))
	for i, e := range ex {
		got := rules.ruleCategories(e.Text)
		ruleHits[i] = make([]bool, len(service.Categories))
		for c, cat := range service.Categories {
			ruleHits[i][c] = slices.Contains(got, cat)
		}
	}
	type choice struct {
		alone, withRule float64
		ev              cvEval
	}
	var sel []bool
	if len(opt.ThresholdSets) > 0 {
		sel = make([]bool, len(ex))
		for i := range ex {
			sel[i] = slices.Contains(opt.ThresholdSets, names[group[i]])
		}
	}
	var best *choice
	bestF1 := -1.0
	for a := 0.10; a <= 0.951; a += 0.025 {
		for r := 0.025; r <= a+1e-9; r += 0.025 {
			all := evalCombined(ex, oof, ruleHits, a, r, nil)
			if all.micro.p() < minPrecision {
				continue
			}
			ev := evalCombined(ex, oof, ruleHits, a, r, sel)
			if f := ev.micro.f1(); f > bestF1+1e-12 {
				bestF1 = f
				best = &choice{a, r, ev}
			}
		}
	}
	if best == nil {
		return nil, errors.New("no thresholds reach the precision floor on the out-of-fold scores")
	}
	m := trainModel(ex, opt)
	m.alone = math.Round(best.alone*1000) / 1000
	m.withRule = math.Round(best.withRule*1000) / 1000
	m.note = strings.Join(names, ", ") + " (" + itoa(len(ex)) + " prompts)"
	var rep strings.Builder
	rep.WriteString("Cross-validated (" + itoa(cvFolds) + "-fold, out-of-fold) on " + m.note + "\n")
	rep.WriteString("thresholds: model alone >= " + ftoa(m.alone) + ", with a rule or lexicon hit >= " + ftoa(m.withRule) + "\n\n")
	modelOnly := evalCombined(ex, oof, ruleHits, m.alone, 2, nil)
	rulesOnly := evalCombined(ex, oof, ruleHits, 2, -1, nil)
	rep.WriteString(modelOnly.table("statistical layer alone (out-of-fold)"))
	rep.WriteString(rulesOnly.table("rules + lexicon alone (tuned on these sets: optimistic)"))
	rep.WriteString(best.ev.table("combined (out-of-fold model)"))
	for gi, n := range names {
		in := make([]bool, len(ex))
		for i := range ex {
			in[i] = group[i] == gi
		}
		rep.WriteString(evalCombined(ex, oof, ruleHits, m.alone, m.withRule, in).table("combined, " + n + " only"))
	}
	oofFigures := map[string][2]float64{}
	allEv := evalCombined(ex, oof, ruleHits, m.alone, m.withRule, nil)
	oofFigures["all"] = [2]float64{allEv.micro.p(), allEv.micro.r()}
	for gi, n := range names {
		in := make([]bool, len(ex))
		for i := range ex {
			in[i] = group[i] == gi
		}
		ev := evalCombined(ex, oof, ruleHits, m.alone, m.withRule, in)
		oofFigures[n] = [2]float64{ev.micro.p(), ev.micro.r()}
	}
	rep.WriteString(allEv.table("combined, every set"))
	header := "llmfence statistical classifier layer: logistic regression per category over\n" +
		"character 2-4-grams and word 1-2-grams (internal/classify/features.go).\n" +
		"Generated by `go generate ./internal/classify` (./trainmodel); do not edit.\n" +
		"Lines: version, note, categories, bias, thresholds (alone, with_rule), f <feature> <weight per category>."
	return &Generated{TSV: writeModel(m, header), Report: rep.String(), OutOfFold: oofFigures}, nil
}

type pr struct{ tp, fp, fn int }

func (x pr) p() float64 {
	if x.tp+x.fp == 0 {
		return 1
	}
	return float64(x.tp) / float64(x.tp+x.fp)
}

func (x pr) r() float64 {
	if x.tp+x.fn == 0 {
		return 1
	}
	return float64(x.tp) / float64(x.tp+x.fn)
}

func (x pr) f1() float64 {
	if x.p()+x.r() == 0 {
		return 0
	}
	return 2 * x.p() * x.r() / (x.p() + x.r())
}

type cvEval struct {
	per   []pr
	micro pr
	n     int
}

// decide is the combination rule (the same as Classifier.categories).
func decide(p float64, rule bool, alone, withRule float64) bool {
	return p >= alone || (rule && p >= withRule)
}

func evalCombined(ex []Example, probs [][]float64, rules [][]bool, alone, withRule float64, in []bool) cvEval {
	ev := cvEval{per: make([]pr, len(service.Categories))}
	for i, e := range ex {
		if in != nil && !in[i] {
			continue
		}
		ev.n++
		for c, cat := range service.Categories {
			want := slices.Contains(e.Labels, cat)
			have := decide(probs[i][c], rules[i][c], alone, withRule)
			switch {
			case want && have:
				ev.per[c].tp++
				ev.micro.tp++
			case !want && have:
				ev.per[c].fp++
				ev.micro.fp++
			case want && !have:
				ev.per[c].fn++
				ev.micro.fn++
			}
		}
	}
	return ev
}

func (ev cvEval) table(title string) string {
	var b strings.Builder
	b.WriteString(title + " (" + itoa(ev.n) + " prompts)\n")
	b.WriteString("| category | TP | FP | FN | precision | recall |\n|---|---:|---:|---:|---:|---:|\n")
	row := func(name string, x pr) {
		b.WriteString("| " + name + " | " + itoa(x.tp) + " | " + itoa(x.fp) + " | " + itoa(x.fn) + " | " + ftoa(x.p()) + " | " + ftoa(x.r()) + " |\n")
	}
	for c, cat := range service.Categories {
		row(cat, ev.per[c])
	}
	row("**micro average**", ev.micro)
	b.WriteString("\n")
	return b.String()
}

func itoa(n int) string { return strconv.Itoa(n) }

func ftoa(x float64) string { return strconv.FormatFloat(x, 'f', 2, 64) }
