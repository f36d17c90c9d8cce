package redact

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	gt "github.com/llmfence/llmfence/internal/gibberish/gibberishtest"
)

// plainOf returns a copy of r that runs every regex on the whole text:
// the reference the prefilter must agree with.
func plainOf(r *Redactor) *Redactor {
	p := *r
	p.plain = true
	return &p
}

// checkSame asserts that the prefiltered search finds exactly what the
// plain one finds in text: every entry alone (all its matches, before
// other entries can hide them) and all together, through Find and
// Redact (all passes).
func checkSame(t *testing.T, r *Redactor, name, text string) bool {
	t.Helper()
	plain := plainOf(r)
	if got, want := r.findEach(text), plain.findEach(text); !slices.Equal(got, want) {
		t.Errorf("%s: per-entry matches differ:\n only prefiltered %v\n only plain       %v", name, missing(got, want), missing(want, got))
		return false
	}
	if got, want := r.Find(text), plain.Find(text); !slices.Equal(got, want) {
		t.Errorf("%s: Find differs from the plain search:\n got  %v\n want %v", name, got, want)
		return false
	}
	a, ha := r.Redact(text)
	b, hb := plain.Redact(text)
	if a != b || !slices.Equal(ha, hb) {
		t.Errorf("%s: Redact differs from the plain search", name)
		return false
	}
	return true
}

// findEach returns each entry's spans when it runs alone, as
// id@start-end.
func (r *Redactor) findEach(text string) []string {
	var out []string
	for _, e := range r.entries {
		alone := r.only(e.ID)
		for _, m := range alone.Find(text) {
			out = append(out, e.ID+"@"+strconv.Itoa(m.Start)+"-"+strconv.Itoa(m.End))
		}
	}
	return out
}

func missing(a, b []string) []string {
	var out []string
	for _, x := range a {
		if !slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}

// genText builds text that crowds the patterns' edges: the examples of
// every entry, fragments of them (prefixes, separators, digit groups,
// base64 and hex runs, the two runes (?i) folds onto ASCII), prose and
// Japanese, glued together or separated by spaces, punctuation and line
// ends.
func genText(r *rand.Rand, rd *Redactor, n int) string {
	var pieces []string
	for _, e := range rd.entries {
		pieces = append(pieces, e.Examples.Match...)
		pieces = append(pieces, e.Examples.NoMatch...)
		pieces = append(pieces, e.Keywords...)
	}
	pieces = append(pieces,
		"the", "daemon", "reads", "key", "Token", "password", "PASSWD", "api_key", "secret", "bearer", "Bearer ",
		"=", ":", "=>", ":=", "\"", "'", "://", "@", "+", "+1 ", "(415) ", "555-", "2671", "-", ".", "::", "fe80", "0db8",
		"4111", "1111", "6011", " 1117", "DE89", "3704", "0044", "GB82", "WEST", "123-45-", "090-", "1234-",
		"eyJ", "eyJhbGciOiJIUzI1NiJ9", "ghp_", "github_pat_", "sk-", "sk_live_", "xoxb-", "AIza", "glpat-", "hf_", "npm_",
		"AKIA", "IOSFODNN7EXAMPLE", "ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz0123456789", "Zm9vYmFy+/=",
		"-----BEGIN ", "RSA ", "PRIVATE KEY-----", "-----END ", "hooks.slack.com/services/", "AGE-SECRET-KEY-1",
		"日本語の文章です。", "設定ファイル", "ſ", "\u212a", "é", "\xff", "_", "[REDACTED:email]", "[REDACTED:",
		"192.168.", "10.0.0.1", "255.", "1.2.3.4.5", "https://", "user:", "pw@", "example.com", "a.b.c",
	)
	seps := []string{"", "", "", " ", " ", "  ", "\n", "\n\n", "\t", ",", ";", ".", "-", "_", "/", "(", ")", "\"", "'", "<", ">", "、", "\r\n"}
	var b strings.Builder
	for b.Len() < n {
		b.WriteString(pieces[r.IntN(len(pieces))])
		b.WriteString(seps[r.IntN(len(seps))])
	}
	return b.String()
}

// TestPrefilterEqualsPlain: on generated text that crowds the patterns'
// edges, on the chat transcript, and on real text of a fixed set of
// Debian packages (changelogs full of e-mail addresses, manual pages,
// Japanese, Python sources), the prefiltered search finds exactly what
// running every regex on the whole text finds.
func TestPrefilterEqualsPlain(t *testing.T) {
	rd := newT(t)
	r := rand.New(rand.NewPCG(12, 34))
	gen := 250
	realBytes := 512 << 10
	if raceEnabled {
		gen, realBytes = 60, 128<<10
	}
	for i := range gen {
		if !checkSame(t, rd, "generated "+strconv.Itoa(i), genText(r, rd, 200+r.IntN(3000))) {
			break
		}
	}
	tr, err := os.ReadFile(filepath.Join("testdata", "transcript.txt"))
	if err != nil {
		t.Fatal(err)
	}
	checkSame(t, rd, "transcript", string(tr))
	checkSame(t, rd, "mixed", mixedText(t, 64<<10, 3))
	matches := 0
	for _, k := range []gt.Kind{gt.Docs, gt.Man, gt.Japanese, gt.Code} {
		docs, err := gt.Corpus{}.Read(k, realBytes)
		if err != nil {
			t.Fatalf("%s: %v", k, err)
		}
		for _, d := range docs {
			text := d.Text[:min(len(d.Text), 64<<10)]
			matches += len(rd.Find(text))
			if !checkSame(t, rd, d.Path, text) {
				break
			}
		}
	}
	if matches < 100 {
		t.Errorf("only %d matches in the real text: the comparison tests little", matches)
	}
}
