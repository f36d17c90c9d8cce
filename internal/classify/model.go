package classify

import (
	"bufio"
	"bytes"
	_ "embed"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/llmfence/llmfence/internal/service"
)

// The statistical layer: one logistic regression per category over
// character n-grams and word n-grams (features.go), trained by
// ./trainmodel on the labelled sets and embedded as model.tsv. It is the
// layer that generalises to phrasings nobody wrote a rule for; the rules
// and the lexicon are the layers that explain themselves. How the layers
// combine is decided by cross-validation in the trainer and recorded in
// the model file (see verdict in classify.go and docs/classifier.md).
//
// A long prompt is scored twice: as a whole, and window by window, where a
// window is up to model.segments consecutive clauses (clauses as the rules
// see them: lines and sentences). A category's probability combines the
// whole prompt's log-odds with the best window's (model.comb, fitted on
// out-of-fold scores), so a harmful duty buried among ten benign lines is
// not averaged away, and the window that scored is shown as the evidence.
// The same weights score both: the trainer fits them on whole prompts and
// on windows (see train.go).

//go:embed model.tsv
var modelTSV []byte

// model is a trained statistical layer. It is immutable after loading.
type model struct {
	version  int
	spec     featureSpec
	segments int       // windows of up to this many clauses are scored; 0: the whole prompt only
	cats     []string  // category of each weight column, service.Categories order
	bias     []float64 // per category
	// Thresholds per language (langEN, langJA) and category, chosen by
	// cross-validation in the trainer: a category fires on the model
	// alone at a probability of at least alone, and on a rule or lexicon
	// hit when the model gives at least withRule.
	th [2][]threshold
	// comb is, per category, how the whole prompt's and the best
	// window's log-odds combine into the category's probability, fitted
	// on out-of-fold scores by the trainer.
	comb []combine
	note string // what it was trained on

	// Open-addressing table from a 32-bit fold of the feature hash to the
	// feature index and its weights, quantised to int8 per category
	// (weight = wq * scale[c]); the file holds them so. Small tables keep
	// the per-n-gram lookup in cache, which is most of the layer's cost.
	table []entry
	scale []float64 // per category
	wq    []int8    // weights by feature index, feature-major (for the file and explanations)
	texts []string  // feature text ("c:" n-gram or "w:" words)
}

// threshold is one category's pair of thresholds.
type threshold struct{ alone, withRule float64 }

// combine maps a category's two log-odds to its probability:
// sigmoid(whole*w + window*v + b), or with useMax sigmoid of the larger of
// the two. A prompt of one clause has no window; its window log-odds is
// then the whole prompt's.
type combine struct {
	whole, window, bias float64
	useMax              bool
}

// clampLogit bounds a log-odds before it is combined.
func clampLogit(x float64) float64 { return min(max(x, -10), 10) }

func (cb combine) prob(whole, window float64) float64 {
	if cb.useMax {
		return sigmoid(max(whole, window))
	}
	return sigmoid(cb.whole*clampLogit(whole) + cb.window*clampLogit(window) + cb.bias)
}

// Languages the thresholds are kept for.
const (
	langEN = 0
	langJA = 1
)

var langNames = [2]string{"en", "ja"}

// entry is one slot of the lookup table: the folded hash, the feature's
// index and its quantised weights, so a lookup touches one cache line.
type entry struct {
	key   uint32
	index uint16
	w     [maxCats]int8
}

// maxCats bounds the categories a model may score.
const maxCats = 10

// maxModelFeatures bounds the features a model may hold (uint16 index).
const maxModelFeatures = 1<<16 - 1

// maxSegments bounds the window size a model may ask for.
const maxSegments = 8

// fold32 folds a feature hash to the table key; 0 marks an empty slot.
func fold32(h uint64) uint32 {
	k := uint32(h>>32) ^ uint32(h)
	if k == 0 {
		k = 1
	}
	return k
}

// ModelFeature is one feature's contribution to a category's score.
type ModelFeature struct {
	Feature string  `json:"feature"` // "c:ngram" or "w:word(s)"
	Weight  float64 `json:"weight"`  // contribution to the log-odds
}

// ModelScore explains the statistical layer's verdict on one category.
type ModelScore struct {
	Probability float64 `json:"probability"`
	Threshold   float64 `json:"threshold"` // the threshold that applied
	// Window is the part of the normalised prompt that scored highest
	// (a few consecutive lines or sentences), empty when the prompt as a
	// whole scored at least as high. Start and End of the Match point at
	// it.
	Window string         `json:"window,omitempty"`
	Top    []ModelFeature `json:"top"` // the strongest contributions, either sign
}

func (m *model) find(h uint64) *entry {
	if len(m.table) == 0 {
		return nil
	}
	k := fold32(h)
	mask := uint32(len(m.table) - 1)
	for i := k & mask; ; i = (i + 1) & mask {
		e := &m.table[i]
		switch e.key {
		case k:
			return e
		case 0:
			return nil
		}
	}
}

func (m *model) lookup(h uint64) int32 {
	if e := m.find(h); e != nil {
		return int32(e.index)
	}
	return -1
}

// scores is the statistical layer's reading of one prompt.
type scores struct {
	lang int // langEN or langJA, by script (see promptLang)
	// p is each category's probability, combined from the whole
	// prompt's and the best window's log-odds (model.comb).
	p [maxCats]float64
	// win is, per category, the byte span of n of the window that scored
	// highest, or {0, 0} when the prompt has no windows (one clause).
	win [maxCats]span
	// whole and window are the log-odds of the whole prompt and of the
	// best window (the whole prompt's without windows).
	whole, window [maxCats]float64
}

// acc accumulates one clause's (or window's) quantised log-odds.
type acc struct {
	z     [maxCats]int32
	count int32
	lo    int // byte offset in n where the clause starts
}

// score scores the normalised text n.
func (m *model) score(n string, sc *scores) {
	nc := len(m.cats)
	var total, cur acc
	// The last m.segments clauses, a ring, for the windows.
	var ring [maxSegments]acc
	nseg := m.segments
	cl := clauses(n)
	ci, closed := 0, 0
	var best [maxCats]float64
	for c := range best {
		best[c] = math.Inf(-1)
	}
	if len(cl) > 0 {
		cur.lo = cl[0].lo
	}
	// closeClause ends the current clause at byte offset end and scores
	// the windows that end with it.
	closeClause := func(end int) {
		total.count += cur.count
		for c := 0; c < nc; c++ {
			total.z[c] += cur.z[c]
		}
		if nseg > 0 && cur.count > 0 {
			ring[closed%nseg] = cur
			closed++
			var z [maxCats]int32
			count := int32(0)
			for w := 1; w <= nseg && w <= closed; w++ {
				a := &ring[(closed-w)%nseg]
				count += a.count
				for c := 0; c < nc; c++ {
					z[c] += a.z[c]
				}
				norm := 1 / math.Sqrt(float64(count))
				for c := 0; c < nc; c++ {
					if l := float64(z[c]) * m.scale[c] * norm; l > best[c] {
						best[c] = l
						sc.win[c] = span{a.lo, end}
					}
				}
			}
		}
		cur = acc{}
	}
	eachFeature(n, m.spec, false, func(h uint64, _ byte, _ string, end int) {
		for ci+1 < len(cl) && cl[ci+1].lo <= end {
			closeClause(cl[ci].hi)
			ci++
			cur.lo = cl[ci].lo
		}
		cur.count++
		if e := m.find(h); e != nil {
			for c := range cur.z {
				cur.z[c] += int32(e.w[c])
			}
		}
	})
	if len(cl) > 0 {
		closeClause(cl[len(cl)-1].hi)
	} else {
		closeClause(len(n))
	}
	sc.lang = promptLang(n)
	norm := 0.0
	if total.count > 0 {
		norm = 1 / math.Sqrt(float64(total.count))
	}
	for c := 0; c < nc; c++ {
		sc.whole[c] = m.bias[c] + float64(total.z[c])*m.scale[c]*norm
		sc.window[c] = sc.whole[c]
		if !math.IsInf(best[c], -1) {
			sc.window[c] = m.bias[c] + best[c]
		}
		sc.p[c] = m.comb[c].prob(sc.whole[c], sc.window[c])
	}
}

func sigmoid(z float64) float64 { return 1 / (1 + math.Exp(-z)) }

// promptLang decides which language's thresholds apply: Japanese when
// kana and kanji make up at least a fifth of the letters.
func promptLang(n string) int {
	ja, all := 0, 0
	for _, r := range n {
		switch wordClass(r, true) {
		case classHan, classKatakana, classHiragana:
			ja++
			all++
		case classLatin:
			all++
		}
	}
	if all > 0 && ja*5 >= all {
		return langJA
	}
	return langEN
}

// top returns the k features contributing most (by absolute value) to
// category c's log-odds, over the window win of n (the whole of n when win
// is empty).
func (m *model) top(n string, c, k int, win span) []ModelFeature {
	nc := len(m.cats)
	sum := map[int32]float64{}
	count := 0
	cl := clauses(n)
	ci := 0
	eachFeature(n, m.spec, false, func(h uint64, _ byte, _ string, end int) {
		for ci+1 < len(cl) && cl[ci+1].lo <= end {
			ci++
		}
		if win != (span{}) && len(cl) > 0 && (cl[ci].lo < win.lo || cl[ci].hi > win.hi) {
			return
		}
		count++
		if i := m.lookup(h); i >= 0 {
			sum[i] += float64(m.wq[int(i)*nc+c]) * m.scale[c]
		}
	})
	if count == 0 {
		return nil
	}
	scale := 1 / math.Sqrt(float64(count))
	out := make([]ModelFeature, 0, len(sum))
	for i, v := range sum {
		out = append(out, ModelFeature{Feature: m.texts[i], Weight: math.Round(v*scale*1000) / 1000})
	}
	slices.SortFunc(out, func(a, b ModelFeature) int {
		if d := math.Abs(b.Weight) - math.Abs(a.Weight); d != 0 {
			if d > 0 {
				return 1
			}
			return -1
		}
		return strings.Compare(a.Feature, b.Feature)
	})
	if len(out) > k {
		out = out[:k]
	}
	return out
}

// featureHash recomputes the hash of a feature from its text.
func featureHash(text string) (uint64, error) {
	kind, body, ok := strings.Cut(text, ":")
	if !ok || body == "" {
		return 0, fmt.Errorf("feature %q: want c:ngram or w:word", text)
	}
	switch kind {
	case "c":
		h := uint64(fnvOffset)
		for _, r := range body {
			h = (h ^ uint64(r)) * fnvPrime
		}
		return h, nil
	case "w":
		words := strings.Split(body, " ")
		hw := func(s string) uint64 {
			h := uint64(fnvOffset ^ wordSeed)
			for _, r := range s {
				h = (h ^ uint64(r)) * fnvPrime
			}
			return h
		}
		switch len(words) {
		case 1:
			return hw(words[0]), nil
		case 2:
			return hw(words[0])*fnvPrime ^ hw(words[1]) ^ wordSeed, nil
		}
	}
	return 0, fmt.Errorf("feature %q: want c:ngram or w:word", text)
}

// modelVersion is the model file format written by the trainer.
const modelVersion = 2

// parseModel reads model.tsv: "#" comments, then tab-separated lines:
//
//	version    2
//	note       text
//	features   ja-words        (optional feature kinds; empty for none)
//	segments   N               (windows of up to N clauses; 0 for none)
//	categories cat...
//	bias       b...
//	scale      s...            (per category: a weight is its integer times this)
//	combine    category whole window bias      (one per category: p = sigmoid(whole*x + window*y + bias))
//	threshold  category lang alone with_rule   (one per category and language, lang en or ja)
//	f          feature  w...   (one line per feature: integer weights, -127 to 127)
func parseModel(data []byte) (*model, error) {
	m := &model{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	line := 0
	var feats []string
	var ws []int8
	seen := map[string]bool{}
	for sc.Scan() {
		line++
		t := sc.Text()
		if t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		f := strings.Split(t, "\t")
		bad := func(err error) error { return fmt.Errorf("model.tsv:%d: %w", line, err) }
		if f[0] != "f" && f[0] != "threshold" && f[0] != "combine" {
			if seen[f[0]] {
				return nil, bad(fmt.Errorf("%s given twice", f[0]))
			}
			seen[f[0]] = true
		}
		switch f[0] {
		case "version", "segments":
			if len(f) != 2 {
				return nil, bad(fmt.Errorf("%s: want one value", f[0]))
			}
			v, err := strconv.Atoi(f[1])
			if err != nil {
				return nil, bad(err)
			}
			if f[0] == "version" {
				if v != modelVersion {
					return nil, bad(fmt.Errorf("version %d, this build reads %d (retrain: go generate ./internal/classify)", v, modelVersion))
				}
				m.version = v
			} else {
				if v < 0 || v > maxSegments {
					return nil, bad(fmt.Errorf("segments %d, want 0 to %d", v, maxSegments))
				}
				m.segments = v
			}
		case "note":
			m.note = strings.Join(f[1:], " ")
		case "features":
			for _, k := range f[1:] {
				switch k {
				case "ja-words":
					m.spec.jaWords = true
				case "":
				default:
					return nil, bad(fmt.Errorf("unknown feature kind %q", k))
				}
			}
		case "categories":
			m.cats = f[1:]
			if len(m.cats) > maxCats {
				return nil, bad(fmt.Errorf("%d categories, at most %d", len(m.cats), maxCats))
			}
			for _, c := range m.cats {
				if !slices.Contains(service.Categories, c) {
					return nil, bad(fmt.Errorf("unknown category %q", c))
				}
			}
			m.comb = make([]combine, len(m.cats))
			for l := range m.th {
				m.th[l] = make([]threshold, len(m.cats))
				for c := range m.th[l] {
					m.th[l][c] = threshold{-1, -1}
				}
			}
		case "bias", "scale":
			xs, err := floats(f[1:])
			if err != nil {
				return nil, bad(err)
			}
			if f[0] == "bias" {
				m.bias = xs
			} else {
				for _, x := range xs {
					if !(x > 0) || math.IsInf(x, 0) {
						return nil, bad(fmt.Errorf("scale %v: want a positive number", x))
					}
				}
				m.scale = xs
			}
		case "threshold":
			if len(f) != 5 || len(m.cats) == 0 {
				return nil, bad(fmt.Errorf("threshold: want category, language, alone, with_rule after the categories"))
			}
			c := slices.Index(m.cats, f[1])
			l := slices.Index(langNames[:], f[2])
			xs, err := floats(f[3:])
			if c < 0 || l < 0 || err != nil {
				return nil, bad(fmt.Errorf("threshold %q %q: unknown category or language, or not numbers", f[1], f[2]))
			}
			if xs[0] <= 0 || xs[0] > 1 || xs[1] < 0 || xs[1] > xs[0] {
				return nil, bad(fmt.Errorf("threshold %s %s: want 0 <= with_rule <= alone <= 1", f[1], f[2]))
			}
			if m.th[l][c].alone >= 0 {
				return nil, bad(fmt.Errorf("threshold %s %s given twice", f[1], f[2]))
			}
			m.th[l][c] = threshold{xs[0], xs[1]}
		case "combine":
			c := -1
			if len(f) == 5 && len(m.cats) > 0 {
				c = slices.Index(m.cats, f[1])
			}
			if c < 0 && len(f) == 3 && len(m.cats) > 0 && f[2] == "max" {
				c = slices.Index(m.cats, f[1])
				if c >= 0 && m.comb[c] == (combine{}) {
					m.comb[c] = maxCombine
					continue
				}
			}
			xs, err := floats(f[2:])
			if c < 0 || err != nil {
				return nil, bad(fmt.Errorf("combine: want a category and three numbers (or max) after the categories"))
			}
			if m.comb[c] != (combine{}) {
				return nil, bad(fmt.Errorf("combine %s given twice", f[1]))
			}
			m.comb[c] = combine{whole: xs[0], window: xs[1], bias: xs[2]}
		case "f":
			if len(f) != 2+len(m.cats) || len(m.cats) == 0 {
				return nil, bad(fmt.Errorf("feature line with %d fields", len(f)))
			}
			feats = append(feats, f[1])
			for _, s := range f[2:] {
				x, err := strconv.ParseInt(s, 10, 8)
				if err != nil || x < -127 {
					return nil, bad(fmt.Errorf("weight %q: want an integer from -127 to 127", s))
				}
				ws = append(ws, int8(x))
			}
		default:
			return nil, bad(fmt.Errorf("unknown line %q", f[0]))
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if m.version < 1 || len(m.cats) == 0 || len(m.bias) != len(m.cats) || len(m.scale) != len(m.cats) || !seen["segments"] {
		return nil, fmt.Errorf("model.tsv: missing or inconsistent header (version, segments, categories, bias, scale)")
	}
	for c, cb := range m.comb {
		if cb == (combine{}) {
			return nil, fmt.Errorf("model.tsv: no combine line for %s", m.cats[c])
		}
	}
	for l := range m.th {
		for c, th := range m.th[l] {
			if th.alone < 0 {
				return nil, fmt.Errorf("model.tsv: no threshold for %s in %s", m.cats[c], langNames[l])
			}
		}
	}
	if err := m.setFeatures(feats, ws); err != nil {
		return nil, err
	}
	return m, nil
}

func floats(ss []string) ([]float64, error) {
	var xs []float64
	for _, s := range ss {
		x, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return nil, err
		}
		xs = append(xs, x)
	}
	return xs, nil
}

// setFeatures builds the lookup table from the feature texts and their
// quantised weights (m.scale must be set).
func (m *model) setFeatures(feats []string, wq []int8) error {
	if len(feats) > maxModelFeatures {
		return fmt.Errorf("model.tsv: %d features, at most %d", len(feats), maxModelFeatures)
	}
	nc := len(m.cats)
	if nc > maxCats {
		return fmt.Errorf("model.tsv: %d categories, at most %d", nc, maxCats)
	}
	if len(wq) != len(feats)*nc {
		return fmt.Errorf("model.tsv: %d weights for %d features", len(wq), len(feats))
	}
	size := 1
	for size < len(feats)*3/2+1 {
		size <<= 1
	}
	m.table = make([]entry, size)
	m.texts = feats
	m.wq = wq
	mask := uint32(size - 1)
	for i, ft := range feats {
		h, err := featureHash(ft)
		if err != nil {
			return fmt.Errorf("model.tsv: %w", err)
		}
		k := fold32(h)
		j := k & mask
		for m.table[j].key != 0 && m.table[j].key != k {
			j = (j + 1) & mask
		}
		if m.table[j].key == k {
			return fmt.Errorf("model.tsv: feature %q collides with another (listed twice?)", ft)
		}
		e := &m.table[j]
		e.key, e.index = k, uint16(i)
		copy(e.w[:nc], wq[i*nc:i*nc+nc])
	}
	return nil
}

// quantise sets m.scale per category (the largest absolute weight over
// 127) and returns the weights (feature-major) as int8 multiples of it.
func (m *model) quantise(ws []float64) []int8 {
	nc := len(m.cats)
	m.scale = make([]float64, nc)
	for i, x := range ws {
		m.scale[i%nc] = max(m.scale[i%nc], math.Abs(x))
	}
	for c := range m.scale {
		m.scale[c] /= 127
		if m.scale[c] == 0 {
			m.scale[c] = 1
		}
	}
	out := make([]int8, len(ws))
	for i, x := range ws {
		out[i] = int8(math.Round(x / m.scale[i%nc]))
	}
	return out
}

// writeModel writes m in the format parseModel reads.
func writeModel(m *model, header string) []byte {
	var b bytes.Buffer
	for _, l := range strings.Split(strings.TrimSpace(header), "\n") {
		b.WriteString("# " + l + "\n")
	}
	fmt.Fprintf(&b, "version\t%d\n", m.version)
	fmt.Fprintf(&b, "note\t%s\n", m.note)
	fmt.Fprintf(&b, "features\t%s\n", m.spec)
	fmt.Fprintf(&b, "segments\t%d\n", m.segments)
	fmt.Fprintf(&b, "categories\t%s\n", strings.Join(m.cats, "\t"))
	b.WriteString("bias")
	for _, x := range m.bias {
		fmt.Fprintf(&b, "\t%s", strconv.FormatFloat(x, 'f', 4, 64))
	}
	b.WriteString("\nscale")
	for _, x := range m.scale {
		fmt.Fprintf(&b, "\t%s", strconv.FormatFloat(x, 'g', -1, 64))
	}
	b.WriteByte('\n')
	for c, cat := range m.cats {
		cb := m.comb[c]
		if cb.useMax {
			fmt.Fprintf(&b, "combine\t%s\tmax\n", cat)
			continue
		}
		fmt.Fprintf(&b, "combine\t%s\t%s\t%s\t%s\n", cat, strconv.FormatFloat(cb.whole, 'f', 4, 64), strconv.FormatFloat(cb.window, 'f', 4, 64), strconv.FormatFloat(cb.bias, 'f', 4, 64))
	}
	for c, cat := range m.cats {
		for l, ln := range langNames {
			th := m.th[l][c]
			fmt.Fprintf(&b, "threshold\t%s\t%s\t%s\t%s\n", cat, ln, strconv.FormatFloat(th.alone, 'f', 3, 64), strconv.FormatFloat(th.withRule, 'f', 3, 64))
		}
	}
	nc := len(m.cats)
	for i, ft := range m.texts {
		b.WriteString("f\t" + ft)
		for _, x := range m.wq[i*nc : i*nc+nc] {
			b.WriteString("\t" + strconv.Itoa(int(x)))
		}
		b.WriteByte('\n')
	}
	return b.Bytes()
}
