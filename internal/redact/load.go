package redact

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"regexp"
	"regexp/syntax"
	"strings"

	"gopkg.in/yaml.v3"
)

//go:embed patterns.yaml
var patternsYAML []byte

// The categories of pattern.
const (
	CategorySecret = "secret" // credentials: keys, tokens, passwords
	CategoryPII    = "pii"    // personal data
)

// minVersion is the oldest data-file version this code reads. The version
// recorded with captures is the file's own `version` field.
const minVersion = 1

// file is patterns.yaml as written.
type file struct {
	Version  int         `yaml:"version"`
	Patterns []entryData `yaml:"patterns"`
}

type entryData struct {
	ID          string   `yaml:"id"`
	Category    string   `yaml:"category"`
	Description string   `yaml:"description"`
	Regex       string   `yaml:"regex"`
	Validator   string   `yaml:"validator"`
	Replacement string   `yaml:"replacement"`
	Keywords    []string `yaml:"keywords"`
	Examples    struct {
		Match   []string `yaml:"match"`
		NoMatch []string `yaml:"no_match"`
	} `yaml:"examples"`
}

// entry is one compiled pattern.
type entry struct {
	entryData
	re *regexp.Regexp
	// valueGroups are the submatch indexes of the groups named "value";
	// empty: the whole match is replaced.
	valueGroups []int
	validate    func(string) bool
	marker      string // [REDACTED:<replacement>]
	// need: every match contains a byte of each of these sets.
	need []byteSet
	// minCount: the least number of bytes of each counted class a match
	// contains.
	minCount [nCounted]int
	// maxBytes is the longest a match can be, in bytes (-1: unbounded);
	// with minCount[0] digits, a line must hold that many digits within
	// some maxBytes-long window (see digitWindow).
	maxBytes int
	// lineLocal: no match crosses a line (see lineLocal).
	lineLocal bool
	// alpha is the bytes a match can contain; runs: the regex may be run
	// on the maximal runs of them that hold an anchor (see anchor.go):
	// every match spans a byte and the regex asserts nothing about the
	// edges of the whole text.
	alpha  byteSet
	runs   bool
	minLen int // the fewest bytes a match spans
	// kwLead: see keywordLead (-1: none); kwMaxLen is the longest keyword.
	kwLead, kwMaxLen int
	// lead: see leadScan (nil: the runs are searched whole).
	lead *leadMatch
}

var (
	idRE    = regexp.MustCompile(`^[a-z][a-z0-9]*(?:_[a-z0-9]+)*$`)
	labelRE = regexp.MustCompile(`^[a-z0-9_]+$`)
	// markerRE finds the markers Redact writes, so that a second pass
	// leaves them alone. It must accept every label labelRE accepts.
	markerRE = regexp.MustCompile(`\[REDACTED:[a-z0-9_]+\]`)
)

const markerPrefix = "[REDACTED:"

var validators = map[string]func(string) bool{
	"":           nil,
	"none":       nil,
	"luhn":       luhn,
	"iban_mod97": ibanMod97,
	"my_number":  myNumber,
}

// parse reads and checks pattern data. Errors name the entry and the field.
func parse(data []byte) (int, []*entry, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var f file
	if err := dec.Decode(&f); err != nil {
		return 0, nil, fmt.Errorf("redaction patterns: %w", err)
	}
	if f.Version < minVersion {
		return 0, nil, errors.New("redaction patterns: missing version (want version: 1 or later)")
	}
	if len(f.Patterns) == 0 {
		return 0, nil, errors.New("redaction patterns: no patterns")
	}
	seen := map[string]bool{}
	out := make([]*entry, 0, len(f.Patterns))
	for i, d := range f.Patterns {
		where := fmt.Sprintf("redaction pattern %d (%s)", i+1, d.ID)
		switch {
		case !idRE.MatchString(d.ID):
			return 0, nil, fmt.Errorf("%s: id must be snake_case (lower-case letters, digits, _)", where)
		case seen[d.ID]:
			return 0, nil, fmt.Errorf("%s: duplicate id", where)
		case d.Category != CategorySecret && d.Category != CategoryPII:
			return 0, nil, fmt.Errorf("%s: category %q: want secret or pii", where, d.Category)
		case strings.TrimSpace(d.Description) == "":
			return 0, nil, fmt.Errorf("%s: missing description", where)
		case !labelRE.MatchString(d.Replacement):
			return 0, nil, fmt.Errorf("%s: replacement %q must be lower-case letters, digits and _", where, d.Replacement)
		case len(d.Examples.Match) == 0:
			return 0, nil, fmt.Errorf("%s: needs at least one examples.match", where)
		}
		seen[d.ID] = true
		v, ok := validators[d.Validator]
		if !ok {
			return 0, nil, fmt.Errorf("%s: unknown validator %q (want luhn, iban_mod97, my_number or none)", where, d.Validator)
		}
		re, err := regexp.Compile(d.Regex)
		if err != nil {
			return 0, nil, fmt.Errorf("%s: regex: %w", where, err)
		}
		if re.MatchString("") {
			return 0, nil, fmt.Errorf("%s: regex matches the empty string", where)
		}
		tree, err := syntax.Parse(d.Regex, syntax.Perl)
		if err != nil { // cannot happen: regexp.Compile parsed it
			return 0, nil, fmt.Errorf("%s: regex: %w", where, err)
		}
		e := &entry{entryData: d, re: re, validate: v, marker: markerPrefix + d.Replacement + "]", lineLocal: lineLocal(tree)}
		e.need = required(tree)
		e.alpha = alphabet(tree)
		e.minLen = minLen(tree)
		e.kwLead = keywordLead(tree.Simplify(), d.Keywords)
		for _, k := range d.Keywords {
			e.kwMaxLen = max(e.kwMaxLen, len(k))
		}
		if e.lead, err = newLeadMatch(e, tree.Simplify()); err != nil {
			return 0, nil, fmt.Errorf("%s: regex: %w", where, err)
		}
		e.runs = e.minLen > 0 && !usesTextEdges(tree)
		e.minCount = minCounts(tree)
		e.maxBytes = maxLen(tree)
		for gi, name := range re.SubexpNames() {
			if name == "value" {
				e.valueGroups = append(e.valueGroups, gi)
			}
		}
		for j, k := range d.Keywords {
			if k == "" || k != strings.ToLower(k) || !isASCII(k) {
				return 0, nil, fmt.Errorf("%s: keyword %d (%q) must be non-empty lower-case ASCII", where, j+1, k)
			}
		}
		out = append(out, e)
	}
	if len(out) > maxEntries {
		return 0, nil, fmt.Errorf("redaction patterns: %d patterns, at most %d", len(out), maxEntries)
	}
	return f.Version, out, nil
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
