package gibberish

import (
	"math"
	"unicode"
	"unicode/utf8"
)

// script is a coarse writing-system class of a letter.
type script uint8

const (
	scriptNone script = iota // not a letter
	scriptLatin
	scriptCJK // Han, kana and CJK punctuation: Japanese and Chinese text
	scriptHangul
	scriptCyrillic
	scriptGreek
	scriptArabic // Arabic and Hebrew
	scriptIndic
	scriptSEA // Thai, Lao, Khmer, Myanmar
	scriptOther
)

// runeKind is what the unit scanner needs to know about a rune.
type runeKind uint8

const (
	kindSpace runeKind = iota
	kindCJK            // a unit of its own
	kindLower
	kindUpper
	kindOtherLetter // letters without case, or of other scripts
	kindDigit
	kindMark  // combining mark
	kindPunct // anything else that is not a space
)

// asciiKind classifies the ASCII runes without a table lookup chain.
var asciiKind = func() (t [128]runeKind) {
	for c := range 128 {
		r := rune(c)
		switch {
		case r == ' ' || r == '\t' || r == '\n' || r == '\r' || r == '\f' || r == '\v':
			t[c] = kindSpace
		case r >= 'a' && r <= 'z':
			t[c] = kindLower
		case r >= 'A' && r <= 'Z':
			t[c] = kindUpper
		case r >= '0' && r <= '9':
			t[c] = kindDigit
		case r < 0x20 || r == 0x7f:
			t[c] = kindSpace // control characters separate like spaces
		default:
			t[c] = kindPunct
		}
	}
	return t
}()

// classify returns the kind and script of r (r >= 0x80 is the slow path).
func classify(r rune) (runeKind, script) {
	if r < 0x80 {
		k := asciiKind[r]
		if k == kindLower || k == kindUpper {
			return k, scriptLatin
		}
		return k, scriptNone
	}
	switch {
	case r == utf8.RuneError:
		return kindPunct, scriptNone
	case r >= 0x3000 && r <= 0x30ff, r >= 0x3400 && r <= 0x4dbf, r >= 0x4e00 && r <= 0x9fff,
		r >= 0xf900 && r <= 0xfaff, r >= 0xff01 && r <= 0xff9f, r >= 0x31f0 && r <= 0x31ff,
		r >= 0x20000 && r <= 0x2fa1f:
		if r == 0x3000 {
			return kindSpace, scriptNone // ideographic space
		}
		return kindCJK, scriptCJK
	case unicode.IsSpace(r):
		return kindSpace, scriptNone
	case unicode.IsControl(r):
		return kindSpace, scriptNone
	}
	if !unicode.IsLetter(r) {
		if unicode.IsDigit(r) {
			return kindDigit, scriptNone
		}
		if unicode.Is(unicode.Mn, r) || unicode.Is(unicode.Mc, r) {
			// Combining marks (Indic vowel signs, accents, variation
			// selectors) belong to the letters before them: no script
			// of their own.
			return kindMark, scriptNone
		}
		return kindPunct, scriptNone
	}
	var s script
	switch {
	case r <= 0x24f || r >= 0x1e00 && r <= 0x1eff:
		s = scriptLatin
	case r >= 0x370 && r <= 0x3ff || r >= 0x1f00 && r <= 0x1fff:
		s = scriptGreek
	case r >= 0x400 && r <= 0x52f:
		s = scriptCyrillic
	case r >= 0x590 && r <= 0x6ff || r >= 0x750 && r <= 0x77f || r >= 0xfb1d && r <= 0xfdff || r >= 0xfe70 && r <= 0xfeff:
		s = scriptArabic
	case r >= 0x900 && r <= 0xdff:
		s = scriptIndic
	case r >= 0xe00 && r <= 0xfff || r >= 0x1000 && r <= 0x109f || r >= 0x1780 && r <= 0x17ff:
		s = scriptSEA
	case r >= 0x1100 && r <= 0x11ff || r >= 0xac00 && r <= 0xd7af || r >= 0x3130 && r <= 0x318f:
		s = scriptHangul
	default:
		s = scriptOther
	}
	switch {
	case unicode.IsLower(r):
		return kindLower, s
	case unicode.IsUpper(r):
		return kindUpper, s
	}
	return kindOtherLetter, s
}

// fold maps a rune to the form the n-gram and word tables use: ASCII
// letters lower-cased, digits all '0', other runes as they are (a cheap
// fold that needs no tables).
func fold(r rune) rune {
	switch {
	case r >= 'A' && r <= 'Z':
		return r + 'a' - 'A'
	case r >= '0' && r <= '9':
		return '0'
	case r < 0x80:
		return r
	case r >= 0xc0 && r <= 0xde && r != 0xd7:
		return r + 0x20
	}
	return r
}

// Feature indexes: the signals measured per unit. A unit is a word (a run
// of non-space runes, at most maxUnitRunes) or a single CJK rune.
const (
	fNgram    = iota // mean surprisal, bits per rune, of the rune bigrams
	fLex             // share of the unit's word parts found in the lexicon
	fWordSur         // mean surprisal of its word parts from their lexicon rank, bits (capped; 0 for CJK/no letters)
	fRepeat          // the same unit occurred in the previous repeatWindow units
	fPrefix          // a unit with the same first four runes occurred there
	fOdd             // odd transitions inside the unit (aB, a1, 1a), capped at 3
	fMixed           // letters of two scripts in one unit
	fSwitch          // script differs from the previous word's (other than Latin/CJK)
	fCJK             // the unit is one CJK rune
	fNoLetter        // no letter in the unit
	fLen             // log of the unit's length in runes (0 for CJK)
	fLong            // the unit reached maxUnitRunes and was cut
	nFeatures
)

var featureNames = [nFeatures]string{
	"ngram", "lexicon", "word_surprisal", "repeat", "prefix_repeat", "odd_transitions",
	"mixed_script", "script_switch", "cjk", "no_letter", "length", "long",
}

const (
	maxUnitRunes = 40
	repeatWindow = 64
	recentSize   = 256 // direct-mapped tables of recent unit hashes
	wordSurCap   = 20.0
)

// logLen[n] is log(n), for the length feature without a call to math.Log.
var logLen = func() (t [maxUnitRunes + 1]float32) {
	for i := 1; i <= maxUnitRunes; i++ {
		t[i] = float32(math.Log(float64(i)))
	}
	return t
}()

// unitState accumulates one unit as its runes arrive.
type unitState struct {
	start   int // byte offset of the unit's first rune (caller's coordinates)
	runes   int
	hash    uint64 // FNV-1a of the folded runes (whole unit)
	prefix  uint64 // hash of the first 4 folded runes
	surSum  float64
	letters int
	odd     int
	scripts uint16 // bit per script seen
	script  script // the first letter's script
	// A word part is a run of letters, split where lower case turns to
	// upper case (camelCase) and at anything not a letter: the lexicon
	// is looked up by part, so identifiers (snake_case, camelCase,
	// Dir::Etc::Parts) are judged by their words.
	partHash uint64
	partLen  int
	parts    int
	lexParts int
	partSur  float64
	lastKind runeKind
}

const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

func (u *unitState) reset(start int) {
	*u = unitState{start: start, hash: fnvOffset, partHash: fnvOffset, lastKind: kindSpace}
}

// recent remembers the units of the last repeatWindow positions.
type recent struct {
	hash [recentSize]uint64
	pos  [recentSize]int32
}

// seen reports whether h occurred within repeatWindow units before pos,
// and records it at pos.
func (r *recent) seen(h uint64, pos int32) bool {
	i := (h ^ h>>29) & (recentSize - 1)
	ok := r.hash[i] == h && pos-r.pos[i] <= repeatWindow && pos > r.pos[i]
	r.hash[i], r.pos[i] = h, pos
	return ok
}

func (r *recent) clear() {
	*r = recent{}
}

// unitOut is one finished unit: its byte range and features.
type unitOut struct {
	start, end int
	f          [nFeatures]float32
}

// lexer turns runes into units and units into feature vectors. It keeps
// no reference to the text and allocates nothing: finished units wait in
// q (adding one rune finishes at most two) until the caller takes them.
type lexer struct {
	m        *Model   // nil when only counting
	b        *Builder // counts the corpus when set
	u        unitState
	inUnit   bool
	prevFold rune // previous rune, folded (' ' after a space)
	n        int32
	lastScr  script
	units    recent
	prefixes recent
	q        [2]unitOut
	nq       int
}

func (lx *lexer) reset() {
	m, b := lx.m, lx.b
	*lx = lexer{m: m, b: b, prevFold: ' '}
}

// add feeds one rune at byte offset off, w bytes wide. Finished units are
// appended to lx.q.
func (lx *lexer) add(r rune, off, w int) {
	var (
		k runeKind
		s script
	)
	if r < 0x80 { // the common case, without a call
		k = asciiKind[r]
		if k == kindLower || k == kindUpper {
			s = scriptLatin
		}
	} else {
		k, s = classify(r)
	}
	if k == kindSpace {
		if lx.inUnit {
			lx.finish(off)
		}
		lx.prevFold = ' '
		return
	}
	if k == kindCJK {
		if lx.inUnit {
			lx.finish(off)
		}
		lx.addCJK(r, off, w)
		return
	}
	if !lx.inUnit {
		lx.u.reset(off)
		lx.inUnit = true
	} else if lx.u.runes >= maxUnitRunes {
		lx.finish(off)
		lx.u.reset(off)
		lx.inUnit = true
	}
	u := &lx.u
	f := fold(r)
	if lx.b != nil {
		lx.b.countPair(lx.prevFold, f)
	} else {
		u.surSum += float64(lx.m.bigram(lx.prevFold, f))
	}
	lx.prevFold = f
	u.hash = (u.hash ^ uint64(f)) * fnvPrime
	u.runes++
	if u.runes == 4 {
		u.prefix = u.hash
	}
	switch k {
	case kindLower, kindUpper, kindOtherLetter, kindMark:
		if k == kindUpper && u.lastKind == kindLower {
			lx.endPart()
			u.odd++
		}
		if u.lastKind == kindDigit {
			u.odd++
		}
		if k != kindMark {
			u.letters++
		}
		if s != scriptNone {
			u.scripts |= 1 << s
			if u.script == scriptNone && s != scriptOther {
				u.script = s
			}
		}
		u.partHash = (u.partHash ^ uint64(f)) * fnvPrime
		u.partLen++
	case kindDigit:
		lx.endPart()
		if u.lastKind == kindLower || u.lastKind == kindUpper || u.lastKind == kindOtherLetter {
			u.odd++
		}
	default:
		lx.endPart()
	}
	u.lastKind = k
}

// endPart closes the word part being read, if any: counted when
// building, looked up when scoring.
func (lx *lexer) endPart() {
	u := &lx.u
	if u.partLen == 0 {
		return
	}
	if lx.b != nil {
		lx.b.countWord(u.partHash)
	} else {
		u.parts++
		if sur, ok := lx.m.word(u.partHash); ok {
			u.lexParts++
			u.partSur += float64(sur)
		} else {
			u.partSur += wordSurCap
		}
	}
	u.partHash, u.partLen = fnvOffset, 0
}

// flush ends the pending unit (end of text).
func (lx *lexer) flush(end int) {
	if lx.inUnit {
		lx.finish(end)
	}
}

// switched reports a change of script between words that is not the
// ordinary mix of Latin and CJK in Japanese technical text, and records sc.
func (lx *lexer) switched(sc script) bool {
	prev := lx.lastScr
	lx.lastScr = sc
	return prev != scriptNone && sc != prev && !(latinOrCJK(sc) && latinOrCJK(prev))
}

func (lx *lexer) finish(end int) {
	u := &lx.u
	lx.inUnit = false
	lx.endPart()
	if lx.b != nil {
		return
	}
	out := &lx.q[lx.nq]
	lx.nq++
	out.start, out.end = u.start, end
	f := &out.f
	*f = [nFeatures]float32{}
	f[fNgram] = float32(u.surSum / float64(u.runes))
	if u.letters > 0 {
		if u.parts > 0 {
			f[fLex] = float32(u.lexParts) / float32(u.parts)
			f[fWordSur] = float32(u.partSur / float64(u.parts))
		}
		sc := u.script
		if sc == scriptNone {
			sc = scriptOther
		}
		if lx.switched(sc) {
			f[fSwitch] = 1
		}
	} else {
		f[fNoLetter] = 1
	}
	if u.scripts&(u.scripts-1) != 0 {
		f[fMixed] = 1
	}
	f[fOdd] = float32(min(u.odd, 3))
	f[fLen] = logLen[min(u.runes, maxUnitRunes)]
	if u.runes >= maxUnitRunes {
		f[fLong] = 1
	}
	lx.n++
	if lx.units.seen(u.hash, lx.n) {
		f[fRepeat] = 1
	}
	if u.runes >= 4 && lx.prefixes.seen(u.prefix, lx.n) {
		f[fPrefix] = 1
	}
}

func (lx *lexer) addCJK(r rune, off, w int) {
	fr := fold(r)
	if lx.b != nil {
		lx.b.countPair(lx.prevFold, fr)
		lx.prevFold = fr
		return
	}
	out := &lx.q[lx.nq]
	lx.nq++
	out.start, out.end = off, off+w
	f := &out.f
	*f = [nFeatures]float32{}
	f[fNgram] = float32(lx.m.bigram(lx.prevFold, fr))
	lx.prevFold = fr
	f[fCJK] = 1
	if lx.switched(scriptCJK) {
		f[fSwitch] = 1
	}
	lx.n++
	if lx.units.seen((fnvOffset^uint64(fr))*fnvPrime, lx.n) {
		f[fRepeat] = 1
	}
}

func latinOrCJK(s script) bool { return s == scriptLatin || s == scriptCJK }
