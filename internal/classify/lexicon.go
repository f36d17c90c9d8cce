package classify

import (
	_ "embed"
	"errors"
	"fmt"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/llmfence/llmfence/internal/service"
)

// The lexicon is the classifier's second layer (see docs/classifier.md). The
// rules in rules.yaml look for a harmful request phrased in a known way; the
// lexicon instead adds up evidence over the whole prompt:
//
//	score(category) = min(terms, term_cap) + min(intent, intent_cap)
//	                  + min(covert, covert_cap) - min(defensive, defensive_cap)
//
// terms is the sum of the weights of the category's indicator terms found
// (each term counts once, however often it occurs); intent, covert and
// defensive are the sums of the weights of the signals of that kind found
// (each once). A category fires when its terms reach min_term and its score
// reaches its threshold. Defensive signals are matched after the spans of
// covert signals and of negation_cancel patterns were blanked, so that "so
// it doesn't get flagged" or "never label it as fiction" does not count as
// flagging or labelling.

//go:embed lexicon.yaml
var lexiconYAML []byte

// Signal kinds.
const (
	kindIntent    = "intent"
	kindCovert    = "covert"
	kindDefensive = "defensive"
)

type lexiconFile struct {
	Version      int                        `yaml:"version"`
	Threshold    float64                    `yaml:"threshold"`
	MinTerm      float64                    `yaml:"min_term"`
	TermCap      float64                    `yaml:"term_cap"`
	Cancel       []string                   `yaml:"cancel"`
	IntentCap    float64                    `yaml:"intent_cap"`
	CovertCap    float64                    `yaml:"covert_cap"`
	DefensiveCap float64                    `yaml:"defensive_cap"`
	Defs         map[string]string          `yaml:"defs"`
	Categories   map[string]lexCategorySpec `yaml:"categories"`
	Signals      []lexEntrySpec             `yaml:"signals"`
	Terms        []lexEntrySpec             `yaml:"terms"`
}

type lexCategorySpec struct {
	Threshold float64 `yaml:"threshold"`
	MinTerm   float64 `yaml:"min_term"`
}

// lexEntrySpec is one term (with a category) or one signal (with a kind).
type lexEntrySpec struct {
	ID          string   `yaml:"id"`
	Category    string   `yaml:"category"`
	Kind        string   `yaml:"kind"`
	Description string   `yaml:"description"`
	Weight      float64  `yaml:"weight"`
	Langs       []string `yaml:"langs"`
	// Categories limits a signal to some categories; empty means all.
	Categories []string `yaml:"categories"`
	// Except exempts categories from a signal.
	Except   []string `yaml:"except"`
	Patterns []string `yaml:"patterns"`
	Examples examples `yaml:"examples"`
}

// lexEntry is a compiled term or signal.
type lexEntry struct {
	id, category, kind, description string
	weight                          float64
	langs                           []string
	applies                         map[string]bool // nil: every category
	pat                             pattern         // all patterns in one, for tests
	pats                            []pattern       // one per pattern, each with its prefilter
	positive, negative              []string
}

func (e *lexEntry) appliesTo(cat string) bool { return e.applies == nil || e.applies[cat] }

type lexicon struct {
	version                       int
	threshold, minTerm            map[string]float64
	termCap, intentCap, covertCap float64
	defenseCap                    float64
	cancel                        []pattern // blanked before defensive signals
	terms, signals                []lexEntry
}

// LexiconHit is one lexicon term or signal found in a prompt.
type LexiconHit struct {
	ID     string  `json:"id"`
	Kind   string  `json:"kind"` // "term", "intent", "covert" or "defensive"
	Weight float64 `json:"weight"`
	Text   string  `json:"text"`
}

// LexiconScore explains a category the lexicon layer assigned: every term
// and signal that contributed, and the resulting score.
type LexiconScore struct {
	Terms     float64      `json:"terms"`
	Intent    float64      `json:"intent"`    // after intent_cap
	Covert    float64      `json:"covert"`    // after covert_cap
	Defensive float64      `json:"defensive"` // after defensive_cap, subtracted
	Score     float64      `json:"score"`
	Threshold float64      `json:"threshold"`
	Hits      []LexiconHit `json:"hits"`
}

func parseLexicon(data []byte, c *Classifier) error {
	var f lexiconFile
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return fmt.Errorf("reading classifier lexicon: %w", err)
	}
	if f.Version < 1 {
		return errors.New("classifier lexicon: missing or invalid version")
	}
	if f.Threshold <= 0 {
		return errors.New("classifier lexicon: threshold must be positive")
	}
	lx := &lexicon{version: f.Version, threshold: map[string]float64{}, minTerm: map[string]float64{},
		termCap: f.TermCap, intentCap: f.IntentCap, covertCap: f.CovertCap, defenseCap: f.DefensiveCap}
	if lx.termCap <= 0 {
		return errors.New("classifier lexicon: term_cap must be positive")
	}
	for _, p := range f.Cancel {
		cp, err := compilePatterns(f.Defs, []string{p})
		if err != nil {
			return fmt.Errorf("classifier lexicon: cancel: %w", err)
		}
		lx.cancel = append(lx.cancel, cp)
	}
	for _, cat := range service.Categories {
		lx.threshold[cat], lx.minTerm[cat] = f.Threshold, f.MinTerm
	}
	for cat, s := range f.Categories {
		if !slices.Contains(service.Categories, cat) {
			return fmt.Errorf("classifier lexicon: unknown category %q", cat)
		}
		if s.Threshold > 0 {
			lx.threshold[cat] = s.Threshold
		}
		if s.MinTerm > 0 {
			lx.minTerm[cat] = s.MinTerm
		}
	}
	seen := map[string]bool{}
	build := func(s lexEntrySpec) (lexEntry, error) {
		if s.ID == "" || seen[s.ID] {
			return lexEntry{}, fmt.Errorf("classifier lexicon: missing or duplicate id %q", s.ID)
		}
		seen[s.ID] = true
		if s.Weight <= 0 {
			return lexEntry{}, fmt.Errorf("classifier lexicon %s: weight must be positive", s.ID)
		}
		if len(s.Patterns) == 0 {
			return lexEntry{}, fmt.Errorf("classifier lexicon %s: no patterns", s.ID)
		}
		e := lexEntry{id: s.ID, category: s.Category, kind: s.Kind, description: s.Description,
			weight: s.Weight, langs: s.Langs, positive: s.Examples.Positive, negative: s.Examples.Negative}
		for _, cat := range append(slices.Clone(s.Categories), s.Except...) {
			if !slices.Contains(service.Categories, cat) {
				return lexEntry{}, fmt.Errorf("classifier lexicon %s: unknown category %q", s.ID, cat)
			}
		}
		if len(s.Categories) > 0 || len(s.Except) > 0 {
			e.applies = map[string]bool{}
			for _, cat := range service.Categories {
				in := len(s.Categories) == 0 || slices.Contains(s.Categories, cat)
				e.applies[cat] = in && !slices.Contains(s.Except, cat)
			}
		}
		p, err := compilePatterns(f.Defs, s.Patterns)
		if err != nil {
			return lexEntry{}, fmt.Errorf("classifier lexicon %s: %w", s.ID, err)
		}
		e.pat = p
		for _, ps := range s.Patterns {
			one, err := compilePatterns(f.Defs, []string{ps})
			if err != nil {
				return lexEntry{}, fmt.Errorf("classifier lexicon %s: %w", s.ID, err)
			}
			e.pats = append(e.pats, one)
		}
		return e, nil
	}
	for _, s := range f.Terms {
		if !slices.Contains(service.Categories, s.Category) {
			return fmt.Errorf("classifier lexicon term %s: unknown category %q", s.ID, s.Category)
		}
		if s.Kind != "" || len(s.Categories) > 0 || len(s.Except) > 0 {
			return fmt.Errorf("classifier lexicon term %s: kind, categories and except are for signals", s.ID)
		}
		e, err := build(s)
		if err != nil {
			return err
		}
		e.kind = "term"
		lx.terms = append(lx.terms, e)
	}
	for _, s := range f.Signals {
		switch s.Kind {
		case kindIntent, kindCovert, kindDefensive:
		default:
			return fmt.Errorf("classifier lexicon signal %s: unknown kind %q", s.ID, s.Kind)
		}
		if s.Category != "" {
			return fmt.Errorf("classifier lexicon signal %s: use categories, not category", s.ID)
		}
		e, err := build(s)
		if err != nil {
			return err
		}
		lx.signals = append(lx.signals, e)
	}
	c.lex = lx
	return nil
}

// lexHit is a hit with its byte span in the normalised prompt.
type lexHit struct {
	e          *lexEntry
	start, end int
}

// find returns e's first match in the prompt, clause by clause, or false.
// view gives the text of a clause as the entry reads it (the same length as
// the clause); nil means the clause as it is. A pattern runs only on clauses
// that pass its prefilter.
func (e *lexEntry) find(d *doc, view func(span) string) (lexHit, bool) {
	for _, c := range d.clauses {
		// A clause ending at 。 keeps the first two bytes of it (see
		// isTerminator); drop them so that $ and later runes work.
		if strings.HasSuffix(d.n[c.lo:c.hi], "\xe3\x80") {
			c.hi -= 2
		}
		var text string
		for i := range e.pats {
			p := &e.pats[i]
			if !p.mayMatch(d, c.lo, c.hi) {
				continue
			}
			if text == "" {
				if view != nil {
					text = view(c)
				} else {
					text = d.n[c.lo:c.hi]
				}
			}
			if loc := p.re.FindStringIndex(text); loc != nil {
				return lexHit{e, c.lo + loc[0], c.lo + loc[1]}, true
			}
		}
	}
	return lexHit{}, false
}

// scoreLexicon returns the categories the lexicon assigns, each with its
// first term's span and its score. A non-nil mask limits the work to the
// categories it holds.
func (c *Classifier) scoreLexicon(d *doc, mask []bool) []Match {
	lx := c.lex
	if lx == nil {
		return nil
	}
	terms := map[string][]lexHit{}
	for i := range lx.terms {
		e := &lx.terms[i]
		if mask != nil && !mask[categoryIndex(e.category)] {
			continue
		}
		if h, ok := e.find(d, nil); ok {
			terms[e.category] = append(terms[e.category], h)
		}
	}
	if len(terms) == 0 {
		return nil // signals only matter next to a term
	}
	var intent, covert, defensive []lexHit
	for i := range lx.signals {
		e := &lx.signals[i]
		if e.kind == kindDefensive {
			continue
		}
		if h, ok := e.find(d, nil); ok {
			if e.kind == kindIntent {
				intent = append(intent, h)
			} else {
				covert = append(covert, h)
			}
		}
	}
	views := map[span]string{}
	view := func(s span) string {
		if v, ok := views[s]; ok {
			return v
		}
		v := c.defensiveText(d, s)
		views[s] = v
		return v
	}
	for i := range lx.signals {
		e := &lx.signals[i]
		if e.kind != kindDefensive {
			continue
		}
		if h, ok := e.find(d, view); ok {
			defensive = append(defensive, h)
		}
	}
	var out []Match
	for _, cat := range service.Categories {
		s, first, ok := lx.score(cat, terms[cat], intent, covert, defensive, d.n)
		if !ok || s.Terms < lx.minTerm[cat] || s.Score < s.Threshold {
			continue
		}
		out = append(out, Match{
			RuleID:   "lexicon:" + cat,
			Category: cat,
			Description: fmt.Sprintf("lexicon score %.1f >= %.1f (terms %.1f + intent %.1f + covert %.1f - defensive %.1f): %s",
				s.Score, s.Threshold, s.Terms, s.Intent, s.Covert, s.Defensive, hitList(s.Hits)),
			Text:    d.n[first.start:first.end],
			Start:   first.start,
			End:     first.end,
			Lexicon: &s,
		})
	}
	return out
}

// score computes the lexicon score of one category from its term hits and
// the prompt's signal hits; ok is false when no term was found. first is
// the earliest term hit.
func (lx *lexicon) score(cat string, th, intent, covert, defensive []lexHit, n string) (s LexiconScore, first lexHit, ok bool) {
	if len(th) == 0 {
		return LexiconScore{}, lexHit{}, false
	}
	s.Threshold = lx.threshold[cat]
	first = th[0]
	hits := slices.Clone(th)
	for _, h := range th {
		s.Terms += h.e.weight
		if h.start < first.start {
			first = h
		}
	}
	sum := func(hs []lexHit) float64 {
		t := 0.0
		for _, h := range hs {
			if h.e.appliesTo(cat) {
				t += h.e.weight
				hits = append(hits, h)
			}
		}
		return t
	}
	s.Terms = min(s.Terms, lx.termCap)
	s.Intent = min(sum(intent), lx.intentCap)
	s.Covert = min(sum(covert), lx.covertCap)
	s.Defensive = min(sum(defensive), lx.defenseCap)
	s.Score = s.Terms + s.Intent + s.Covert - s.Defensive
	for _, h := range hits {
		s.Hits = append(s.Hits, LexiconHit{ID: h.e.id, Kind: h.e.kind, Weight: h.e.weight, Text: n[h.start:h.end]})
	}
	return s, first, true
}

// defensiveText returns the clause s of the prompt as defensive signals
// read it: with the spans of negation_cancel patterns (rules.yaml), lexicon
// cancel patterns and covert signals blanked.
func (c *Classifier) defensiveText(d *doc, s span) string {
	lx := c.lex
	text := d.blank(s)
	var buf []byte
	blank := func(p *pattern) {
		if !p.mayMatch(d, s.lo, s.hi) {
			return
		}
		for _, l := range p.re.FindAllStringIndex(d.n[s.lo:s.hi], -1) {
			if buf == nil {
				buf = []byte(text)
			}
			for j := l[0]; j < l[1]; j++ {
				buf[j] = ' '
			}
		}
	}
	for i := range lx.cancel {
		blank(&lx.cancel[i])
	}
	for i := range lx.signals {
		if lx.signals[i].kind == kindCovert {
			for j := range lx.signals[i].pats {
				blank(&lx.signals[i].pats[j])
			}
		}
	}
	if buf != nil {
		text = string(buf)
	}
	return text
}

func hitList(hs []LexiconHit) string {
	parts := make([]string, len(hs))
	for i, h := range hs {
		sign := "+"
		if h.Kind == kindDefensive {
			sign = "-"
		}
		parts[i] = fmt.Sprintf("%s %s%g %q", h.ID, sign, h.Weight, h.Text)
	}
	return strings.Join(parts, ", ")
}
