// Package classify provides a rules-based classifier for LLM system prompts
// (English and Japanese) and a detector for models whose guardrails were
// likely removed.
//
// The classifier names the harmful-activity categories a system prompt could
// enable, from the fixed set in service.Categories. Its rules are data: an
// embedded YAML file (rules.yaml) with a version, one entry per rule, each
// with its own positive and negative examples. Matching runs on normalised
// text (NFKC, lower case, format characters removed), so Japanese needs no
// tokenisation and full-width letters match their ASCII forms.
//
// Results are flags for human review, not verdicts: rules can be evaded and
// benign prompts can trip them.
package classify

import (
	_ "embed"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/llmfence/llmfence/internal/service"
)

//go:embed rules.yaml
var rulesYAML []byte

// MaxInput is the number of bytes of a system prompt that are classified;
// the rest is ignored. It bounds the time one prompt can take.
const MaxInput = 64 << 10

// contextWindow caps, in characters (runes) either side of a match, the
// clause searched for negative context, so that a run-on text without
// terminators costs linear rather than quadratic time.
const contextWindow = 200

// maxCandidates caps how many anchor matches of one rule are examined per
// clause; it bounds the time a text repeating one phrase can take.
const maxCandidates = 16

// defaultWindow is the co-occurrence distance, in characters, used when a
// rule does not set one.
const defaultWindow = 80

// Match is one rule that fired on a system prompt.
type Match struct {
	RuleID      string `json:"rule_id"`
	Category    string `json:"category"`
	Description string `json:"description"`
	// Text is the matched span of the normalised prompt (see Normalize),
	// from the first to the last matched part of the rule.
	Text string `json:"text"`
	// Start and End are byte offsets of Text in Normalize(prompt).
	Start int `json:"start"`
	End   int `json:"end"`
	// Lexicon is set on matches of the lexicon layer (RuleID
	// "lexicon:<category>"): the terms and signals that made the score.
	// Text is then the category's first term.
	Lexicon *LexiconScore `json:"lexicon,omitempty"`
}

// Classifier applies the embedded rule set. It is safe for concurrent use.
type Classifier struct {
	version int
	rules   []rule
	cancel  []pattern // negation_cancel, one pattern each
	lineage []marker
	lits    literalIndex // every prefilter literal, found in one pass per prompt
	lex     *lexicon     // the second, scoring layer; nil when not loaded
}

type rule struct {
	id, category, description string
	langs                     []string
	anchors                   []pattern
	with                      []pattern
	window                    int
	crossSentence             bool
	unless                    pattern
	unlessDoc                 pattern
	positive, negative        []string
}

// pattern is one compiled expression with its prefilter.
type pattern struct {
	re *regexp.Regexp
	pf prefilter
	// ids is pf as ids into Classifier.lits, used on spans of the prompt.
	ids [][]int32
}

// mayMatch reports whether the prefilter lets d.n[lo:hi] through.
func (p *pattern) mayMatch(d *doc, lo, hi int) bool {
	return d.occ.mayMatchSpan(d.lits, p.ids, lo, hi)
}

type marker struct {
	id, reason         string
	re                 *regexp.Regexp
	positive, negative []string
}

// New loads the embedded rules and compiles them.
func New() (*Classifier, error) {
	return parseWith(rulesYAML, lexiconYAML)
}

// parseWith builds a Classifier from rules YAML and, unless lexicon is nil,
// lexicon YAML.
func parseWith(rules, lexicon []byte) (*Classifier, error) {
	c, err := parse(rules)
	if err != nil {
		return nil, err
	}
	if lexicon != nil {
		if err := parseLexicon(lexicon, c); err != nil {
			return nil, err
		}
	}
	c.indexLiterals()
	return c, nil
}

// Version is the version of the loaded rule set.
func (c *Classifier) Version() int { return c.version }

// LexiconVersion is the version of the loaded lexicon (lexicon.yaml), or 0
// when none is loaded.
func (c *Classifier) LexiconVersion() int {
	if c.lex == nil {
		return 0
	}
	return c.lex.version
}

// SystemPrompt returns the categories the prompt could enable, in
// service.Categories order. It returns a non-nil empty slice for a benign
// prompt.
func (c *Classifier) SystemPrompt(text string) []string {
	found := map[string]bool{}
	for _, m := range c.Explain(text) {
		found[m.Category] = true
	}
	out := make([]string, 0, len(found))
	for _, cat := range service.Categories {
		if found[cat] {
			out = append(out, cat)
		}
	}
	return out
}

// Explain returns every rule that fired on the prompt, with the first span
// that made it fire, and one match per category the lexicon layer assigned
// (RuleID "lexicon:<category>", with Lexicon set), ordered by category
// (service.Categories order), rules before the lexicon, and then by
// position. It returns nil when nothing fired.
func (c *Classifier) Explain(text string) []Match {
	if len(text) > MaxInput {
		text = text[:MaxInput]
	}
	n := Normalize(text)
	if strings.TrimSpace(n) == "" {
		return nil
	}
	d := c.newDoc(n)
	var out []Match
	for i := range c.rules {
		if m, ok := c.rules[i].match(d); ok {
			out = append(out, m)
		}
	}
	out = append(out, c.scoreLexicon(d)...)
	slices.SortStableFunc(out, func(a, b Match) int {
		if d := categoryIndex(a.Category) - categoryIndex(b.Category); d != 0 {
			return d
		}
		// Rules before the lexicon, so that a rule is the evidence quoted
		// first when both fired.
		if la, lb := a.Lexicon != nil, b.Lexicon != nil; la != lb {
			if la {
				return 1
			}
			return -1
		}
		return a.Start - b.Start
	})
	return out
}

// GuardrailsRemoved reports whether a model likely had its refusals removed:
// a lineage marker (such as "abliterated", "uncensored" or "dolphin") in its
// name, parent model or family, or a system prompt in the guardrail_removal
// category. The string says why, for example
// `model name contains "abliterated" (abliteration, ...)`.
func (c *Classifier) GuardrailsRemoved(name, parentModel, family, systemPrompt string) (bool, string) {
	fields := []struct{ label, value string }{
		{"model name", name},
		{"parent model", parentModel},
		{"model family", family},
	}
	for _, f := range fields {
		if f.value == "" {
			continue
		}
		if mk, term, ok := c.lineageMarker(f.value); ok {
			return true, fmt.Sprintf("%s contains %q (%s)", f.label, term, mk.reason)
		}
	}
	if systemPrompt != "" {
		for _, m := range c.Explain(systemPrompt) {
			if m.Category == service.CategoryGuardrailRemoval {
				if m.Lexicon != nil {
					return true, fmt.Sprintf("system prompt scores %.1f on the guardrail_removal lexicon: %s",
						m.Lexicon.Score, clip(hitList(m.Lexicon.Hits), 160))
				}
				return true, fmt.Sprintf("system prompt matches rule %s: %q", m.RuleID, clip(m.Text, 80))
			}
		}
	}
	return false, ""
}

// lineageMarker returns the first marker found in a model name and the text
// that matched.
func (c *Classifier) lineageMarker(value string) (marker, string, bool) {
	n := Normalize(value)
	for _, mk := range c.lineage {
		if sm := mk.re.FindStringSubmatch(n); sm != nil {
			return mk, sm[1], true
		}
	}
	return marker{}, "", false
}

// doc is one normalised prompt being classified.
type doc struct {
	n       string
	clauses []span
	cancel  []pattern
	blanked map[span]string // text of a span with negation_cancel matches blanked
	lits    *literalIndex
	occ     occurrences // where each prefilter literal occurs in n
}

func (c *Classifier) newDoc(n string) *doc {
	return &doc{n: n, clauses: clauses(n), cancel: c.cancel, blanked: map[span]string{},
		lits: &c.lits, occ: c.lits.scan(n)}
}

// blank returns d.n[s.lo:s.hi] with the negation_cancel spans blanked.
func (d *doc) blank(s span) string {
	if b, ok := d.blanked[s]; ok {
		return b
	}
	b := d.n[s.lo:s.hi]
	var buf []byte
	for i := range d.cancel {
		p := &d.cancel[i]
		if !p.mayMatch(d, s.lo, s.hi) {
			continue
		}
		for _, l := range p.re.FindAllStringIndex(b, -1) {
			if buf == nil {
				buf = []byte(b)
			}
			for j := l[0]; j < l[1]; j++ {
				buf[j] = ' '
			}
		}
	}
	if buf != nil {
		b = string(buf)
	}
	d.blanked[s] = b
	return b
}

// match reports whether the rule fires on the document. An anchor never
// spans two clauses.
func (r *rule) match(d *doc) (Match, bool) {
	if !r.anyAnchorMayMatch(d) {
		return Match{}, false
	}
	for _, c := range d.clauses {
		if m, ok := r.matchClause(d, c); ok {
			return m, true
		}
	}
	return Match{}, false
}

func (r *rule) matchClause(d *doc, c span) (Match, bool) {
	n := d.n
	text := n[c.lo:c.hi]
	var locs [][]int
	for _, p := range r.anchors {
		if p.mayMatch(d, c.lo, c.hi) {
			locs = append(locs, p.re.FindAllStringIndex(text, maxCandidates)...)
		}
	}
	if len(r.anchors) > 1 {
		slices.SortStableFunc(locs, func(a, b []int) int { return a[0] - b[0] })
	}
	if len(locs) > maxCandidates {
		locs = locs[:maxCandidates]
	}
	for _, loc := range locs {
		start, end, ok := r.cooccur(d, c, c.lo+loc[0], c.lo+loc[1])
		if !ok {
			continue
		}
		if r.unless.re != nil {
			cs, ce := clause(n, start, end)
			cs, ce = max(cs, backRunes(n, start, contextWindow)), min(ce, fwdRunes(n, end, contextWindow))
			if b := d.blank(span{cs, ce}); r.unless.pf.mayMatch(b) && r.unless.re.MatchString(b) {
				continue
			}
		}
		if r.unlessDoc.re != nil {
			if b := d.blank(span{0, len(n)}); r.unlessDoc.pf.mayMatch(b) && r.unlessDoc.re.MatchString(b) {
				return Match{}, false
			}
		}
		return Match{
			RuleID:      r.id,
			Category:    r.category,
			Description: r.description,
			Text:        n[start:end],
			Start:       start,
			End:         end,
		}, true
	}
	return Match{}, false
}

// anyAnchorMayMatch reports whether any anchor pattern could match the
// prompt.
func (r *rule) anyAnchorMayMatch(d *doc) bool {
	for i := range r.anchors {
		if r.anchors[i].mayMatch(d, 0, len(d.n)) {
			return true
		}
	}
	return false
}

// cooccur checks the rule's `with` groups around the anchor at [as, ae),
// found in clause c, and returns the span covering the anchor and every
// group's match.
func (r *rule) cooccur(d *doc, c span, as, ae int) (int, int, bool) {
	n := d.n
	if len(r.with) == 0 {
		return as, ae, true
	}
	lo, hi := c.lo, c.hi
	if r.crossSentence {
		lo, hi = 0, len(n)
	}
	lo = max(lo, backRunes(n, as, r.window))
	hi = min(hi, fwdRunes(n, ae, r.window))
	start, end := as, ae
	// Check every group's prefilter before running any expression.
	for i := range r.with {
		if !r.with[i].mayMatch(d, lo, hi) {
			return 0, 0, false
		}
	}
	for i := range r.with {
		loc := r.with[i].re.FindStringIndex(n[lo:hi])
		if loc == nil {
			return 0, 0, false
		}
		start = min(start, lo+loc[0])
		end = max(end, lo+loc[1])
	}
	return start, end, true
}

// span is a byte range [lo, hi) of the normalised text.
type span struct{ lo, hi int }

// clauses splits s at clause terminators (see isTerminator).
func clauses(s string) []span {
	var out []span
	lo := 0
	for i := 0; i < len(s); i++ {
		if isTerminator(s, i) {
			if i > lo {
				out = append(out, span{lo, i})
			}
			lo = i + 1
		}
	}
	if lo < len(s) {
		out = append(out, span{lo, len(s)})
	}
	return out
}

// clause widens [start, end) to the clause around it: from just after the
// previous terminator to just before the next one. Terminators are ! ? ; 。,
// a line break, and a full stop followed by a space, a line break or the end.
func clause(s string, start, end int) (int, int) {
	lo := 0
	for i := start - 1; i >= 0; i-- {
		if isTerminator(s, i) {
			lo = i + 1
			break
		}
	}
	hi := len(s)
	for i := end; i < len(s); i++ {
		if isTerminator(s, i) {
			hi = i
			break
		}
	}
	return lo, hi
}

// isTerminator reports whether the byte at i ends a clause.
func isTerminator(s string, i int) bool {
	switch s[i] {
	case '\n', '!', '?', ';':
		return true
	case '.':
		return i+1 == len(s) || s[i+1] == ' ' || s[i+1] == '\n'
	case 0x82: // last byte of 。 (E3 80 82)
		return i >= 2 && s[i-2] == 0xE3 && s[i-1] == 0x80
	}
	return false
}

// backRunes returns the offset n runes before i (or 0).
func backRunes(s string, i, n int) int {
	for ; n > 0 && i > 0; n-- {
		_, size := utf8.DecodeLastRuneInString(s[:i])
		i -= size
	}
	return i
}

// fwdRunes returns the offset n runes after i (or len(s)).
func fwdRunes(s string, i, n int) int {
	for ; n > 0 && i < len(s); n-- {
		_, size := utf8.DecodeRuneInString(s[i:])
		i += size
	}
	return i
}

func categoryIndex(cat string) int {
	if i := slices.Index(service.Categories, cat); i >= 0 {
		return i
	}
	return len(service.Categories)
}

func clip(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n]) + "…"
}
