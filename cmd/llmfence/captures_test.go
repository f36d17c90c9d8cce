package main

import (
	"context"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/llmfence/llmfence/internal/store"
)

// seedCaptures stores three captures: alice an hour ago, bob two hours
// ago, and an anonymous one two days ago.
func seedCaptures(t *testing.T, db string) time.Time {
	t.Helper()
	now := time.Now().UTC().Truncate(time.Second)
	st := openKeysStore(t, db)
	err := st.AppendCaptures(context.Background(), []store.Capture{
		{Time: now.Add(-time.Hour), KeyID: "aliceid0", KeyName: "alice", ClientIP: "192.0.2.7", Route: "/api/chat",
			Model: "llama3.2:3b", Status: 200,
			Prompt:     "Mail [REDACTED:email] \x1b[31mnow\x1b[0m\n\u202eok",
			Response:   "Sure, here is a draft: " + strings.Repeat("long text ", 20),
			Redactions: map[string]int{"email": 1, "payment_card": 2}, ResponseTruncated: true, RedactorVersion: 1},
		{Time: now.Add(-2 * time.Hour), KeyID: "bobid000", KeyName: "bob", Route: "/v1/chat/completions",
			Model: "qwen2.5:7b", Status: 429, Prompt: "hello", Response: "", RedactorVersion: 1},
		{Time: now.Add(-48 * time.Hour), Route: "/api/generate", Status: 401, Prompt: "old", RedactorVersion: 1},
	})
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	return now
}

func TestCapturesList(t *testing.T) {
	db := filepath.Join(t.TempDir(), "llmfence.db")
	seedCaptures(t, db)

	out, errOut, code := runCLI(t, "", "captures", "--db", db)
	if code != 0 {
		t.Fatalf("captures: exit %d\n%s", code, errOut)
	}
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("captures (default --since 24h) printed %d lines, want a header and 2 rows:\n%s", len(lines), out)
	}
	for i, re := range []string{
		`^TIME\s+KEY\s+ROUTE\s+MODEL\s+STATUS\s+REDACTED\s+PROMPT\s+RESPONSE$`,
		`^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\s+alice\s+/api/chat\s+llama3\.2:3b\s+200\s+email:1,payment_card:2\s+Mail \[REDACTED:email\] ·\[31mnow·\[0m ·ok\s+Sure, here is a draft: long text .*… \[cut\]$`,
		`^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\s+bob\s+/v1/chat/completions\s+qwen2\.5:7b\s+429\s+-\s+hello\s*$`,
	} {
		if !regexp.MustCompile(re).MatchString(lines[i]) {
			t.Errorf("line %d:\n%q\ndoes not match %s", i, lines[i], re)
		}
	}
	if strings.ContainsAny(out, "\x1b\u202e") {
		t.Errorf("terminal control characters from a prompt reached the table")
	}

	for _, tc := range []struct {
		name string
		args []string
		want []string // prompts, newest first
	}{
		{"all time", []string{"--since", "0"}, []string{"Mail", "hello", "old"}},
		{"by key name", []string{"--key", "bob"}, []string{"hello"}},
		{"by key id", []string{"--key", "aliceid0"}, []string{"Mail"}},
		{"limit", []string{"--since", "0", "--limit", "2"}, []string{"Mail", "hello"}},
		{"since", []string{"--since", "90m"}, []string{"Mail"}},
		{"nothing", []string{"--key", "carol"}, nil},
	} {
		out, errOut, code := runCLI(t, "", append([]string{"captures", "--db", db, "--format", "json"}, tc.args...)...)
		if code != 0 {
			t.Errorf("%s: exit %d\n%s", tc.name, code, errOut)
			continue
		}
		cs := decodeJSONL[store.Capture](t, out)
		var got []string
		for _, c := range cs {
			got = append(got, strings.Fields(c.Prompt)[0])
		}
		if strings.Join(got, ",") != strings.Join(tc.want, ",") {
			t.Errorf("%s: prompts %v, want %v", tc.name, got, tc.want)
		}
		if tc.name == "by key id" && (cs[0].Redactions["payment_card"] != 2 || !cs[0].ResponseTruncated ||
			!strings.Contains(cs[0].Prompt, "\x1b[31m") || cs[0].KeyName != "alice") {
			t.Errorf("json capture = %+v; want the whole stored capture", cs[0])
		}
		if tc.want == nil && out != "" {
			t.Errorf("%s: json = %q, want no lines", tc.name, out)
		}
	}

	if _, errOut, code := runCLI(t, "", "captures", "--db", db, "--key", "carol"); code != 0 || !strings.Contains(errOut, "No captures") {
		t.Errorf("empty table: exit %d, stderr %q", code, errOut)
	}
}

func TestCapturesPrune(t *testing.T) {
	db := filepath.Join(t.TempDir(), "llmfence.db")
	seedCaptures(t, db)
	out, errOut, code := runCLI(t, "", "captures", "prune", "--db", db, "--older-than", "1d")
	if code != 0 || !strings.HasPrefix(out, "Deleted 1 captures older than ") {
		t.Fatalf("prune: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	out, _, _ = runCLI(t, "", "captures", "prune", "--db", db, "--older-than", "90m")
	if !strings.HasPrefix(out, "Deleted 1 captures") {
		t.Errorf("second prune: %q", out)
	}
	st := openKeysStore(t, db)
	left, err := st.QueryCaptures(context.Background(), store.CaptureFilter{})
	if err != nil || len(left) != 1 || left[0].KeyName != "alice" {
		t.Errorf("left after prune: %+v, %v", left, err)
	}
}

func TestCapturesBadArguments(t *testing.T) {
	db := filepath.Join(t.TempDir(), "llmfence.db")
	for _, args := range [][]string{
		{"captures", "--format", "xml"},
		{"captures", "--since", "-1h"},
		{"captures", "--limit", "-1"},
		{"captures", "prune", "--older-than", "0"},
		{"captures", "prune", "--older-than", "soon"},
	} {
		_, errOut, code := runCLI(t, "", append(args, "--db", db)...)
		if code != 2 || !strings.Contains(errOut, "llmfence: ") {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 and a message", args, code, errOut)
		}
	}
}
