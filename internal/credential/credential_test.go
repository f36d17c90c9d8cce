package credential

import (
	"slices"
	"strings"
	"testing"
)

func TestArgs(t *testing.T) {
	tests := []struct {
		in, want []string
	}{
		{[]string{"llmfence", "--db", "postgres://scan:S3cret%21@db.example:5432/llm?sslmode=disable", "scan", "10.0.0.0/8"},
			[]string{"llmfence", "--db", "postgres://scan:xxxxx@db.example:5432/llm?sslmode=disable", "scan", "10.0.0.0/8"}},
		{[]string{"llmfence", "--db=postgresql://u:p@h/d", "runs"},
			[]string{"llmfence", "--db=postgresql://u:xxxxx@h/d", "runs"}},
		{[]string{"guard", "--admin-token", "abcdef", "--oidc-client-secret=zzz", "--upstream", "http://127.0.0.1:11434"},
			[]string{"guard", "--admin-token", "xxxxx", "--oidc-client-secret=xxxxx", "--upstream", "http://127.0.0.1:11434"}},
		{[]string{"scan", "https://user:pw@llm.example/?api_key=K123&x=1"},
			[]string{"scan", "https://user:xxxxx@llm.example/?api_key=xxxxx&x=1"}},
		{[]string{"scan", "--webhook", "https://hooks.example/x?token=abc"},
			[]string{"scan", "--webhook", "https://hooks.example/x?token=xxxxx"}},
		{[]string{"serve", "--db", "host=db user=u password=hunter2 dbname=x"},
			[]string{"serve", "--db", "host=db user=u password=xxxxx dbname=x"}},
		{[]string{"scan", "10.0.0.1", "-p", "11434"}, []string{"scan", "10.0.0.1", "-p", "11434"}},
	}
	for _, tt := range tests {
		got := Args(tt.in)
		if !slices.Equal(got, tt.want) {
			t.Errorf("Args(%q)\n got %q\nwant %q", tt.in, got, tt.want)
		}
		if again := Args(got); !slices.Equal(again, got) {
			t.Errorf("not idempotent: %q -> %q", got, again)
		}
		for _, a := range got {
			for _, secret := range []string{"S3cret", "hunter2", "abcdef", "zzz", "K123", "=abc"} {
				if strings.Contains(a, secret) {
					t.Errorf("secret %q survives in %q", secret, a)
				}
			}
		}
	}
}

func TestText(t *testing.T) {
	in := `cannot reach postgres://a:b0b@127.0.0.1:1/x; header Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.payload.sig token=tok_123`
	got := Text(in)
	for _, s := range []string{"b0b", "eyJhbGci", "tok_123"} {
		if strings.Contains(got, s) {
			t.Errorf("Text left %q in %q", s, got)
		}
	}
	if !strings.Contains(got, "postgres://a:xxxxx@127.0.0.1:1/x") {
		t.Errorf("Text lost the non-secret part: %q", got)
	}
	if Text(got) != got {
		t.Errorf("Text not idempotent on %q", got)
	}
}

func TestURLUnparsable(t *testing.T) {
	got := URL("postgres://u:p%zz@h/d")
	if strings.Contains(got, "p%zz") || !strings.Contains(got, "u:xxxxx@h/d") {
		t.Errorf("URL on an unparsable DSN = %q", got)
	}
	if got := URL("https://" + strings.Repeat("A", 40) + "@git.example/x"); strings.Contains(got, "AAAA") {
		t.Errorf("token userinfo kept: %q", got)
	}
}

func FuzzText(f *testing.F) {
	f.Add("postgres://u:p@h/d token=x")
	f.Add("Bearer abcdefghijkl")
	f.Add("A://:%@00") // once failed: the second pass lower-cased the scheme
	f.Fuzz(func(t *testing.T, s string) {
		once := Text(s)
		if Text(once) != once {
			t.Fatalf("not idempotent: %q -> %q -> %q", s, once, Text(once))
		}
	})
}
