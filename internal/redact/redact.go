package redact

import (
	"cmp"
	"slices"
	"sort"
	"strings"
)

// Redactor replaces personal data and secrets in text with
// [REDACTED:<label>] markers. It is immutable after New and safe for
// concurrent use.
type Redactor struct {
	version int
	entries []*entry
	// plain runs every regex on the whole text in every pass, without
	// prefilters or chunks: the reference the tests compare against.
	plain bool
	anch  *anchors
}

// Hit counts the replacements one pattern made in one Redact call.
type Hit struct {
	ID    string `json:"id"`
	Count int    `json:"count"`
}

const (
	// maxPasses bounds the passes Redact makes. A pass after the first
	// only finds something when a replacement changed the context of a
	// candidate (see Redact); the bound keeps the cost linear whatever
	// the input.
	maxPasses = 4
)

// New parses the embedded patterns. The error describes bad data (it
// cannot happen with the data this package ships, which its tests check).
func New() (*Redactor, error) {
	return newFromData(patternsYAML)
}

func newFromData(data []byte) (*Redactor, error) {
	v, entries, err := parse(data)
	if err != nil {
		return nil, err
	}
	return &Redactor{version: v, entries: entries, anch: buildAnchors(entries)}, nil
}

// Version is the version of the pattern data; captures record it.
func (r *Redactor) Version() int { return r.version }

// IDs lists the pattern IDs in the order of the data file, which is also
// their precedence when two patterns redact exactly the same text.
func (r *Redactor) IDs() []string {
	out := make([]string, len(r.entries))
	for i, e := range r.entries {
		out[i] = e.ID
	}
	return out
}

// only returns a Redactor with just the named pattern (tests: every entry
// is testable alone), or nil.
func (r *Redactor) only(id string) *Redactor {
	for _, e := range r.entries {
		if e.ID == id {
			return &Redactor{version: r.version, entries: []*entry{e}, plain: r.plain, anch: buildAnchors([]*entry{e})}
		}
	}
	return nil
}

// span is one candidate replacement: s[start:end] by entries[entry].
type span struct{ start, end, entry int }

// Redact returns s with every match replaced by its entry's marker, and
// the number of replacements per pattern ID, sorted by ID (nil when
// nothing was replaced).
//
// Overlaps are settled the same way every time: of candidates that
// overlap, the one that starts first wins, then the longest, then the
// earlier entry in the data file. So a PEM block or a JWT is replaced
// whole and nothing inside it is redacted again. A candidate that a
// validator rejected (a 16-digit number that fails the Luhn check, say)
// keeps other patterns from redacting a part of it. Markers already in the
// text are never matched into.
//
// Redact repeats until a pass changes nothing (at most maxPasses passes),
// because a replacement can uncover a candidate that an overlapping one
// hid; so Redact(Redact(s)) == Redact(s). Passes after the first look only
// at the lines that changed.
func (r *Redactor) Redact(s string) (string, []Hit) {
	var (
		counts []int
		dirty  []region // nil: the whole text
	)
	for pass := range maxPasses {
		var spans []span
		if r.plain {
			spans = r.find(s, []region{{0, len(s)}}, false)
		} else if pass == 0 {
			spans = r.find(s, []region{{0, len(s)}}, true)
		} else {
			spans = r.find(s, dirty, true)
		}
		if len(spans) == 0 {
			break
		}
		if counts == nil {
			counts = make([]int, len(r.entries))
		}
		var b strings.Builder
		b.Grow(len(s))
		last := 0
		placed := make([]region, 0, len(spans))
		for _, sp := range spans {
			b.WriteString(s[last:sp.start])
			start := b.Len()
			b.WriteString(r.entries[sp.entry].marker)
			placed = append(placed, region{start, b.Len()})
			last = sp.end
			counts[sp.entry]++
		}
		b.WriteString(s[last:])
		s = b.String()
		dirty = linesAround(s, placed)
	}
	if counts == nil {
		return s, nil
	}
	var hits []Hit
	for i, n := range counts {
		if n > 0 {
			hits = append(hits, Hit{ID: r.entries[i].ID, Count: n})
		}
	}
	slices.SortFunc(hits, func(a, b Hit) int { return strings.Compare(a.ID, b.ID) })
	return s, hits
}

// region is a byte range [start, end) of the text.
type region struct{ start, end int }

// linesAround returns the whole lines holding the given (sorted) ranges,
// merged.
func linesAround(s string, rs []region) []region {
	var out []region
	for _, r := range rs {
		start := strings.LastIndexByte(s[:r.start], '\n') + 1
		end := len(s)
		if i := strings.IndexByte(s[r.end:], '\n'); i >= 0 {
			end = r.end + i + 1
		}
		if n := len(out); n > 0 && start <= out[n-1].end {
			out[n-1].end = max(out[n-1].end, end)
			continue
		}
		out = append(out, region{start, end})
	}
	return out
}

// countClass maps a byte to its counted class + 1 (0: none).
var countClass = func() (t [256]uint8) {
	for c := '0'; c <= '9'; c++ {
		t[c] = 1
	}
	t[':'], t['.'], t['-'] = 2, 3, 4
	return t
}()

// passes reports whether text whose bytes are present (and, folded, is
// folded; "" when keywords cannot be checked) may hold a match of e.
func (e *entry) passes(present byteSet, counts *[nCounted]int, folded string, checkKeywords bool) bool {
	if counts != nil {
		for i, n := range counts {
			if n < e.minCount[i] {
				return false
			}
		}
	}
	for _, need := range e.need {
		if !need.meets(present) {
			return false
		}
	}
	return !checkKeywords || len(e.Keywords) == 0 || containsAny(folded, e.Keywords)
}

// find returns the spans one pass replaces: non-overlapping, in order.
// Line-local entries look only at the regions (whole lines); the others at
// the whole text. With prefilter, each regex runs only on the runs of its
// alphabet that hold one of its anchors (see anchor.go); without, on the
// whole text.
func (r *Redactor) find(s string, regions []region, prefilter bool) []span {
	var (
		cands  []span
		blocks []span // candidates a validator rejected
	)
	// scan runs entry i on s[a:b].
	// add records a match of entry i found in s[a:] (m: its indexes,
	// with submatches when the entry has value groups).
	add := func(i, a int, m []int) {
		e := r.entries[i]
		start, end := m[0], m[1]
		for _, g := range e.valueGroups {
			if m[2*g] >= 0 {
				start, end = m[2*g], m[2*g+1]
				break
			}
		}
		start, end = a+start, a+end
		if start >= end {
			return
		}
		if e.validate != nil && !e.validate(s[start:end]) {
			blocks = append(blocks, span{start, end, i})
			return
		}
		cands = append(cands, span{start, end, i})
	}
	// scan runs entry i on s[a:b].
	scan := func(i, a, b int) {
		e := r.entries[i]
		if len(e.valueGroups) == 0 {
			for _, m := range e.re.FindAllStringIndex(s[a:b], -1) {
				add(i, a, m)
			}
			return
		}
		for _, m := range e.re.FindAllStringSubmatchIndex(s[a:b], -1) {
			add(i, a, m)
		}
	}

	if !prefilter {
		for i := range r.entries {
			scan(i, 0, len(s))
		}
	} else {
		// Keywords are compared with the text folded to ASCII lower case.
		// The two non-ASCII letters that (?i) folds onto ASCII would be
		// missed: with either in the text, entries with keywords are
		// anchored on the bytes they need instead.
		checkKeywords := !strings.Contains(s, "\u017f") && !strings.Contains(s, "\u212a")
		r.anchoredRuns(s, regions, checkKeywords, scan, add)
		// Entries a run cannot serve (none in the shipped data; the
		// parser allows them): the regions, or the whole text, when they
		// hold what a match needs.
		for i, e := range r.entries {
			if e.runs {
				continue
			}
			if e.lineLocal {
				for _, rg := range regions {
					t := s[rg.start:rg.end]
					if e.passes(bytesOf(t), nil, asciiLower(t), checkKeywords) {
						scan(i, rg.start, rg.end)
					}
				}
			} else if e.passes(bytesOf(s), nil, asciiLower(s), checkKeywords) {
				scan(i, 0, len(s))
			}
		}
	}
	if len(cands) == 0 {
		return nil
	}
	slices.SortFunc(cands, func(a, b span) int {
		return cmp.Or(cmp.Compare(a.start, b.start), cmp.Compare(b.end-b.start, a.end-a.start), cmp.Compare(a.entry, b.entry))
	})
	var markers [][]int
	if strings.Contains(s, markerPrefix) {
		markers = markerRE.FindAllStringIndex(s, -1)
	}
	// blockEnd[i]: the furthest end among blocks[:i+1], blocks sorted by
	// start; a candidate lies inside some block when the furthest end of
	// the blocks starting at or before it reaches its end.
	slices.SortFunc(blocks, func(a, b span) int { return cmp.Compare(a.start, b.start) })
	blockEnd := make([]int, len(blocks))
	for i, b := range blocks {
		blockEnd[i] = b.end
		if i > 0 {
			blockEnd[i] = max(blockEnd[i], blockEnd[i-1])
		}
	}
	out := cands[:0]
	lastEnd := 0
	for _, c := range cands {
		if c.start < lastEnd || overlapsMarker(markers, c) {
			continue
		}
		if n := sort.Search(len(blocks), func(i int) bool { return blocks[i].start > c.start }); n > 0 && blockEnd[n-1] >= c.end {
			continue
		}
		out = append(out, c)
		lastEnd = c.end
	}
	return out
}

// overlapsMarker reports whether c overlaps one of the markers (sorted,
// non-overlapping [start, end) pairs).
func overlapsMarker(markers [][]int, c span) bool {
	i := sort.Search(len(markers), func(i int) bool { return markers[i][1] > c.start })
	return i < len(markers) && markers[i][0] < c.end
}

func containsAny(s string, subs []string) bool {
	for _, k := range subs {
		if strings.Contains(s, k) {
			return true
		}
	}
	return false
}

// asciiLower lower-cases the ASCII letters of s and keeps every other
// byte, so offsets in the result are offsets in s.
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}
