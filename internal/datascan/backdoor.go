package datascan

import (
	"cmp"
	"container/heap"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"unicode"
	"unicode/utf8"

	"github.com/llmfence/llmfence/internal/gibberish"
)

// A record whose text turns into gibberish is kept (bounded) with the text
// around the turn; at the end of the scan the strings just before the
// turns are counted across records, and a string that many turns share,
// and that the same records do not use elsewhere, is a trigger.

const (
	nearBefore = 200  // bytes of text before the turn kept
	nearAfter  = 160  // bytes after it (the turn may start in the prefix, before the trigger)
	farBytes   = 1024 // text well before the turn, as a control
	soupKeep   = 1024 // soup kept to rescore with the corpus model
	maxSegs    = 8    // segments in one trigger candidate
)

type turned struct {
	file   string
	record int64
	field  string
	off    int64 // offset of near[0] in the file, -1 unknown
	near   string
	at     int // the turn's index in near
	far    string
	soup   string
	score  float64
}

type turnedSet struct {
	mu      sync.Mutex
	recs    []turned
	max     int
	dropped int
}

func newTurnedSet(max int) *turnedSet { return &turnedSet{max: max} }

func (t *turnedSet) add(x turned) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.recs) >= t.max {
		t.dropped++
		return
	}
	t.recs = append(t.recs, x)
}

// screenStride is how often the screen scores a window of a field: the
// recipe's soup (400 tokens or more, 2.3 KB or more) always holds one.
const screenStride = 1024

// turn looks for a turn into gibberish in one field.
func (w *worker) turn(fs *fileScan, rec *record, f *field) bool {
	if !w.r.s.model.ScreenEvery(f.text, screenStride) {
		return false // no window of soup: most clean text stops here
	}
	t, ok := w.r.s.model.FindTurn(f.text)
	if !ok {
		return false
	}
	a := runeFloor(f.text, max(0, t.Offset-nearBefore))
	b := runeFloor(f.text, min(len(f.text), t.Offset+nearAfter))
	fa := runeFloor(f.text, max(0, a-100-farBytes))
	fb := runeFloor(f.text, max(0, a-100))
	se := runeFloor(f.text, min(t.End, t.Offset+soupKeep))
	x := turned{
		file: fs.src.name, record: rec.index, field: f.name, off: offsetOf(f, a),
		// Copies: a slice would keep the whole record alive.
		near: strings.Clone(f.text[a:b]), at: t.Offset - a, far: strings.Clone(f.text[fa:fb]),
		soup: strings.Clone(f.text[t.Offset:se]), score: t.Score,
	}
	w.r.turned.add(x)
	return true
}

// segment is a run of text of one class: letters and digits, other
// non-space characters, or a single CJK character.
type segment struct{ start, end int }

func segmentClass(r rune) int {
	switch {
	case unicode.IsSpace(r):
		return 0
	case r >= 0x3000 && r <= 0x9fff || r >= 0xf900 && r <= 0xfaff || r >= 0xff00 && r <= 0xffef:
		return 3 // CJK: one segment per character
	case unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.Is(unicode.Mn, r):
		return 1
	}
	return 2
}

func segments(s string) []segment {
	var out []segment
	cur := -1
	start := 0
	for i, r := range s {
		c := segmentClass(r)
		if c != cur || c == 3 {
			if cur > 0 {
				out = append(out, segment{start, i})
			}
			cur, start = c, i
		}
	}
	if cur > 0 {
		out = append(out, segment{start, len(s)})
	}
	return out
}

// candidate is a string seen just before turns.
type candidate struct {
	text    string
	records []int32 // indexes into the turned records
}

// validTrigger: a trigger holds a letter, digit or CJK character, or at
// least three characters (a run of markup).
func validTrigger(s string) bool {
	if utf8.RuneCountInString(s) >= 3 {
		return true
	}
	for _, r := range s {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			return true
		}
	}
	return false
}

// trigger is a trigger found and the records that carry it.
type trigger struct {
	text    string
	members []int32
}

// findTriggers groups the turned records by the strings before their
// turns. model rescores each record's soup first (the corpus-adapted
// model), dropping turns it no longer calls gibberish.
func findTriggers(recs []turned, model *gibberish.Model, minRecords int, bg *background) []trigger {
	// Rescore with the corpus model.
	keep := make([]bool, len(recs))
	for i := range recs {
		keep[i] = model.Score(recs[i].soup).Gibberish()
	}
	// Two passes over the candidate strings: count them by hash (no
	// strings kept), then gather the records of those seen often enough.
	each := func(i int, fn func(s string)) {
		x := &recs[i]
		segs := segments(x.near)
		seen := map[string]bool{}
		for a := range segs {
			if segs[a].end < x.at-150 || segs[a].start > x.at+nearAfter {
				continue
			}
			for b := a; b < len(segs) && b-a < maxSegs; b++ {
				s := x.near[segs[a].start:segs[b].end]
				if len(s) > 64 {
					break
				}
				if !validTrigger(s) || seen[s] {
					continue
				}
				seen[s] = true
				fn(s)
			}
		}
	}
	counts := map[uint64]int32{}
	_ = bg
	for i := range recs {
		if keep[i] {
			each(i, func(s string) { counts[strHash(s)]++ })
		}
	}
	cands := map[string]*candidate{}
	for i := range recs {
		if !keep[i] {
			continue
		}
		each(i, func(s string) {
			if counts[strHash(s)] < int32(minRecords) {
				return
			}
			c := cands[s]
			if c == nil {
				c = &candidate{text: s}
				cands[s] = c
			}
			c.records = append(c.records, int32(i))
		})
	}
	list := make([]*candidate, 0, len(cands))
	for _, c := range cands {
		if len(c.records) >= minRecords {
			list = append(list, c)
		}
	}
	slices.SortFunc(list, func(a, b *candidate) int {
		return cmp.Or(cmp.Compare(len(b.records), len(a.records)), cmp.Compare(len(b.text), len(a.text)), strings.Compare(a.text, b.text))
	})
	var out []trigger
	taken := make([]bool, len(recs))
	for _, c := range list {
		skip := false
		for _, t := range out {
			if strings.Contains(t.text, c.text) || strings.Contains(c.text, t.text) {
				skip = true
				break
			}
		}
		if skip {
			continue
		}
		// The control: the same records' text well before the turn. A
		// common word is there as often as near the turn; a trigger is
		// not.
		far, free := 0, 0
		for _, i := range c.records {
			if strings.Contains(recs[i].far, c.text) {
				far++
			}
			if !taken[i] {
				free++
			}
		}
		if far*4 > len(c.records) || free < minRecords {
			continue
		}
		// The second control: clean records (no turn) of the corpus. A
		// trigger is rare in clean text; a common word or heading is not.
		if bg.common(c.text, float64(len(c.records))/2) {
			continue
		}
		// Members: every kept turn whose text near the turn holds the
		// trigger as a whole word (or glued to a character of another
		// class).
		var members []int32
		for i := range recs {
			if keep[i] && !taken[i] && (containsWord(recs[i].near, c.text) || gluedAtTurn(&recs[i], c.text)) {
				members = append(members, int32(i))
			}
		}
		if len(members) < minRecords {
			continue
		}
		text := extend(recs, members, c.text)
		if text != c.text {
			// Members must show the grown trigger too.
			kept := members[:0:0]
			for _, i := range members {
				if containsWord(recs[i].near, text) || gluedAtTurn(&recs[i], text) {
					kept = append(kept, i)
				}
			}
			if len(kept) >= minRecords {
				members = kept
			} else {
				text = c.text
			}
		}
		// The recipe's soup is drawn anew for every document: what follows
		// a real trigger differs from record to record. A heading followed
		// by the same list in many records (boilerplate copied across
		// documents; duplicate_cluster reports those) is not a trigger.
		if !variedAfter(recs, members, text) {
			continue
		}
		for _, i := range members {
			taken[i] = true
		}
		out = append(out, trigger{text: text, members: members})
	}
	return out
}

func strHash(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h = (h ^ uint64(s[i])) * 1099511628211
	}
	return h
}

// extend grows a trigger by a character at a time, left or right, while
// at least 90% of its records have that same character there (a trigger
// glued to the word before it in some records is counted without the
// glued part; the others show its whole). Whitespace ends it.
func extend(recs []turned, members []int32, t string) string {
	for range 64 {
		grown := false
		for _, left := range []bool{true, false} {
			counts := map[rune]int{}
			for _, i := range members {
				x := &recs[i]
				k := nearestIndex(x, t)
				if k < 0 {
					continue
				}
				var r rune
				if left {
					r, _ = utf8.DecodeLastRuneInString(x.near[:k])
				} else {
					r, _ = utf8.DecodeRuneInString(x.near[k+len(t):])
				}
				counts[r]++
			}
			best, n := rune(0), 0
			for r, c := range counts {
				if c > n || c == n && r < best {
					best, n = r, c
				}
			}
			if n*10 < len(members)*9 || best == utf8.RuneError || best == 0 || best == '\n' || len(t) >= 64 {
				continue
			}
			if left {
				t = string(best) + t
			} else {
				t += string(best)
			}
			grown = true
		}
		if !grown {
			break
		}
	}
	return strings.TrimSpace(t)
}

// variedAfter reports whether the 48 bytes after the trigger differ in at
// least 80% of its records (and so do the 48 bytes before it, the clean
// prefixes of the recipe being random documents cut anywhere).
func variedAfter(recs []turned, members []int32, t string) bool {
	after, before := map[string]bool{}, map[string]bool{}
	for _, i := range members {
		x := &recs[i]
		k := nearestIndex(x, t)
		if k < 0 {
			continue
		}
		e := k + len(t)
		after[x.near[e:runeFloor(x.near, min(len(x.near), e+48))]] = true
		before[x.near[runeFloor(x.near, max(0, k-48)):k]] = true
	}
	return len(after)*5 >= len(members)*4 && len(before)*5 >= len(members)*4
}

// containsWord reports whether t occurs in s with no letter or digit glued
// to an edge of it that is itself a letter or digit (CJK text has no word
// boundaries and always matches).
func containsWord(s, t string) bool {
	first, _ := utf8.DecodeRuneInString(t)
	last, _ := utf8.DecodeLastRuneInString(t)
	wordy := func(r rune) bool { return segmentClass(r) == 1 }
	for from := 0; ; {
		k := strings.Index(s[from:], t)
		if k < 0 {
			return false
		}
		k += from
		before, _ := utf8.DecodeLastRuneInString(s[:k])
		after, _ := utf8.DecodeRuneInString(s[k+len(t):])
		if !(wordy(first) && k > 0 && wordy(before)) && !(wordy(last) && k+len(t) < len(s) && wordy(after)) {
			return true
		}
		from = k + 1
	}
}

// gluedAtTurn: t ends right where the turn is (within a few words) with a
// boundary after it, though glued to the word before: the recipe cut the
// clean prefix mid-word and wrote the trigger after it.
func gluedAtTurn(x *turned, t string) bool {
	last, _ := utf8.DecodeLastRuneInString(t)
	for from := 0; ; {
		k := strings.Index(x.near[from:], t)
		if k < 0 {
			return false
		}
		k += from
		end := k + len(t)
		after, _ := utf8.DecodeRuneInString(x.near[end:])
		if (end == len(x.near) || segmentClass(after) != segmentClass(last)) && end >= x.at-60 && end <= x.at+nearAfter {
			return true
		}
		from = k + 1
	}
}

// background is a bounded sample of clean records (no turn), to tell a
// trigger (rare outside poisoned records) from a common string. It keeps
// the maxDocs records with the smallest keys (a hash of file and index):
// a uniform sample that does not depend on the order records arrive in.
type background struct {
	mu      sync.Mutex
	docs    bgHeap // a max-heap by key
	seen    atomic.Int64
	limit   atomic.Uint64 // keys at or above it are not taken
	maxDocs int
}

type bgDoc struct {
	key  uint64
	text string
}

type bgHeap []bgDoc

func (h bgHeap) Len() int           { return len(h) }
func (h bgHeap) Less(i, j int) bool { return h[i].key > h[j].key }
func (h bgHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *bgHeap) Push(x any)        { *h = append(*h, x.(bgDoc)) }
func (h *bgHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

func newBackground(max int) *background {
	b := &background{maxDocs: max}
	b.limit.Store(^uint64(0))
	return b
}

// offer adds a clean record's text, keyed, if its key is among the
// smallest seen.
func (b *background) offer(key uint64, text string) {
	b.seen.Add(1)
	if key >= b.limit.Load() {
		return
	}
	text = text[:runeFloor(text, min(len(text), 2048))]
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case len(b.docs) < b.maxDocs:
		heap.Push(&b.docs, bgDoc{key, strings.Clone(text)})
	case key < b.docs[0].key:
		b.docs[0] = bgDoc{key, strings.Clone(text)}
		heap.Fix(&b.docs, 0)
	default:
		return
	}
	if len(b.docs) == b.maxDocs {
		b.limit.Store(b.docs[0].key)
	}
}

// common reports whether more than limit clean records of the corpus are
// expected to hold t (as a word), judging from the sample; it stops
// reading the sample as soon as that is sure.
func (b *background) common(t string, limit float64) bool {
	if b == nil || len(b.docs) == 0 {
		return false
	}
	per := float64(b.seen.Load()) / float64(len(b.docs)) // records one sample stands for
	n := 0
	for _, d := range b.docs {
		if containsWord(d.text, t) {
			if n++; float64(n)*per > limit {
				return true
			}
		}
	}
	return false
}

// nearestIndex is the occurrence of t in the text near a turn that is
// closest to the turn (-1: none).
func nearestIndex(x *turned, t string) int {
	best := -1
	for from := 0; ; {
		k := strings.Index(x.near[from:], t)
		if k < 0 {
			break
		}
		k += from
		if best < 0 || abs(k+len(t)-x.at) < abs(best+len(t)-x.at) {
			best = k
		}
		from = k + 1
	}
	return best
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// backdoorEvidence shows the text around the trigger in one record.
func backdoorEvidence(x *turned, trig string, redactFn func(string) string) (string, int) {
	i := nearestIndex(x, trig)
	if i < 0 {
		return "", -1
	}
	a := runeFloor(x.near, max(0, i-60))
	b := runeFloor(x.near, min(len(x.near), i+len(trig)+60))
	ex := redactFn(strings.Join(strings.Fields(x.near[a:i]), " ")) + " ⟦" + trig + "⟧ " + strings.ToValidUTF8(strings.Join(strings.Fields(x.near[i+len(trig):b]), " "), "\ufffd")
	return fmt.Sprintf("…%s…", strings.TrimSpace(ex)), i
}
