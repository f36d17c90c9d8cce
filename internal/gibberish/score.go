package gibberish

import (
	"math"
	"unicode/utf8"
)

// Signals are the measurements behind a score, averaged over the units of
// the text (a unit is a word, or one CJK character).
type Signals struct {
	// NgramBits is the mean surprisal of the rune bigrams, bits per rune.
	NgramBits float64 `json:"ngram_bits"`
	// Lexicon is the share of words found in the lexicon.
	Lexicon float64 `json:"lexicon"`
	// WordBits is the mean surprisal of words from their lexicon rank
	// (words not in the lexicon count 20 bits).
	WordBits float64 `json:"word_bits"`
	// Repeat is the share of units that occurred within the previous 64;
	// PrefixRepeat of words whose first four characters did.
	Repeat       float64 `json:"repeat"`
	PrefixRepeat float64 `json:"prefix_repeat"`
	// OddTransitions counts case and letter/digit changes inside words,
	// per unit; MixedScript and ScriptSwitch are the shares of words that
	// mix scripts, or change script from the previous word (other than
	// between Latin and CJK).
	OddTransitions float64 `json:"odd_transitions"`
	MixedScript    float64 `json:"mixed_script"`
	ScriptSwitch   float64 `json:"script_switch"`
	// CJK is the share of units that are CJK characters.
	CJK float64 `json:"cjk"`
}

// Result is the verdict on one text.
type Result struct {
	// Score is how far the text is from natural language: 0 natural,
	// 1 token soup; 0.5 is the threshold the model was calibrated to
	// (see the package documentation for measured error rates).
	Score float64 `json:"score"`
	// Logit is the mean per-unit log-odds behind Score.
	Logit float64 `json:"logit"`
	// Units is how many units were measured; a text of fewer than about
	// 12 units gets an unreliable score.
	Units   int     `json:"units"`
	Signals Signals `json:"signals"`
}

// Gibberish reports whether Score is at or above the calibrated threshold.
func (r Result) Gibberish() bool { return r.Score >= 0.5 }

func (m *Model) logit(f *[nFeatures]float32) float32 {
	z := m.bias
	for i, w := range m.weights {
		z += w * f[i]
	}
	return z
}

func (m *Model) prob(meanLogit float64) float64 {
	return 1 / (1 + math.Exp(-float64(m.scale)*(meanLogit-float64(m.mid))))
}

// Score measures text with the default model.
func Score(text string) Result { return Default().Score(text) }

// Score measures how far text is from natural language.
func (m *Model) Score(text string) Result {
	var (
		lx  = lexer{m: m}
		sum [nFeatures]float64
		z   float64
		n   int
	)
	lx.reset()
	each(&lx, text, func(u *unitOut) {
		for i, v := range u.f {
			sum[i] += float64(v)
		}
		z += float64(m.logit(&u.f))
		n++
	})
	r := Result{Units: n}
	if n == 0 {
		return r
	}
	d := float64(n)
	r.Logit = z / d
	r.Score = m.prob(r.Logit)
	words := d - sum[fCJK]
	r.Signals = Signals{
		NgramBits:      sum[fNgram] / qStep / d,
		Repeat:         sum[fRepeat] / d,
		OddTransitions: sum[fOdd] / d,
		CJK:            sum[fCJK] / d,
	}
	if words > 0 {
		r.Signals.Lexicon = sum[fLex] / words
		r.Signals.WordBits = sum[fWordSur] / words
		r.Signals.PrefixRepeat = sum[fPrefix] / words
		r.Signals.MixedScript = sum[fMixed] / words
		r.Signals.ScriptSwitch = sum[fSwitch] / words
	}
	return r
}

// each calls fn for every unit of text.
func each(lx *lexer, text string, fn func(*unitOut)) {
	for i := 0; i < len(text); {
		c := text[i]
		if c < utf8.RuneSelf {
			lx.add(rune(c), i, 1)
			i++
		} else {
			r, w := utf8.DecodeRuneInString(text[i:])
			lx.add(r, i, w)
			i += w
		}
		for k := range lx.nq {
			fn(&lx.q[k])
		}
		lx.nq = 0
	}
	lx.flush(len(text))
	for k := range lx.nq {
		fn(&lx.q[k])
	}
	lx.nq = 0
}

// Turn is where a text turns from natural language into token soup.
type Turn struct {
	// Offset is the byte offset where the soup starts (the start of its
	// first unit); End is where it ends (the end of its last unit).
	Offset, End int
	// Units is the length of the soup in units; Logit its mean per-unit
	// log-odds, Score that mapped to 0..1 as Result.Score is.
	Units int
	Logit float64
	Score float64
	// Before is the mean log-odds of the units before Offset (0 when the
	// soup starts the text).
	Before float64
}

// FindTurn finds a turn with the default model.
func FindTurn(text string) (Turn, bool) { return Default().FindTurn(text) }

// FindTurn finds the stretch of text that is most clearly token soup: the
// run of units whose log-odds, less the calibrated threshold, sum highest.
// It reports a turn when that run spans at least the model's minimum
// units and its mean scores as gibberish. The string just before
// Turn.Offset is where a backdoor trigger would sit.
func (m *Model) FindTurn(text string) (Turn, bool) {
	var (
		lx = lexer{m: m}
		// Kadane's maximum-sum segment of (logit - mid).
		best, cur         float64
		bestStart, curStr int
		bestEnd           int
		bestN, curN       int
		bestZ, curZ       float64
		totalZ            float64
		totalN            int
		beforeZ           []float64 // cumulative, to give Turn.Before
		ends              []int
	)
	lx.reset()
	mid := float64(m.mid)
	each(&lx, text, func(u *unitOut) {
		z := float64(m.logit(&u.f))
		totalZ += z
		totalN++
		if cur <= 0 {
			cur, curStr, curN, curZ = 0, u.start, 0, 0
		}
		cur += z - mid
		curN++
		curZ += z
		if cur > best {
			best, bestStart, bestEnd, bestN, bestZ = cur, curStr, u.end, curN, curZ
		}
		_ = beforeZ
		_ = ends
	})
	if bestN < int(m.turnMin) || bestN == 0 {
		return Turn{}, false
	}
	t := Turn{Offset: bestStart, End: bestEnd, Units: bestN, Logit: bestZ / float64(bestN)}
	t.Score = m.prob(t.Logit)
	if n := totalN - bestN; n > 0 {
		// Units outside the run; mostly before it in the recipe.
		t.Before = (totalZ - bestZ) / float64(n)
	}
	return t, t.Score >= 0.5
}

// Screen is a cheap test that rules out most natural texts before FindTurn:
// it scores windows of screenUnits units every screenStride bytes (about a
// third of the text) and reports whether any scores above a lowered
// threshold. A run of soup long enough for FindTurn (at least the model's
// minimum units, in practice hundreds) contains at least one whole window,
// so Screen never rules out a text FindTurn would report: the tests check
// this on poisoned documents.
func (m *Model) Screen(text string) bool {
	if len(text) <= screenStride {
		return true // short: FindTurn is as cheap
	}
	return m.screen(text, screenStride, screenMargin)
}

// ScreenEvery is Screen for callers that look only for long stretches of
// soup (a poisoned document's 400 tokens or more make 2.3 KB or more): it
// scores a window of 24 units every stride bytes (at least 384), so it
// reads about 150/stride of the text, and passes the text when a window
// scores as gibberish at the calibrated threshold (Screen lowers it).
// Every text with a stretch of soup longer than about stride+400 bytes
// passes (TestScreenEvery: 600 of 600 poisoned documents at a stride of
// 1,024, and 1 % of clean bytes, against Screen's 15 %). Unlike Screen
// it also screens texts shorter than stride (one window).
func (m *Model) ScreenEvery(text string, stride int) bool {
	return m.screen(text, max(stride, screenStride), everyMargin)
}

func (m *Model) screen(text string, stride int, margin float64) bool {
	lx := lexer{m: m}
	thr := float64(m.mid) - margin
	for at := 0; at < len(text); at += stride {
		// Start at a word boundary, if there is one near (text without
		// spaces is scored from where the window falls).
		i := at
		for i < len(text) && i < at+64 && text[i] != ' ' && text[i] != '\n' {
			i++
		}
		if i == at+64 {
			i = at
		}
		for i < len(text) && !utf8.RuneStart(text[i]) {
			i++
		}
		lx.reset()
		var (
			z float64
			n int
		)
		for i < len(text) && n < screenUnits {
			c := text[i]
			if c < utf8.RuneSelf {
				lx.add(rune(c), i, 1)
				i++
			} else {
				r, w := utf8.DecodeRuneInString(text[i:])
				lx.add(r, i, w)
				i += w
			}
			for k := range lx.nq {
				z += float64(m.logit(&lx.q[k].f))
				n++
			}
			lx.nq = 0
		}
		// One rune can end two units (a word, then a CJK character):
		// the window may hold one more.
		if n >= screenUnits && z/float64(n) >= thr {
			return true
		}
	}
	return false
}

const (
	screenUnits  = 24
	screenStride = 384
	screenMargin = 1.0
	everyMargin  = 0.0
)
