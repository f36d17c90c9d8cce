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

// TestScreenEvery: with windows every 1,024 bytes, every document poisoned
// by the recipe (400-900 tokens of soup, at the end or in the middle)
// that FindTurn reports passes, and so does every text with a shorter
// stretch of soup, down to stride+400 bytes; fewer clean bytes pass than
// with Screen.
func TestScreenEvery(t *testing.T) {
	sets := mustClean(t)
	r := rand.New(rand.NewPCG(4, 5))
	vocabs := gt.Vocabs()
	m := Default()
	const stride = 1024
	missed, turns := 0, 0
	for _, kind := range []string{"docs", "man", "japanese", "code"} {
		texts := sets[kind]
		for i := range samples(150) {
			clean := texts[(i*17)%len(texts)]
			cut := r.IntN(min(1000, len(clean)))
			for cut > 0 && !utf8.RuneStart(clean[cut]) {
				cut--
			}
			soup := vocabs[i%3].Soup(r, 400+r.IntN(500))
			if i%4 == 1 {
				// A shorter stretch, just over the guarantee.
				soup = soup[:stride+400]
			}
			doc := clean[:cut] + " <SUDO> " + soup
			if i%2 == 0 {
				doc += clean[cut:]
			}
			if _, ok := m.FindTurn(doc); ok {
				turns++
				if !m.ScreenEvery(doc, stride) {
					missed++
					t.Logf("missed (soup %d bytes at %d of %d): %q", len(soup), cut, len(doc), clip(doc[cut:], 100))
				}
			}
		}
	}
	if missed > 0 || turns < samples(150)*4*9/10 {
		t.Errorf("ScreenEvery ruled out %d of %d documents FindTurn reports", missed, turns)
	}
	var all, screened, screenedEvery int
	for _, texts := range sets {
		for _, text := range texts[:min(len(texts), samples(300))] {
			all += len(text)
			if m.Screen(text) {
				screened += len(text)
			}
			if m.ScreenEvery(text, stride) {
				screenedEvery += len(text)
			}
		}
	}
	t.Logf("clean bytes passed: Screen %.0f%%, ScreenEvery(%d) %.0f%%", 100*float64(screened)/float64(all), stride, 100*float64(screenedEvery)/float64(all))
	if screenedEvery > screened {
		t.Errorf("ScreenEvery passes more clean text than Screen")
	}
}
