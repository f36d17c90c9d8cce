package redact

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// FuzzRedact checks, for any input: Redact does not panic; it is
// idempotent (no text that a pattern would redact survives); the
// prefilter changes nothing (Redact and Find agree with running every
// regex on the whole text); every hit is one new marker and the markers
// already in the input are kept.
func FuzzRedact(f *testing.F) {
	r := newT(f)
	for _, e := range r.entries {
		for _, ex := range e.Examples.Match {
			f.Add(ex)
			f.Add("x " + ex + "," + ex)
		}
		for _, ex := range e.Examples.NoMatch {
			f.Add(ex)
		}
	}
	if b, err := os.ReadFile(filepath.Join("testdata", "transcript.txt")); err == nil {
		f.Add(string(b))
	}
	for _, s := range []string{
		"", "[REDACTED:email]", "[REDACTED:", "password=[REDACTED:secret]hunter2", "password: \"[REDACTED:x]\"",
		"Token => 9f8e7d6c5b4a", "key := v4lue", "1234 5678 9018 6011 1111 1111 1117", "4111 1111 1111 1112",
		"-----BEGIN PRIVATE KEY-----\nAAAA\n", "a@b.co@c.de", "\xff\xfepassword=\x00x", "paſſword=x",
		"https://u:p@h.example.com:1@2", "std::vector<int> 12:30:45 fe80::1 ::1",
	} {
		f.Add(s)
	}
	raw := *r
	raw.plain = true
	f.Fuzz(func(t *testing.T, in string) {
		out, hits := r.Redact(in)
		if again, more := r.Redact(out); again != out || more != nil {
			t.Fatalf("not idempotent:\nin    %q\nout   %q\nagain %q (%v)", in, out, again, more)
		}
		if out2, hits2 := raw.Redact(in); out2 != out || len(hits2) != len(hits) {
			t.Fatalf("prefilter changed the result:\nin  %q\nwith    %q\nwithout %q", in, out, out2)
		}
		if a, b := r.Find(in), raw.Find(in); !slices.Equal(a, b) {
			t.Fatalf("prefilter changed what Find finds:\nin  %q\nwith    %v\nwithout %v", in, a, b)
		}
		n := 0
		for i, h := range hits {
			if h.Count <= 0 || (i > 0 && hits[i-1].ID >= h.ID) {
				t.Fatalf("bad hits %v", hits)
			}
			n += h.Count
		}
		if got, want := len(markerRE.FindAllStringIndex(out, -1)), len(markerRE.FindAllStringIndex(in, -1))+n; got != want {
			t.Fatalf("%d markers in the output, want %d:\nin  %q\nout %q", got, want, in, out)
		}
		if n == 0 && out != in {
			t.Fatalf("no hits but the text changed:\nin  %q\nout %q", in, out)
		}
		if strings.Count(out, markerPrefix) < strings.Count(in, markerPrefix) {
			t.Fatalf("a marker already in the input was changed")
		}
	})
}
