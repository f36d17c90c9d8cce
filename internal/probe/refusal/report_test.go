package refusal

import (
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
)

// scores are the detector's figures on one labelled set.
type scores struct {
	n int
	// Refusal as the positive class (partial and compliance negative).
	p, r, f1 float64
	// Three-class accuracy and macro-F1.
	acc, macro float64
}

func measure(d *Detector, set []labelled) scores {
	classes := []string{Refusal, Partial, Compliance}
	conf := map[[2]string]int{}
	for _, l := range set {
		conf[[2]string{l.Label, d.Detect(l.Response).Verdict}]++
	}
	f1 := func(c string) (p, r, f float64) {
		tp := conf[[2]string{c, c}]
		var pred, gold int
		for _, o := range classes {
			pred += conf[[2]string{o, c}]
			gold += conf[[2]string{c, o}]
		}
		if pred > 0 {
			p = float64(tp) / float64(pred)
		}
		if gold > 0 {
			r = float64(tp) / float64(gold)
		}
		if p+r > 0 {
			f = 2 * p * r / (p + r)
		}
		return
	}
	var s scores
	s.n = len(set)
	s.p, s.r, s.f1 = f1(Refusal)
	correct := 0
	var macro float64
	for _, c := range classes {
		correct += conf[[2]string{c, c}]
		_, _, f := f1(c)
		macro += f
	}
	s.acc = float64(correct) / float64(len(set))
	s.macro = macro / float64(len(classes))
	return s
}

// substringScores measures the substring-list approach: refusal when any
// phrase occurs anywhere in the answer. It cannot say "partial", so only
// the refusal figures are given.
func substringScores(t *testing.T, phrases []string, set []labelled) scores {
	var tp, fp, fn int
	for _, l := range set {
		pred := false
		for _, p := range phrases {
			if strings.Contains(l.Response, p) {
				pred = true
				break
			}
		}
		gold := l.Label == Refusal
		switch {
		case pred && gold:
			tp++
		case pred && !gold:
			fp++
		case !pred && gold:
			fn++
		}
	}
	s := scores{n: len(set), acc: -1, macro: -1}
	if tp+fp > 0 {
		s.p = float64(tp) / float64(tp+fp)
	}
	if tp+fn > 0 {
		s.r = float64(tp) / float64(tp+fn)
	}
	if s.p+s.r > 0 {
		s.f1 = 2 * s.p * s.r / (s.p + s.r)
	}
	return s
}

func readPhrases(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			out = append(out, line)
		}
	}
	return out
}

func (s scores) row(name string) string {
	if s.acc < 0 {
		return fmt.Sprintf("| %s | %d | %.3f | %.3f | %.3f | – | – |", name, s.n, s.p, s.r, s.f1)
	}
	return fmt.Sprintf("| %s | %d | %.3f | %.3f | %.3f | %.3f | %.3f |", name, s.n, s.p, s.r, s.f1, s.acc, s.macro)
}

func byLang(set []labelled, lang string) []labelled {
	var out []labelled
	for _, l := range set {
		if l.Lang == lang {
			out = append(out, l)
		}
	}
	return out
}

// TestReport measures the detector on the development set (written while
// building it) and the blind set (written by an independent author, not
// looked at while the rules were tuned), and checks that docs/probe.md
// publishes exactly these figures.
func TestReport(t *testing.T) {
	d, err := New()
	if err != nil {
		t.Fatal(err)
	}
	dev := readSet(t, "testdata/dev.jsonl")
	blind := readSet(t, "testdata/blind.jsonl")
	gcg := readPhrases(t, "testdata/gcg_refusal_phrases.txt")
	if len(gcg) != 29 {
		t.Fatalf("%d GCG phrases, want 29", len(gcg))
	}
	rows := []string{
		measure(d, blind).row("blind, all"),
		measure(d, byLang(blind, "en")).row("blind, English"),
		measure(d, byLang(blind, "ja")).row("blind, Japanese"),
		measure(d, dev).row("development, all"),
		substringScores(t, gcg, blind).row("GCG 29-phrase substring list, blind"),
		substringScores(t, gcg, byLang(blind, "ja")).row("GCG 29-phrase substring list, blind Japanese"),
	}
	table := strings.Join(rows, "\n")
	t.Logf("\n%s", table)
	doc, err := os.ReadFile("../../../docs/probe.md")
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`(?s)<!-- refusal-figures -->\n.*?\n<!-- /refusal-figures -->`)
	m := re.Find(doc)
	if m == nil {
		t.Fatal("docs/probe.md has no <!-- refusal-figures --> block")
	}
	if !strings.Contains(string(m), table) {
		t.Errorf("docs/probe.md publishes other figures than measured; put these rows in its refusal-figures table:\n%s", table)
	}
	// A floor, so a change that breaks the detector fails here and not only
	// in the docs.
	if s := measure(d, dev); s.f1 < 0.9 {
		t.Errorf("development F1 %.3f fell below 0.9", s.f1)
	}
}

// TestBlindMistakes lists the blind set's misjudged answers (with -v), to
// read, never to tune on: the blind figures stay honest only while no rule
// is written for them.
func TestBlindMistakes(t *testing.T) {
	if !testing.Verbose() {
		t.Skip("run with -v to list")
	}
	d, _ := New()
	for _, l := range readSet(t, "testdata/blind.jsonl") {
		if r := d.Detect(l.Response); r.Verdict != l.Label {
			t.Logf("%s %s: want %s got %s", l.ID, l.Lang, l.Label, r.Verdict)
		}
	}
}
