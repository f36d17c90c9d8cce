package datascan

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"regexp"
	"regexp/syntax"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

//go:embed injection.yaml
var injectionYAML []byte

type injectionEntry struct {
	ID          string   `yaml:"id"`
	Lang        string   `yaml:"lang"`
	Description string   `yaml:"description"`
	Regex       string   `yaml:"regex"`
	Keywords    []string `yaml:"keywords"`
	Examples    struct {
		Match   []string `yaml:"match"`
		NoMatch []string `yaml:"no_match"`
	} `yaml:"examples"`
	re *regexp.Regexp
	// groups: the regex's alternatives (top level), each a list of
	// groups of literals of which a match holds at least one (lower
	// case); see literalGroups.
	groups [][][]string
}

type injectionFile struct {
	Version  int              `yaml:"version"`
	Patterns []injectionEntry `yaml:"patterns"`
}

// injections finds planted prompt-injection phrases. The keywords of all
// entries are looked for in one pass over the text (ASCII words by a
// table lookup, other keywords by substring), and only the entries whose
// keywords occur run their regex, on a window around the keyword, and
// only when the window holds a literal of every group the regex needs
// (literalGroups).
type injections struct {
	entries []*injectionEntry
	words   map[string]uint64 // ASCII keyword -> entries (bit per entry)
	// pairs[first letter][second letter] has bit n set when a keyword of
	// n letters starts with those two: most words are ruled out without
	// a map lookup.
	pairs  [26 * 26]uint32
	other  []string // non-ASCII keywords
	otherM []uint64
}

var snakeRE = regexp.MustCompile(`^[a-z][a-z0-9]*(?:_[a-z0-9]+)*$`)

func loadInjections(data []byte) (*injections, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var f injectionFile
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("injection patterns: %w", err)
	}
	if f.Version < 1 || len(f.Patterns) == 0 {
		return nil, errors.New("injection patterns: missing version or patterns")
	}
	seen := map[string]bool{}
	out := &injections{}
	for i := range f.Patterns {
		e := &f.Patterns[i]
		where := fmt.Sprintf("injection pattern %d (%s)", i+1, e.ID)
		switch {
		case !snakeRE.MatchString(e.ID) || seen[e.ID]:
			return nil, fmt.Errorf("%s: id must be unique snake_case", where)
		case e.Lang != "en" && e.Lang != "ja":
			return nil, fmt.Errorf("%s: lang %q: want en or ja", where, e.Lang)
		case strings.TrimSpace(e.Description) == "":
			return nil, fmt.Errorf("%s: missing description", where)
		case len(e.Keywords) == 0 || len(e.Examples.Match) == 0:
			return nil, fmt.Errorf("%s: needs keywords and examples.match", where)
		}
		for _, k := range e.Keywords {
			if k == "" || k != strings.ToLower(k) {
				return nil, fmt.Errorf("%s: keyword %q must be non-empty lower case", where, k)
			}
		}
		seen[e.ID] = true
		re, err := regexp.Compile("(?i)" + e.Regex)
		if err != nil {
			return nil, fmt.Errorf("%s: regex: %w", where, err)
		}
		e.re = re
		tree, err := syntax.Parse("(?i)"+e.Regex, syntax.Perl)
		if err != nil {
			return nil, fmt.Errorf("%s: regex: %w", where, err)
		}
		e.groups = literalGroups(tree.Simplify())
		if err := out.add(e); err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
	}
	return out, nil
}

// add makes a compiled entry one the finder looks for.
func (in *injections) add(e *injectionEntry) error {
	if len(in.entries) == 64 {
		return errors.New("more than 64 patterns")
	}
	bit := uint64(1) << len(in.entries)
	for _, k := range e.Keywords {
		if isASCIIWord(k) {
			if in.words == nil {
				in.words = map[string]uint64{}
			}
			in.words[k] |= bit
			if len(k) >= 2 && len(k) < 32 {
				in.pairs[int(k[0]-'a')*26+int(k[1]-'a')] |= 1 << len(k)
			}
		} else if strings.IndexFunc(k, func(r rune) bool { return r < 0x80 }) < 0 {
			in.other = append(in.other, k)
			in.otherM = append(in.otherM, bit)
		} else {
			return fmt.Errorf("keyword %q: an ASCII keyword is one word of a-z", k)
		}
	}
	in.entries = append(in.entries, e)
	return nil
}

func isASCIIWord(k string) bool {
	for i := 0; i < len(k); i++ {
		if k[i] < 'a' || k[i] > 'z' {
			return false
		}
	}
	return k != ""
}

// injectionHit is one phrase found.
type injectionHit struct {
	id         string
	start, end int
}

// Around each keyword occurrence the regex looks this far back and ahead
// (the patterns' keywords sit near the start of a match).
const (
	injBefore = 120
	injAfter  = 300
	injSpots  = 8 // keyword occurrences tried per entry
)

// find returns the first match of each entry whose keywords occur in
// text; the regex runs only on windows around the keyword occurrences.
func (in *injections) find(text string) []injectionHit {
	var (
		spots    [64][]int
		nonASCII bool
	)
	// Words: runs of ASCII letters. A word is looked up only when its
	// first two letters and length are a keyword's.
	for i := 0; i < len(text); {
		c := text[i]
		if asciiLetter[c] == 0 {
			if c >= 0x80 {
				nonASCII = true
			}
			i++
			continue
		}
		j := i + 1
		for j < len(text) && asciiLetter[text[j]] != 0 {
			j++
		}
		n := j - i
		if n >= 2 && n < 32 && in.pairs[int(asciiLetter[c]-'a')*26+int(asciiLetter[text[i+1]]-'a')]&(1<<n) != 0 {
			var word [32]byte
			for k := range n {
				word[k] = asciiLetter[text[i+k]]
			}
			if m := in.words[string(word[:n])]; m != 0 {
				for e := range in.entries {
					if m&(1<<e) != 0 && len(spots[e]) < injSpots {
						spots[e] = append(spots[e], i)
					}
				}
			}
		}
		i = j
	}
	if nonASCII {
		for k, kw := range in.other {
			for from := 0; from < len(text); {
				j := strings.Index(text[from:], kw)
				if j < 0 {
					break
				}
				for i := range in.entries {
					if in.otherM[k]&(1<<i) != 0 && len(spots[i]) < injSpots {
						spots[i] = append(spots[i], from+j)
					}
				}
				from += j + len(kw)
			}
		}
	}
	var hits []injectionHit
	var folded string
	for i, e := range in.entries {
		last := -1
		for _, p := range spots[i] {
			a := max(0, p-injBefore)
			b := min(len(text), p+injAfter)
			if b <= last {
				continue // searched with the previous window
			}
			a, b = runeFloor(text, a), runeCeil(text, b)
			last = b
			if folded == "" {
				folded = asciiLower(text)
			}
			if !e.mayMatch(folded[a:b]) {
				continue
			}
			if m := e.re.FindStringIndex(text[a:b]); m != nil {
				hits = append(hits, injectionHit{e.ID, a + m[0], a + m[1]})
				break
			}
		}
	}
	return hits
}

// mayMatch reports whether window (folded to ASCII lower case) holds a
// literal of every group of one of the regex's alternatives. With one of
// the two non-ASCII letters (?i) folds onto ASCII in it, the check is off.
func (e *injectionEntry) mayMatch(window string) bool {
	if len(e.groups) == 0 || strings.Contains(window, "\u017f") || strings.Contains(window, "\u212a") {
		return true
	}
alt:
	for _, groups := range e.groups {
		for _, g := range groups {
			found := false
			for _, lit := range g {
				if strings.Contains(window, lit) {
					found = true
					break
				}
			}
			if !found {
				continue alt
			}
		}
		return true
	}
	return false
}

// literalGroups returns, for each top-level alternative of re, groups of
// literals (lower case) such that a match of that alternative holds at
// least one literal of every group. An alternative with no group makes
// the result nil (no check).
func literalGroups(re *syntax.Regexp) [][][]string {
	for re.Op == syntax.OpCapture {
		re = re.Sub[0]
	}
	alts := []*syntax.Regexp{re}
	if re.Op == syntax.OpAlternate {
		alts = re.Sub
	}
	var out [][][]string
	for _, alt := range alts {
		var groups [][]string
		parts := []*syntax.Regexp{alt}
		if alt.Op == syntax.OpConcat {
			parts = alt.Sub
		}
		for _, p := range parts {
			if lits, ok := literalsOf(p); ok {
				groups = append(groups, lits)
			}
		}
		if len(groups) == 0 {
			return nil
		}
		out = append(out, groups)
	}
	return out
}

// literalsOf returns literals (lower case) one of which every match of re
// holds, and whether there is such a set.
func literalsOf(re *syntax.Regexp) ([]string, bool) {
	switch re.Op {
	case syntax.OpLiteral:
		if len(re.Rune) < 2 {
			return nil, false // too common to be worth a check
		}
		return []string{strings.ToLower(string(re.Rune))}, true
	case syntax.OpCapture, syntax.OpPlus:
		return literalsOf(re.Sub[0])
	case syntax.OpRepeat:
		if re.Min >= 1 {
			return literalsOf(re.Sub[0])
		}
	case syntax.OpAlternate:
		var out []string
		for _, sub := range re.Sub {
			lits, ok := literalsOf(sub)
			if !ok {
				return nil, false
			}
			out = append(out, lits...)
		}
		return out, true
	case syntax.OpConcat:
		// Any part's literals will do: the longest shortest literal.
		var best []string
		bestLen := 0
		for _, sub := range re.Sub {
			lits, ok := literalsOf(sub)
			if !ok {
				continue
			}
			short := len(lits[0])
			for _, l := range lits {
				short = min(short, len(l))
			}
			if short > bestLen {
				best, bestLen = lits, short
			}
		}
		return best, best != nil
	}
	return nil, false
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

// asciiLetter maps an ASCII letter to its lower case and every other
// byte to 0.
var asciiLetter = func() (t [256]byte) {
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = byte(c), byte(c)
	}
	return t
}()

// runeCeil moves i forward to the start of a UTF-8 sequence.
func runeCeil(s string, i int) int {
	for i < len(s) && !utf8.RuneStart(s[i]) {
		i++
	}
	return i
}
