package probe

import (
	"crypto/sha256"
	"encoding/hex"
	"hash/fnv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/llmfence/llmfence/internal/classify"
	"github.com/llmfence/llmfence/internal/probe/transport"
)

// textTokens cuts normalised text into comparison tokens: Latin words and
// numbers, and single CJK characters.
func textTokens(s string) []string {
	n := classify.Normalize(s)
	var out []string
	start := -1
	for i, r := range n {
		switch {
		case isCJK(r):
			if start >= 0 {
				out = append(out, n[start:i])
				start = -1
			}
			out = append(out, string(r))
		case unicode.IsLetter(r) || unicode.IsDigit(r):
			if start < 0 {
				start = i
			}
		default:
			if start >= 0 {
				out = append(out, n[start:i])
				start = -1
			}
		}
	}
	if start >= 0 {
		out = append(out, n[start:])
	}
	return out
}

func isCJK(r rune) bool {
	return unicode.In(r, unicode.Han, unicode.Hiragana, unicode.Katakana, unicode.Hangul)
}

// shingles is the set of token n-grams of s (n >= 1), hashed.
func shingles(s string, n int) map[uint64]struct{} {
	toks := textTokens(s)
	out := make(map[uint64]struct{}, len(toks))
	if len(toks) < n {
		if len(toks) > 0 {
			out[hashTokens(toks)] = struct{}{}
		}
		return out
	}
	for i := 0; i+n <= len(toks); i++ {
		out[hashTokens(toks[i:i+n])] = struct{}{}
	}
	return out
}

func hashTokens(ts []string) uint64 {
	h := fnv.New64a()
	for _, t := range ts {
		h.Write([]byte(t))
		h.Write([]byte{0})
	}
	return h.Sum64()
}

// features are the token unigrams and bigrams of a text, hashed: what
// Similarity compares.
type features map[uint64]struct{}

func featuresOf(s string) features {
	f := features(shingles(s, 1))
	for k := range shingles(s, 2) {
		f[k] = struct{}{}
	}
	return f
}

// jaccard is the Jaccard similarity of two feature sets; two empty sets
// are identical.
func jaccard(a, b features) float64 {
	if len(a) == 0 && len(b) == 0 {
		return 1
	}
	if len(a) > len(b) {
		a, b = b, a
	}
	inter := 0
	for k := range a {
		if _, ok := b[k]; ok {
			inter++
		}
	}
	return float64(inter) / float64(len(a)+len(b)-inter)
}

// Similarity is the Jaccard similarity of the token unigrams and bigrams
// of a and b, in [0, 1]; two empty texts are identical.
func Similarity(a, b string) float64 { return jaccard(featuresOf(a), featuresOf(b)) }

// Recall is the share of secret's token trigrams that appear in text: how
// much of a system prompt an answer reproduces, verbatim or nearly.
func Recall(secret, text string) float64 {
	ss := shingles(secret, 3)
	if len(ss) == 0 {
		return 0
	}
	st := shingles(text, 3)
	hit := 0
	for k := range ss {
		if _, ok := st[k]; ok {
			hit++
		}
	}
	return float64(hit) / float64(len(ss))
}

// commonPassage returns the longest passage (in runes of the normalised
// texts) that a and b share, looking at the first maxRunes runes of each.
func commonPassage(a, b string, maxRunes int) string {
	ra := []rune(classify.Normalize(a))
	rb := []rune(classify.Normalize(b))
	if len(ra) > maxRunes {
		ra = ra[:maxRunes]
	}
	if len(rb) > maxRunes {
		rb = rb[:maxRunes]
	}
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	best, end := 0, 0
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			if ra[i-1] == rb[j-1] {
				cur[j] = prev[j-1] + 1
				if cur[j] > best {
					best, end = cur[j], i
				}
			} else {
				cur[j] = 0
			}
		}
		prev, cur = cur, prev
	}
	return strings.TrimSpace(string(ra[end-best : end]))
}

// PromptHash identifies the exact prompt an attempt sent (system, messages
// or raw text): the first 16 hex digits of its SHA-256.
func PromptHash(system string, msgs []transport.Message, raw string) string {
	h := sha256.New()
	h.Write([]byte("system\x00" + system + "\x00"))
	for _, m := range msgs {
		h.Write([]byte(m.Role + "\x00" + m.Content + "\x00"))
	}
	h.Write([]byte("raw\x00" + raw))
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// clip returns at most n runes of s, with an ellipsis when cut, and
// control characters other than line breaks removed.
func clip(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if r == '\n' || r == '\t' {
			return ' '
		}
		if unicode.IsControl(r) || r == utf8.RuneError {
			return -1
		}
		return r
	}, s)
	s = strings.Join(strings.Fields(s), " ")
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n]) + "…"
}

// langOf is "ja" when a good share of the text is Japanese script, else
// "en".
func langOf(s string) string {
	var cjk, letters int
	for _, r := range s {
		switch {
		case isCJK(r):
			cjk++
		case unicode.IsLetter(r):
			letters++
		}
	}
	if cjk > 0 && cjk*4 >= letters {
		return "ja"
	}
	return "en"
}
