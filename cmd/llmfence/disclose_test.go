package main

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/llmfence/llmfence/internal/lab"
)

func TestDiscloseCommand(t *testing.T) {
	prefix := "127.113.0.0/26"
	startFleet(t, lab.Config{Seed: 5, Prefix: netip.MustParsePrefix(prefix), Live: 10})
	dir := t.TempDir()
	db := filepath.Join(dir, "s.db")
	if _, e, c := runCLI(t, "", "--db", db, "scan", "--rate", "0", "--progress", "never", "-p", "11434,8000,8080", prefix); c != 0 {
		t.Fatalf("scan: %s", e)
	}
	own := filepath.Join(dir, "owners.yaml")
	os.WriteFile(own, []byte("version: 1\nowners:\n  - team: lab-team\n    contact: lab@example.org\n    match: [127.113.0.0/27]\n"), 0o600)
	out := filepath.Join(dir, "reports")
	_, e, c := runCLI(t, "", "--db", db, "disclose", "latest", "--owners", own, "-o", out, "--security-txt=false")
	if c != 0 {
		t.Fatalf("disclose: %d %s", c, e)
	}
	b, err := os.ReadFile(filepath.Join(out, "lab-team.md"))
	if err != nil || !strings.Contains(string(b), "Contact: lab@example.org (from the owners file)") {
		t.Errorf("lab-team.md: %v\n%s", err, b)
	}
	os.WriteFile(own, []byte("version: 1\nowners:\n  - team: x\n    match: [not-a-cidr/99]\n"), 0o600)
	if _, e, c := runCLI(t, "", "--db", db, "disclose", "latest", "--owners", own); c != 2 || !strings.Contains(e, "owners.yaml") {
		t.Errorf("malformed owners file: %d %s", c, e)
	}
	if _, e, c := runCLI(t, "", "--db", db, "disclose", "latest", "--format", "pdf"); c != 2 {
		t.Errorf("bad format: %d %s", c, e)
	}
}

func TestDemoPointsAtServe(t *testing.T) {
	if testing.Short() {
		t.Skip("demo scans a fleet")
	}
	dir := t.TempDir()
	wd, _ := os.Getwd()
	os.Chdir(dir)
	defer os.Chdir(wd)
	_, e, c := runCLI(t, "", "--db", filepath.Join(dir, "s.db"), "demo", "--lab-hosts", "8", "--lab-prefix", "127.114.0.0/28")
	if c != 0 || !strings.Contains(e, "serve and open http://127.0.0.1:8470/") {
		t.Errorf("demo (%d) does not say how to see the run in serve:\n%s", c, e)
	}
}
