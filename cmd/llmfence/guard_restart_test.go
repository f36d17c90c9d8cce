package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A key's daily budget survives a restart of a guard without Redis: the
// new process reads the day's usage back from the audit log (what the
// spool held included) before it serves.
func TestGuardBudgetSurvivesRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("starts guard processes")
	}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"model":"tiny","response":"hi","done":true,"prompt_eval_count":50,"eval_count":50}`)
	}))
	t.Cleanup(up.Close)
	db := filepath.Join(t.TempDir(), "guard.db")
	key := giCreateKey(t, db, "budget", "--models", "*", "--daily-tokens", "100")
	body := `{"model":"tiny","prompt":"hi","stream":false}`
	send := func(base string) int {
		resp := giPost(t, context.Background(), base+"/api/generate", key, body)
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	g := startGuardProcess(t, db, up.URL)
	if s := send(g.base); s != 200 {
		t.Fatalf("first request: %d", s)
	}
	// 100 of 100 used; the guard dies without a word.
	g.kill()
	g2 := startGuardProcess(t, db, up.URL)
	if s := send(g2.base); s != http.StatusTooManyRequests {
		t.Errorf("after a restart with the day's 100 tokens used: status %d, want 429", s)
	}
}

// The password of --upstream never appears in what the guard prints.
func TestGuardBannerHidesUpstreamPassword(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"version":"0.6.8"}`)
	}))
	t.Cleanup(up.Close)
	db := filepath.Join(t.TempDir(), "guard.db")
	giCreateKey(t, db, "x", "--models", "*")
	upstream := strings.Replace(up.URL, "http://", "http://ops:hunter2secret@", 1)
	listen, metrics := freeAddr(t), freeAddr(t)
	g := startGuardProc(t, listen, metrics, func(stderr string) bool { return strings.Contains(stderr, "llmfence guard:") },
		"--db", db, "guard", "--upstream", upstream, "--listen", listen, "--metrics", metrics)
	out := g.stderr.String()
	if strings.Contains(out, "hunter2secret") || !strings.Contains(out, "ops:xxxxx@") {
		t.Errorf("start-up output:\n%s\nshows the upstream password (or not the redacted URL)", out)
	}
}

// keys create --db in a directory that does not exist is refused (a typo
// would otherwise start an empty store), unless --create-dir; the other
// key commands refuse a store that does not exist.
func TestKeysRefuseMissingStore(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "nonexistent", "dir", "x.db")
	if _, errOut, code := runCLI(t, "", "--db", db, "keys", "create", "alice", "--models", "*"); code != 2 || !strings.Contains(errOut, "does not exist") {
		t.Errorf("keys create in a missing directory: exit %d, %s", code, errOut)
	}
	if _, err := os.Stat(filepath.Join(dir, "nonexistent")); err == nil {
		t.Error("the missing directory was created")
	}
	if _, errOut, code := runCLI(t, "", "--db", db, "keys", "create", "alice", "--models", "*", "--create-dir"); code != 0 {
		t.Errorf("keys create --create-dir: exit %d, %s", code, errOut)
	}
	missing := filepath.Join(dir, "typo.db")
	for _, args := range [][]string{{"keys", "list"}, {"keys", "revoke", "alice"}, {"usage"}, {"captures"}} {
		if _, errOut, code := runCLI(t, "", append([]string{"--db", missing}, args...)...); code != 2 || !strings.Contains(errOut, "no store") {
			t.Errorf("%v on a store that does not exist: exit %d, %s", args, code, errOut)
		}
	}
	if _, err := os.Stat(missing); err == nil {
		t.Error("a read-only command created the store")
	}
}
