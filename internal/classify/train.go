package classify

import (
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

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
	MinDF       int     // features seen in fewer training prompts are dropped
	MaxFeatures int     // the model keeps at most this many features (largest weights)
	Seed        uint64  // shuffling order; training is deterministic for a seed
	// JaWords adds Japanese script-run tokens as word features.
	JaWords bool
	// Segments scores windows of up to this many consecutive clauses
	// besides the whole prompt (0: the whole prompt only), and trains on
	// them: every window of a benign prompt is a negative example, and for
	// each category of a harmful prompt the window the model scores
	// highest is a positive one (multiple-instance learning, MILRounds
	// rounds of choosing that window and refitting).
	Segments  int
	MILRounds int
	SegWeight float64 // weight of a window example against a whole prompt's 1
	// MILShared never takes as a prompt's harmful window for category c
	// lines that also occur in a training prompt without c (a shared
	// wrapper or style line), and counts them as negatives for c.
	MILShared bool
	// PosPower weights a category's positive examples by
	// (negatives/positives)^PosPower, so rare categories (csam) are not
	// drowned by the rest.
	PosPower float64
	// Threshold choice: per category (else one pair for all), per
	// language (else one for both). With MicroThresholds the pairs
	// together give the best micro recall whose micro precision is at
	// least MinPrecision, with no category's precision below
	// MinCategoryPrecision; without, each pair is the one with the best
	// recall whose own precision is at least MinPrecision.
	PerCategory          bool
	PerLanguage          bool
	MicroThresholds      bool
	MinPrecision         float64
	MinCategoryPrecision float64
	// MinWithRule is the lowest with_rule threshold allowed. The rules
	// and the lexicon run only for categories whose probability reaches
	// with_rule, so a low one makes every prompt pay for them.
	MinWithRule float64
	// Stack fits, per category, how the whole prompt's and the best
	// window's log-odds combine (model.comb) on out-of-fold scores;
	// without it a category's probability is that of the larger.
	Stack bool
	// ThresholdSets names the sets whose out-of-fold scores choose the
	// thresholds (all sets when empty): sets whose text the rules were not
	// tuned on, so the rules' contribution is not overstated.
	ThresholdSets []string
	Folds         int // cross-validation folds

	// trainSets, when set, limits the sets the cross-validation models
	// learn from (the others are only scored); for experiments.
	trainSets []string
}

// DefaultTrainOptions are the settings model.tsv is trained with.
var DefaultTrainOptions = TrainOptions{
	Epochs: 10, LearnRate: 0.5, L2: 5e-4, MinDF: 2, MaxFeatures: 60000, Seed: 11,
	JaWords: true, Segments: 1, MILRounds: 1, MILShared: true, SegWeight: 1, PosPower: 0.5,
	PerCategory: true, PerLanguage: true, MicroThresholds: true, MinPrecision: 0.94, MinCategoryPrecision: 0.8, MinWithRule: 0.15,
	Stack: true, Folds: 5,
}

// vec is a sparse feature vector: feature ids and values.
type vec struct {
	idx []int32
	val []float32
}

// prepared is one example as the trainer sees it.
type prepared struct {
	n    string // normalised text
	doc  vec    // the whole prompt
	wins []vec  // windows of up to Segments clauses (none for a one-clause prompt)
	// winKey identifies each window's text (lineKey), to tell when the
	// same lines occur in other prompts.
	winKey []string
	y      []bool // per category
	lang   int    // langEN or langJA, from the label
	set    int    // index of the source set
}

// corpus is every example prepared over one vocabulary.
type corpus struct {
	ex    []prepared
	texts []string // feature text by id
	docDF []int32  // per feature: examples containing it
	nc    int
}

// prepare extracts the features of every example. Features seen in only
// one example are dropped at once: no fold could keep them. Features are
// told apart by the 32-bit key the model's table uses (fold32), so two
// features whose keys collide are trained as one, exactly as the
// classifier will see them.
func prepare(ex []Example, setOf []int, spec featureSpec, segments int) *corpus {
	nc := len(service.Categories)
	df := map[uint32]int32{}
	norm := make([]string, len(ex))
	for i, e := range ex {
		norm[i] = Normalize(e.Text)
		seen := map[uint32]bool{}
		eachFeature(norm[i], spec, false, func(h64 uint64, _ byte, _ string, _ int) {
			h := fold32(h64)
			if !seen[h] {
				seen[h] = true
				df[h]++
			}
		})
	}
	ids := map[uint32]int32{}
	c := &corpus{nc: nc}
	type clauseCounts map[int32]float32
	for i, e := range ex {
		n := norm[i]
		cl := clauses(n)
		ci := 0
		per := make([]clauseCounts, max(1, len(cl)))
		for k := range per {
			per[k] = clauseCounts{}
		}
		eachFeature(n, spec, true, func(h64 uint64, kind byte, text string, end int) {
			h := fold32(h64)
			for ci+1 < len(cl) && cl[ci+1].lo <= end {
				ci++
			}
			if df[h] < 2 {
				per[ci][-1]++ // counts towards the length, has no weight
				return
			}
			id, ok := ids[h]
			if !ok {
				id = int32(len(c.texts))
				ids[h] = id
				c.texts = append(c.texts, string(kind)+":"+text)
				c.docDF = append(c.docDF, int32(df[h]))
			}
			per[ci][id]++
		})
		p := prepared{n: n, set: setOf[i], y: make([]bool, nc), lang: langEN}
		if e.Lang == "ja" {
			p.lang = langJA
		}
		for k, cat := range service.Categories {
			p.y[k] = slices.Contains(e.Labels, cat)
		}
		var nonEmpty []clauseCounts
		var at []int // clause index of each non-empty clause
		for k, m := range per {
			if len(m) > 0 {
				nonEmpty = append(nonEmpty, m)
				at = append(at, k)
			}
		}
		p.doc = toVec(nonEmpty)
		if segments > 0 && len(nonEmpty) > 1 {
			for end := range nonEmpty {
				for w := 1; w <= segments && w <= end+1; w++ {
					if w == len(nonEmpty) {
						continue // the whole prompt
					}
					p.wins = append(p.wins, toVec(nonEmpty[end-w+1:end+1]))
					key := n
					if len(cl) > 0 {
						key = n[cl[at[end-w+1]].lo:cl[at[end]].hi]
					}
					p.winKey = append(p.winKey, lineKey(key))
				}
			}
		}
		c.ex = append(c.ex, p)
	}
	return c
}

// toVec merges clause counts into one vector, each value count/sqrt(total).
func toVec[M ~map[int32]float32](parts []M) vec {
	sum := map[int32]float32{}
	total := float32(0)
	for _, m := range parts {
		for id, n := range m {
			total += n
			if id >= 0 {
				sum[id] += n
			}
		}
	}
	var v vec
	if total == 0 {
		return v
	}
	scale := 1 / float32(math.Sqrt(float64(total)))
	for id := range sum {
		v.idx = append(v.idx, id)
	}
	slices.Sort(v.idx)
	for _, id := range v.idx {
		v.val = append(v.val, sum[id]*scale)
	}
	return v
}

// trainEx is one training example: a prompt or a window.
type trainEx struct {
	v  *vec
	y  [maxCats]int8 // 1 positive, 0 negative, -1 no label for this category
	wt float32
}

// weights is a fitted layer before it becomes a model.
type weights struct {
	w    []float64 // feature-major: w[f*nc+c]
	bias []float64
}

// fit runs AdaGrad logistic regression, all categories at once, over the
// examples, using only the features allowed.
func fit(exs []trainEx, nf, nc int, allowed []bool, opt TrainOptions) weights {
	w := make([]float64, nf*nc)
	g2 := make([]float64, nf*nc)
	bias := make([]float64, nc)
	bg2 := make([]float64, nc)
	var pos, neg [maxCats]float64
	for _, e := range exs {
		for c := 0; c < nc; c++ {
			switch e.y[c] {
			case 1:
				pos[c] += float64(e.wt)
			case 0:
				neg[c] += float64(e.wt)
			}
		}
	}
	var cw [maxCats]float64 // weight of a positive example
	for c := 0; c < nc; c++ {
		cw[c] = 1
		if pos[c] > 0 {
			cw[c] = math.Pow(neg[c]/pos[c], opt.PosPower)
		}
	}
	order := make([]int, len(exs))
	for i := range order {
		order[i] = i
	}
	rng := rand.New(rand.NewPCG(opt.Seed, 0x5eed))
	var z, g [maxCats]float64
	for ep := 0; ep < opt.Epochs; ep++ {
		rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		for _, ei := range order {
			e := &exs[ei]
			copy(z[:nc], bias)
			for k, fi := range e.v.idx {
				if !allowed[fi] {
					continue
				}
				x := float64(e.v.val[k])
				row := w[int(fi)*nc : int(fi)*nc+nc]
				for c := range row {
					z[c] += row[c] * x
				}
			}
			for c := 0; c < nc; c++ {
				g[c] = 0
				switch e.y[c] {
				case 1:
					g[c] = (sigmoid(z[c]) - 1) * cw[c] * float64(e.wt)
				case 0:
					g[c] = sigmoid(z[c]) * float64(e.wt)
				}
				bg2[c] += g[c] * g[c]
				if g[c] != 0 {
					bias[c] -= opt.LearnRate * g[c] / (math.Sqrt(bg2[c]) + 1e-8)
				}
			}
			for k, fi := range e.v.idx {
				if !allowed[fi] {
					continue
				}
				x := float64(e.v.val[k])
				j := int(fi) * nc
				for c := 0; c < nc; c++ {
					gr := g[c]*x + opt.L2*w[j+c]
					g2[j+c] += gr * gr
					w[j+c] -= opt.LearnRate * gr / (math.Sqrt(g2[j+c]) + 1e-8)
				}
			}
		}
	}
	return weights{w, bias}
}

// logit is the float model's log-odds of v for category c.
func (wt weights) logit(v *vec, c, nc int) float64 {
	z := wt.bias[c]
	for k, fi := range v.idx {
		z += wt.w[int(fi)*nc+c] * float64(v.val[k])
	}
	return z
}

// trainOn fits the layer on the examples given by index: whole prompts,
// and with opt.Segments their windows, with MILRounds rounds of choosing
// each positive prompt's best window per category.
func (cp *corpus) trainOn(train []int, opt TrainOptions) weights {
	nc := cp.nc
	allowed := make([]bool, len(cp.texts))
	df := make([]int32, len(cp.texts))
	for _, i := range train {
		seen := cp.ex[i].doc.idx
		for _, id := range seen {
			df[id]++
		}
	}
	for id := range allowed {
		allowed[id] = int(df[id]) >= opt.MinDF
	}
	// A window whose lines also occur in a training prompt without
	// category c cannot be the lines that make a prompt c: the
	// categories every training prompt holding the lines shares.
	shared := map[string]uint32{}
	for _, i := range train {
		p := &cp.ex[i]
		var mask uint32
		for c := 0; c < nc; c++ {
			if p.y[c] {
				mask |= 1 << c
			}
		}
		for _, k := range p.winKey {
			if m, ok := shared[k]; ok {
				shared[k] = m & mask
			} else {
				shared[k] = mask
			}
		}
	}
	var exs []trainEx
	type winRef struct{ ex, doc, win int }
	var wins []winRef
	for _, i := range train {
		p := &cp.ex[i]
		e := trainEx{v: &p.doc, wt: 1}
		for c := 0; c < nc; c++ {
			e.y[c] = b2i(p.y[c])
		}
		exs = append(exs, e)
		if opt.Segments == 0 {
			continue
		}
		for k := range p.wins {
			we := trainEx{v: &p.wins[k], wt: float32(opt.SegWeight)}
			for c := 0; c < nc; c++ {
				we.y[c] = 0
				if p.y[c] && !(opt.MILShared && shared[p.winKey[k]]&(1<<c) == 0) {
					we.y[c] = -1 // which window is harmful is not known yet
				}
			}
			wins = append(wins, winRef{len(exs), i, k})
			exs = append(exs, we)
		}
	}
	wt := fit(exs, len(cp.texts), nc, allowed, opt)
	if opt.Segments == 0 {
		return wt
	}
	for round := 0; round < opt.MILRounds; round++ {
		// Each positive prompt's best window per category becomes a
		// positive example; its other windows stay unlabelled there.
		best := map[[2]int]int{} // (doc, category) -> index into exs
		bestZ := map[[2]int]float64{}
		for _, r := range wins {
			p := &cp.ex[r.doc]
			for c := 0; c < nc; c++ {
				if !p.y[c] {
					continue
				}
				exs[r.ex].y[c] = -1
				if opt.MILShared && shared[p.winKey[r.win]]&(1<<c) == 0 {
					exs[r.ex].y[c] = 0 // seen in a prompt without c
					continue
				}
				z := wt.logit(&p.wins[r.win], c, nc)
				k := [2]int{r.doc, c}
				if b, ok := bestZ[k]; !ok || z > b {
					bestZ[k], best[k] = z, r.ex
				}
			}
		}
		for k, ei := range best {
			exs[ei].y[k[1]] = 1
		}
		wt = fit(exs, len(cp.texts), nc, allowed, opt)
	}
	return wt
}

func b2i(b bool) int8 {
	if b {
		return 1
	}
	return 0
}

// toModel keeps the opt.MaxFeatures features with the largest weights.
func (cp *corpus) toModel(wt weights, opt TrainOptions) *model {
	nc := cp.nc
	type fw struct {
		i   int
		max float64
	}
	var keep []fw
	for i := range cp.texts {
		mx := 0.0
		for c := 0; c < nc; c++ {
			mx = max(mx, math.Abs(wt.w[i*nc+c]))
		}
		if mx >= 0.0005 {
			keep = append(keep, fw{i, mx})
		}
	}
	slices.SortStableFunc(keep, func(a, b fw) int {
		if a.max != b.max {
			return cmp.Compare(b.max, a.max)
		}
		return a.i - b.i
	})
	if len(keep) > opt.MaxFeatures {
		keep = keep[:opt.MaxFeatures]
	}
	slices.SortFunc(keep, func(a, b fw) int { return strings.Compare(cp.texts[a.i], cp.texts[b.i]) })
	m := &model{version: modelVersion, spec: featureSpec{jaWords: opt.JaWords}, segments: opt.Segments,
		cats: append([]string(nil), service.Categories...), bias: make([]float64, nc)}
	var all []float64
	for _, k := range keep {
		all = append(all, wt.w[k.i*nc:k.i*nc+nc]...)
	}
	for c := range m.bias {
		m.bias[c] = math.Round(wt.bias[c]*10000) / 10000
	}
	for l := range m.th {
		m.th[l] = make([]threshold, nc)
	}
	m.comb = make([]combine, nc)
	for c := range m.comb {
		m.comb[c] = maxCombine
	}
	q := m.quantise(all)
	// Features whose weights all round to zero change no score.
	feats := make([]string, 0, len(keep))
	ws := make([]int8, 0, len(q))
	for j, k := range keep {
		row := q[j*nc : j*nc+nc]
		if slices.ContainsFunc(row, func(x int8) bool { return x != 0 }) {
			feats = append(feats, cp.texts[k.i])
			ws = append(ws, row...)
		}
	}
	if err := m.setFeatures(feats, ws); err != nil {
		panic(err) // a duplicate feature text is a bug in prepare
	}
	return m
}

// groups returns a group id per example such that near-duplicates share
// one: prompts that share a line (a clause of at least 15 characters,
// leading bullets and numbering removed) that is harmful content (every
// prompt holding it is labelled, with a category in common) or reused
// content (held by 2 to 4 prompts that are all harmful or all benign),
// and prompts whose normalised texts are equal. Lines shared by harmful
// and benign prompts alike are wrappers (role lines, style rules) and do
// not join groups: a benign look-alike built on the same wrapper as a
// harmful prompt is a fair test of the other.
func groups(ex []Example) []int {
	parent := make([]int, len(ex))
	for i := range parent {
		parent[i] = i
	}
	find := func(x int) int {
		for parent[x] != x {
			parent[x] = parent[parent[x]]
			x = parent[x]
		}
		return x
	}
	union := func(a, b int) {
		if ra, rb := find(a), find(b); ra != rb {
			parent[max(ra, rb)] = min(ra, rb)
		}
	}
	holders := map[string][]int{}
	whole := map[string]int{}
	for i, e := range ex {
		n := Normalize(e.Text)
		if j, ok := whole[strings.TrimSpace(n)]; ok {
			union(i, j)
		} else {
			whole[strings.TrimSpace(n)] = i
		}
		seen := map[string]bool{}
		for _, s := range clauses(n) {
			l := lineKey(n[s.lo:s.hi])
			if utf8.RuneCountInString(l) < 15 || seen[l] {
				continue
			}
			seen[l] = true
			holders[l] = append(holders[l], i)
		}
	}
	lines := make([]string, 0, len(holders))
	for l := range holders {
		lines = append(lines, l)
	}
	slices.Sort(lines)
	for _, l := range lines {
		ds := holders[l]
		if len(ds) < 2 {
			continue
		}
		harmful, benign := 0, 0
		common := map[string]int{}
		for _, d := range ds {
			if len(ex[d].Labels) == 0 {
				benign++
			} else {
				harmful++
			}
			for _, c := range ex[d].Labels {
				common[c]++
			}
		}
		shared := false
		for _, n := range common {
			if n == len(ds) {
				shared = true
			}
		}
		if (harmful == len(ds) && shared) || ((harmful == len(ds) || benign == len(ds)) && len(ds) <= 4) {
			for _, d := range ds[1:] {
				union(ds[0], d)
			}
		}
	}
	out := make([]int, len(ex))
	for i := range ex {
		out[i] = find(i)
	}
	return out
}

// lineKey is a line of normalised text without its bullet, numbering,
// quotes and surrounding space, so the same sentence in two layouts is
// one key.
func lineKey(l string) string {
	l = strings.TrimLeft(l, " \t-・*#>0123456789.)(①②③④⑤⑥⑦⑧⑨⑩[]\"'")
	return strings.TrimRight(strings.TrimSpace(l), " \t\",")
}

// assignFolds puts whole groups into folds: groups in a seeded random
// order, each to the fold with the fewest examples so far.
func assignFolds(group []int, folds int, seed uint64) []int {
	members := map[int][]int{}
	var ids []int
	for i, g := range group {
		if _, ok := members[g]; !ok {
			ids = append(ids, g)
		}
		members[g] = append(members[g], i)
	}
	rng := rand.New(rand.NewPCG(seed, 0xf01d))
	rng.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
	// Largest groups first, so they spread evenly.
	slices.SortStableFunc(ids, func(a, b int) int { return len(members[b]) - len(members[a]) })
	size := make([]int, folds)
	fold := make([]int, len(group))
	for _, g := range ids {
		f := 0
		for k := range size {
			if size[k] < size[f] {
				f = k
			}
		}
		for _, i := range members[g] {
			fold[i] = f
		}
		size[f] += len(members[g])
	}
	return fold
}

// crossValidate returns out-of-fold scores: each example scored, through
// the same code path as the shipped classifier, by a model trained on the
// other folds.
func (cp *corpus) crossValidate(fold []int, trainable []bool, opt TrainOptions) []scores {
	out := make([]scores, len(cp.ex))
	var wg sync.WaitGroup
	sem := make(chan struct{}, max(1, runtime.GOMAXPROCS(0)))
	for f := 0; f < opt.Folds; f++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			var train []int
			for i := range cp.ex {
				if fold[i] != f && trainable[i] {
					train = append(train, i)
				}
			}
			m := cp.toModel(cp.trainOn(train, opt), opt)
			for i := range cp.ex {
				if fold[i] == f {
					m.score(cp.ex[i].n, &out[i])
				}
			}
		}()
	}
	wg.Wait()
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
	// precision and recall with the shipped thresholds, per set name,
	// for "all" and for "threshold-sets"; "nested" is the estimate with
	// thresholds chosen without the fold they are applied to.
	OutOfFold map[string][2]float64
}

// evalData is everything threshold choice and evaluation need.
type evalData struct {
	y     [][]bool // per example, per category
	sc    []scores // out-of-fold
	rules [][]bool
	lang  []int
	q     [][]float64 // per example, per category: the combined probability
}

// maxCombine takes the larger of the two log-odds.
var maxCombine = combine{useMax: true}

// withCombine returns d with q computed by the per-category combinations.
func (d evalData) withCombine(cb []combine) evalData {
	d.q = make([][]float64, len(d.y))
	for i := range d.y {
		q := make([]float64, len(cb))
		for c := range cb {
			q[c] = cb[c].prob(d.sc[i].whole[c], d.sc[i].window[c])
		}
		d.q[i] = q
	}
	return d
}

// cvRun is one grouped cross-validation of the training settings.
type cvRun struct {
	ex     []Example
	cp     *corpus
	setOf  []int
	names  []string
	fold   []int
	groups []int
	d      evalData
	inTh   []bool         // examples in the threshold sets
	comb   []combine      // fitted on every fold's out-of-fold scores
	th     [2][]threshold // chosen on every fold's out-of-fold scores
	nested cvEval         // each fold judged with a combination and thresholds chosen on the others
	// floorMet is false when some thresholds could not reach the
	// precision floor on the out-of-fold scores.
	floorMet bool
}

// ruleHits is what the rules and the lexicon alone assign to each example.
func ruleHits(ex []Example) ([][]bool, error) {
	rules, err := parseWith(rulesYAML, lexiconYAML, nil)
	if err != nil {
		return nil, err
	}
	out := make([][]bool, len(ex))
	var wg sync.WaitGroup
	workers := max(1, runtime.GOMAXPROCS(0))
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(ex); i += workers {
				got := rules.ruleCategories(ex[i].Text)
				hit := make([]bool, len(service.Categories))
				for c, cat := range service.Categories {
					hit[c] = slices.Contains(got, cat)
				}
				out[i] = hit
			}
		}()
	}
	wg.Wait()
	return out, nil
}

// crossValidateSets runs the grouped cross-validation. hits, when not nil,
// are the rule hits of the examples in order (ruleHits), to save
// recomputing them.
func crossValidateSets(sets []Set, opt TrainOptions, hits [][]bool) (*cvRun, error) {
	run := &cvRun{}
	for gi, s := range sets {
		run.ex = append(run.ex, s.Examples...)
		for range s.Examples {
			run.setOf = append(run.setOf, gi)
		}
		run.names = append(run.names, s.Name)
	}
	ex := run.ex
	if hits == nil {
		var err error
		if hits, err = ruleHits(ex); err != nil {
			return nil, err
		}
	}
	run.cp = prepare(ex, run.setOf, featureSpec{jaWords: opt.JaWords}, opt.Segments)
	run.groups = groups(ex)
	run.fold = assignFolds(run.groups, opt.Folds, opt.Seed)
	trainable := make([]bool, len(ex))
	for i := range ex {
		trainable[i] = len(opt.trainSets) == 0 || slices.Contains(opt.trainSets, run.names[run.setOf[i]])
	}
	oof := run.cp.crossValidate(run.fold, trainable, opt)
	run.d = evalData{sc: oof, rules: hits}
	for i := range ex {
		run.d.y = append(run.d.y, run.cp.ex[i].y)
		run.d.lang = append(run.d.lang, oof[i].lang)
	}
	run.inTh = make([]bool, len(ex))
	for i := range ex {
		run.inTh[i] = len(opt.ThresholdSets) == 0 || slices.Contains(opt.ThresholdSets, run.names[run.setOf[i]])
	}
	run.decide(opt)
	return run, nil
}

// decide fits the combination and chooses the thresholds on the
// out-of-fold scores of the threshold sets, and makes the nested
// estimate: each fold judged by a combination and thresholds chosen on
// the other folds. It needs no retraining, so decision settings (Stack,
// thresholds) can be compared on one cross-validation.
func (run *cvRun) decide(opt TrainOptions) {
	choose := func(sel []bool) ([]combine, evalData, [2][]threshold, bool) {
		cb := make([]combine, run.cp.nc)
		for c := range cb {
			cb[c] = maxCombine
		}
		if opt.Stack {
			cb = fitCombine(run.d, sel)
		}
		d := run.d.withCombine(cb)
		th, ok := chooseThresholds(d, sel, opt)
		return cb, d, th, ok
	}
	run.comb, run.d, run.th, run.floorMet = choose(run.inTh)
	run.nested = cvEval{per: make([]pr, run.cp.nc)}
	for f := 0; f < opt.Folds; f++ {
		sel := make([]bool, len(run.ex))
		test := make([]bool, len(run.ex))
		for i := range run.ex {
			sel[i] = run.inTh[i] && run.fold[i] != f
			test[i] = run.inTh[i] && run.fold[i] == f
		}
		_, df, tf, _ := choose(sel)
		run.nested.add(evalCombined(df, tf, test, modeCombined))
	}
}

// subset selects the examples of set names (all when none), further
// restricted to language lang (-1: both).
func (run *cvRun) subset(lang int, names ...string) []bool {
	in := make([]bool, len(run.ex))
	for i := range in {
		in[i] = (len(names) == 0 || slices.Contains(names, run.names[run.setOf[i]])) && (lang < 0 || run.cp.ex[i].lang == lang)
	}
	return in
}

// GenerateModel trains the statistical layer on the sets and picks the
// combination thresholds by grouped cross-validation: every example is
// scored by a model trained on folds that hold none of its
// near-duplicates, and the thresholds chosen are, per category, those
// with the best recall whose out-of-fold precision over opt.ThresholdSets
// is at least opt.MinPrecision. The model written is trained on every set.
func GenerateModel(sets []Set, opt TrainOptions) (*Generated, error) {
	run, err := crossValidateSets(sets, opt, nil)
	if err != nil {
		return nil, err
	}
	ex, cp, d, th, inTh := run.ex, run.cp, run.d, run.th, run.inTh
	m := cp.toModel(cp.trainOn(allIndexes(len(ex)), opt), opt)
	m.th = th
	m.comb = run.comb
	m.note = strings.Join(run.names, ", ") + " (" + itoa(len(ex)) + " prompts)"

	oofFigures := map[string][2]float64{}
	var rep strings.Builder
	fmt.Fprintf(&rep, "Grouped %d-fold cross-validation (out-of-fold: each prompt scored by a model trained on folds without it or its near-duplicates) on %s\n", opt.Folds, m.note)
	fmt.Fprintf(&rep, "groups: %d; thresholds chosen on the out-of-fold scores of %s\n", countGroups(run.groups), thresholdSetNames(opt))
	fmt.Fprintf(&rep, "settings: %s\n\n", optString(opt))
	if !run.floorMet {
		rep.WriteString("WARNING: the precision floor could not be met on the out-of-fold scores; the most precise thresholds were used\n\n")
	}
	rep.WriteString(combineTable(run.comb))
	rep.WriteString(thresholdTable(th))
	rep.WriteString(evalCombined(d, th, inTh, modeModel).table("statistical layer alone, threshold sets (out-of-fold)"))
	rep.WriteString(evalCombined(d, th, inTh, modeRules).table("rules + lexicon alone, threshold sets (the rules were not tuned on these sets)"))
	thEv := evalCombined(d, th, inTh, modeCombined)
	rep.WriteString(thEv.table("combined, threshold sets (out-of-fold model, thresholds chosen on these scores: slightly optimistic)"))
	rep.WriteString(run.nested.table("combined, threshold sets, nested (thresholds chosen on the other folds: the cross-validated estimate)"))
	oofFigures["threshold-sets"] = [2]float64{thEv.micro.p(), thEv.micro.r()}
	oofFigures["nested"] = [2]float64{run.nested.micro.p(), run.nested.micro.r()}
	for l, ln := range langNames {
		in := make([]bool, len(ex))
		for i := range ex {
			in[i] = inTh[i] && cp.ex[i].lang == l
		}
		ev := evalCombined(d, th, in, modeCombined)
		fmt.Fprintf(&rep, "combined, threshold sets, %s only (%d prompts): micro P %s R %s\n", ln, ev.n, ftoa(ev.micro.p()), ftoa(ev.micro.r()))
		oofFigures["threshold-sets-"+ln] = [2]float64{ev.micro.p(), ev.micro.r()}
	}
	rep.WriteString("\n")
	for _, n := range run.names {
		ev := evalCombined(d, th, run.subset(-1, n), modeCombined)
		oofFigures[n] = [2]float64{ev.micro.p(), ev.micro.r()}
		rep.WriteString(ev.table("combined, " + n + " only"))
	}
	allEv := evalCombined(d, th, run.subset(-1), modeCombined)
	oofFigures["all"] = [2]float64{allEv.micro.p(), allEv.micro.r()}
	rep.WriteString(allEv.table("combined, every set (the rules were tuned on dev, holdout, blind1 and blind2: optimistic there)"))
	header := "llmfence statistical classifier layer: logistic regression per category over\n" +
		"character 2-4-grams, word 1-2-grams and Japanese script-run tokens (internal/classify/features.go),\n" +
		"scored on the whole prompt and on windows of consecutive clauses (model.go).\n" +
		"Generated by `go generate ./internal/classify` (./trainmodel); do not edit.\n" +
		"Lines: version, note, features, segments, categories, bias, threshold <category> <lang> <alone> <with_rule>,\n" +
		"f <feature> <weight per category>."
	return &Generated{TSV: writeModel(m, header), Report: rep.String(), OutOfFold: oofFigures}, nil
}

func allIndexes(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

func countGroups(g []int) int {
	seen := map[int]bool{}
	for _, x := range g {
		seen[x] = true
	}
	return len(seen)
}

func thresholdSetNames(opt TrainOptions) string {
	if len(opt.ThresholdSets) == 0 {
		return "every set"
	}
	return strings.Join(opt.ThresholdSets, ", ")
}

func optString(opt TrainOptions) string {
	return fmt.Sprintf("epochs %d, rate %g, L2 %g, min df %d, max features %d, seed %d, ja words %v, segments %d, MIL rounds %d (shared lines excluded %v), window weight %g, positive weight power %g, "+
		"combination fitted %v, thresholds per category %v, per language %v, micro %v, min precision %g (a category %g), min with_rule %g",
		opt.Epochs, opt.LearnRate, opt.L2, opt.MinDF, opt.MaxFeatures, opt.Seed, opt.JaWords, opt.Segments, opt.MILRounds, opt.MILShared, opt.SegWeight, opt.PosPower,
		opt.Stack, opt.PerCategory, opt.PerLanguage, opt.MicroThresholds, opt.MinPrecision, opt.MinCategoryPrecision, opt.MinWithRule)
}

func combineTable(cb []combine) string {
	var b strings.Builder
	b.WriteString("combination: p = sigmoid(a*whole + b*window + c), log-odds clamped to [-10, 10]\n| category | a (whole prompt) | b (best window) | c |\n|---|---:|---:|---:|\n")
	for c, cat := range service.Categories {
		if cb[c].useMax {
			fmt.Fprintf(&b, "| %s | max | max | |\n", cat)
			continue
		}
		fmt.Fprintf(&b, "| %s | %.3f | %.3f | %.3f |\n", cat, cb[c].whole, cb[c].window, cb[c].bias)
	}
	b.WriteString("\n")
	return b.String()
}

func thresholdTable(th [2][]threshold) string {
	var b strings.Builder
	b.WriteString("thresholds (model alone / with a rule or lexicon hit)\n| category | en | ja |\n|---|---|---|\n")
	for c, cat := range service.Categories {
		fmt.Fprintf(&b, "| %s | %s / %s | %s / %s |\n", cat, ftoa3(th[langEN][c].alone), ftoa3(th[langEN][c].withRule), ftoa3(th[langJA][c].alone), ftoa3(th[langJA][c].withRule))
	}
	b.WriteString("\n")
	return b.String()
}

// Evaluation modes.
const (
	modeCombined = iota // the shipped rule: model alone, or a rule hit the model supports
	modeModel           // the statistical layer alone
	modeRules           // the rules and lexicon alone
)

// decide is the combination rule (the same as Classifier.verdict).
func decide(p float64, rule bool, th threshold) bool {
	return p >= th.alone || (rule && p >= th.withRule)
}

func evalCombined(d evalData, th [2][]threshold, in []bool, mode int) cvEval {
	nc := len(service.Categories)
	ev := cvEval{per: make([]pr, nc)}
	for i := range d.y {
		if !in[i] {
			continue
		}
		ev.n++
		for c := 0; c < nc; c++ {
			var have bool
			switch mode {
			case modeCombined:
				have = decide(d.q[i][c], d.rules[i][c], th[d.lang[i]][c])
			case modeModel:
				have = d.q[i][c] >= th[d.lang[i]][c].alone
			case modeRules:
				have = d.rules[i][c]
			}
			ev.count(c, d.y[i][c], have)
		}
	}
	return ev
}

// thresholdGrid is the candidate thresholds.
func thresholdGrid() []float64 {
	var g []float64
	for x := 0.05; x <= 0.951; x += 0.025 {
		g = append(g, math.Round(x*1000)/1000)
	}
	return g
}

// chooseThresholds picks thresholds on the examples in sel: per category
// (and language) with opt.PerCategory (opt.PerLanguage), else one pair.
// With opt.MicroThresholds the pairs together reach the best micro recall
// whose micro precision is at least opt.MinPrecision, no category below
// opt.MinCategoryPrecision; otherwise each pair is the one with the best
// recall whose own precision is at least opt.MinPrecision (ties: better
// precision, then the first in grid order). ok is false when the floor
// cannot be reached; the most precise choice is returned then.
func chooseThresholds(d evalData, sel []bool, opt TrainOptions) (th [2][]threshold, ok bool) {
	nc := len(service.Categories)
	for l := range th {
		th[l] = make([]threshold, nc)
	}
	grid := thresholdGrid()
	var pairs []threshold
	for _, a := range grid {
		for _, r := range grid {
			if r <= a && (r >= opt.MinWithRule || r == a) {
				pairs = append(pairs, threshold{a, r})
			}
		}
	}
	type cell struct{ cats, langs []int }
	var cells []cell
	allLangs := []int{langEN, langJA}
	switch {
	case opt.PerCategory && opt.PerLanguage:
		for c := 0; c < nc; c++ {
			for _, l := range allLangs {
				cells = append(cells, cell{[]int{c}, []int{l}})
			}
		}
	case opt.PerCategory:
		for c := 0; c < nc; c++ {
			cells = append(cells, cell{[]int{c}, allLangs})
		}
	case opt.PerLanguage:
		for _, l := range allLangs {
			cells = append(cells, cell{allIndexes(nc), []int{l}})
		}
	default:
		cells = append(cells, cell{allIndexes(nc), allLangs})
	}
	// Counts of every pair in every cell.
	counts := make([][]pr, len(cells))
	for k, ce := range cells {
		counts[k] = make([]pr, len(pairs))
		for i := range d.y {
			if !sel[i] || !slices.Contains(ce.langs, d.lang[i]) {
				continue
			}
			for _, c := range ce.cats {
				q, rule, y := d.q[i][c], d.rules[i][c], d.y[i][c]
				for pi, t := range pairs {
					if q < t.withRule { // cannot fire: only a miss to count
						if y {
							counts[k][pi].fn++
						}
						continue
					}
					counts[k][pi].add(y, decide(q, rule, t))
				}
			}
		}
	}
	set := func(k int, t threshold) {
		for _, l := range cells[k].langs {
			for _, c := range cells[k].cats {
				th[l][c] = t
			}
		}
	}
	if !opt.MicroThresholds {
		ok = true
		for k := range cells {
			best, bestOK := -1, false
			for pi, x := range counts[k] {
				good := x.p() >= opt.MinPrecision
				if best < 0 {
					best, bestOK = pi, good
					continue
				}
				b := counts[k][best]
				var better bool
				switch {
				case good && !bestOK:
					better = true
				case good && bestOK:
					better = x.r() > b.r()+1e-12 || (math.Abs(x.r()-b.r()) <= 1e-12 && x.p() > b.p()+1e-12)
				case !good && !bestOK:
					better = x.p() > b.p()+1e-12 || (math.Abs(x.p()-b.p()) <= 1e-12 && x.r() > b.r()+1e-12)
				}
				if better {
					best, bestOK = pi, good
				}
			}
			ok = ok && bestOK
			set(k, pairs[best])
		}
		return th, ok
	}
	// Micro: for a price lambda per false positive, each cell takes the
	// pair with the most true positives minus lambda times its false
	// positives (among pairs precise enough on their own); the cheapest
	// price that keeps micro precision at the floor wins.
	pick := func(lambda float64) ([]int, pr) {
		choice := make([]int, len(cells))
		var tot pr
		for k := range cells {
			best := -1
			bestV := math.Inf(-1)
			for pi, x := range counts[k] {
				if x.tp+x.fp > 0 && x.p() < opt.MinCategoryPrecision {
					continue
				}
				if v := float64(x.tp) - lambda*float64(x.fp); v > bestV+1e-12 {
					best, bestV = pi, v
				}
			}
			if best < 0 { // nothing precise enough: the most precise pair
				for pi, x := range counts[k] {
					if best < 0 || x.p() > counts[k][best].p() {
						best = pi
					}
				}
			}
			choice[k] = best
			x := counts[k][best]
			tot.tp, tot.fp, tot.fn = tot.tp+x.tp, tot.fp+x.fp, tot.fn+x.fn
		}
		return choice, tot
	}
	var bestChoice []int
	var bestTot pr
	for lambda := 0.25; lambda <= 64; lambda *= 1.05 {
		choice, tot := pick(lambda)
		if tot.p() < opt.MinPrecision {
			continue
		}
		if bestChoice == nil || tot.tp > bestTot.tp || (tot.tp == bestTot.tp && tot.fp < bestTot.fp) {
			bestChoice, bestTot = choice, tot
		}
	}
	ok = bestChoice != nil
	if !ok {
		bestChoice, _ = pick(1e9)
	}
	for k, pi := range bestChoice {
		set(k, pairs[pi])
	}
	return th, ok
}

// fitCombine fits, per category, p = sigmoid(a*whole + b*window + c*rule + d)
// by Newton's method (L2 1e-3) on the out-of-fold log-odds of the
// examples in sel, and returns {a, b, d}: rule hits are left to the
// thresholds' with_rule.
func fitCombine(d evalData, sel []bool) []combine {
	nc := len(service.Categories)
	out := make([]combine, nc)
	const dim = 4
	for c := 0; c < nc; c++ {
		var xs [][dim]float64
		var ys []float64
		for i := range d.y {
			if !sel[i] {
				continue
			}
			r := 0.0
			if d.rules[i][c] {
				r = 1
			}
			xs = append(xs, [dim]float64{clampLogit(d.sc[i].whole[c]), clampLogit(d.sc[i].window[c]), r, 1})
			ys = append(ys, map[bool]float64{true: 1, false: 0}[d.y[i][c]])
		}
		w := newtonLR(xs, ys, 1e-3, 50)
		out[c] = combine{whole: math.Round(w[0]*1e4) / 1e4, window: math.Round(w[1]*1e4) / 1e4, bias: math.Round(w[3]*1e4) / 1e4}
	}
	return out
}

// newtonLR fits a small logistic regression by Newton's method.
func newtonLR[X ~[4]float64](xs []X, ys []float64, l2 float64, iters int) [4]float64 {
	const dim = 4
	var w [dim]float64
	n := float64(len(xs))
	if n == 0 {
		return w
	}
	for it := 0; it < iters; it++ {
		var g [dim]float64
		var h [dim][dim]float64
		for i, x := range xs {
			z := 0.0
			for k := 0; k < dim; k++ {
				z += w[k] * x[k]
			}
			p := sigmoid(z)
			for k := 0; k < dim; k++ {
				g[k] += (p - ys[i]) * x[k] / n
				for j := 0; j < dim; j++ {
					h[k][j] += p * (1 - p) * x[k] * x[j] / n
				}
			}
		}
		for k := 0; k < dim; k++ {
			g[k] += l2 * w[k]
			h[k][k] += l2
		}
		step, ok := solve4(h, g)
		if !ok {
			break
		}
		done := true
		for k := 0; k < dim; k++ {
			w[k] -= step[k]
			if math.Abs(step[k]) > 1e-9 {
				done = false
			}
		}
		if done {
			break
		}
	}
	return w
}

// solve4 solves h x = g by Gaussian elimination with partial pivoting.
func solve4(h [4][4]float64, g [4]float64) ([4]float64, bool) {
	const n = 4
	for col := 0; col < n; col++ {
		p := col
		for r := col + 1; r < n; r++ {
			if math.Abs(h[r][col]) > math.Abs(h[p][col]) {
				p = r
			}
		}
		if math.Abs(h[p][col]) < 1e-12 {
			return g, false
		}
		h[col], h[p] = h[p], h[col]
		g[col], g[p] = g[p], g[col]
		for r := col + 1; r < n; r++ {
			f := h[r][col] / h[col][col]
			for k := col; k < n; k++ {
				h[r][k] -= f * h[col][k]
			}
			g[r] -= f * g[col]
		}
	}
	var x [4]float64
	for r := n - 1; r >= 0; r-- {
		s := g[r]
		for k := r + 1; k < n; k++ {
			s -= h[r][k] * x[k]
		}
		x[r] = s / h[r][r]
	}
	return x, true
}

type pr struct{ tp, fp, fn int }

func (x *pr) add(want, have bool) {
	switch {
	case want && have:
		x.tp++
	case !want && have:
		x.fp++
	case want && !have:
		x.fn++
	}
}

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

type cvEval struct {
	per   []pr
	micro pr
	n     int
}

func (ev *cvEval) count(c int, want, have bool) {
	ev.per[c].add(want, have)
	ev.micro.add(want, have)
}

func (ev *cvEval) add(o cvEval) {
	for c := range ev.per {
		ev.per[c].tp += o.per[c].tp
		ev.per[c].fp += o.per[c].fp
		ev.per[c].fn += o.per[c].fn
	}
	ev.micro.tp += o.micro.tp
	ev.micro.fp += o.micro.fp
	ev.micro.fn += o.micro.fn
	ev.n += o.n
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

func ftoa3(x float64) string { return strconv.FormatFloat(x, 'f', 3, 64) }
