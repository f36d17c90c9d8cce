// Package classify provides a classifier for LLM system prompts (English and
// Japanese) and a detector for models whose guardrails were likely removed.
//
// The classifier names the harmful-activity categories a system prompt could
// enable, from the fixed set in service.Categories. It has three layers, all
// embedded data: phrase rules (rules.yaml), a weighted lexicon (lexicon.yaml)
// and a statistical layer (model.tsv: logistic regression over character
// n-grams, words and Japanese script runs, trained by ./trainmodel on the
// labelled sets). The statistical layer scores the whole prompt and every
// line or sentence of it, and combines the whole prompt's log-odds with the
// best line's, so one harmful duty among many benign lines still counts. A
// category is assigned when that probability reaches the model's "alone"
// threshold, or a rule or the lexicon assigns it and the probability
// reaches the lower "with rule" threshold; the combination and the
// thresholds (per category and language: English or Japanese, by script)
// were chosen by grouped cross-validation. The statistical layer runs
// first and is cheap; the rules and lexicon run only for categories whose
// probability could still make them count, which is what keeps a 4 KB
// prompt well under a millisecond. Matching runs on normalised text (NFKC,
// lower case, format characters removed), so Japanese needs no
// tokenisation and full-width letters match their ASCII forms. Every
// verdict explains itself: the rule and its matched span, the lexicon's
// terms, the model's strongest features and the lines that scored.
//
// Results are flags for human review, not verdicts: every layer can be
// evaded and benign prompts can trip them.
package classify

import (
	_ "embed"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/llmfence/llmfence/internal/service"
)

//go:generate go run ./trainmodel -report ../../docs/classifier-cv.txt

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
	// Model is set on matches of the statistical layer (RuleID
	// "model:<category>"): the probability, the threshold that applied and
	// the strongest features. Text, Start and End are the window of
	// consecutive lines or sentences that scored highest, or empty when
	// the prompt as a whole did.
	Model *ModelScore `json:"model,omitempty"`
}

// Classifier applies the embedded rule set. It is safe for concurrent use.
type Classifier struct {
	version int
	rules   []rule
	cancel  []pattern // negation_cancel, one pattern each
	lineage []marker
	lits    literalIndex // every prefilter literal, found in one pass per prompt
	lex     *lexicon     // the second, scoring layer; nil when not loaded
	mdl     *model       // the statistical layer; nil when not loaded
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

// New loads the embedded rules, lexicon and statistical model.
func New() (*Classifier, error) {
	return parseWith(rulesYAML, lexiconYAML, modelTSV)
}

// parseWith builds a Classifier from rules YAML and, unless nil, lexicon
// YAML and a model file.
func parseWith(rules, lexicon, mdl []byte) (*Classifier, error) {
	c, err := parse(rules)
	if err != nil {
		return nil, err
	}
	if lexicon != nil {
		if err := parseLexicon(lexicon, c); err != nil {
			return nil, err
		}
	}
	if mdl != nil {
		m, err := parseModel(mdl)
		if err != nil {
			return nil, err
		}
		if !slices.Equal(m.cats, service.Categories) {
			return nil, fmt.Errorf("model.tsv: categories %v, want %v (retrain: go generate ./internal/classify)", m.cats, service.Categories)
		}
		c.mdl = m
	}
	c.indexLiterals()
	return c, nil
}

// ModelInfo describes the statistical layer: what it was trained on and
// how many features it keeps. ok is false when no model is loaded.
func (c *Classifier) ModelInfo() (note string, features int, ok bool) {
	if c.mdl == nil {
		return "", 0, false
	}
	return c.mdl.note, len(c.mdl.texts), true
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
	v := c.verdict(text, false)
	out := make([]string, 0, len(v.cats))
	for i, cat := range service.Categories {
		if v.fired[i] {
			out = append(out, cat)
		}
	}
	return out
}

// verdict is the combined decision on one prompt.
type verdict struct {
	cats    []string
	fired   []bool  // per service.Categories index
	sc      *scores // the model's, nil without a model
	matches []Match // rule and lexicon matches (all, or only for gated categories)
	d       *doc
}

// verdict classifies text. With all set, every rule and the lexicon run
// (for Explain); otherwise they run only for the categories the model
// leaves open.
func (c *Classifier) verdict(text string, all bool) verdict {
	nc := len(service.Categories)
	v := verdict{fired: make([]bool, nc)}
	if len(text) > MaxInput {
		text = text[:MaxInput]
	}
	n := Normalize(text)
	if strings.TrimSpace(n) == "" {
		return v
	}
	var mask []bool
	var th []threshold
	if c.mdl != nil {
		v.sc = &scores{}
		c.mdl.score(n, v.sc)
		th = c.mdl.th[v.sc.lang]
		mask = make([]bool, nc)
		open := false
		for i := 0; i < nc; i++ {
			p := v.sc.p[i]
			if p >= th[i].alone {
				v.fired[i] = true
			} else if p >= th[i].withRule {
				mask[i], open = true, true
			}
		}
		if !open && !all {
			return v
		}
		if all {
			mask = nil
		}
	}
	d := c.newDoc(n)
	v.d = d
	for i := range c.rules {
		r := &c.rules[i]
		if mask != nil && !mask[categoryIndex(r.category)] {
			continue
		}
		if m, ok := r.match(d); ok {
			v.matches = append(v.matches, m)
		}
	}
	v.matches = append(v.matches, c.scoreLexicon(d, mask)...)
	for _, m := range v.matches {
		i := categoryIndex(m.Category)
		if i >= nc {
			continue
		}
		if c.mdl == nil || decide(v.sc.p[i], true, th[i]) {
			v.fired[i] = true
		}
	}
	return v
}

// ruleCategories is the rules and the lexicon alone (no model): what the
// classifier returned before the statistical layer. The trainer uses it.
func (c *Classifier) ruleCategories(text string) []string {
	cc := *c
	cc.mdl = nil
	v := cc.verdict(text, true)
	var out []string
	for i, cat := range service.Categories {
		if v.fired[i] {
			out = append(out, cat)
		}
	}
	return out
}

// Explain returns the evidence for every category SystemPrompt assigns:
// each rule that fired with the first span that made it fire, one match
// per category the lexicon assigned (RuleID "lexicon:<category>", with
// Lexicon set) and one per category the statistical layer supports
// (RuleID "model:<category>", with Model set: the probability and the
// strongest features). Rule and lexicon hits on a category the model
// vetoed (probability below the "with rule" threshold) are left out, as
// the category is not assigned. Matches are ordered by category
// (service.Categories order), rules first, then the lexicon, then the
// model. It returns nil when nothing was assigned.
func (c *Classifier) Explain(text string) []Match {
	v := c.verdict(text, true)
	var out []Match
	for _, m := range v.matches {
		if i := categoryIndex(m.Category); i < len(v.fired) && v.fired[i] {
			out = append(out, m)
		}
	}
	if c.mdl != nil && v.d != nil {
		th := c.mdl.th[v.sc.lang]
		for i, cat := range service.Categories {
			if !v.fired[i] {
				continue
			}
			t := th[i].alone
			if v.sc.p[i] < t {
				t = th[i].withRule
			}
			win := v.sc.win[i]
			ms := &ModelScore{Probability: math.Round(v.sc.p[i]*1000) / 1000, Threshold: t, Top: c.mdl.top(v.d.n, i, 8, win)}
			m := Match{RuleID: "model:" + cat, Category: cat, Model: ms}
			where := "the whole prompt"
			if win != (span{}) {
				lo, hi := win.lo, win.hi
				for lo < hi && v.d.n[lo] == ' ' {
					lo++
				}
				// A clause ends at the last byte of 。, so its end can
				// split that rune: cut the partial rune.
				for k := 0; k < utf8.UTFMax && hi > lo && !utf8.ValidString(v.d.n[max(lo, hi-utf8.UTFMax):hi]); k++ {
					hi--
				}
				for hi > lo && v.d.n[hi-1] == ' ' {
					hi--
				}
				ms.Window = v.d.n[lo:hi]
				m.Text, m.Start, m.End = ms.Window, lo, hi
				where = fmt.Sprintf("the lines %q", clip(ms.Window, 120))
			}
			m.Description = fmt.Sprintf("statistical layer p=%.2f >= %.2f on %s; strongest features: %s", ms.Probability, t, where, featureList(ms.Top, 5))
			out = append(out, m)
		}
	}
	rank := func(m Match) int {
		switch {
		case m.Model != nil:
			return 2
		case m.Lexicon != nil:
			return 1
		}
		return 0
	}
	slices.SortStableFunc(out, func(a, b Match) int {
		if d := categoryIndex(a.Category) - categoryIndex(b.Category); d != 0 {
			return d
		}
		if d := rank(a) - rank(b); d != 0 {
			return d
		}
		return a.Start - b.Start
	})
	return out
}

// featureList renders the first k positive features for a description.
func featureList(fs []ModelFeature, k int) string {
	var parts []string
	for _, f := range fs {
		if f.Weight <= 0 {
			continue
		}
		parts = append(parts, fmt.Sprintf("%q %+.2f", f.Feature, f.Weight))
		if len(parts) == k {
			break
		}
	}
	if len(parts) == 0 {
		return "(none positive)"
	}
	return strings.Join(parts, ", ")
}

// GuardrailsRemoved reports whether a model likely had its refusals removed:
// a lineage marker (such as "abliterated", "uncensored" or "dolphin") in its
// name, parent model or family, or a system prompt in the guardrail_removal
// category. The string says why, for example
// `model name contains "abliterated" (abliteration, ...)`.
func (c *Classifier) GuardrailsRemoved(name, parentModel, family, systemPrompt string) (bool, string) {
	_, removed, why := c.Model(name, parentModel, family, systemPrompt)
	return removed, why
}

// Model classifies one model at once: its system prompt's categories (as
// SystemPrompt) and the guardrail verdict (as GuardrailsRemoved), scoring
// the prompt only once.
func (c *Classifier) Model(name, parentModel, family, systemPrompt string) (categories []string, removed bool, evidence string) {
	categories = c.SystemPrompt(systemPrompt)
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
			return categories, true, fmt.Sprintf("%s contains %q (%s)", f.label, term, mk.reason)
		}
	}
	if !slices.Contains(categories, service.CategoryGuardrailRemoval) {
		return categories, false, ""
	}
	for _, m := range c.Explain(systemPrompt) {
		if m.Category != service.CategoryGuardrailRemoval {
			continue
		}
		switch {
		case m.Lexicon != nil:
			return categories, true, fmt.Sprintf("system prompt scores %.1f on the guardrail_removal lexicon: %s",
				m.Lexicon.Score, clip(hitList(m.Lexicon.Hits), 160))
		case m.Model != nil:
			return categories, true, fmt.Sprintf("system prompt classified as guardrail_removal by the statistical layer (p=%.2f): %s",
				m.Model.Probability, clip(featureList(m.Model.Top, 4), 160))
		default:
			return categories, true, fmt.Sprintf("system prompt matches rule %s: %q", m.RuleID, clip(m.Text, 80))
		}
	}
	return categories, true, "system prompt classified as guardrail_removal"
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
