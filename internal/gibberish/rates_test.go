package gibberish

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"

	gt "github.com/llmfence/llmfence/internal/gibberish/gibberishtest"
)

// cleanSets returns clean text from this machine, by kind: the documents
// of a fixed set of Debian packages (gibberishtest.Packages) that the
// generator held out of the tables (gibberishtest.HeldOut), plus
// generated tables and lists of their words. What is read does not
// depend on what else is installed.
var cleanSets = sync.OnceValues(func() (map[string][]string, error) {
	c := gt.Corpus{Part: gt.Test}
	out := map[string][]string{}
	var all []gt.Doc
	for _, k := range []gt.Kind{gt.Docs, gt.Man, gt.Japanese, gt.Code} {
		docs, err := c.Read(k, 2<<20)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
		for _, d := range docs {
			out[string(k)] = append(out[string(k)], d.Text)
		}
		all = append(all, docs...)
	}
	r := rand.New(rand.NewPCG(99, 1))
	words := gt.Words(all[:min(len(all), 500)])
	for range 300 {
		out["tables"] = append(out["tables"], gt.Table(r, words, 10+r.IntN(30)))
		out["lists"] = append(out["lists"], gt.List(r, words, 5+r.IntN(30)))
	}
	return out, nil
})

func mustClean(t testing.TB) map[string][]string {
	t.Helper()
	sets, err := cleanSets()
	if err != nil {
		t.Fatalf("clean text from this machine: %v (install Debian documentation and manual pages)", err)
	}
	return sets
}

// pieces cuts texts into consecutive pieces of n units (whitespace words,
// or single CJK characters), at most 3 per text and max in all, so that
// one large file does not stand for a whole kind.
func pieces(texts []string, n, max int) []string {
	var out []string
	for _, t := range texts {
		var cur []string
		perText := 0
		cjk := false
		for _, f := range strings.Fields(t) {
			cur = append(cur, f)
			for _, r := range f {
				if r >= 0x3040 && r <= 0x9fff {
					cjk = true
					break
				}
			}
			if len(cur) >= n || cjk && len([]rune(strings.Join(cur, ""))) >= n {
				out = append(out, strings.Join(cur, " "))
				cur = nil
				if len(out) >= max {
					return out
				}
				if perText++; perText == 3 {
					break
				}
			}
		}
	}
	return out
}

// soupTokens are the token counts of the answers probe scores (20-500).
var lengths = []int{20, 50, 100, 500}

// TestFalseAlarmRate measures, on clean text of every kind, the share of
// pieces of 20 to 500 tokens' length that Score calls gibberish; the
// bounds are those docs and the package documentation state.
func TestFalseAlarmRate(t *testing.T) {
	sets := mustClean(t)
	// Units per length: a token is about 0.75 words in English; Japanese
	// pieces are counted in characters (about one token each).
	// Measured on the reference machine: 0 to 1.3 %, the worst from the
	// two kinds of clean text that are lists of unique rare words (an
	// emoji-name table in Python code, name and e-mail lists in THANKS
	// files); see the package documentation.
	bound := map[int]float64{20: 0.02, 50: 0.02, 100: 0.015, 500: 0.015}
	for _, kind := range []string{"docs", "man", "japanese", "code", "tables", "lists"} {
		for _, n := range lengths {
			units := n * 3 / 4
			if kind == "japanese" {
				units = n
			}
			ps := pieces(sets[kind], units, samples(2000))
			if len(ps) < 20 {
				continue // too little text of this kind for long pieces
			}
			bad := 0
			var worst string
			for _, p := range ps {
				if Score(p).Gibberish() {
					bad++
					worst = p
				}
			}
			rate := float64(bad) / float64(len(ps))
			t.Logf("%-8s %3d tokens: %4d pieces, false alarms %.4f", kind, n, len(ps), rate)
			if rate > bound[n] {
				t.Errorf("%s, %d tokens: false-alarm rate %.4f > %.4f; e.g. %q", kind, n, rate, bound[n], clip(worst, 200))
			}
		}
	}
}

// TestDetectionRate: token soup sampled uniformly from three real
// vocabularies, 20 to 500 tokens.
func TestDetectionRate(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	// Measured: at least 0.998 at 20 tokens, 1.0 from 50 on.
	bound := map[int]float64{20: 0.98, 50: 0.995, 100: 0.999, 500: 1}
	for _, v := range gt.Vocabs() {
		for _, n := range lengths {
			trials := samples(400)
			hit := 0
			var miss string
			for range trials {
				s := v.Soup(r, n)
				if Score(s).Gibberish() {
					hit++
				} else {
					miss = s
				}
			}
			rate := float64(hit) / float64(trials)
			t.Logf("%-12s %3d tokens: detected %.4f", v.Name, n, rate)
			if rate < bound[n] {
				t.Errorf("%s, %d tokens: detection %.4f < %.4f; missed e.g. %q", v.Name, n, rate, bound[n], clip(miss, 200))
			}
		}
	}
}

// samples is n, or a quarter of it under the race detector.
func samples(n int) int {
	if raceEnabled {
		return n / 4
	}
	return n
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
