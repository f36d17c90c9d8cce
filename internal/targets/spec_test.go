package targets

import (
	"bufio"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/llmfence/llmfence/internal/goldentest"
)

// specLines reads testdata/specs.txt, skipping comments.
func specLines(t testing.TB) []string {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", "specs.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := sc.Text()
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		out = append(out, l)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func describeSpec(s Spec) string {
	kind := map[SpecKind]string{KindAddr: "addr", KindPrefix: "prefix", KindRange: "range", KindHost: "host"}[s.Kind]
	iv := s.interval()
	extra := ""
	if s.Kind != KindHost {
		extra = fmt.Sprintf(" first=%s last=%s", iv.lo.addr(), iv.hi.addr())
	}
	return fmt.Sprintf("%s %s port=%d scheme=%q%s", kind, s.String(), s.Port, s.Scheme, extra)
}

// TestParseSpecGolden parses every line of testdata/specs.txt and compares
// the result (or error) with testdata/specs.golden. Run with -update to
// rewrite the golden file after a deliberate change, and review the diff.
func TestParseSpecGolden(t *testing.T) {
	var b strings.Builder
	for _, in := range specLines(t) {
		sp, err := ParseSpec(in)
		if err != nil {
			fmt.Fprintf(&b, "%s\n\terror: %v\n", in, err)
			continue
		}
		fmt.Fprintf(&b, "%s\n\t%s\n", in, describeSpec(sp))
	}
	goldentest.Check(t, filepath.Join("testdata", "specs.golden"), []byte(b.String()))
}

func TestParseSpecFields(t *testing.T) {
	a := netip.MustParseAddr
	tests := []struct {
		in   string
		want Spec
	}{
		{"127.0.0.1", Spec{Kind: KindAddr, Addr: a("127.0.0.1")}},
		{"[::1]:11434", Spec{Kind: KindAddr, Addr: a("::1"), Port: 11434}},
		{"::ffff:127.0.0.2", Spec{Kind: KindAddr, Addr: a("127.0.0.2")}},
		{"127.0.0.200/24", Spec{Kind: KindPrefix, Prefix: netip.MustParsePrefix("127.0.0.0/24")}},
		{"::ffff:127.0.0.0/120", Spec{Kind: KindPrefix, Prefix: netip.MustParsePrefix("127.0.0.0/24")}},
		{"127.0.0.1-50", Spec{Kind: KindRange, Addr: a("127.0.0.1"), Last: a("127.0.0.50")}},
		{"db.internal:11434", Spec{Kind: KindHost, Host: "db.internal", Port: 11434}},
		{"https://db.internal/x", Spec{Kind: KindHost, Host: "db.internal", Port: 443, Scheme: "https"}},
		{"http://[::1]:8000", Spec{Kind: KindAddr, Addr: a("::1"), Port: 8000, Scheme: "http"}},
	}
	for _, tt := range tests {
		got, err := ParseSpec(tt.in)
		if err != nil {
			t.Errorf("ParseSpec(%q): %v", tt.in, err)
			continue
		}
		if got != tt.want {
			t.Errorf("ParseSpec(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
	}
}

func TestParseSpecGenericError(t *testing.T) {
	for _, in := range []string{"10.0.0.300", "1234", "a..b", "-x", "[::1"} {
		_, err := ParseSpec(in)
		if !errors.Is(err, ErrBadSpec) {
			t.Errorf("ParseSpec(%q) error = %v, want ErrBadSpec", in, err)
		}
	}
}

// checkRoundTrip is the property FuzzParseSpec checks: a spec that parses
// prints to a string that parses to the same spec and prints the same.
func checkRoundTrip(t *testing.T, in string) {
	sp, err := ParseSpec(in)
	if err != nil {
		return
	}
	s1 := sp.String()
	sp2, err := ParseSpec(s1)
	if err != nil {
		t.Fatalf("ParseSpec(%q) = %+v, whose String %q does not parse: %v", in, sp, s1, err)
	}
	if sp2 != sp {
		t.Fatalf("round trip of %q: %+v -> %q -> %+v", in, sp, s1, sp2)
	}
	if s2 := sp2.String(); s2 != s1 {
		t.Fatalf("String not stable for %q: %q then %q", in, s1, s2)
	}
	if sp.Kind != KindHost {
		iv := sp.interval()
		if iv.hi.cmp(iv.lo) < 0 {
			t.Fatalf("ParseSpec(%q): interval ends before it starts", in)
		}
	}
}

func FuzzParseSpec(f *testing.F) {
	for _, l := range specLines(f) {
		f.Add(l)
	}
	f.Fuzz(func(t *testing.T, in string) {
		checkRoundTrip(t, in)
	})
}
