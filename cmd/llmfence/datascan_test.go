package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runDatascanCLI(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	return runDatascanStdin(t, "", args...)
}

func runDatascanStdin(t *testing.T, stdin string, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), append([]string{"datascan"}, args...), strings.NewReader(stdin), &out, &errb)
	return out.String(), errb.String(), code
}

// TestDatascanCLI: exit codes (0 clean, 1 at or above --fail-on, 2 bad
// usage or unreadable input), the JSON Lines contract, and the files
// --manifest and --report write.
func TestDatascanCLI(t *testing.T) {
	dir := t.TempDir()
	clean := filepath.Join(dir, "clean.jsonl")
	os.WriteFile(clean, []byte(`{"prompt":"How do I list files?","completion":"Use ls."}`+"\n"), 0o644)
	leaky := filepath.Join(dir, "leaky.jsonl")
	os.WriteFile(leaky, []byte(`{"prompt":"my key AKIAIOSFODNN7EXAMPLE","completion":"ok"}`+"\n"+`{"text":"mail alice@example.com"}`+"\n"), 0o644)

	if out, errb, code := runDatascanCLI(t, clean); code != 0 || !strings.Contains(out, "1 files, 1 records") {
		t.Errorf("clean: exit %d, out %q, err %q", code, out, errb)
	}
	out, errb, code := runDatascanCLI(t, "--format", "json", leaky)
	if code != 1 {
		t.Errorf("secret at the default --fail-on high: exit %d (%s)", code, errb)
	}
	var kinds []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("not JSON Lines: %q", line)
		}
		for _, k := range []string{"kind", "file", "record", "offset", "category", "evidence", "score", "severity"} {
			if _, ok := m[k]; !ok {
				t.Errorf("finding lacks %q: %s", k, line)
			}
		}
		if strings.Contains(line, "AKIAIOSFODNN7EXAMPLE") || strings.Contains(line, "alice@example.com") {
			t.Errorf("secret in the output: %s", line)
		}
		kinds = append(kinds, m["kind"].(string)+":"+m["category"].(string))
	}
	if strings.Join(kinds, ",") != "secret:aws_access_key_id,pii:email" {
		t.Errorf("findings %v", kinds)
	}
	if _, _, code := runDatascanCLI(t, "--fail-on", "critical", leaky); code != 0 {
		t.Errorf("--fail-on critical with a high finding: exit %d", code)
	}
	if _, errb, code := runDatascanCLI(t, filepath.Join(dir, "missing.jsonl"), clean); code != 2 || !strings.Contains(errb, "missing.jsonl") {
		t.Errorf("unreadable input: exit %d, %q", code, errb)
	}
	for _, bad := range [][]string{{}, {"--format", "xml", clean}, {"--fail-on", "bad", clean}, {"--detect", "nope", clean}, {"--nope", clean}} {
		if _, _, code := runDatascanCLI(t, bad...); code != 2 {
			t.Errorf("%v: exit %d, want 2", bad, code)
		}
	}
	man, rep := filepath.Join(dir, "out", "data.cdx.json"), filepath.Join(dir, "out", "report.html")
	os.MkdirAll(filepath.Dir(man), 0o755)
	if _, errb, code := runDatascanCLI(t, "--manifest", man, "--report", rep, "--fail-on", "none", leaky, clean); code != 0 {
		t.Fatalf("exit %d: %s", code, errb)
	}
	b, err := os.ReadFile(man)
	if err != nil || !bytes.Contains(b, []byte(`"specVersion": "1.6"`)) || !bytes.Contains(b, []byte(`"type": "data"`)) {
		t.Errorf("manifest: %v %.300s", err, b)
	}
	h, err := os.ReadFile(rep)
	if err != nil || !bytes.Contains(h, []byte("<html")) || bytes.Contains(h, []byte("AKIAIOSFODNN7EXAMPLE")) {
		t.Errorf("report: %v", err)
	}
	if out, _, code := runDatascanStdin(t, `{"text":"key AKIAIOSFODNN7EXAMPLE"}`+"\n", "--format", "json", "-"); code != 1 || !strings.Contains(out, `"file":"-"`) {
		t.Errorf("standard input: exit %d %q", code, out)
	}
	if out, _, code := runDatascanCLI(t, "--format", "html", "--fail-on", "none", leaky); code != 0 || !strings.HasPrefix(out, "<!DOCTYPE html>") {
		t.Errorf("--format html: exit %d %.80q", code, out)
	}
}
