package redact

import (
	"math/bits"
	"regexp/syntax"
	"sort"
)

// The prefilter: each regular expression runs only on the stretches of
// text where a match can be, and the result is the same as running it on
// the whole text (TestPrefilterEqualsPlain, FuzzRedact).
//
// Every entry has an alphabet, the bytes a match can contain (derived
// from its regex). A match lies inside one maximal run of alphabet bytes,
// and FindAll on such a run, with one byte of context on each side (so
// that \b, \B and the line anchors see the true neighbours), finds
// exactly the matches FindAll on the whole text finds inside it: no match
// can contain the bytes around the run, so none crosses its edges, and a
// match that starts inside it is chosen by the same leftmost-first rule.
//
// A run is worth running the regex on only if it holds an anchor: for an
// entry with keywords, an occurrence of one of them (every match holds
// one); for the others, a byte of the least common set of bytes every
// match needs (a digit, a dash). One pass over the text finds both kinds
// of anchor, the keywords with an Aho-Corasick automaton over the text
// folded to lower case; each anchor's run is grown from it, checked
// against what a match needs (bytes, counts of digits and separators,
// digits close together), and searched. Most text holds no anchor of
// most entries, and most runs are a few bytes long.

// maxEntries is the most patterns a Redactor holds (a bit each in the
// anchor tables).
const maxEntries = 64

// alphabet returns the bytes a match of re can contain.
func alphabet(re *syntax.Regexp) byteSet {
	var set byteSet
	var walk func(re *syntax.Regexp)
	walk = func(re *syntax.Regexp) {
		switch re.Op {
		case syntax.OpLiteral:
			for _, r := range re.Rune {
				set.addRune(r, re.Flags&syntax.FoldCase != 0)
			}
		case syntax.OpCharClass:
			for i := 0; i+1 < len(re.Rune); i += 2 {
				set.addRange(re.Rune[i], re.Rune[i+1])
			}
		case syntax.OpAnyCharNotNL:
			set.addRange(0, 0x10ffff)
			set[0] &^= 1 << '\n'
		case syntax.OpAnyChar:
			set.addRange(0, 0x10ffff)
		}
		for _, sub := range re.Sub {
			walk(sub)
		}
	}
	walk(re)
	return set
}

// minLen returns the fewest bytes a match of re spans.
func minLen(re *syntax.Regexp) int {
	switch re.Op {
	case syntax.OpLiteral:
		return len(re.Rune) // every rune is at least a byte
	case syntax.OpCharClass, syntax.OpAnyChar, syntax.OpAnyCharNotNL:
		return 1
	case syntax.OpCapture, syntax.OpPlus:
		return minLen(re.Sub[0])
	case syntax.OpRepeat:
		return re.Min * minLen(re.Sub[0])
	case syntax.OpConcat:
		n := 0
		for _, sub := range re.Sub {
			n += minLen(sub)
		}
		return n
	case syntax.OpAlternate:
		n := -1
		for _, sub := range re.Sub {
			if m := minLen(sub); n < 0 || m < n {
				n = m
			}
		}
		return max(n, 0)
	}
	return 0 // star, quest, empty width
}

// usesTextEdges reports whether re asserts the start or end of the whole
// text (\A, \z, or ^ and $ without (?m)), which a run does not share.
func usesTextEdges(re *syntax.Regexp) bool {
	if re.Op == syntax.OpBeginText || re.Op == syntax.OpEndText {
		return true
	}
	for _, sub := range re.Sub {
		if usesTextEdges(sub) {
			return true
		}
	}
	return false
}

// anchorSet picks the least common of the byte sets every match needs
// (nil when there is none: every alphabet byte anchors).
func anchorSet(e *entry) byteSet {
	if len(e.need) == 0 {
		return e.alpha
	}
	best := e.need[0]
	for _, s := range e.need[1:] {
		if s.weight() < best.weight() {
			best = s
		}
	}
	return best
}

// hasOut marks a state of the keyword automaton where keywords end.
const hasOut = 1 << 31

// kwOut is a keyword that ends at an automaton state: its length and the
// entries it anchors.
type kwOut struct {
	n    int
	mask uint64
}

// anchors finds the anchors of every entry in one pass.
type anchors struct {
	// The keyword automaton: input bytes fall into classes (every byte
	// that appears in no keyword is class 0; upper case folds onto lower
	// case). A state is held as its row's offset in next (state*nclass),
	// with hasOut set when keywords end there; next[row+class] is the
	// next state, out[state] the keywords that end there.
	class  [256]uint32
	nclass int
	next   []uint32
	out    [][]kwOut
	// byteAnchor: the entries a byte anchors by itself (one-byte keywords,
	// and the need sets of entries without keywords). foldAnchor is used
	// instead for entries with keywords when the text holds one of the
	// two non-ASCII runes (?i) folds onto ASCII letters (the keywords,
	// compared with ASCII folding, would miss them).
	byteAnchor [256]uint64
	foldAnchor [256]uint64
	// foldAnchorAll is byteAnchor and foldAnchor together.
	foldAnchorAll [256]uint64
}

func buildAnchors(entries []*entry) *anchors {
	a := &anchors{}
	type kw struct {
		s    string
		mask uint64
	}
	var kws []kw
	for i, e := range entries {
		bit := uint64(1) << i
		if !e.runs {
			continue
		}
		if len(e.Keywords) == 0 {
			set := anchorSet(e)
			for b := range 256 {
				if set.has(byte(b)) {
					a.byteAnchor[b] |= bit
				}
			}
			continue
		}
		set := anchorSet(e)
		for b := range 256 {
			if set.has(byte(b)) {
				a.foldAnchor[b] |= bit
			}
		}
		for _, k := range e.Keywords {
			if len(k) == 1 {
				a.byteAnchor[k[0]] |= bit
				if 'a' <= k[0] && k[0] <= 'z' {
					a.byteAnchor[k[0]-'a'+'A'] |= bit
				}
				continue
			}
			kws = append(kws, kw{k, bit})
		}
	}
	// Byte classes.
	for _, k := range kws {
		for i := 0; i < len(k.s); i++ {
			if a.class[k.s[i]] == 0 {
				a.nclass++
				a.class[k.s[i]] = uint32(a.nclass)
			}
		}
	}
	a.nclass++
	for c := 'A'; c <= 'Z'; c++ {
		a.class[c] = a.class[c-'A'+'a']
	}
	// The trie.
	goto_ := [][]int32{make([]int32, a.nclass)}
	outs := [][]kwOut{nil}
	for _, k := range kws {
		st := 0
		for i := 0; i < len(k.s); i++ {
			c := a.class[k.s[i]]
			if goto_[st][c] == 0 {
				goto_ = append(goto_, make([]int32, a.nclass))
				outs = append(outs, nil)
				goto_[st][c] = int32(len(goto_) - 1)
			}
			st = int(goto_[st][c])
		}
		merged := false
		for j := range outs[st] {
			if outs[st][j].n == len(k.s) {
				outs[st][j].mask |= k.mask
				merged = true
			}
		}
		if !merged {
			outs[st] = append(outs[st], kwOut{len(k.s), k.mask})
		}
	}
	// Failure links, breadth first; transitions completed so that next
	// is a plain table.
	fail := make([]int32, len(goto_))
	queue := []int32{}
	for c := range a.nclass {
		if s := goto_[0][c]; s != 0 {
			queue = append(queue, s)
		}
	}
	for len(queue) > 0 {
		st := queue[0]
		queue = queue[1:]
		outs[st] = append(outs[st], outs[fail[st]]...)
		for c := range a.nclass {
			s := goto_[st][c]
			if s == 0 {
				goto_[st][c] = goto_[fail[st]][c]
				continue
			}
			fail[s] = goto_[fail[st]][c]
			queue = append(queue, s)
		}
	}
	a.next = make([]uint32, len(goto_)*a.nclass)
	for st, row := range goto_ {
		for c, s := range row {
			v := uint32(int(s) * a.nclass)
			if len(outs[s]) > 0 {
				v |= hasOut
			}
			a.next[st*a.nclass+c] = v
		}
	}
	a.out = outs
	for b := range 256 {
		a.foldAnchorAll[b] = a.byteAnchor[b] | a.foldAnchor[b]
	}
	return a
}

// runPasses reports whether a run of text may hold a match of e: it has a
// byte of every set e needs, at least as many digits, colons, dots and
// dashes as a match has, and (for a bounded pattern that needs three or
// more digits) that many digits close enough together.
func (e *entry) runPasses(run string) bool {
	var present byteSet
	var counts [nCounted]int
	for i := 0; i < len(run); i++ {
		c := run[i]
		present[c>>6] |= 1 << (c & 63)
		if k := countClass[c]; k > 0 {
			counts[k-1]++
		}
	}
	for i, n := range counts {
		if n < e.minCount[i] {
			return false
		}
	}
	for _, need := range e.need {
		if !need.meets(present) {
			return false
		}
	}
	return e.maxBytes < 0 || e.minCount[0] < 3 || digitWindow(run, e.maxBytes, e.minCount[0])
}

// anchoredRuns calls scan(i, lo, hi) for every run [lo, hi) of entry i's
// alphabet that holds one of its anchors, each run once, in order of
// position per entry. Line-local entries look only inside regions
// (whole lines, sorted); the others at the whole text.
func (r *Redactor) anchoredRuns(s string, regions []region, checkKeywords bool, scan func(i, lo, hi int)) {
	a := r.anch
	ar := anchorRun{r: r, s: s, regions: regions, scan: scan}
	for i := range ar.lo {
		ar.lo[i], ar.hi[i] = -1, -1
	}
	ar.whole = len(regions) == 1 && regions[0].start == 0 && regions[0].end == len(s)
	byteAnchor := &a.byteAnchor
	if !checkKeywords {
		byteAnchor = &a.foldAnchorAll
	}
	next, class := a.next, &a.class
	st := uint32(0)
	for p := 0; p < len(s); p++ {
		c := s[p]
		if checkKeywords {
			st = next[st&^hasOut+class[c]]
			if st&hasOut != 0 {
				for _, o := range a.out[int(st&^hasOut)/a.nclass] {
					for m := o.mask; m != 0; m &= m - 1 {
						ar.anchor(bits.TrailingZeros64(m), p+1-o.n, p+1)
					}
				}
			}
		}
		for m := byteAnchor[c]; m != 0; m &= m - 1 {
			i := bits.TrailingZeros64(m)
			if p < ar.lo[i] || p >= ar.hi[i] {
				ar.anchor(i, p, p+1)
			}
		}
	}
}

// anchorRun is the state of one anchoredRuns: the last run of each entry.
type anchorRun struct {
	r       *Redactor
	s       string
	regions []region
	whole   bool
	scan    func(i, lo, hi int)
	lo, hi  [maxEntries]int
}

// anchor handles an anchor of entry i at s[start:end]: its run is grown,
// checked and searched, unless it is the run searched last.
func (ar *anchorRun) anchor(i, start, end int) {
	if start >= ar.lo[i] && end <= ar.hi[i] {
		return // inside the run already searched
	}
	s := ar.s
	e := ar.r.entries[i]
	if e.lineLocal && !ar.whole {
		regions := ar.regions
		ri := sort.Search(len(regions), func(k int) bool { return regions[k].end > start })
		if ri == len(regions) || regions[ri].start > start {
			return
		}
	}
	for k := start; k < end; k++ {
		if !e.alpha.has(s[k]) {
			return // no match can hold this occurrence
		}
	}
	l, h := start, end
	for l > 0 && e.alpha.has(s[l-1]) {
		l--
	}
	for h < len(s) && e.alpha.has(s[h]) {
		h++
	}
	if l == ar.lo[i] && h == ar.hi[i] {
		return
	}
	ar.lo[i], ar.hi[i] = l, h
	if e.runPasses(s[l:h]) {
		ar.scan(i, l, h)
	}
}
