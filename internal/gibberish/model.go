package gibberish

import (
	"bytes"
	"cmp"
	"compress/gzip"
	_ "embed"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"sync"
)

// Model is what the scorer knows about natural text: a rune bigram table,
// a unigram table, a lexicon of frequent words (by rank), and the weights
// and calibration that turn per-unit signals into a score. A Model is
// immutable once built and safe for concurrent use.
type Model struct {
	weights [nFeatures]float32
	bias    float32
	// mid is the mean unit logit at which Score is 0.5; scale stretches
	// the logistic around it.
	mid, scale float32
	// turnMin is the fewest units a turn's soup must span.
	turnMin int32

	biBits  uint8
	bi      []uint16 // fingerprint<<8 | quantized surprisal (1/8 bit)
	uniKeys []uint32 // open addressing, 0 = empty; rune+1
	uniVals []uint8
	uniMiss uint8 // surprisal of a rune never seen (1/8 bit)
	lexKeys []uint32
	lexSur  []float32 // log2(rank+2)
	lexList []uint32  // the keys in rank order, as serialised

	// adapt, when set, is a second set of tables (from the corpus being
	// scanned) that may only make text look more natural.
	adapt *Model
}

// Quantisation of surprisal: 1/8 bit per step.
const (
	qStep      = 8
	unseenPair = 3 * qStep // extra bits for a bigram never seen
)

//go:embed model.bin.gz
var defaultModelGz []byte

var defaultModel = sync.OnceValues(func() (*Model, error) {
	zr, err := gzip.NewReader(bytes.NewReader(defaultModelGz))
	if err != nil {
		return nil, err
	}
	data, err := io.ReadAll(io.LimitReader(zr, 64<<20))
	if err != nil {
		return nil, err
	}
	return Load(data)
})

// Default returns the embedded reference model (English, Japanese and
// source code, built from text Debian ships; see internal/gen). It is
// loaded once and shared.
func Default() *Model {
	m, err := defaultModel()
	if err != nil {
		panic(fmt.Sprintf("gibberish: embedded model: %v", err)) // tested; cannot happen
	}
	return m
}

func pairHash(a, b rune) uint32 {
	h := (uint64(a)*0x9E3779B97F4A7C15 ^ uint64(b)) * 0xC2B2AE3D27D4EB4F
	return uint32(h >> 32)
}

// bigram returns the surprisal of b after a, in 1/8 bits.
func (m *Model) bigram(a, b rune) uint8 {
	v := m.bigramOwn(a, b)
	if m.adapt != nil {
		if w := m.adapt.bigramOwn(a, b); w < v {
			v = w
		}
	}
	return v
}

func (m *Model) bigramOwn(a, b rune) uint8 {
	h := pairHash(a, b)
	mask := uint32(len(m.bi) - 1)
	fp := uint16(h>>24) | 1 // never 0: 0 marks an empty slot
	i := h & mask
	for range 4 {
		e := m.bi[i]
		if e == 0 {
			break
		}
		if e>>8 == fp {
			return uint8(e)
		}
		i = (i + 1) & mask
	}
	u := int(m.unigram(b)) + unseenPair
	return uint8(min(u, 255))
}

func (m *Model) unigram(r rune) uint8 {
	k := uint32(r) + 1
	mask := uint32(len(m.uniKeys) - 1)
	i := (k * 0x9E3779B1) >> 7 & mask
	for {
		switch m.uniKeys[i] {
		case k:
			return m.uniVals[i]
		case 0:
			return m.uniMiss
		}
		i = (i + 1) & mask
	}
}

// word returns the surprisal (bits, from its lexicon rank) of a word
// part's hash.
func (m *Model) word(h uint64) (float32, bool) {
	r, ok := m.wordOwn(h)
	if m.adapt != nil {
		if r2, ok2 := m.adapt.wordOwn(h); ok2 && (!ok || r2 < r) {
			return r2, true
		}
	}
	return r, ok
}

func (m *Model) wordOwn(h uint64) (float32, bool) {
	if len(m.lexKeys) == 0 {
		return 0, false
	}
	k := uint32(h>>32) | 1
	mask := uint32(len(m.lexKeys) - 1)
	i := lexSlot(k) & mask
	for {
		switch m.lexKeys[i] {
		case k:
			return m.lexSur[i], true
		case 0:
			return 0, false
		}
		i = (i + 1) & mask
	}
}

// The serialised form (little endian):
//
//	"LFGB" u32 version
//	u32 nFeatures, f32 weights[nFeatures], f32 bias, f32 mid, f32 scale, i32 turnMin
//	u8 biBits, u16 bi[1<<biBits]
//	u8 uniMiss, u32 nUni, nUni × (u32 rune, u8 surprisal)
//	u32 nLex, nLex × u32 key (in rank order)
const (
	magic         = "LFGB"
	formatVersion = 1
	maxBiBits     = 22
	maxUni        = 1 << 20
	maxLex        = 1 << 22
)

// MarshalBinary serialises the model's own tables (not an adaptation).
func (m *Model) MarshalBinary() ([]byte, error) {
	var b bytes.Buffer
	w := func(v any) { binary.Write(&b, binary.LittleEndian, v) }
	b.WriteString(magic)
	w(uint32(formatVersion))
	w(uint32(nFeatures))
	w(m.weights)
	w(m.bias)
	w(m.mid)
	w(m.scale)
	w(m.turnMin)
	b.WriteByte(m.biBits)
	w(m.bi)
	b.WriteByte(m.uniMiss)
	type kv struct {
		k uint32
		v uint8
	}
	var uni []kv
	for i, k := range m.uniKeys {
		if k != 0 {
			uni = append(uni, kv{k - 1, m.uniVals[i]})
		}
	}
	slices.SortFunc(uni, func(a, b kv) int { return cmp.Compare(a.k, b.k) })
	w(uint32(len(uni)))
	for _, e := range uni {
		w(e.k)
		b.WriteByte(e.v)
	}
	w(uint32(len(m.lexList)))
	w(m.lexList)
	return b.Bytes(), nil
}

// ErrFormat is returned by Load for data that is not a model.
var ErrFormat = errors.New("gibberish: not a model")

// Load reads a model written by MarshalBinary. Every count is checked
// against the data.
func Load(data []byte) (*Model, error) {
	r := bytes.NewReader(data)
	rd := func(v any) error { return binary.Read(r, binary.LittleEndian, v) }
	head := make([]byte, 4)
	if _, err := io.ReadFull(r, head); err != nil || string(head) != magic {
		return nil, ErrFormat
	}
	var ver, nf uint32
	if rd(&ver) != nil || ver != formatVersion {
		return nil, fmt.Errorf("%w: version %d", ErrFormat, ver)
	}
	if rd(&nf) != nil || nf != nFeatures {
		return nil, fmt.Errorf("%w: %d features, want %d", ErrFormat, nf, nFeatures)
	}
	m := &Model{}
	if err := errors.Join(rd(&m.weights), rd(&m.bias), rd(&m.mid), rd(&m.scale), rd(&m.turnMin), rd(&m.biBits)); err != nil {
		return nil, fmt.Errorf("%w: truncated header", ErrFormat)
	}
	for _, v := range append(m.weights[:], m.bias, m.mid, m.scale) {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return nil, fmt.Errorf("%w: weights are not finite", ErrFormat)
		}
	}
	if m.biBits < 4 || m.biBits > maxBiBits || m.turnMin < 1 || m.scale <= 0 {
		return nil, fmt.Errorf("%w: bad parameters", ErrFormat)
	}
	if r.Len() < 2<<m.biBits {
		return nil, fmt.Errorf("%w: truncated bigram table", ErrFormat)
	}
	m.bi = make([]uint16, 1<<m.biBits)
	if rd(m.bi) != nil {
		return nil, fmt.Errorf("%w: truncated bigram table", ErrFormat)
	}
	var nUni uint32
	if rd(&m.uniMiss) != nil || rd(&nUni) != nil || nUni > maxUni || int64(nUni)*5 > int64(r.Len()) {
		return nil, fmt.Errorf("%w: bad unigram table", ErrFormat)
	}
	uni := make(map[rune]uint8, nUni)
	for range nUni {
		var k uint32
		var v uint8
		if rd(&k) != nil || rd(&v) != nil || k > 0x10ffff {
			return nil, fmt.Errorf("%w: bad unigram entry", ErrFormat)
		}
		uni[rune(k)] = v
	}
	m.setUnigrams(uni)
	var nLex uint32
	if rd(&nLex) != nil || nLex > maxLex || int64(nLex)*4 > int64(r.Len()) {
		return nil, fmt.Errorf("%w: bad lexicon", ErrFormat)
	}
	keys := make([]uint32, nLex)
	if rd(keys) != nil {
		return nil, fmt.Errorf("%w: truncated lexicon", ErrFormat)
	}
	m.setLexicon(keys)
	if r.Len() != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrFormat, r.Len())
	}
	return m, nil
}

func (m *Model) setUnigrams(uni map[rune]uint8) {
	size := 16
	for size < 2*len(uni)+1 {
		size <<= 1
	}
	m.uniKeys = make([]uint32, size)
	m.uniVals = make([]uint8, size)
	mask := uint32(size - 1)
	for r, v := range uni {
		k := uint32(r) + 1
		i := (k * 0x9E3779B1) >> 7 & mask
		for m.uniKeys[i] != 0 {
			i = (i + 1) & mask
		}
		m.uniKeys[i], m.uniVals[i] = k, v
	}
}

// setLexicon builds the lexicon table from keys in rank order (a key is
// the high half of a word hash, |1). Duplicates keep the better rank.
func (m *Model) setLexicon(keys []uint32) {
	size := 16
	for size < 2*len(keys)+1 {
		size <<= 1
	}
	m.lexKeys = make([]uint32, size)
	m.lexSur = make([]float32, size)
	m.lexList = keys
	mask := uint32(size - 1)
	// The table is keyed by the high half of the word hash alone (the
	// serialised form keeps only that), and probing starts from a mix of
	// it.
	for rank, k := range keys {
		k |= 1
		i := lexSlot(k) & mask
		for m.lexKeys[i] != 0 && m.lexKeys[i] != k {
			i = (i + 1) & mask
		}
		if m.lexKeys[i] == 0 {
			m.lexKeys[i], m.lexSur[i] = k, float32(math.Log2(float64(rank)+2))
		}
	}
}

func lexSlot(k uint32) uint32 { return k * 0x9E3779B1 >> 5 }
