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
			flush()
			out = append(out, requiredLiterals(sub)...)
		}
		flush()
		return out
	}
	return nil
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
