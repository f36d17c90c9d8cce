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
// the model file (see combine in classify.go and docs/classifier.md).

//go:embed model.tsv
var modelTSV []byte

// model is a trained statistical layer. It is immutable after loading.
type model struct {
	version int
	cats    []string  // category of each weight column, service.Categories order
	bias    []float64 // per category
	// Thresholds, chosen by cross-validation in the trainer: a category
	// fires on the model alone at a probability of at least alone, and on
	// a rule or lexicon hit when the model gives at least withRule.
	alone, withRule float64
	note            string // what it was trained on

	// Open-addressing table from a 32-bit fold of the feature hash to the
	// feature index, and the weights quantised to int8 per category
	// (w = wq * scale[c]). Small tables keep the per-n-gram lookup in
	// cache, which is most of the layer's cost.
	table []entry
	scale []float64 // per category
	w     []float32 // unquantised weights, as read (for the file and explanations)
	texts []string  // feature text ("c:" n-gram or "w:" words)
}

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
	Probability float64        `json:"probability"`
	Threshold   float64        `json:"threshold"` // the threshold that applied
	Top         []ModelFeature `json:"top"`       // the strongest contributions, either sign
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

// probabilities scores the normalised text: one probability per category,
// in m.cats order.
func (m *model) probabilities(n string, out []float64) []float64 {
	nc := len(m.cats)
	var z [maxCats]int32
	count := 0
	eachFeature(n, false, func(h uint64, _ byte, _ string) {
		count++
		if e := m.find(h); e != nil {
			for c := range z {
				z[c] += int32(e.w[c])
			}
		}
	})
	out = out[:0]
	norm := 0.0
	if count > 0 {
		norm = 1 / math.Sqrt(float64(count))
	}
	for c := 0; c < nc; c++ {
		out = append(out, sigmoid(m.bias[c]+float64(z[c])*m.scale[c]*norm))
	}
	return out
}

func sigmoid(z float64) float64 { return 1 / (1 + math.Exp(-z)) }

// top returns the k features of n contributing most (by absolute value)
// to category c's log-odds.
func (m *model) top(n string, c, k int) []ModelFeature {
	nc := len(m.cats)
	sum := map[int32]float64{}
	count := 0
	eachFeature(n, false, func(h uint64, _ byte, _ string) {
		count++
		if i := m.lookup(h); i >= 0 {
			sum[i] += float64(m.w[int(i)*nc+c])
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

// parseModel reads model.tsv: "#" comments, then tab-separated lines:
//
//	version   N
//	note      text
//	categories cat...
//	bias      b...
//	thresholds alone with_rule
//	f         feature  w...   (one line per feature)
func parseModel(data []byte) (*model, error) {
	m := &model{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	line := 0
	var feats []string
	var ws []float32
	for sc.Scan() {
		line++
		t := sc.Text()
		if t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		f := strings.Split(t, "\t")
		bad := func(err error) error { return fmt.Errorf("model.tsv:%d: %w", line, err) }
		switch f[0] {
		case "version":
			v, err := strconv.Atoi(f[len(f)-1])
			if err != nil {
				return nil, bad(err)
			}
			m.version = v
		case "note":
			m.note = strings.Join(f[1:], " ")
		case "categories":
			m.cats = f[1:]
			for _, c := range m.cats {
				if !slices.Contains(service.Categories, c) {
					return nil, bad(fmt.Errorf("unknown category %q", c))
				}
			}
		case "bias", "thresholds":
			var xs []float64
			for _, s := range f[1:] {
				x, err := strconv.ParseFloat(s, 64)
				if err != nil {
					return nil, bad(err)
				}
				xs = append(xs, x)
			}
			if f[0] == "bias" {
				m.bias = xs
			} else if len(xs) == 2 {
				m.alone, m.withRule = xs[0], xs[1]
			} else {
				return nil, bad(fmt.Errorf("thresholds: want 2 values"))
			}
		case "f":
			if len(f) != 2+len(m.cats) || len(m.cats) == 0 {
				return nil, bad(fmt.Errorf("feature line with %d fields", len(f)))
			}
			feats = append(feats, f[1])
			for _, s := range f[2:] {
				x, err := strconv.ParseFloat(s, 32)
				if err != nil {
					return nil, bad(err)
				}
				ws = append(ws, float32(x))
			}
		default:
			return nil, bad(fmt.Errorf("unknown line %q", f[0]))
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if m.version < 1 || len(m.cats) == 0 || len(m.bias) != len(m.cats) || m.alone <= 0 || m.alone > 1 || m.withRule < 0 || m.withRule > m.alone {
		return nil, fmt.Errorf("model.tsv: missing or inconsistent header (version, categories, bias, thresholds)")
	}
	if err := m.setFeatures(feats, ws); err != nil {
		return nil, err
	}
	return m, nil
}

// setFeatures builds the lookup table and the quantised weights.
func (m *model) setFeatures(feats []string, ws []float32) error {
	if len(feats) > maxModelFeatures {
		return fmt.Errorf("model.tsv: %d features, at most %d", len(feats), maxModelFeatures)
	}
	nc := len(m.cats)
	if nc > maxCats {
		return fmt.Errorf("model.tsv: %d categories, at most %d", nc, maxCats)
	}
	size := 1
	for size < len(feats)*3/2+1 {
		size <<= 1
	}
	m.table = make([]entry, size)
	m.texts = feats
	m.w = ws
	m.scale = make([]float64, nc)
	for i, x := range ws {
		m.scale[i%nc] = max(m.scale[i%nc], math.Abs(float64(x)))
	}
	for c := range m.scale {
		m.scale[c] /= 127
		if m.scale[c] == 0 {
			m.scale[c] = 1
		}
	}
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
		for c := 0; c < nc; c++ {
			e.w[c] = int8(math.Round(float64(ws[i*nc+c]) / m.scale[c]))
		}
	}
	return nil
}

// writeModel writes m in the format parseModel reads.
func writeModel(m *model, header string) []byte {
	var b bytes.Buffer
	for _, l := range strings.Split(strings.TrimSpace(header), "\n") {
		b.WriteString("# " + l + "\n")
	}
	fmt.Fprintf(&b, "version\t%d\n", m.version)
	fmt.Fprintf(&b, "note\t%s\n", m.note)
	fmt.Fprintf(&b, "categories\t%s\n", strings.Join(m.cats, "\t"))
	b.WriteString("bias")
	for _, x := range m.bias {
		fmt.Fprintf(&b, "\t%s", strconv.FormatFloat(x, 'f', 4, 64))
	}
	fmt.Fprintf(&b, "\nthresholds\t%s\t%s\n", strconv.FormatFloat(m.alone, 'f', 3, 64), strconv.FormatFloat(m.withRule, 'f', 3, 64))
	nc := len(m.cats)
	for i, ft := range m.texts {
		b.WriteString("f\t" + ft)
		for _, x := range m.w[i*nc : i*nc+nc] {
			b.WriteString("\t" + strconv.FormatFloat(float64(x), 'f', 3, 32))
		}
		b.WriteByte('\n')
	}
	return b.Bytes()
}
