package probe

import (
	"errors"
	"testing"
)

func TestParseTarget(t *testing.T) {
	ok := map[string]string{
		"127.0.0.1":                     "http://127.0.0.1:11434",
		"127.0.0.1:8080":                "http://127.0.0.1:8080",
		"localhost":                     "http://localhost:11434",
		"http://127.0.0.1:11434/":       "http://127.0.0.1:11434",
		"https://llm.example.internal/": "https://llm.example.internal:443",
		"http://llm.example.internal":   "http://llm.example.internal:80",
		"http://[::1]:11434":            "http://[::1]:11434",
		"[::1]:8000":                    "http://[::1]:8000",
		"http://127.0.0.1:4000/ollama/": "http://127.0.0.1:4000/ollama",
		"my-host.internal:11434":        "http://my-host.internal:11434",
	}
	for in, want := range ok {
		got, err := ParseTarget(in)
		if err != nil || got != want {
			t.Errorf("ParseTarget(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	notOne := []string{
		"", "10.0.0.0/8", "192.0.2.0/24", "http://192.0.2.0/24", "10.0.0.1-50", "10.0.0.1-10.0.0.9",
		"a.example,b.example", "a.example b.example", "-", "-iL", "@targets.txt", "*.example.com",
		"0.0.0.0", "http://[::]:11434", "224.0.0.1", "[2001:db8::]/32",
	}
	for _, in := range notOne {
		if _, err := ParseTarget(in); !errors.Is(err, ErrNotOneTarget) {
			t.Errorf("ParseTarget(%q) = %v, want ErrNotOneTarget", in, err)
		}
	}
	for _, in := range []string{"ftp://127.0.0.1", "http://user:pw@127.0.0.1", "http://127.0.0.1/?x=1"} {
		if _, err := ParseTarget(in); err == nil {
			t.Errorf("ParseTarget(%q) accepted", in)
		}
	}
}

func FuzzParseTarget(f *testing.F) {
	for _, s := range []string{"127.0.0.1", "10.0.0.0/8", "http://[::1]:1/x", "a-b", "1.2.3.4-5"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		base, err := ParseTarget(s)
		if err != nil {
			return
		}
		// Whatever is accepted parses again to itself: one host, one port.
		again, err := ParseTarget(base)
		if err != nil || again != base {
			t.Fatalf("ParseTarget(%q) = %q, which parses to %q, %v", s, base, again, err)
		}
		if h, p := TargetHostPort(base); h == "" || p == 0 {
			t.Fatalf("no host:port in %q", base)
		}
	})
}
