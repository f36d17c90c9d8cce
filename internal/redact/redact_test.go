package redact

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"unicode"
)

var update = flag.Bool("update", false, "rewrite golden files and docs/redaction.md")

func newT(t testing.TB) *Redactor {
	t.Helper()
	r, err := New()
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return r
}

// secretPart is what of a match example must not survive: the value
// group's text when the entry has one, else the whole example.
func secretPart(t *testing.T, e *entry, example string) string {
	t.Helper()
	if len(e.valueGroups) == 0 {
		return example
	}
	m := e.re.FindStringSubmatchIndex(example)
	if m == nil {
		t.Fatalf("%s: regex does not match example %q", e.ID, example)
	}
	for _, g := range e.valueGroups {
		if m[2*g] >= 0 {
			return example[m[2*g]:m[2*g+1]]
		}
	}
	t.Fatalf("%s: example %q: no value group took part", e.ID, example)
	return ""
}

func hitCount(hits []Hit, id string) int {
	for _, h := range hits {
		if h.ID == id {
			return h.Count
		}
	}
	return 0
}

// TestExamples runs every example of every entry: alone (only that entry)
// and through the whole set.
func TestExamples(t *testing.T) {
	all := newT(t)
	for _, e := range all.entries {
		alone := all.only(e.ID)
		for i, ex := range e.Examples.Match {
			t.Run(fmt.Sprintf("%s/match_%d", e.ID, i+1), func(t *testing.T) {
				secret := secretPart(t, e, ex)
				got, hits := alone.Redact(ex)
				if len(e.valueGroups) == 0 && got != e.marker {
					t.Errorf("alone: Redact(%q) = %q, want the whole example replaced by %s", ex, got, e.marker)
				}
				if strings.Contains(got, secret) || !strings.Contains(got, e.marker) || hitCount(hits, e.ID) != 1 {
					t.Errorf("alone: Redact(%q) = %q, hits %v; want %q replaced by %s once", ex, got, hits, secret, e.marker)
				}
				// Surrounded by text, the same.
				in := "see: " + ex + " (end)"
				if got, _ := alone.Redact(in); strings.Contains(got, secret) {
					t.Errorf("alone, in context: Redact(%q) = %q", in, got)
				}
				got, hits = all.Redact(ex)
				if strings.Contains(got, secret) || len(hits) == 0 {
					t.Errorf("all patterns: Redact(%q) = %q, hits %v; the secret survives", ex, got, hits)
				}
			})
		}
		for i, ex := range e.Examples.NoMatch {
			t.Run(fmt.Sprintf("%s/no_match_%d", e.ID, i+1), func(t *testing.T) {
				if got, hits := alone.Redact(ex); got != ex || hits != nil {
					t.Errorf("alone: Redact(%q) = %q, %v; want it unchanged", ex, got, hits)
				}
				if got, hits := all.Redact(ex); got != ex || hits != nil {
					t.Errorf("all patterns: Redact(%q) = %q, %v; want it unchanged", ex, got, hits)
				}
			})
		}
	}
}

// TestKeywordsCoverExamples: the prefilter must never hide an example.
func TestKeywordsCoverExamples(t *testing.T) {
	for _, e := range newT(t).entries {
		if len(e.Keywords) == 0 {
			continue
		}
		for _, ex := range e.Examples.Match {
			if !containsAny(asciiLower(ex), e.Keywords) {
				t.Errorf("%s: example %q contains none of the keywords %q", e.ID, ex, e.Keywords)
			}
		}
	}
}

// TestKeywordFoldingRunes: the only non-ASCII runes that case-insensitive
// RE2 matching treats as an ASCII letter are the two whose presence turns
// the keyword check off (asciiLower cannot fold them in place).
func TestKeywordFoldingRunes(t *testing.T) {
	var got []rune
	for r := rune(0x80); r <= unicode.MaxRune; r++ {
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			if f < 0x80 {
				got = append(got, r)
				break
			}
		}
	}
	if want := []rune{'\u017f', '\u212a'}; !slices.Equal(got, want) {
		t.Errorf("runes folding onto ASCII: %U, want %U", got, want)
	}
}

func TestValidators(t *testing.T) {
	for _, tc := range []struct {
		name string
		fn   func(string) bool
		in   string
		want bool
	}{
		{"luhn visa", luhn, "4111 1111 1111 1111", true},
		{"luhn amex", luhn, "3782-822463-10005", true},
		{"luhn off by one", luhn, "4111111111111112", false},
		{"luhn letters", luhn, "4111x11111111111", false},
		{"luhn one digit", luhn, "0", false},
		{"iban de", ibanMod97, "DE89 3704 0044 0532 0130 00", true},
		{"iban gb lower case", ibanMod97, "gb82west12345698765432", true},
		{"iban wrong check", ibanMod97, "GB82WEST12345698765433", false},
		{"iban too short", ibanMod97, "DE8937040044", false},
		{"iban too long", ibanMod97, "DE89370400440532013000123456789012345", false},
		{"iban no country", ibanMod97, "1289370400440532013000", false},
		{"my number", myNumber, "123456789018", true},
		{"my number grouped", myNumber, "1234-5678-9018", true},
		{"my number remainder 0 or 1 gives 0", myNumber, "000000000000", true},
		{"my number wrong check", myNumber, "123456789017", false},
		{"my number 11 digits", myNumber, "12345678901", false},
	} {
		if got := tc.fn(tc.in); got != tc.want {
			t.Errorf("%s: (%q) = %v, want %v", tc.name, tc.in, got, tc.want)
		}
	}
}

func TestOverlaps(t *testing.T) {
	r := newT(t)
	for _, tc := range []struct {
		name, in, want string
	}{
		{"pem block redacted whole, nothing inside re-redacted",
			"key:\n-----BEGIN PRIVATE KEY-----\nuser alice@example.com 4111111111111111\n-----END PRIVATE KEY-----\nbye",
			"key:\n[REDACTED:private_key]\nbye"},
		{"jwt as a token value keeps the jwt label",
			`token: "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJib2IifQ.c2lnbmF0dXJlLXNpZ25hdHVyZQ"`,
			`token: "[REDACTED:jwt]"`},
		{"github token as a password value",
			"password=ghp_1a2B3c4D5e6F7g8H9i0J1k2L3m4N5o6P7q8R",
			"password=[REDACTED:github_token]"},
		{"earliest wins over longer later",
			"mail bob@example.com then 4111 1111 1111 1111",
			"mail [REDACTED:email] then [REDACTED:card]"},
		{"part of a number that fails Luhn is not a My Number",
			"order 4111 1111 1111 1112 shipped",
			"order 4111 1111 1111 1112 shipped"},
		{"a candidate hidden by an overlapping one is found in a later pass",
			"1234 5678 9018 6011 1111 1111 1117",
			"[REDACTED:my_number] [REDACTED:card]"},
		{"markers already there are left alone",
			"[REDACTED:email] and [REDACTED:secret]",
			"[REDACTED:email] and [REDACTED:secret]"},
		{"adjacent matches",
			"8.8.8.8,1.1.1.1;alice@example.com",
			"[REDACTED:ip],[REDACTED:ip];[REDACTED:email]"},
		{"url password", "git clone https://bob:hunter2@git.example.com/x.git",
			"git clone https://bob:[REDACTED:email]/x.git"},
		{"url password, host without a TLD", "redis://:p4ss@127.0.0.1:6379/0",
			"redis://:[REDACTED:secret]@[REDACTED:ip]:6379/0"},
		{"long-s spelling still caught by the (?i) pattern", "paſſword=hunter2",
			"paſſword=[REDACTED:secret]"},
	} {
		got, _ := r.Redact(tc.in)
		if got != tc.want {
			t.Errorf("%s:\nRedact(%q)\n = %q\nwant %q", tc.name, tc.in, got, tc.want)
		}
	}
}

func TestNothingToRedact(t *testing.T) {
	r := newT(t)
	for _, in := range []string{"", "hello", "日本語のテキストです。", "The meeting is at 10:30 in room 4."} {
		if got, hits := r.Redact(in); got != in || hits != nil {
			t.Errorf("Redact(%q) = %q, %v", in, got, hits)
		}
	}
}

func TestHitsSortedAndCounted(t *testing.T) {
	r := newT(t)
	_, hits := r.Redact("a@example.com b@example.com 10.0.0.1 AKIAIOSFODNN7EXAMPLE c@example.org")
	want := []Hit{{"aws_access_key_id", 1}, {"email", 3}, {"ipv4", 1}}
	if !slices.Equal(hits, want) {
		t.Errorf("hits = %v, want %v", hits, want)
	}
}

func TestIDsAndVersion(t *testing.T) {
	r := newT(t)
	if r.Version() < 1 {
		t.Errorf("Version = %d", r.Version())
	}
	ids := r.IDs()
	for _, want := range []string{"email", "phone_e164", "phone_nanp", "phone_jp", "payment_card", "us_ssn", "iban",
		"ipv4", "ipv6", "aws_access_key_id", "github_token", "openai_api_key", "slack_token", "google_api_key", "jwt",
		"private_key_pem", "llmfence_api_key", "secret_assignment"} {
		if !slices.Contains(ids, want) {
			t.Errorf("IDs lacks %s: %v", want, ids)
		}
	}
}

// The prefilter is an optimisation only: it never changes the result.
func TestPrefilterChangesNothing(t *testing.T) {
	r := newT(t)
	raw := *r
	raw.plain = true
	in, err := os.ReadFile(filepath.Join("testdata", "transcript.txt"))
	if err != nil {
		t.Fatal(err)
	}
	a, ha := r.Redact(string(in))
	b, hb := raw.Redact(string(in))
	if a != b || !slices.Equal(ha, hb) {
		t.Errorf("prefilter changed the result")
	}
}

func TestGoldenTranscript(t *testing.T) {
	r := newT(t)
	in, err := os.ReadFile(filepath.Join("testdata", "transcript.txt"))
	if err != nil {
		t.Fatal(err)
	}
	out, hits := r.Redact(string(in))
	hj, _ := json.MarshalIndent(hits, "", "  ")
	golden(t, filepath.Join("testdata", "transcript.golden"), []byte(out+"\n--- hits\n"+string(hj)+"\n"))
	// Every planted secret is gone.
	for _, secret := range []string{"maria.garcia@example.com", "4111 1111 1111 1111", "AKIAIOSFODNN7EXAMPLE",
		"ghp_1a2B3c4D5e6F7g8H9i0J1k2L3m4N5o6P7q8R", "MIIEowIBAAKCAQEA", "078-05-1120", "DE89 3704 0044 0532 0130 00",
		"hunter2", "lf_AbCd1234_", "090-1234-5678", "203.0.113.77", "2001:db8::8a2e:370:7334"} {
		if strings.Contains(out, secret) {
			t.Errorf("redacted transcript still contains %q", secret)
		}
	}
	if again, _ := r.Redact(out); again != out {
		t.Errorf("Redact is not idempotent on the transcript")
	}
}

func TestConcurrentUse(t *testing.T) {
	r := newT(t)
	in := "mail alice@example.com, card 4111 1111 1111 1111, key AKIAIOSFODNN7EXAMPLE"
	want, _ := r.Redact(in)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 50 {
				if got, _ := r.Redact(in); got != want {
					t.Errorf("concurrent Redact = %q, want %q", got, want)
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestParseRejectsBadData(t *testing.T) {
	good := string(patternsYAML)
	for _, tc := range []struct {
		name, data, wantErr string
	}{
		{"not yaml", "{", "redaction patterns"},
		{"no version", strings.Replace(good, "version: 2\n", "", 1), "missing version"},
		{"bad category", strings.Replace(good, "category: pii", "category: personal", 1), "category"},
		{"unknown field", strings.Replace(good, "  - id: jwt\n", "  - id: jwt\n    sevrity: high\n", 1), "sevrity"},
		{"bad id", strings.Replace(good, "id: jwt\n", "id: JWT-Token\n", 1), "snake_case"},
		{"duplicate id", strings.Replace(good, "id: jwt\n", "id: email\n", 1), "duplicate id"},
		{"bad regex", strings.Replace(good, `regex: '\beyJ`, `regex: '(?<=x)\beyJ`, 1), "regex"},
		{"empty-matching regex", strings.Replace(good, `regex: '\bAIza[0-9A-Za-z_-]{35}'`, `regex: 'x*'`, 1), "empty string"},
		{"unknown validator", strings.Replace(good, "validator: luhn", "validator: crc32", 1), `validator "crc32"`},
		{"bad replacement", strings.Replace(good, "replacement: jwt", "replacement: JWT token", 1), "replacement"},
		{"bad keyword", strings.Replace(good, `keywords: ["eyj"]`, `keywords: ["eyJ"]`, 1), "keyword"},
		{"no examples", strings.Replace(good, "      match:\n        - \"AIzaSyDaGmWKa4JsXZ-HjGw7ISLn_3namBGewQe\"\n", "", 1), "examples.match"},
		{"no patterns", "version: 1\npatterns: []\n", "no patterns"},
	} {
		if tc.data == good {
			t.Errorf("%s: replacement did not apply; fix the test", tc.name)
			continue
		}
		_, err := newFromData([]byte(tc.data))
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.wantErr)
		}
	}
}

func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading golden file (run with -update to create it): %v", err)
	}
	if string(got) != string(want) {
		t.Errorf("%s differs from the result (run with -update after checking):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}
