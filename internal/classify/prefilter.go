package classify

import (
	"regexp/syntax"
	"slices"
	"strings"
	"unicode/utf8"
)

// prefilter is a cheap necessary condition for a regular expression to
// match: every match contains, for each set in the prefilter, at least one
// of that set's literals. Checking it with strings.Contains is much cheaper
// than running the expression, so text that fails it is skipped. A nil
// prefilter lets everything through.
type prefilter [][]string

// maxConjuncts bounds how many literal sets one prefilter checks.
const maxConjuncts = 3

// maxDistribute bounds the alternations a literal prefix is pushed into.
const maxDistribute = 16

// newPrefilter derives a prefilter from a pattern. Sets whose shortest
// literal is a single ASCII byte are dropped as too weak to be worth
// checking; dropping a set only weakens the filter, never makes it wrong.
func newPrefilter(pattern string) prefilter {
	re, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil {
		return nil
	}
	var out prefilter
	for _, set := range requiredLiterals(re.Simplify()) {
		if shortest(set) >= 2 {
			out = append(out, dedupe(set))
		}
	}
	slices.SortStableFunc(out, func(a, b []string) int { return shortest(b) - shortest(a) })
	if len(out) > maxConjuncts {
		out = out[:maxConjuncts]
	}
	return out
}

// mayMatch reports whether s could contain a match.
func (p prefilter) mayMatch(s string) bool {
	for _, set := range p {
		found := false
		for _, l := range set {
			if strings.Contains(s, l) {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// requiredLiterals returns literal sets such that every match of re
// contains at least one literal of every set. An empty result means nothing
// is known.
func requiredLiterals(re *syntax.Regexp) [][]string {
	switch re.Op {
	case syntax.OpLiteral:
		if re.Flags&syntax.FoldCase != 0 || len(re.Rune) == 0 {
			return nil
		}
		return [][]string{{string(re.Rune)}}
	case syntax.OpCapture, syntax.OpPlus:
		return requiredLiterals(re.Sub[0])
	case syntax.OpRepeat:
		if re.Min >= 1 {
			return requiredLiterals(re.Sub[0])
		}
	case syntax.OpCharClass:
		// A small class such as [sz] stands for its members.
		var set []string
		for i := 0; i+1 < len(re.Rune); i += 2 {
			if re.Rune[i+1]-re.Rune[i] > 3 || len(set) > 4 {
				return nil
			}
			for r := re.Rune[i]; r <= re.Rune[i+1]; r++ {
				set = append(set, string(r))
			}
		}
		if len(set) == 0 {
			return nil
		}
		return [][]string{set}
	case syntax.OpAlternate:
		// One set: the union of each branch's best set.
		var union []string
		for _, sub := range re.Sub {
			best := bestSet(requiredLiterals(sub))
			if best == nil {
				return nil
			}
			union = append(union, best...)
		}
		return [][]string{union}
	case syntax.OpConcat:
		// Every part's sets are required; adjacent literals are joined.
		var out [][]string
		var run []rune
		flush := func() {
			if len(run) > 0 {
				out = append(out, []string{string(run)})
				run = nil
			}
		}
		for _, sub := range re.Sub {
			if sub.Op == syntax.OpLiteral && sub.Flags&syntax.FoldCase == 0 {
				run = append(run, sub.Rune...)
				continue
			}
			if alt := uncapture(sub); len(run) > 0 && alt.Op == syntax.OpAlternate && len(alt.Sub) <= maxDistribute {
				// Simplify factors common prefixes out of alternations
				// (credit card|cvv becomes c(?:redit card|vv)), leaving a
				// one-letter literal. Putting the prefix back into each
				// branch gives the literals {credit card, cvv} instead.
				lit := &syntax.Regexp{Op: syntax.OpLiteral, Rune: run}
				dist := &syntax.Regexp{Op: syntax.OpAlternate}
				for _, b := range alt.Sub {
					cat := &syntax.Regexp{Op: syntax.OpConcat, Sub: []*syntax.Regexp{lit, b}}
					if b.Op == syntax.OpConcat {
						cat.Sub = append([]*syntax.Regexp{lit}, b.Sub...)
					}
					dist.Sub = append(dist.Sub, cat)
				}
				run = nil
				out = append(out, requiredLiterals(dist)...)
				continue
			}
			flush()
			out = append(out, requiredLiterals(sub)...)
		}
		flush()
		return out
	}
	return nil
}

// uncapture strips capture groups around re.
func uncapture(re *syntax.Regexp) *syntax.Regexp {
	for re.Op == syntax.OpCapture {
		re = re.Sub[0]
	}
	return re
}

// bestSet picks the set whose shortest literal is longest.
func bestSet(sets [][]string) []string {
	var best []string
	bestLen := 0
	for _, s := range sets {
		if n := shortest(s); n > bestLen {
			best, bestLen = s, n
		}
	}
	return best
}

// shortest returns the length in bytes of the shortest literal, counting a
// single multi-byte rune (one kanji or kana) as 2: specific enough to use.
func shortest(set []string) int {
	n := -1
	for _, s := range set {
		k := len(s)
		if utf8.RuneCountInString(s) == 1 && k > 1 {
			k = 2
		}
		if n < 0 || k < n {
			n = k
		}
	}
	return max(n, 0)
}

func dedupe(set []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range set {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// literalIndex holds every distinct prefilter literal of a rule set, so that
// one pass over a prompt finds where each of them occurs (see scan). Every
// literal is at least two bytes long. Literals are bucketed by a hash of
// their first three bytes, or of their two bytes when that is all they have.
type literalIndex struct {
	lits  []string
	ids   map[string]int32
	start []int32 // bucket b is byID[start[b]:start[b+1]]
	byID  []int32
}

// buckets is the number of hash buckets of each kind (two- and three-byte).
const buckets = 1 << 14

// bucket returns the bucket of the literal that starts at s[i] and is n
// (2 or 3) bytes or longer.
func bucket(s string, i, n int) int {
	if n == 2 {
		return (int(s[i])<<7 ^ int(s[i+1])) & (buckets - 1)
	}
	return buckets + (int(s[i])<<10^int(s[i+1])<<5^int(s[i+2]))&(buckets-1)
}

func keyLen(l string) int { return min(len(l), 3) }

// add returns the ids of a prefilter's literals, registering new ones.
func (x *literalIndex) add(pf prefilter) [][]int32 {
	if x.ids == nil {
		x.ids = map[string]int32{}
	}
	var out [][]int32
	for _, set := range pf {
		ids := make([]int32, 0, len(set))
		for _, l := range set {
			id, ok := x.ids[l]
			if !ok {
				id = int32(len(x.lits))
				x.ids[l] = id
				x.lits = append(x.lits, l)
			}
			ids = append(ids, id)
		}
		out = append(out, ids)
	}
	return out
}

// build buckets the literals once all were added.
func (x *literalIndex) build() {
	count := make([]int32, 2*buckets+1)
	for _, l := range x.lits {
		count[bucket(l, 0, keyLen(l))+1]++
	}
	for i := 1; i < len(count); i++ {
		count[i] += count[i-1]
	}
	x.start = count
	x.byID = make([]int32, len(x.lits))
	next := slices.Clone(count)
	for id, l := range x.lits {
		k := bucket(l, 0, keyLen(l))
		x.byID[next[k]] = int32(id)
		next[k]++
	}
}

// occurrences lists, for each literal id, the sorted byte offsets at which
// the literal occurs in one text.
type occurrences [][]int32

// scan finds every occurrence of every literal in s in one pass.
func (x *literalIndex) scan(s string) occurrences {
	occ := make(occurrences, len(x.lits))
	if x.start == nil {
		return occ
	}
	for i := 0; i+1 < len(s); i++ {
		for n := 2; n <= 3 && i+n <= len(s); n++ {
			k := bucket(s, i, n)
			for _, id := range x.byID[x.start[k]:x.start[k+1]] {
				if keyLen(x.lits[id]) == n && strings.HasPrefix(s[i:], x.lits[id]) {
					occ[id] = append(occ[id], int32(i))
				}
			}
		}
	}
	return occ
}

// within reports whether literal id occurs entirely inside s[lo:hi].
func (o occurrences) within(x *literalIndex, id int32, lo, hi int) bool {
	ps := o[id]
	if len(ps) == 0 {
		return false
	}
	j, _ := slices.BinarySearch(ps, int32(lo))
	return j < len(ps) && int(ps[j])+len(x.lits[id]) <= hi
}

// mayMatchSpan is prefilter.mayMatch for the span [lo, hi) of the scanned
// text, with the prefilter given as literal ids. Nil ids let everything
// through.
func (o occurrences) mayMatchSpan(x *literalIndex, ids [][]int32, lo, hi int) bool {
	for _, set := range ids {
		found := false
		for _, id := range set {
			if o.within(x, id, lo, hi) {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}
