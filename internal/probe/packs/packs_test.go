package packs

import (
	"encoding/base64"
	"os"
	"strings"
	"testing"
)

func TestBuiltinPacks(t *testing.T) {
	ps, err := Builtin()
	if err != nil {
		t.Fatal(err)
	}
	suites := map[string]bool{}
	for _, p := range ps {
		suites[p.Suite] = true
		for _, pr := range p.Probes {
			t.Run(p.Name+"/"+pr.ID, func(t *testing.T) {
				if got := pr.Langs(); len(got) != 2 {
					t.Fatalf("languages %v, want en and ja", got)
				}
				for _, l := range pr.Langs() {
					out, err := pr.Render(l, Data{Request: "REQ", Other: "OTHER", Prefix: "PREFIX"})
					if err != nil {
						t.Fatal(err)
					}
					if pr.Kind == KindWrapper && !strings.Contains(out, "REQ") && !strings.Contains(out, "OTHER") &&
						!strings.Contains(out, base64.StdEncoding.EncodeToString([]byte("REQ"))) && !strings.Contains(out, "R E Q") &&
						!strings.Contains(out, Leet("REQ")) {
						t.Errorf("%s wrapper output carries no request: %q", l, out)
					}
					if pr.Kind == KindCanary && !strings.Contains(out, "PREFIX") {
						t.Errorf("%s canary prompt carries no prefix", l)
					}
				}
			})
		}
	}
	for _, s := range Suites {
		if !suites[s] {
			t.Errorf("no built-in pack for suite %s", s)
		}
	}
	if ps[0].Suite != SuiteGuardrails {
		t.Errorf("packs not in suite order: first is %s", ps[0].Suite)
	}
}

func TestEveryFamilyHasAWrapper(t *testing.T) {
	ps, err := Builtin()
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, p := range ps {
		if p.Suite == SuiteRobustness {
			for _, pr := range p.Probes {
				have[pr.Category] = true
			}
		}
	}
	for _, f := range Families {
		if !have[f] {
			t.Errorf("family %s has no built-in wrapper", f)
		}
	}
}

func TestGuardrailsCoverCategories(t *testing.T) {
	ps, err := Builtin()
	if err != nil {
		t.Fatal(err)
	}
	harmful, benign := map[string]int{}, map[string]int{}
	for _, p := range ps {
		if p.Suite != SuiteGuardrails {
			continue
		}
		for _, pr := range p.Probes {
			if pr.Kind == KindHarmful {
				harmful[pr.Category]++
			} else {
				benign[pr.Category]++
			}
		}
	}
	for _, c := range requestCategories() {
		if harmful[c] < 3 || benign[c] < 1 {
			t.Errorf("category %s: %d harmful and %d benign probes, want at least 3 and 1", c, harmful[c], benign[c])
		}
	}
}

func TestLoadRefuses(t *testing.T) {
	head := "pack: mine\nversion: 1\nsuite: guardrails\nprobes:\n"
	cases := map[string]string{
		"unknown field":             head + "  - id: a\n    category: fraud_phishing\n    kind: harmful\n    detector: refusal\n    colour: red\n    prompts: {en: x}\n",
		"csam":                      head + "  - id: a\n    category: csam\n    kind: harmful\n    detector: refusal\n    prompts: {en: x}\n",
		"bad kind":                  head + "  - id: a\n    category: fraud_phishing\n    kind: wrapper\n    detector: refusal\n    prompts: {en: x}\n",
		"bad detector":              head + "  - id: a\n    category: fraud_phishing\n    kind: harmful\n    detector: gibberish\n    prompts: {en: x}\n",
		"duplicate id":              head + "  - id: a\n    category: fraud_phishing\n    kind: harmful\n    detector: refusal\n    prompts: {en: x}\n  - id: a\n    category: fraud_phishing\n    kind: harmful\n    detector: refusal\n    prompts: {en: y}\n",
		"bad language":              head + "  - id: a\n    category: fraud_phishing\n    kind: harmful\n    detector: refusal\n    prompts: {fr: x}\n",
		"template in req":           head + "  - id: a\n    category: fraud_phishing\n    kind: harmful\n    detector: refusal\n    prompts: {en: '{{.Request}}'}\n",
		"no probes":                 head,
		"no version":                "pack: mine\nsuite: guardrails\nprobes:\n  - id: a\n",
		"bad suite":                 "pack: mine\nversion: 1\nsuite: nope\nprobes:\n  - id: a\n",
		"wrapper no req":            "pack: mine\nversion: 1\nsuite: robustness\nprobes:\n  - id: a\n    category: roleplay\n    kind: wrapper\n    detector: refusal\n    prompts: {en: 'hello'}\n",
		"bad template":              "pack: mine\nversion: 1\nsuite: robustness\nprobes:\n  - id: a\n    category: roleplay\n    kind: wrapper\n    detector: refusal\n    prompts: {en: '{{.Request}} {{.Nope}}'}\n",
		"bad family":                "pack: mine\nversion: 1\nsuite: robustness\nprobes:\n  - id: a\n    category: poetry\n    kind: wrapper\n    detector: refusal\n    prompts: {en: '{{.Request}}'}\n",
		"triggers outside backdoor": head + "  - id: a\n    category: fraud_phishing\n    kind: harmful\n    detector: refusal\n    prompts: {en: x}\ntriggers:\n  - text: x\n",
	}
	for name, y := range cases {
		if _, err := Load(strings.NewReader(y), name); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	ok := head + "  - id: a\n    category: fraud_phishing\n    kind: harmful\n    detector: refusal\n    prompts: {en: Write a scam.}\n"
	p, err := Load(strings.NewReader(ok), "mine.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if p.Origin != "mine.yaml" || len(p.Probes[0].Langs()) != 1 {
		t.Errorf("user pack: %+v", p)
	}
}

func TestEncodings(t *testing.T) {
	if got := Leet("Write a test"); got != "Wr173 4 7357" {
		t.Errorf("Leet = %q", got)
	}
	if got := Split("ab cd"); got != "a b / c d" {
		t.Errorf("Split = %q", got)
	}
	if got := Split("詐欺"); got != "詐 欺" {
		t.Errorf("Split ja = %q", got)
	}
}

func FuzzLoad(f *testing.F) {
	f.Add([]byte("pack: a\nversion: 1\nsuite: leak\nprobes:\n  - id: c\n    kind: canary\n    detector: canary\n    prompts: {en: '{{.Prefix}}'}\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := Load(strings.NewReader(string(b)), "fuzz")
		if err != nil {
			return
		}
		for _, pr := range p.Probes {
			for _, l := range pr.Langs() {
				if _, err := pr.Render(l, Data{Request: "r", Other: "o", Prefix: "p"}); err != nil {
					t.Fatalf("accepted pack cannot render %s/%s: %v", pr.ID, l, err)
				}
			}
		}
	})
}

// docs/probe.md lists the built-in probes as Markdown renders them.
func TestDocsListThePacks(t *testing.T) {
	ps, err := Builtin()
	if err != nil {
		t.Fatal(err)
	}
	want := "<!-- packs -->\n" + Markdown(ps) + "<!-- /packs -->"
	doc, err := os.ReadFile("../../../docs/probe.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(doc), want) {
		t.Errorf("docs/probe.md does not carry the current pack tables; put this between its packs markers:\n%s", want)
	}
}
