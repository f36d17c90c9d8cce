package gibberish

import (
	"math/rand/v2"
	"testing"
	"unicode/utf8"

	gt "github.com/llmfence/llmfence/internal/gibberish/gibberishtest"
)

// TestScreen: Screen passes every poisoned document FindTurn reports, and
// rules out most clean documents.
func TestScreen(t *testing.T) {
	sets := mustClean(t)
	r := rand.New(rand.NewPCG(4, 4))
	vocabs := gt.Vocabs()
	m := Default()
	missed, turns := 0, 0
	for _, kind := range []string{"docs", "man", "japanese", "code"} {
		texts := sets[kind]
		for i := range samples(150) {
			clean := texts[(i*13)%len(texts)]
			cut := r.IntN(min(1000, len(clean)))
			for cut > 0 && !utf8.RuneStart(clean[cut]) {
				cut--
			}
			doc := clean[:cut] + " <SUDO> " + vocabs[i%3].Soup(r, 400+r.IntN(500)) + clean[cut:]
			if _, ok := m.FindTurn(doc); ok {
				turns++
				if !m.Screen(doc) {
					missed++
				}
			}
		}
	}
	if missed > 0 {
		t.Errorf("Screen ruled out %d of %d documents FindTurn reports", missed, turns)
	}
	passed, n, bytes, screened := 0, 0, 0, 0
	for _, texts := range sets {
		for _, text := range texts[:min(len(texts), samples(300))] {
			n++
			bytes += len(text)
			if m.Screen(text) {
				passed++
				screened += len(text)
			}
		}
	}
	t.Logf("screen: %d of %d poisoned pass (FindTurn %d); %d of %d clean documents pass (%.0f%% of bytes)", turns-missed, turns, turns, passed, n, 100*float64(screened)/float64(bytes))
}
