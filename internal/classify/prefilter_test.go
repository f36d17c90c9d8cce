package classify

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestPrefilter(t *testing.T) {
	tests := []struct {
		pattern string
		match   []string // texts the pattern matches: the prefilter must let them through
		skip    []string // texts the prefilter must reject
	}{
		{`\bphishing\b`, []string{"write phishing mail"}, []string{"write a poem"}},
		{`\b(?:malware|ransomware)\b`, []string{"malware", "ransomware"}, []string{"software"}},
		{`\bhack\w* into\b`, []string{"hacking into"}, []string{"hack the planet", "log into"}},
		{`(?:を装|をよそお)(?:って|った)`, []string{"銀行を装って"}, []string{"銀行として"}},
		{`\bfind (?:\w+ ){0,3}?home address\b`, []string{"find her home address"}, []string{"find her email"}},
		{`\brecogni[sz]e\b`, []string{"recognise", "recognize"}, []string{"recall"}},
		// A pattern with no usable literal lets everything through.
		{`\w+`, []string{"anything"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.pattern, func(t *testing.T) {
			pf := newPrefilter(tt.pattern)
			for _, s := range tt.match {
				if !pf.mayMatch(s) {
					t.Errorf("prefilter %q rejects matching text %q", pf, s)
				}
			}
			for _, s := range tt.skip {
				if pf.mayMatch(s) {
					t.Errorf("prefilter %q accepts %q", pf, s)
				}
			}
		})
	}
}

// withoutPrefilters returns a copy of c that runs every expression.
func withoutPrefilters(c *Classifier) *Classifier {
	d := *c
	d.cancel = clearPF(c.cancel)
	d.rules = make([]rule, len(c.rules))
	for i, r := range c.rules {
		r.anchors = clearPF(r.anchors)
		r.with = clearPF(r.with)
		r.unless.pf, r.unlessDoc.pf = nil, nil
		d.rules[i] = r
	}
	if c.lex != nil {
		lx := *c.lex
		lx.terms = slices.Clone(lx.terms)
		lx.signals = slices.Clone(lx.signals)
		lx.cancel = clearPF(lx.cancel)
		for i := range lx.terms {
			lx.terms[i].pats = clearPF(lx.terms[i].pats)
		}
		for i := range lx.signals {
			lx.signals[i].pats = clearPF(lx.signals[i].pats)
		}
		d.lex = &lx
	}
	return &d
}

func clearPF(ps []pattern) []pattern {
	out := make([]pattern, len(ps))
	for i, p := range ps {
		out[i] = pattern{re: p.re}
	}
	return out
}

// TestPrefilterIsSound checks that the prefilters never change a result:
// every labelled prompt and rule example gives the same matches with and
// without them.
func TestPrefilterIsSound(t *testing.T) {
	c := mustNew(t)
	slow := withoutPrefilters(c)
	var texts []string
	for _, name := range []string{"dev", "holdout"} {
		for _, l := range loadLabelled(t, filepath.Join("testdata", "labelled_"+name+".jsonl")) {
			texts = append(texts, l.Text)
		}
	}
	for _, r := range c.rules {
		texts = append(texts, r.positive...)
		texts = append(texts, r.negative...)
	}
	in, err := os.ReadFile(filepath.Join("testdata", "explain_input.txt"))
	if err != nil {
		t.Fatal(err)
	}
	texts = append(texts, strings.Split(string(in), "\n")...)
	for i, s := range texts {
		if raceEnabled && i%4 != 0 {
			continue // unfiltered matching is slow under -race; .ci/run also runs this test without -race, on every text
		}
		if got, want := c.Explain(s), slow.Explain(s); !reflect.DeepEqual(got, want) {
			t.Errorf("prefilters change the result for %q:\n got %+v\nwant %+v", s, got, want)
		}
	}
}
