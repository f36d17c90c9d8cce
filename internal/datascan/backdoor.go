package datascan

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"sync"
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
	nearAfter  = 60   // bytes after it
	farBytes   = 1500 // text well before the turn, as a control
	soupKeep   = 2048 // soup kept to rescore with the corpus model
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

// turn looks for a turn into gibberish in one field.
func (w *worker) turn(fs *fileScan, rec *record, f *field) {
	t, ok := w.r.s.model.FindTurn(f.text)
	if !ok {
		return
	}
	a := runeFloor(f.text, max(0, t.Offset-nearBefore))
	b := runeFloor(f.text, min(len(f.text), t.Offset+nearAfter))
	fa := runeFloor(f.text, max(0, a-100-farBytes))
	fb := runeFloor(f.text, max(0, a-100))
	se := runeFloor(f.text, min(t.End, t.Offset+soupKeep))
	x := turned{
		file: fs.src.name, record: rec.index, field: f.name, off: offsetOf(f, a),
		near: f.text[a:b], at: t.Offset - a, far: f.text[fa:fb], soup: f.text[t.Offset:se], score: t.Score,
	}
	w.r.turned.add(x)
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
func findTriggers(recs []turned, model *gibberish.Model, minRecords int) []trigger {
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
		// Members: every kept turn whose text near the turn holds the
		// trigger (also those where it is glued to the word before).
		var members []int32
		for i := range recs {
			if keep[i] && !taken[i] && strings.Contains(recs[i].near, c.text) {
				members = append(members, int32(i))
			}
		}
		if len(members) < minRecords {
			continue
		}
		text := extend(recs, members, c.text)
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
			if n*10 < len(members)*9 || best == utf8.RuneError || unicode.IsSpace(best) || best == 0 || len(t) >= 64 {
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
	return t
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
