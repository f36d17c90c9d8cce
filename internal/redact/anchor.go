package redact

import (
	"math/bits"
	"regexp"
	"regexp/syntax"
	"slices"
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

// keywordLead returns how far into a match its first keyword occurrence
// can start, at most: the length of the longest of leadStrings (-1 when
// there are none).
func keywordLead(re *syntax.Regexp, keywords []string) int {
	lead := -1
	for _, s := range leadStrings(re, keywords) {
		lead = max(lead, len(s))
	}
	return lead
}

// leadStrings returns the strings the regex's first consuming element
// matches (lower case) when they are few and each holds one of the
// keywords: every match starts with one of them, and holds a keyword
// within it.
func leadStrings(re *syntax.Regexp, keywords []string) []string {
	if len(keywords) == 0 {
		return nil
	}
	for re.Op == syntax.OpCapture {
		re = re.Sub[0]
	}
	first := re
	if re.Op == syntax.OpConcat {
		first = nil
		for _, sub := range re.Sub {
			switch sub.Op {
			case syntax.OpBeginLine, syntax.OpEndLine, syntax.OpWordBoundary, syntax.OpNoWordBoundary, syntax.OpEmptyMatch:
				continue
			}
			first = sub
			break
		}
		if first == nil {
			return nil
		}
	}
	lang, ok := language(first, 256)
	if !ok {
		return nil
	}
	for _, s := range lang {
		if !containsAny(s, keywords) {
			return nil
		}
	}
	slices.Sort(lang)
	return slices.Compact(lang)
}

// language returns the strings re matches, with ASCII letters lower-cased
// (keywords ignore case), when there are at most limit of them and each
// is ASCII.
func language(re *syntax.Regexp, limit int) ([]string, bool) {
	switch re.Op {
	case syntax.OpEmptyMatch:
		return []string{""}, true
	case syntax.OpLiteral:
		b := make([]byte, 0, len(re.Rune))
		for _, r := range re.Rune {
			if r >= 0x80 {
				return nil, false
			}
			if 'A' <= r && r <= 'Z' { // keywords ignore ASCII case
				r += 'a' - 'A'
			}
			b = append(b, byte(r))
		}
		return []string{string(b)}, true
	case syntax.OpCharClass:
		seen := map[string]bool{}
		var out []string
		for i := 0; i+1 < len(re.Rune); i += 2 {
			for r := re.Rune[i]; r <= re.Rune[i+1]; r++ {
				if r >= 0x80 {
					if r == 0x17f || r == 0x212a {
						continue // folds of s and k: the keyword check is off when they are in the text
					}
					return nil, false
				}
				c := byte(r)
				if 'A' <= c && c <= 'Z' {
					c += 'a' - 'A'
				}
				if !seen[string(c)] {
					seen[string(c)] = true
					out = append(out, string(c))
				}
				if len(out) > limit {
					return nil, false
				}
			}
		}
		return out, true
	case syntax.OpCapture:
		return language(re.Sub[0], limit)
	case syntax.OpQuest:
		sub, ok := language(re.Sub[0], limit)
		return append(sub, ""), ok && len(sub) < limit
	case syntax.OpRepeat:
		if re.Max < 0 || re.Max > 4 {
			return nil, false
		}
		sub, ok := language(re.Sub[0], limit)
		if !ok {
			return nil, false
		}
		var out []string
		cur := []string{""}
		for n := 0; n <= re.Max; n++ {
			if n >= re.Min {
				out = append(out, cur...)
			}
			var next []string
			for _, a := range cur {
				for _, b := range sub {
					next = append(next, a+b)
				}
			}
			if len(out)+len(next) > limit {
				return nil, false
			}
			cur = next
		}
		return out, true
	case syntax.OpAlternate:
		var out []string
		for _, sub := range re.Sub {
			l, ok := language(sub, limit)
			if !ok || len(out)+len(l) > limit {
				return nil, false
			}
			out = append(out, l...)
		}
		return out, true
	case syntax.OpConcat:
		out := []string{""}
		for _, sub := range re.Sub {
			l, ok := language(sub, limit)
			if !ok || len(out)*len(l) > limit {
				return nil, false
			}
			var next []string
			for _, a := range out {
				for _, b := range l {
					next = append(next, a+b)
				}
			}
			out = next
		}
		return out, true
	}
	return nil, false
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

// hasOut marks a state of the keyword automaton where keywords end;
// anchorByte marks the class of a byte that anchors an entry by itself.
const (
	hasOut     = 1 << 31
	anchorByte = 1 << 30
)

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
		if a.byteAnchor[b] != 0 {
			a.class[b] |= anchorByte
		}
	}
	return a
}

// runPasses reports whether a run of text, holding the bytes present
// with counts of the counted classes, may hold a match of e: it is long
// enough, has a byte of every set e needs, at least as many digits,
// colons, dots and dashes as a match has, and (for a bounded pattern that
// needs three or more digits) that many digits close enough together.
func (e *entry) runPasses(run string, present *byteSet, counts *[nCounted]int) bool {
	if len(run) < e.minLen {
		return false
	}
	for i, n := range counts {
		if n < e.minCount[i] {
			return false
		}
	}
	for _, need := range e.need {
		if !need.meets(*present) {
			return false
		}
	}
	return e.maxBytes < 0 || e.minCount[0] < 3 || digitWindow(run, e.maxBytes, e.minCount[0])
}

// anchoredRuns calls scan(i, from, to) for every run [lo, hi) of entry
// i's alphabet that holds one of its anchors, each run once, in order of
// position per entry: s[from:to] is the run with a byte of context each
// side, or less of it on the left where no match can start (keywordLead).
// Line-local entries look only inside regions (whole lines, sorted); the
// others at the whole text.
//
// For an entry whose matches start with one of a few strings that hold a
// keyword (leadScan), match(i, base, m) is called instead with each
// match: m as the regexp package gives it, for s[base:].
func (r *Redactor) anchoredRuns(s string, regions []region, checkKeywords bool, scan func(i, from, to int), match func(i, base int, m []int)) {
	a := r.anch
	ar := anchorRun{r: r, s: s, regions: regions, scan: scan, match: match}
	for i := range ar.lo {
		ar.lo[i], ar.hi[i] = -1, -1
	}
	ar.whole = len(regions) == 1 && regions[0].start == 0 && regions[0].end == len(s)
	if !checkKeywords {
		for p := 0; p < len(s); p++ {
			for m := a.foldAnchorAll[s[p]]; m != 0; m &= m - 1 {
				if i := bits.TrailingZeros64(m); p < ar.lo[i] || p >= ar.hi[i] {
					ar.anchor(i, p, p+1, false)
				}
			}
		}
		return
	}
	// class[c] holds the byte's class and whether it anchors by itself:
	// one test per byte finds the bytes where anything happens.
	next, class := a.next, &a.class
	st := uint32(0)
	for p := 0; p < len(s); p++ {
		c := s[p]
		cl := class[c]
		st = next[st&^hasOut+cl&^anchorByte]
		if (st|cl)&(hasOut|anchorByte) == 0 {
			continue
		}
		if st&hasOut != 0 {
			for _, o := range a.out[int(st&^hasOut)/a.nclass] {
				for m := o.mask; m != 0; m &= m - 1 {
					ar.anchor(bits.TrailingZeros64(m), p+1-o.n, p+1, true)
				}
			}
		}
		for m := a.byteAnchor[c]; m != 0; m &= m - 1 {
			if i := bits.TrailingZeros64(m); p < ar.lo[i] || p >= ar.hi[i] {
				ar.anchor(i, p, p+1, false)
			}
		}
	}
}

// denseParts searches a long run of a bounded entry that needs three or
// more digits only where digits are dense enough: the union of the
// windows of maxBytes bytes that hold minCount[0] digits. A match spans
// at most maxBytes bytes and holds that many digits, so it lies inside
// one such part; and a match the regex could find at the byte of context
// around a part (the text at its edges seen differently) would make that
// byte part of a dense window too, so there is none. Each part is
// searched with a byte of context each side.
func (ar *anchorRun) denseParts(i, l, h int) {
	e := ar.r.entries[i]
	s := ar.s
	m, need := e.maxBytes, e.minCount[0]
	isDigit := func(c byte) bool { return c-'0' <= 9 }
	n := 0 // digits in [p, p+m) ∩ [l, h)
	for k := l; k < min(l+m, h); k++ {
		if isDigit(s[k]) {
			n++
		}
	}
	start, end := -1, -1 // the part being built
	for p := l; p < h; p++ {
		if n >= need {
			if start < 0 || p > end {
				if start >= 0 {
					ar.scan(i, max(start-1, 0), min(end+1, len(s)))
				}
				start = p
			}
			end = min(p+m, h)
		}
		if isDigit(s[p]) {
			n--
		}
		if p+m < h && isDigit(s[p+m]) {
			n++
		}
	}
	if start >= 0 {
		ar.scan(i, max(start-1, 0), min(end+1, len(s)))
	}
}

// leadScan finds the matches of entry i that start in s[from:h] (the run
// ends at h): a match starts with one of the strings of e.lead.strs, so
// the regex is tried, anchored, only where one of them does, in order,
// as FindAll would (after a match, from its end). An anchored match at x
// is the one FindAll finds when x is the leftmost place a match starts:
// leftmost-first picks among the matches at x the same way. The byte
// before x goes with it, consumed by the anchored regex, so that \b sees
// it.
func (ar *anchorRun) leadScan(i, from, h int) {
	e := ar.r.entries[i]
	s := ar.s
	end := min(h+1, len(s))
	for x := from; x < h; x++ {
		if !e.lead.first.has(s[x]) || !hasPrefixFold(s[x:h], e.lead.strs) {
			continue
		}
		var m []int
		base := x
		if x == 0 {
			m = e.lead.re0.FindStringSubmatchIndex(s[:end])
		} else {
			base = x - 1
			m = e.lead.re.FindStringSubmatchIndex(s[base:end])
			if m != nil {
				m[0] = 1 // the match starts after the byte of context
			}
		}
		if m == nil {
			continue
		}
		ar.match(i, base, m)
		x = base + m[1] - 1 // FindAll goes on from the match's end
	}
}

// hasPrefixFold reports whether s starts with one of strs (lower case),
// ignoring ASCII case.
func hasPrefixFold(s string, strs []string) bool {
next:
	for _, p := range strs {
		if len(p) > len(s) {
			continue
		}
		for k := 0; k < len(p); k++ {
			c := s[k]
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			if c != p[k] {
				continue next
			}
		}
		return true
	}
	return false
}

// leadMatch is what leadScan needs of an entry: the strings its matches
// start with (lower case) and their first bytes (both cases), and its
// regex anchored at the start of the text, after one byte of context
// (re) or without it (re0, at the start of the text).
type leadMatch struct {
	strs    []string
	first   byteSet
	re, re0 *regexp.Regexp
}

func newLeadMatch(e *entry, tree *syntax.Regexp) (*leadMatch, error) {
	strs := leadStrings(tree, e.Keywords)
	if strs == nil {
		return nil, nil
	}
	lm := &leadMatch{strs: strs}
	for _, p := range strs {
		if p == "" {
			return nil, nil
		}
		lm.first.add(p[0])
		if 'a' <= p[0] && p[0] <= 'z' {
			lm.first.add(p[0] - 'a' + 'A')
		}
	}
	var err error
	if lm.re, err = regexp.Compile(`^(?s:.)(?:` + e.Regex + `)`); err != nil {
		return nil, err
	}
	if lm.re0, err = regexp.Compile(`^(?:` + e.Regex + `)`); err != nil {
		return nil, err
	}
	return lm, nil
}

// anchorRun is the state of one anchoredRuns: the last run of each entry.
type anchorRun struct {
	r       *Redactor
	s       string
	regions []region
	whole   bool
	scan    func(i, from, to int)
	match   func(i, base int, m []int)
	lo, hi  [maxEntries]int
}

// anchor handles an anchor of entry i at s[start:end] (keyword: it is an
// occurrence of one of the entry's keywords): its run is grown, checked
// and searched, unless it is the run searched last.
func (ar *anchorRun) anchor(i, start, end int, keyword bool) {
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
	// Grow the run both ways, noting the bytes it holds.
	var present byteSet
	var counts [nCounted]int
	note := func(c byte) {
		present[c>>6] |= 1 << (c & 63)
		if k := countClass[c]; k > 0 {
			counts[k-1]++
		}
	}
	for k := start; k < end; k++ {
		note(s[k])
	}
	l, h := start, end
	for l > 0 {
		c := s[l-1]
		if !e.alpha.has(c) {
			break
		}
		note(c)
		l--
	}
	for h < len(s) {
		c := s[h]
		if !e.alpha.has(c) {
			break
		}
		note(c)
		h++
	}
	if l == ar.lo[i] && h == ar.hi[i] {
		return
	}
	ar.lo[i], ar.hi[i] = l, h
	if !e.runPasses(s[l:h], &present, &counts) {
		return
	}
	if e.maxBytes > 0 && e.minCount[0] >= 3 && h-l > 2*e.maxBytes {
		ar.denseParts(i, l, h)
		return
	}
	if keyword && e.lead != nil {
		// The first keyword occurrence of the run is this one, or one
		// holding it (it ends first): no match starts before lead bytes
		// ahead of it.
		ar.leadScan(i, max(l, end-e.kwMaxLen-e.kwLead+1), h)
		return
	}
	ar.scan(i, max(l-1, 0), min(h+1, len(s))) // a byte of context each side
}
