package datascan

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"regexp"
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
}

type injectionFile struct {
	Version  int              `yaml:"version"`
	Patterns []injectionEntry `yaml:"patterns"`
}

// injections finds planted prompt-injection phrases. The keywords of all
// entries are looked for in one pass over the text (ASCII words by a
// table lookup, other keywords by substring), and only the entries whose
// keywords occur run their regex.
type injections struct {
	entries []*injectionEntry
	words   map[string]uint64 // ASCII keyword -> entries (bit per entry)
	other   []string          // non-ASCII keywords
	otherM  []uint64
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
		if len(out.entries) == 64 {
			return nil, fmt.Errorf("%s: more than 64 patterns", where)
		}
		bit := uint64(1) << len(out.entries)
		for _, k := range e.Keywords {
			if isASCIIWord(k) {
				if out.words == nil {
					out.words = map[string]uint64{}
				}
				out.words[k] |= bit
			} else if strings.IndexFunc(k, func(r rune) bool { return r < 0x80 }) < 0 {
				out.other = append(out.other, k)
				out.otherM = append(out.otherM, bit)
			} else {
				return nil, fmt.Errorf("%s: keyword %q: an ASCII keyword is one word of a-z", where, k)
			}
		}
		out.entries = append(out.entries, e)
	}
	return out, nil
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
		word     [24]byte
		n        int
		start    int
		nonASCII bool
	)
	end := func() {
		if n >= 2 && n <= len(word) {
			if m := in.words[string(word[:n])]; m != 0 {
				for i := range in.entries {
					if m&(1<<i) != 0 && len(spots[i]) < injSpots {
						spots[i] = append(spots[i], start)
					}
				}
			}
		}
		n = 0
	}
	for i := 0; i < len(text); i++ {
		c := text[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
			if n == 0 {
				start = i
			}
			if n < len(word) {
				word[n] = c | 0x20
			}
			n++
		default:
			if c >= 0x80 {
				nonASCII = true
			}
			if n > 0 {
				end()
			}
		}
	}
	if n > 0 {
		end()
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
			if m := e.re.FindStringIndex(text[a:b]); m != nil {
				hits = append(hits, injectionHit{e.ID, a + m[0], a + m[1]})
				break
			}
		}
	}
	return hits
}

// runeCeil moves i forward to the start of a UTF-8 sequence.
func runeCeil(s string, i int) int {
	for i < len(s) && !utf8.RuneStart(s[i]) {
		i++
	}
	return i
}
