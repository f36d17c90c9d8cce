package redact

import (
	"regexp/syntax"
	"slices"
	"unicode"
)

// byteSet is a set of byte values.
type byteSet [4]uint64

func (s *byteSet) add(b byte)          { s[b>>6] |= 1 << (b & 63) }
func (s *byteSet) has(b byte) bool     { return s[b>>6]&(1<<(b&63)) != 0 }
func (s *byteSet) union(o byteSet)     { s[0] |= o[0]; s[1] |= o[1]; s[2] |= o[2]; s[3] |= o[3] }
func (s byteSet) meets(o byteSet) bool { return s[0]&o[0]|s[1]&o[1]|s[2]&o[2]|s[3]&o[3] != 0 }
func (s *byteSet) addRange(lo, hi rune) {
	if lo > 0x7f || hi > 0x7f {
		// A non-ASCII rune is encoded with bytes >= 0x80 (and invalid
		// UTF-8 reads as U+FFFD): all of them, to stay a superset.
		for b := 0x80; b <= 0xff; b++ {
			s.add(byte(b))
		}
		hi = min(hi, 0x7f)
	}
	for r := lo; r <= hi; r++ {
		s.add(byte(r))
	}
}

func (s *byteSet) addRune(r rune, fold bool) {
	s.addRange(r, r)
	if fold {
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			s.addRange(f, f)
		}
	}
}

// bytesOf returns the set of byte values in s.
func bytesOf(s string) byteSet {
	var set byteSet
	for i := 0; i < len(s); i++ {
		set.add(s[i])
	}
	return set
}

// byteWeight guesses how common a byte is in chat text, to pick the most
// selective of the sets a regex needs.
func byteWeight(b byte) int {
	switch {
	case b == ' ':
		return 60 // about one byte in six
	case b == '\t', b == '\n', b == '.', b == ',', 'a' <= b && b <= 'z':
		return 10
	case 'A' <= b && b <= 'Z', '0' <= b && b <= '9', b >= 0x80:
		return 3
	}
	return 1
}

func (s byteSet) weight() int {
	w := 0
	for b := 0; b < 256; b++ {
		if s.has(byte(b)) {
			w += byteWeight(byte(b))
		}
	}
	return w
}

// required returns sets of bytes such that every match of re contains at
// least one byte of each set (none: no such set is known). The prefilter
// skips text that misses one of them.
func required(re *syntax.Regexp) []byteSet {
	switch re.Op {
	case syntax.OpLiteral:
		var out []byteSet
		for _, r := range re.Rune {
			var set byteSet
			set.addRune(r, re.Flags&syntax.FoldCase != 0)
			if !slices.Contains(out, set) {
				out = append(out, set)
			}
		}
		return out
	case syntax.OpCharClass:
		if len(re.Rune) == 0 {
			return nil
		}
		var set byteSet
		for i := 0; i+1 < len(re.Rune); i += 2 {
			set.addRange(re.Rune[i], re.Rune[i+1])
		}
		return []byteSet{set}
	case syntax.OpCapture, syntax.OpPlus:
		return required(re.Sub[0])
	case syntax.OpRepeat:
		if re.Min >= 1 {
			return required(re.Sub[0])
		}
		return nil
	case syntax.OpConcat:
		var out []byteSet
		for _, sub := range re.Sub {
			for _, set := range required(sub) {
				if !slices.Contains(out, set) {
					out = append(out, set)
				}
			}
		}
		return out
	case syntax.OpAlternate:
		// One set per alternative (its most selective), united.
		var union byteSet
		for _, sub := range re.Sub {
			sets := required(sub)
			if len(sets) == 0 {
				return nil
			}
			best := sets[0]
			for _, s := range sets[1:] {
				if s.weight() < best.weight() {
					best = s
				}
			}
			union.union(best)
		}
		return []byteSet{union}
	}
	return nil
}

// lineLocal reports whether no match of re can contain a newline and re
// asserts nothing about the start or end of the whole text. Such a regex
// finds the same matches in each line of a text, run line by line, as in
// the whole text: its matches cannot cross a line, and \b, (?m)^ and (?m)$
// see the same at a line's edge either way.
func lineLocal(re *syntax.Regexp) bool {
	switch re.Op {
	case syntax.OpLiteral:
		for _, r := range re.Rune {
			if r == '\n' {
				return false
			}
		}
	case syntax.OpCharClass:
		for i := 0; i+1 < len(re.Rune); i += 2 {
			if re.Rune[i] <= '\n' && '\n' <= re.Rune[i+1] {
				return false
			}
		}
	case syntax.OpAnyChar, syntax.OpBeginText, syntax.OpEndText:
		return false
	}
	for _, sub := range re.Sub {
		if !lineLocal(sub) {
			return false
		}
	}
	return true
}

// counted are the byte classes whose number per line the prefilter
// compares with the least number a match needs: digits, ':', '.', '-'.
var counted = [nCounted]byteSet{digitSet(), bytesOf(":"), bytesOf("."), bytesOf("-")}

const nCounted = 4

func digitSet() byteSet {
	var s byteSet
	s.addRange('0', '9')
	return s
}

// minCounts returns, per counted class, the least number of its bytes a
// match of re contains.
func minCounts(re *syntax.Regexp) (n [nCounted]int) {
	switch re.Op {
	case syntax.OpLiteral:
		for _, r := range re.Rune {
			n = addCounts(n, runeCounts(r, nil, re.Flags&syntax.FoldCase != 0))
		}
	case syntax.OpCharClass:
		n = runeCounts(0, re.Rune, false)
	case syntax.OpCapture, syntax.OpPlus:
		n = minCounts(re.Sub[0])
	case syntax.OpRepeat:
		c := minCounts(re.Sub[0])
		for i := range n {
			n[i] = c[i] * re.Min
		}
	case syntax.OpConcat:
		for _, sub := range re.Sub {
			n = addCounts(n, minCounts(sub))
		}
	case syntax.OpAlternate:
		for i, sub := range re.Sub {
			c := minCounts(sub)
			for j := range n {
				if i == 0 || c[j] < n[j] {
					n[j] = c[j]
				}
			}
		}
	}
	return n
}

func addCounts(a, b [nCounted]int) [nCounted]int {
	for i := range a {
		a[i] += b[i]
	}
	return a
}

// runeCounts: 1 for each counted class that holds every rune of the class
// ranges (or the single rune r, with its case folds).
func runeCounts(r rune, ranges []rune, fold bool) (n [nCounted]int) {
	var set byteSet
	if ranges == nil {
		set.addRune(r, fold)
	} else {
		for i := 0; i+1 < len(ranges); i += 2 {
			set.addRange(ranges[i], ranges[i+1])
		}
		if len(ranges) == 0 {
			return n
		}
	}
	for i, c := range counted {
		if set[0]&^c[0]|set[1]&^c[1]|set[2]&^c[2]|set[3]&^c[3] == 0 {
			n[i] = 1
		}
	}
	return n
}

// maxLen returns the most bytes a match of re can span, or -1 when there
// is no bound (a star, a plus, an unbounded repeat). Word boundaries and
// other assertions take no bytes.
func maxLen(re *syntax.Regexp) int {
	switch re.Op {
	case syntax.OpEmptyMatch, syntax.OpBeginLine, syntax.OpEndLine, syntax.OpBeginText, syntax.OpEndText,
		syntax.OpWordBoundary, syntax.OpNoWordBoundary:
		return 0
	case syntax.OpLiteral:
		n := 0
		for _, r := range re.Rune {
			n += utf8Len(r, re.Flags&syntax.FoldCase != 0)
		}
		return n
	case syntax.OpCharClass:
		hi := rune(0)
		for i := 1; i < len(re.Rune); i += 2 {
			hi = max(hi, re.Rune[i])
		}
		return utf8Len(hi, false)
	case syntax.OpAnyChar, syntax.OpAnyCharNotNL:
		return 4
	case syntax.OpCapture:
		return maxLen(re.Sub[0])
	case syntax.OpQuest:
		return maxLen(re.Sub[0])
	case syntax.OpRepeat:
		if re.Max < 0 {
			return -1
		}
		n := maxLen(re.Sub[0])
		if n < 0 {
			return -1
		}
		return n * re.Max
	case syntax.OpConcat:
		t := 0
		for _, sub := range re.Sub {
			n := maxLen(sub)
			if n < 0 {
				return -1
			}
			t += n
		}
		return t
	case syntax.OpAlternate:
		t := 0
		for _, sub := range re.Sub {
			n := maxLen(sub)
			if n < 0 {
				return -1
			}
			t = max(t, n)
		}
		return t
	}
	return -1 // star, plus, and anything not listed
}

func utf8Len(r rune, fold bool) int {
	if fold {
		return 4 // a fold may leave ASCII (the Kelvin sign, the long s)
	}
	switch {
	case r < 0x80:
		return 1
	case r < 0x800:
		return 2
	case r < 0x10000:
		return 3
	}
	return 4
}

// digitWindow reports whether some window of width bytes of s holds at
// least need ASCII digits: a match of a pattern that needs that many
// digits within that many bytes can only be where this holds.
func digitWindow(s string, width, need int) bool {
	if need <= 0 {
		return true
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i]-'0' <= 9 {
			n++
		}
		if i >= width && s[i-width]-'0' <= 9 {
			n--
		}
		if n >= need {
			return true
		}
	}
	return false
}
