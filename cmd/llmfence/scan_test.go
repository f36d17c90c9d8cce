package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/llmfence/llmfence/internal/lab"
	"github.com/llmfence/llmfence/internal/service"
)

// runCLI runs one command line in-process and returns stdout, stderr and the
// exit status.
func runCLI(t *testing.T, stdin string, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, strings.NewReader(stdin), &out, &errb)
	return out.String(), errb.String(), code
}

func readJSONL(t *testing.T, path string) []service.Service {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []service.Service
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 32<<20)
	for sc.Scan() {
		var s service.Service
		if err := json.Unmarshal(sc.Bytes(), &s); err != nil {
			t.Fatalf("bad JSON line %q: %v", sc.Text(), err)
		}
		out = append(out, s)
	}
	return out
}

func startFleet(t *testing.T, cfg lab.Config) []lab.Persona {
	t.Helper()
	personas, err := lab.Generate(cfg)
	if err != nil {
		t.Fatal(err)
	}
	fleet, err := lab.Start(context.Background(), personas)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fleet.Close)
	t.Cleanup(func() {
		// The scan is passive: no persona may have seen a write or a
		// generate request.
		for ap, hits := range fleet.WriteHits() {
			if len(hits) > 0 {
				t.Errorf("scan sent write/generate requests to %s: %v", ap, hits)
			}
		}
	})
	return personas
}

// TestScanMatchesLabGroundTruth scans an emulated fleet of every stack,
// hostile servers included, and compares every reported field with the
// fleet's ground truth.
func TestScanMatchesLabGroundTruth(t *testing.T) {
	prefix := "127.91.0.0/24"
	personas := startFleet(t, lab.Config{Seed: 42, Prefix: netip.MustParsePrefix(prefix), Live: 90, HostileFraction: 0.08})
	dir := t.TempDir()
	out := filepath.Join(dir, "scan.jsonl")
	db := filepath.Join(dir, "store.db")
	_, stderr, code := runCLI(t, "", "scan", "--db", db, "--format", "json", "-o", out, "--progress", "never",
		// Generous timeouts: the fleet shares this process and the CPU with
		// the race detector and the rest of the suite; under that load a
		// 4 s budget ran out for well-behaved servers (hostile ones end
		// their probes on their own bounds long before).
		"--rate", "0", "--timeout", "5s", "--target-budget", "20s", "--seed", "3", "--keep-http", prefix)
	if code != 0 {
		t.Fatalf("scan exited %d: %s", code, stderr)
	}
	got := map[string]service.Service{}
	for _, s := range readJSONL(t, out) {
		if _, dup := got[s.Key()]; dup {
			t.Errorf("%s reported twice", s.Key())
		}
		got[s.Key()] = s
	}
	hostile := 0
	for _, p := range personas {
		key := p.AddrPort().String()
		s, ok := got[key]
		if p.Hostile != "" {
			hostile++
			if ok && s.Product != "http" && s.Product != p.Stack {
				t.Errorf("%s (hostile %s) reported as %s", key, p.Hostile, s.Product)
			}
			continue
		}
		if !ok {
			t.Errorf("%s (%s %s, auth %v) not found", key, p.Stack, p.Version, p.AuthRequired)
			continue
		}
		checkService(t, p, s)
	}
	if hostile == 0 {
		t.Fatal("fleet has no hostile servers; the test would not show the scan stays bounded")
	}
	if len(got) > len(personas) {
		t.Errorf("reported %d services, fleet has %d", len(got), len(personas))
	}
}

func checkService(t *testing.T, p lab.Persona, s service.Service) {
	t.Helper()
	key := p.AddrPort().String()
	if p.AuthRequired && s.Product == "http" {
		// A login wall that shows nothing of what is behind it (an nginx
		// basic-auth front, a bare FastAPI 401) cannot be named; it must
		// still be reported as demanding credentials.
		if s.Auth != service.AuthRequired {
			t.Errorf("%s (%s behind %s auth): reported as http with auth %q, want required", key, p.Stack, p.AuthMode, s.Auth)
		}
		if p.AuthMode != lab.AuthModeProxy {
			t.Logf("%s: %s with its own auth not identified (generic 401)", key, p.Stack)
		} else if s.Gateway != "nginx" {
			t.Errorf("%s (%s behind an nginx basic-auth front): gateway %q, want nginx", key, p.Stack, s.Gateway)
		}
		return
	}
	if s.Product != p.Stack {
		t.Errorf("%s: product %q, want %q", key, s.Product, p.Stack)
		return
	}
	wantAuth := service.AuthNone
	if p.AuthRequired {
		wantAuth = service.AuthRequired
	}
	if s.Auth != wantAuth {
		t.Errorf("%s (%s): auth %q, want %q", key, p.Stack, s.Auth, wantAuth)
	}
	if s.TLS != p.TLS {
		t.Errorf("%s (%s): tls %v, want %v", key, p.Stack, s.TLS, p.TLS)
	}
	if p.Stack == lab.StackOllama {
		// Ollama tells anyone everything; the scan must report it exactly.
		if s.Version != p.Version {
			t.Errorf("%s: version %q, want %q", key, s.Version, p.Version)
		}
		if s.ManagementOpen != p.ManagementOpen {
			t.Errorf("%s: management_open %v, want %v", key, s.ManagementOpen, p.ManagementOpen)
		}
	}
	if p.AuthRequired {
		return
	}
	have := map[string]service.Model{}
	for _, m := range s.Models {
		have[m.Name] = m
	}
	for _, w := range p.Models {
		name := w.Name
		m, ok := have[name]
		if !ok {
			t.Errorf("%s (%s): model %q missing; have %v", key, p.Stack, name, sortedKeys(have))
			continue
		}
		if p.Stack != lab.StackOllama {
			continue
		}
		if m.Digest != w.Digest {
			t.Errorf("%s: model %s digest %q, want %q", key, name, m.Digest, w.Digest)
		}
		if m.SystemPrompt != w.SystemPrompt {
			t.Errorf("%s: model %s system prompt %q, want %q", key, name, m.SystemPrompt, w.SystemPrompt)
		}
		if !slices.Equal(m.SystemPromptCategories, nonNil(w.SystemPromptCategories)) {
			t.Errorf("%s: model %s categories %v, want %v (prompt %q)", key, name, m.SystemPromptCategories, w.SystemPromptCategories, w.SystemPrompt)
		}
		if m.GuardrailsRemoved != w.GuardrailsRemoved {
			t.Errorf("%s: model %s guardrails_removed %v, want %v", key, name, m.GuardrailsRemoved, w.GuardrailsRemoved)
		}
		if m.Remote != w.Remote {
			t.Errorf("%s: model %s remote %v, want %v", key, name, m.Remote, w.Remote)
		}
	}
	if len(s.Findings) == 0 || s.Risk == service.SeverityNone {
		t.Errorf("%s (%s): an open LLM API has no findings (risk %q)", key, p.Stack, s.Risk)
	}
}

func nonNil(xs []string) []string {
	if xs == nil {
		return []string{}
	}
	return xs
}

func sortedKeys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// TestHistoryCommands runs two scans of a changing fleet and reads the store
// back through runs, hosts, findings and diff.
func TestHistoryCommands(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "store.db")
	prefix := netip.MustParsePrefix("127.92.0.0/24")
	scanOnce := func(seed int64) {
		t.Helper()
		personas, err := lab.Generate(lab.Config{Seed: seed, Prefix: prefix, Live: 12, Stacks: []string{lab.StackOllama}, AuthFraction: -1, TLSFraction: -1})
		if err != nil {
			t.Fatal(err)
		}
		fleet, err := lab.Start(context.Background(), personas)
		if err != nil {
			t.Fatal(err)
		}
		defer fleet.Close()
		_, stderr, code := runCLI(t, "", "scan", "--db", db, "--format", "json", "-o", os.DevNull, "--progress", "never",
			"--rate", "0", "-p", "11434", prefix.String())
		if code != 0 {
			t.Fatalf("scan exited %d: %s", code, stderr)
		}
	}
	scanOnce(1)
	scanOnce(2)

	out, stderr, code := runCLI(t, "", "runs", "--db", db, "--format", "json")
	if code != 0 {
		t.Fatalf("runs: %d %s", code, stderr)
	}
	runs := decodeJSONL[struct {
		ID     string `json:"id"`
		Status string `json:"status"`
	}](t, out)
	if len(runs) != 2 {
		t.Fatalf("runs = %s, want two", out)
	}
	for _, r := range runs {
		if r.Status != "finished" {
			t.Errorf("run %s status %q", r.ID, r.Status)
		}
	}

	out, _, code = runCLI(t, "", "hosts", "--db", db, "--format", "json")
	if hosts := decodeJSONL[map[string]any](t, out); code != 0 || len(hosts) == 0 {
		t.Fatalf("hosts: exit %d, %s", code, out)
	}
	out, _, code = runCLI(t, "", "findings", "--db", db, "--min-severity", "high")
	if code != 0 || !strings.Contains(out, "ollama") {
		t.Fatalf("findings: exit %d, %s", code, out)
	}
	out, stderr, code = runCLI(t, "", "diff", "--db", db, "--format", "json")
	if code != 0 {
		t.Fatalf("diff: exit %d %s", code, stderr)
	}
	var d map[string]any
	if err := json.Unmarshal([]byte(out), &d); err != nil {
		t.Fatalf("diff JSON: %v\n%s", err, out)
	}
	// Different seeds draw different fleets on the same prefix: the diff
	// cannot be empty.
	text, _, _ := runCLI(t, "", "diff", "--db", db, runs[1].ID, runs[0].ID)
	if strings.TrimSpace(text) == "" {
		t.Fatal("diff of two different fleets printed nothing")
	}
}

// TestBadInput: every kind of bad input gets a clear message and a non-zero
// exit before anything is scanned.
func TestBadInput(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "s.db")
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no targets", []string{"scan", "--db", db}, "no targets"},
		{"malformed target", []string{"scan", "--db", db, "127.0.0.300"}, "127.0.0.300"},
		{"malformed port", []string{"scan", "--db", db, "-p", "11434,99999", "127.0.0.1"}, "99999"},
		{"missing list file", []string{"scan", "--db", db, "-iL", filepath.Join(dir, "nope.txt")}, "nope.txt"},
		{"unknown format", []string{"scan", "--db", db, "--format", "xml", "127.0.0.1"}, "xml"},
		{"unwritable report", []string{"scan", "--db", db, "--report", "/nonexistent-dir/r.html", "127.0.0.1"}, "nonexistent-dir"},
		{"too many addresses", []string{"scan", "--db", db, "::/16"}, "larger than"},
		{"unreachable postgres", []string{"scan", "--db", "postgres://nobody@127.0.0.1:1/none?connect_timeout=2", "-p", "1", "127.0.0.1"}, "127.0.0.1:1"},
		{"diff arity", []string{"diff", "--db", db, "1"}, "two runs"},
		{"bad severity", []string{"findings", "--db", db, "--min-severity", "huge"}, "huge"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, stderr, code := runCLI(t, "", tc.args...)
			if code == 0 {
				t.Fatalf("exit 0 for %v", tc.args)
			}
			if !strings.Contains(stderr, tc.want) {
				t.Errorf("stderr %q does not mention %q", stderr, tc.want)
			}
		})
	}
}

func TestVersion(t *testing.T) {
	out, _, code := runCLI(t, "", "version")
	if code != 0 || !strings.HasPrefix(out, "llmfence ") {
		t.Fatalf("version: %d %q", code, out)
	}
}

func TestNmapStyleArgs(t *testing.T) {
	got := nmapStyleArgs([]string{"scan", "-iL", "a.txt", "-iL=b.txt", "--", "-iL"})
	want := []string{"scan", "--input-list", "a.txt", "--input-list=b.txt", "--", "-iL"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}
