package classify

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/llmfence/llmfence/internal/service"
)

// ruleFile is the shape of rules.yaml.
type ruleFile struct {
	Version        int               `yaml:"version"`
	Defs           map[string]string `yaml:"defs"`
	NegationCancel []string          `yaml:"negation_cancel"`
	Rules          []ruleSpec        `yaml:"rules"`
	Lineage        []markerSpec      `yaml:"lineage"`
}

type examples struct {
	Positive []string `yaml:"positive"`
	Negative []string `yaml:"negative"`
}

type ruleSpec struct {
	ID            string     `yaml:"id"`
	Category      string     `yaml:"category"`
	Langs         []string   `yaml:"langs"`
	Description   string     `yaml:"description"`
	Patterns      []string   `yaml:"patterns"`
	With          [][]string `yaml:"with"`
	Window        int        `yaml:"window"`
	CrossSentence bool       `yaml:"cross_sentence"`
	Unless        []string   `yaml:"unless"`
	UnlessDoc     []string   `yaml:"unless_doc"`
	Examples      examples   `yaml:"examples"`
}

type markerSpec struct {
	ID       string   `yaml:"id"`
	Pattern  string   `yaml:"pattern"`
	Boundary bool     `yaml:"boundary"`
	Reason   string   `yaml:"reason"`
	Examples examples `yaml:"examples"`
}

var defRef = regexp.MustCompile(`\{\{([a-z0-9_]+)\}\}`)

// parse builds a Classifier from rules YAML.
func parse(data []byte) (*Classifier, error) {
	var f ruleFile
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("reading classifier rules: %w", err)
	}
	if f.Version < 1 {
		return nil, errors.New("classifier rules: missing or invalid version")
	}
	c := &Classifier{version: f.Version}
	compile := func(ps []string) (pattern, error) { return compilePatterns(f.Defs, ps) }

	// Each negation_cancel pattern is kept apart, with its own prefilter, so
	// that only the few that can match a clause are run on it.
	for _, nc := range f.NegationCancel {
		p, err := compile([]string{nc})
		if err != nil {
			return nil, fmt.Errorf("classifier rules: negation_cancel: %w", err)
		}
		c.cancel = append(c.cancel, p)
	}
	seen := map[string]bool{}
	for _, s := range f.Rules {
		if s.ID == "" || seen[s.ID] {
			return nil, fmt.Errorf("classifier rules: missing or duplicate rule id %q", s.ID)
		}
		seen[s.ID] = true
		if !slices.Contains(service.Categories, s.Category) {
			return nil, fmt.Errorf("classifier rule %s: unknown category %q", s.ID, s.Category)
		}
		if len(s.Patterns) == 0 {
			return nil, fmt.Errorf("classifier rule %s: no patterns", s.ID)
		}
		r := rule{
			id: s.ID, category: s.Category, description: s.Description, langs: s.Langs,
			window: s.Window, crossSentence: s.CrossSentence,
			positive: s.Examples.Positive, negative: s.Examples.Negative,
		}
		if r.window <= 0 {
			r.window = defaultWindow
		}
		for _, p := range s.Patterns {
			a, err := compile([]string{p})
			if err != nil {
				return nil, fmt.Errorf("classifier rule %s: %w", s.ID, err)
			}
			r.anchors = append(r.anchors, a)
		}
		for _, g := range s.With {
			p, err := compile(g)
			if err != nil {
				return nil, fmt.Errorf("classifier rule %s: with: %w", s.ID, err)
			}
			if p.re == nil {
				return nil, fmt.Errorf("classifier rule %s: empty with group", s.ID)
			}
			r.with = append(r.with, p)
		}
		unless, err := compile(s.Unless)
		if err != nil {
			return nil, fmt.Errorf("classifier rule %s: unless: %w", s.ID, err)
		}
		unlessDoc, err := compile(s.UnlessDoc)
		if err != nil {
			return nil, fmt.Errorf("classifier rule %s: unless_doc: %w", s.ID, err)
		}
		r.unless, r.unlessDoc = unless, unlessDoc
		c.rules = append(c.rules, r)
	}
	for _, s := range f.Lineage {
		if s.ID == "" || seen["lineage:"+s.ID] {
			return nil, fmt.Errorf("classifier rules: missing or duplicate lineage id %q", s.ID)
		}
		seen["lineage:"+s.ID] = true
		p := "(" + s.Pattern + ")"
		if s.Boundary {
			p = `(?:^|[^\pL])` + p + `(?:[^\pL]|$)`
		}
		re, err := regexp.Compile(p)
		if err != nil {
			return nil, fmt.Errorf("classifier lineage marker %s: %w", s.ID, err)
		}
		c.lineage = append(c.lineage, marker{id: s.ID, reason: s.Reason, re: re,
			positive: s.Examples.Positive, negative: s.Examples.Negative})
	}
	return c, nil
}

// compilePatterns joins patterns, after expanding {{name}} references to
// defs, into one expression with its prefilter.
func compilePatterns(defs map[string]string, ps []string) (pattern, error) {
	if len(ps) == 0 {
		return pattern{}, nil
	}
	expand := func(p string) (string, error) {
		var missing string
		out := defRef.ReplaceAllStringFunc(p, func(ref string) string {
			name := defRef.FindStringSubmatch(ref)[1]
			d, ok := defs[name]
			if !ok {
				missing = name
				return ref
			}
			return "(?:" + d + ")"
		})
		if missing != "" {
			return "", fmt.Errorf("unknown fragment {{%s}}", missing)
		}
		return out, nil
	}
	parts := make([]string, len(ps))
	for i, p := range ps {
		e, err := expand(p)
		if err != nil {
			return pattern{}, err
		}
		if _, err := regexp.Compile(e); err != nil {
			return pattern{}, fmt.Errorf("pattern %q: %w", p, err)
		}
		parts[i] = "(?:" + e + ")"
	}
	all := strings.Join(parts, "|")
	re, err := regexp.Compile(all)
	if err != nil {
		return pattern{}, err
	}
	return pattern{re: re, pf: newPrefilter(all)}, nil
}

// indexLiterals gathers the literals of every prefilter that is checked on
// spans of the prompt into c.lits and gives each pattern their ids.
func (c *Classifier) indexLiterals() {
	for i := range c.cancel {
		c.cancel[i].ids = c.lits.add(c.cancel[i].pf)
	}
	for i := range c.rules {
		r := &c.rules[i]
		for j := range r.anchors {
			r.anchors[j].ids = c.lits.add(r.anchors[j].pf)
		}
		for j := range r.with {
			r.with[j].ids = c.lits.add(r.with[j].pf)
		}
	}
	if c.lex != nil {
		for i := range c.lex.cancel {
			c.lex.cancel[i].ids = c.lits.add(c.lex.cancel[i].pf)
		}
		for _, es := range [][]lexEntry{c.lex.terms, c.lex.signals} {
			for i := range es {
				for j := range es[i].pats {
					es[i].pats[j].ids = c.lits.add(es[i].pats[j].pf)
				}
			}
		}
	}
	c.lits.build()
}
