package gguf

import (
	"slices"
	"strings"
	"testing"

	"github.com/llmfence/llmfence/internal/pythontest"
)

type jinjaReq struct {
	Template string `json:"template"`
}

type jinjaResp struct {
	Names  []string `json:"names"`
	Output *string  `json:"output"`
	Error  *string  `json:"error"`
}

func askJinja2(t *testing.T, cases []pythontest.TemplateCase) []jinjaResp {
	t.Helper()
	py := pythontest.Need(t, "jinja2")
	reqs := make([]jinjaReq, len(cases))
	for i, c := range cases {
		reqs[i] = jinjaReq{Template: c.Template}
	}
	return pythontest.Batch[jinjaReq, jinjaResp](t, py, pythontest.Oracle("jinja"), reqs)
}

// TestDifferentialJinja2Escapes renders templates that reach attribute
// and item names through every accessor and every spelling (concatenation,
// format, %, join, reverse, slices, replace, case folding, aliases,
// namespace attributes, loops) with Jinja2's own sandbox, recording every
// name Jinja2 asks for. GGUF-050 must be reported exactly when Jinja2
// asked for a Python internal — except that names built in a loop are
// flagged whatever they turn out to be.
func TestDifferentialJinja2Escapes(t *testing.T) {
	cases := pythontest.EscapeCases()
	refs := askJinja2(t, cases)
	d := dataForTest(t)
	bad := 0
	for i, c := range cases {
		escape := false
		for _, n := range refs[i].Names {
			if strings.HasPrefix(n, "_") || d.tmpl.Sandbox.attrs[n] {
				escape = true
			}
		}
		got := slices.Contains(ids(templateFindingsT(t, c.Template, "")), "GGUF-050")
		var problem string
		switch {
		case escape && !got:
			problem = "Jinja2 reaches a Python internal, no GGUF-050"
		case !escape && got && !c.Unresolvable:
			problem = "GGUF-050 for names Jinja2 resolves to ordinary ones"
		case c.Unresolvable && !got:
			problem = "a name built in a loop is not flagged"
		}
		if problem != "" {
			bad++
			if bad <= 15 {
				t.Errorf("%s %q: %s (Jinja2 names %v)", c.Name, c.Template, problem, refs[i].Names)
			}
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d templates disagree with Jinja2", bad, len(cases))
	}
}

// TestDifferentialJinja2Instructions renders templates whose output is a
// sentence spelled every way (and hidden with invisible characters,
// look-alike letters, other languages); when the text Jinja2 renders holds
// an instruction the patterns know, the static analysis must report
// GGUF-053, and must not when it does not.
func TestDifferentialJinja2Instructions(t *testing.T) {
	cases := pythontest.InstructionCases()
	refs := askJinja2(t, cases)
	d := dataForTest(t)
	bad := 0
	for i, c := range cases {
		if refs[i].Output == nil {
			t.Fatalf("%s: Jinja2 cannot render it: %v", c.Name, *refs[i].Error)
		}
		out := *refs[i].Output
		want := false
		for _, text := range []string{d.tmpl.normalize(out, false), d.tmpl.normalize(out, true)} {
			for _, in := range d.tmpl.Instructions {
				if in.re.MatchString(text) {
					want = true
				}
			}
		}
		got := slices.Contains(ids(templateFindingsT(t, c.Template, "")), "GGUF-053")
		if want != got {
			bad++
			if bad <= 15 {
				t.Errorf("%s %q: Jinja2 renders %q; instruction in it %v, GGUF-053 %v", c.Name, c.Template, out, want, got)
			}
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d templates disagree", bad, len(cases))
	}
}
