package main

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/llmfence/llmfence/internal/lab"
)

// TestExitCodes holds every command to the one exit-status scheme
// (internal/cli): 0 done, 1 findings at or above --fail-on, 2 bad usage or
// input or an incomplete answer. Each command is tried with a bad flag, a
// bad value or input, and where it is cheap a run that succeeds and one
// that finds something. Servers are only given bad usage here (their
// graceful stop is tested with the servers).
func TestExitCodes(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "store.db")
	missing := filepath.Join(dir, "nope", "x.db")
	empty := filepath.Join(dir, "empty.txt")
	if err := os.WriteFile(empty, []byte("# no targets\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	leaky := filepath.Join(dir, "leaky.jsonl")
	if err := os.WriteFile(leaky, []byte(`{"text":"key AKIAIOSFODNN7EXAMPLE"}`+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	prefix := netip.MustParsePrefix("127.166.0.0/28")
	personas, err := lab.Generate(lab.Config{Seed: 9, Prefix: prefix, Live: 3, Stacks: []string{lab.StackOllama}, AuthFraction: -1, TLSFraction: -1})
	if err != nil {
		t.Fatal(err)
	}
	fleet, err := lab.Start(context.Background(), personas)
	if err != nil {
		t.Fatal(err)
	}
	defer fleet.Close()
	scan := func(extra ...string) []string {
		return append([]string{"scan", "--db", db, "--progress", "never", "--rate", "0", "-p", "11434", "-f", "json", "-o", os.DevNull}, extra...)
	}
	type tc struct {
		name string
		args []string
		code int
		msg  string // in stderr
	}
	// The first two scans fill the store the other commands read.
	cases := []tc{
		{"scan ok", scan(prefix.String()), 0, ""},
		{"scan findings", scan("--fail-on", "low", prefix.String()), 1, "--fail-on low"},
		{"scan bad flag", scan("--bogus", prefix.String()), 2, "--bogus"},
		{"scan bad value", scan("--progress", "bogus", prefix.String()), 2, "--progress \"bogus\": want auto, always or never"},
		{"scan zero budget", scan("--target-budget", "0", prefix.String()), 2, "--target-budget"},
		{"scan bad fail-on", scan("--fail-on", "bad", prefix.String()), 2, "--fail-on"},
		{"scan bad target", scan("127.0.0.300"), 2, "127.0.0.300"},
		{"scan empty file", scan("-iL", empty), 2, "nothing to scan"},
		{"scan empty target", scan(""), 2, "nothing to scan"},
		{"scan excluded", scan("--exclude", "127.166.0.0/24", prefix.String()), 2, "exclusions remove every target"},
		{"scan reserved", scan("224.0.0.1"), 2, "--allow-reserved"},
		{"scan no dns", scan("--no-dns", "localhost"), 2, "--no-dns"},
		{"scan bad db", []string{"scan", "--db", "mysql://u@h/db", "127.0.0.1"}, 2, "--db"},
		{"scan missing db dir", []string{"scan", "--db", missing, "-p", "1", "127.0.0.1"}, 2, "does not exist"},
		{"scan list", []string{"scan", "--list", "--db", missing, "127.0.0.0/30"}, 0, ""},
		{"version", []string{"version"}, 0, ""},
		{"version args", []string{"version", "x"}, 2, "unknown command"},
		{"root bad flag", []string{"--bogus"}, 2, "--bogus"},
		{"root bad log level", []string{"--log-level", "loud", "version"}, 2, "--log-level"},
		{"runs ok", []string{"runs", "--db", db}, 0, ""},
		{"runs bad format", []string{"runs", "--db", db, "--format", "xml"}, 2, "--format"},
		{"runs no store", []string{"runs", "--db", missing}, 2, "no store"},
		{"runs prune bad age", []string{"runs", "prune", "--db", db, "--older-than", "-1d"}, 2, "--older-than"},
		{"hosts ok", []string{"hosts", "--db", db, "--since", "30d"}, 0, ""},
		{"hosts negative since", []string{"hosts", "--db", db, "--since", "-5h"}, 2, "--since \"-5h\": must not be negative"},
		{"hosts bad auth", []string{"hosts", "--db", db, "--auth", "maybe"}, 2, "--auth"},
		{"findings ok", []string{"findings", "--db", db}, 0, "findings of run 2"},
		{"findings bad run", []string{"findings", "--db", db, "--run", "yesterday"}, 2, "yesterday"},
		{"findings unknown run", []string{"findings", "--db", db, "--run", "99"}, 2, "99"},
		{"diff ok", []string{"diff", "--db", db}, 0, "comparing run 1 with run 2"},
		{"diff arity", []string{"diff", "--db", db, "1", "2", "3"}, 2, "two runs"},
		{"diff no store", []string{"diff", "--db", missing}, 2, "no store"},
		{"datascan findings", []string{"datascan", leaky}, 1, ""},
		{"datascan missing file", []string{"datascan", filepath.Join(dir, "none.jsonl")}, 2, "none.jsonl"},
		{"datascan bad flag", []string{"datascan", "--bogus", leaky}, 2, "--bogus"},
		{"inspect missing file", []string{"inspect", filepath.Join(dir, "none.gguf")}, 2, "none.gguf"},
		{"inspect bad flag", []string{"inspect", "--format", "xml", leaky}, 2, "--format"},
		{"keys ok", []string{"keys", "list", "--db", db}, 0, ""},
		{"keys bad expiry", []string{"keys", "create", "x", "--db", db, "--expires", "soon"}, 2, "--expires"},
		{"usage negative since", []string{"usage", "--db", db, "--since", "-1h"}, 2, "--since"},
		{"captures ok", []string{"captures", "--db", db}, 0, ""},
		{"captures no store", []string{"captures", "--db", missing}, 2, "does not exist"},
		{"guard bad flag", []string{"guard", "--bogus"}, 2, "--bogus"},
		{"guard bad retention", []string{"guard", "--capture-retention", "-1d"}, 2, "retention"},
		{"lab bad flag", []string{"lab", "--bogus"}, 2, "--bogus"},
		{"demo bad flag", []string{"demo", "--bogus"}, 2, "--bogus"},
		{"vulndb list", []string{"vulndb", "list"}, 0, ""},
		{"vulndb import missing", []string{"vulndb", "import", filepath.Join(dir, "none.zip")}, 2, "none.zip"},
		{"audit bad timeout", []string{"audit", "--timeout", "0"}, 2, "--timeout"},
		{"serve bad flag", []string{"serve", "--bogus"}, 2, "--bogus"},
		{"serve bad poll", []string{"serve", "--poll", "0s"}, 2, "--poll"},
		{"worker bad flag", []string{"worker", "--bogus"}, 2, "--bogus"},
		{"users bad flag", []string{"users", "list", "--bogus"}, 2, "--bogus"},
		{"disclose arity", []string{"disclose", "--db", db}, 2, "accepts 1 arg"},
		{"probe bad flag", []string{"probe", "--bogus"}, 2, "--bogus"},
		{"probe bad request timeout", []string{"probe", "--request-timeout", "0", "http://127.0.0.1:1"}, 2, "--request-timeout"},
		{"probes ok", []string{"probes", "--db", db}, 0, ""},
		{"probes no store", []string{"probes", "--db", missing}, 2, "no store"},
	}
	for _, c := range cases {
		_, stderr, code := runCLI(t, "", c.args...)
		if code != c.code || !strings.Contains(stderr, c.msg) {
			t.Errorf("%s: llmfence %s: exit %d, want %d (stderr mentioning %q); stderr:\n%s", c.name, strings.Join(c.args, " "), code, c.code, c.msg, stderr)
		}
	}
	if _, err := os.Stat(filepath.Dir(missing)); err == nil {
		t.Errorf("a command created %s", filepath.Dir(missing))
	}
}

// --version prints what "llmfence version" prints.
func TestVersionFlag(t *testing.T) {
	a, _, c1 := runCLI(t, "", "version")
	b, _, c2 := runCLI(t, "", "--version")
	if c1 != 0 || c2 != 0 || a != b || !strings.HasPrefix(a, "llmfence ") {
		t.Errorf("version %q (%d), --version %q (%d)", a, c1, b, c2)
	}
}
