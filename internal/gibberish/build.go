package gibberish

import (
	"cmp"
	"math"
	"slices"
	"unicode/utf8"
)

// BuilderOptions bound what a Builder keeps. Zero fields take the defaults.
type BuilderOptions struct {
	// MaxPairs is the most distinct rune bigrams counted at once
	// (default 1<<20, about 40 MB); when full, the rarest are dropped.
	MaxPairs int
	// MaxWords is the most distinct words counted at once (default 1<<20).
	MaxWords int
	// LexiconSize is the most words a built model's lexicon holds
	// (default 100,000).
	LexiconSize int
	// BigramBits sets the built bigram table to 1<<BigramBits slots
	// (default 17).
	BigramBits uint8
	// MinCount is how often a bigram or word must have been seen to count
	// as natural (default 3): token soup mixed into a corpus makes mostly
	// bigrams and words seen once.
	MinCount int
}

func (o BuilderOptions) withDefaults() BuilderOptions {
	if o.MaxPairs <= 0 {
		o.MaxPairs = 1 << 20
	}
	if o.MaxWords <= 0 {
		o.MaxWords = 1 << 20
	}
	if o.LexiconSize <= 0 {
		o.LexiconSize = 100_000
	}
	if o.BigramBits == 0 {
		o.BigramBits = 17
	}
	o.BigramBits = min(max(o.BigramBits, 8), maxBiBits)
	if o.MinCount <= 0 {
		o.MinCount = 3
	}
	return o
}

// Builder counts the rune bigrams and words of a corpus, in bounded
// memory, to build or adapt a Model from it. A Builder is not safe for
// concurrent use; give each goroutine its own and Merge them.
type Builder struct {
	opts  BuilderOptions
	pairs map[uint64]uint32
	words map[uint64]uint32
	runes map[rune]uint64
	total uint64
	bytes int64
	// floor is what was pruned away: counts at or below it are uncertain.
	pairFloor, wordFloor uint32
	lx                   lexer
}

// NewBuilder returns an empty Builder.
func NewBuilder(opts BuilderOptions) *Builder {
	b := &Builder{
		opts:  opts.withDefaults(),
		pairs: map[uint64]uint32{},
		words: map[uint64]uint32{},
		runes: map[rune]uint64{},
	}
	b.lx.b = b
	b.lx.reset()
	return b
}

// Add counts text (one document; units do not run across calls).
func (b *Builder) Add(text string) {
	b.bytes += int64(len(text))
	b.lx.reset()
	feed(&b.lx, text, 0)
	b.lx.flush(len(text))
}

// Bytes is how much text was added.
func (b *Builder) Bytes() int64 { return b.bytes }

func (b *Builder) countPair(a, c rune) {
	b.pairs[uint64(a)<<32|uint64(c)]++
	b.runes[c]++
	b.total++
	if len(b.pairs) > b.opts.MaxPairs {
		b.pairFloor = prune(b.pairs, b.opts.MaxPairs, b.pairFloor)
	}
}

func (b *Builder) countWord(h uint64) {
	b.words[h]++
	if len(b.words) > b.opts.MaxWords {
		b.wordFloor = prune(b.words, b.opts.MaxWords, b.wordFloor)
	}
}

// prune drops the entries with the lowest counts until at most 3/4 of max
// remain, and returns the highest count dropped.
func prune(m map[uint64]uint32, limit int, floor uint32) uint32 {
	t := max(floor, 1)
	for len(m) > limit*3/4 {
		for k, v := range m {
			if v <= t {
				delete(m, k)
			}
		}
		floor = t
		t *= 2
	}
	return floor
}

// Merge adds the counts of o to b.
func (b *Builder) Merge(o *Builder) {
	for k, v := range o.pairs {
		b.pairs[k] += v
	}
	for k, v := range o.words {
		b.words[k] += v
	}
	for k, v := range o.runes {
		b.runes[k] += v
	}
	b.total += o.total
	b.bytes += o.bytes
	b.pairFloor = max(b.pairFloor, o.pairFloor)
	b.wordFloor = max(b.wordFloor, o.wordFloor)
	if len(b.pairs) > b.opts.MaxPairs {
		b.pairFloor = prune(b.pairs, b.opts.MaxPairs, b.pairFloor)
	}
	if len(b.words) > b.opts.MaxWords {
		b.wordFloor = prune(b.words, b.opts.MaxWords, b.wordFloor)
	}
}

// Model builds a model from the counts, with the weights and calibration
// of base (nil: all zero, for Fit to set).
func (b *Builder) Model(base *Model) *Model {
	m := &Model{biBits: b.opts.BigramBits, turnMin: 24, scale: 1}
	if base != nil {
		m.weights, m.bias, m.mid, m.scale, m.turnMin = base.weights, base.bias, base.mid, base.scale, base.turnMin
	}
	minCount := uint32(b.opts.MinCount)
	// Unigrams.
	const beta = 2.0
	n := float64(b.total)
	v := float64(len(b.runes))
	uni := make(map[rune]uint8, len(b.runes))
	for r, c := range b.runes {
		if uint32(min(c, math.MaxUint32)) < minCount {
			continue
		}
		uni[r] = quant((float64(c) + 0.5) / (n + 0.5*v + 1))
	}
	m.uniMiss = quant(0.5 / (n + 0.5*v + 1))
	m.setUnigrams(uni)
	// Bigrams: context totals, then the most frequent pairs into the table.
	ctx := map[rune]uint64{}
	type pc struct {
		k uint64
		c uint32
	}
	var kept []pc
	for k, c := range b.pairs {
		ctx[rune(k>>32)] += uint64(c)
		if c >= minCount {
			kept = append(kept, pc{k, c})
		}
	}
	slices.SortFunc(kept, func(x, y pc) int { return cmp.Or(cmp.Compare(y.c, x.c), cmp.Compare(x.k, y.k)) })
	size := 1 << m.biBits
	kept = kept[:min(len(kept), size*7/10)]
	m.bi = make([]uint16, size)
	mask := uint32(size - 1)
	for _, p := range kept {
		a, c := rune(p.k>>32), rune(p.k&0xffffffff)
		pu := (float64(b.runes[c]) + 0.5) / (n + 0.5*v + 1)
		q := quant((float64(p.c) + beta*pu) / (float64(ctx[a]) + beta))
		h := pairHash(a, c)
		fp := uint16(h>>24) | 1
		i := h & mask
		for m.bi[i] != 0 {
			i = (i + 1) & mask
		}
		m.bi[i] = fp<<8 | uint16(q)
	}
	// Lexicon: the most frequent words.
	var ws []pc
	for k, c := range b.words {
		if c >= minCount {
			ws = append(ws, pc{k, c})
		}
	}
	slices.SortFunc(ws, func(x, y pc) int { return cmp.Or(cmp.Compare(y.c, x.c), cmp.Compare(x.k, y.k)) })
	ws = ws[:min(len(ws), b.opts.LexiconSize)]
	keys := make([]uint32, len(ws))
	for i, w := range ws {
		keys[i] = uint32(w.k>>32) | 1
	}
	m.setLexicon(keys)
	return m
}

// Adapt returns a copy of m that also consults the tables built from b: a
// bigram or word counts as natural if either model knows it (the smaller
// surprisal, the better rank wins). Text common in the corpus but foreign
// to m (another language, a domain's jargon) then scores as natural,
// while token soup, whose bigrams and words recur rarely, does not.
func (m *Model) Adapt(b *Builder) *Model {
	c := *m
	c.adapt = b.Model(nil)
	return &c
}

// quant turns a probability into surprisal in 1/qStep bits, capped at 255.
func quant(p float64) uint8 {
	s := -math.Log2(p) * qStep
	return uint8(min(max(math.Round(s), 0), 255))
}

// feed runs every rune of s through lx; off is the byte offset of s in the
// caller's coordinates.
func feed(lx *lexer, s string, off int) {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			lx.add(rune(c), off+i, 1)
			i++
		} else {
			r, w := utf8.DecodeRuneInString(s[i:])
			lx.add(r, off+i, w)
			i += w
		}
		lx.nq = 0 // counting only: units are discarded
	}
}
