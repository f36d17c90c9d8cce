package classify

import (
	"unicode"
	"unicode/utf8"
)

// Features of the statistical layer. Both the trainer and the classifier
// call eachFeature, so they see exactly the same features:
//
//   - character n-grams of 2 to 4 runes (3 to 4 when both runes of a bigram
//     are ASCII) over the normalised text, with every
//     run of characters that are neither letters nor digits (spaces,
//     punctuation, 「」, 。) folded into one space. They serve English and
//     Japanese alike: Japanese needs no tokenisation, and English words
//     and their stems show up as overlapping n-grams;
//   - word unigrams and bigrams of Latin-script words, for whole-word
//     meaning ("never refuse", "phishing");
//   - with featureSpec.jaWords, word-ish Japanese tokens: maximal runs of
//     one script (kanji, katakana, hiragana), as unigrams and as bigrams
//     of neighbouring runs ("個人情報 を", "収集 してください"). Japanese is
//     written without spaces, and a change of script is the cheapest
//     approximation of a word boundary that needs no dictionary.
//
// Features are 64-bit FNV-1a hashes; a document (or a window of clauses,
// see model.go) is the bag of its features with each occurrence weighted
// 1/sqrt(n), n the number of occurrences of all features, so long prompts
// do not score higher for their length.
const (
	minGram = 2
	maxGram = 4
	// maxWordLen bounds the words hashed as word features.
	maxWordLen = 40
)

const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
	// wordSeed separates word features from character n-grams.
	wordSeed = 0x9e3779b97f4a7c15
)

// featureSpec selects the optional feature kinds. It is recorded in the
// model file ("features" line), so a model is always scored with the
// features it was trained on.
type featureSpec struct {
	jaWords bool // Japanese script-run tokens as words
}

// String is the spec as written in model.tsv.
func (s featureSpec) String() string {
	if s.jaWords {
		return "ja-words"
	}
	return ""
}

// foldRune maps a normalised rune to the rune the n-grams see: letters and
// digits as they are, anything else a space.
func foldRune(r rune) rune {
	if r < utf8.RuneSelf {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			return r
		}
		if r >= 'A' && r <= 'Z' {
			return r + 'a' - 'A'
		}
		return ' '
	}
	if unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.Is(unicode.Mn, r) {
		return r
	}
	return ' '
}

// isLatin reports whether r belongs in a Latin-script word.
func isLatin(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '\'' || (r >= 0xC0 && r < 0x250 && unicode.IsLetter(r))
}

// Word classes: a word is a maximal run of runes of one class.
const (
	classNone = iota
	classLatin
	classHan
	classKatakana
	classHiragana
)

// wordClass returns the word class of r; Japanese classes only with ja.
func wordClass(r rune, ja bool) int {
	if isLatin(r) {
		return classLatin
	}
	if !ja || r < 0x3040 {
		return classNone
	}
	switch {
	case r >= 0x3041 && r <= 0x309F: // hiragana
		return classHiragana
	case r >= 0x30A0 && r <= 0x30FF: // katakana, including the long-vowel mark ー
		return classKatakana
	case r >= 0x4E00 && r <= 0x9FFF, r >= 0x3400 && r <= 0x4DBF, r == 0x3005: // CJK ideographs, 々
		return classHan
	}
	return classNone
}

// eachFeature calls fn with the hash of every feature occurrence in the
// normalised text n, in order of end, the byte offset in n at which the
// feature ends (a character n-gram: the offset of its last rune; a word:
// the offset just past it). With withText set it also passes the feature's
// text (for training and explanations; the hot path passes false and
// never builds a string).
func eachFeature(n string, spec featureSpec, withText bool, fn func(h uint64, kind byte, text string, end int)) {
	// Character n-grams: a window of the last maxGram folded runes.
	var win [maxGram]rune
	filled := 0
	prevSpace := true
	// Word features: current word hash and the previous word's.
	var word, prevWord uint64
	wordLen, class := 0, classNone
	wordStart := -1
	var prevText, curText string
	endWord := func(end int) {
		if wordLen == 0 {
			return
		}
		if wordLen <= maxWordLen {
			if withText {
				curText = n[wordStart:end]
			}
			fn(word, 'w', curText, end)
			if prevWord != 0 {
				var t string
				if withText {
					t = prevText + " " + curText
				}
				fn(prevWord*fnvPrime^word^wordSeed, 'w', t, end)
			}
			prevWord, prevText = word, curText
		} else {
			prevWord, prevText = 0, ""
		}
		word, wordLen, wordStart, class = 0, 0, -1, classNone
	}
	for i, r := range n {
		if wc := wordClass(r, spec.jaWords); wc != classNone {
			if wc != class {
				endWord(i)
				word, wordStart, class = fnvOffset^wordSeed, i, wc
			}
			word = (word ^ uint64(r)) * fnvPrime
			wordLen++
		} else {
			endWord(i)
			if !unicode.IsSpace(r) && r != '-' && r != '/' {
				prevWord, prevText = 0, "" // punctuation breaks bigrams
			}
		}
		f := foldRune(r)
		if f == ' ' {
			if prevSpace {
				continue
			}
			prevSpace = true
		} else {
			prevSpace = false
		}
		copy(win[:], win[1:])
		win[maxGram-1] = f
		if filled < maxGram {
			filled++
		}
		for k := minGram; k <= filled; k++ {
			if k == 2 && win[maxGram-2] < utf8.RuneSelf && win[maxGram-1] < utf8.RuneSelf {
				continue // Latin bigrams carry little; words and 3-4-grams cover them
			}
			h := uint64(fnvOffset)
			allSpace := true
			for _, x := range win[maxGram-k:] {
				h = (h ^ uint64(x)) * fnvPrime
				if x != ' ' {
					allSpace = false
				}
			}
			if allSpace {
				continue
			}
			var text string
			if withText {
				text = string(win[maxGram-k:])
			}
			fn(h, 'c', text, i)
		}
	}
	endWord(len(n))
}
