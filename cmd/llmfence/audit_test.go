package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// auditRoot writes a machine image for `llmfence audit --root`: the
// auditing process, and with exposed an Ollama listening on 0.0.0.0:11434
// with OLLAMA_HOST=0.0.0.0 in its environment.
func auditRoot(t *testing.T, exposed bool) string {
	t.Helper()
	root := t.TempDir()
	w := func(rel, content string) {
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ln := func(rel, target string) {
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, p); err != nil {
			t.Fatal(err)
		}
	}
	w("etc/passwd", "root:x:0:0::/root:/bin/sh\nollama:x:998:998::/usr/share/ollama:/bin/false\n")
	w("proc/sys/kernel/hostname", "image-host\n")
	proc := func(pid, uid int, argv []string, env string, sockets ...string) {
		d := fmt.Sprintf("proc/%d/", pid)
		w(d+"cmdline", strings.Join(argv, "\x00")+"\x00")
		w(d+"status", fmt.Sprintf("Name:\tx\nPPid:\t0\nUid:\t%d\t%d\t%d\t%d\n", uid, uid, uid, uid))
		w(d+"environ", env)
		w(d+"cgroup", "0::/\n")
		ln(d+"exe", argv[0])
		ln(d+"ns/net", "net:[1]")
		ln(d+"ns/mnt", "mnt:[2]")
		ln(d+"root", "/")
		if err := os.MkdirAll(filepath.Join(root, d, "fd"), 0o755); err != nil {
			t.Fatal(err)
		}
		for i, s := range sockets {
			ln(fmt.Sprintf("%sfd/%d", d, i+3), "socket:["+s+"]")
		}
		w(d+"net/tcp", "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"+
			"   0: 00000000:2CAA 00000000:0000 0A 00000000:00000000 00:00000000 00000000   998        0 4242 1\n")
	}
	proc(1, 0, []string{"/usr/bin/llmfence", "audit"}, "")
	ln("proc/self", "1")
	if exposed {
		proc(100, 998, []string{"/usr/local/bin/ollama", "serve"}, "OLLAMA_HOST=0.0.0.0\x00HOME=/usr/share/ollama\x00", "4242")
	}
	return root
}

func runLlmfence(t *testing.T, env map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	for k, v := range env {
		t.Setenv(k, v)
	}
	var out, errb bytes.Buffer
	code = run(context.Background(), args, strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

func TestAuditExitStatus(t *testing.T) {
	quiet, exposed := auditRoot(t, false), auditRoot(t, true)
	tests := []struct {
		name string
		args []string
		code int
		out  string
	}{
		{"quiet machine", []string{"audit", "--root", quiet}, 0, "No LLM runtime or model store found."},
		{"exposed ollama", []string{"audit", "--root", exposed}, 1, "ollama"},
		{"threshold above it", []string{"audit", "--root", exposed, "--fail-on", "critical"}, 0, "LLMF-013"},
		{"json", []string{"audit", "--root", exposed, "--format", "json", "--fail-on", "critical"}, 0, `"kind":"runtime"`},
		{"bad format", []string{"audit", "--root", quiet, "--format", "xml"}, 2, ""},
		{"bad threshold", []string{"audit", "--root", quiet, "--fail-on", "severe"}, 2, ""},
		{"arguments", []string{"audit", "somewhere"}, 2, ""},
		{"plain http elsewhere", []string{"audit", "--root", quiet, "--send", "http://192.0.2.10/api/audit"}, 2, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errs := runLlmfence(t, map[string]string{EnvSendKey: "k"}, tt.args...)
			if code != tt.code || !strings.Contains(out, tt.out) {
				t.Errorf("exit %d, want %d; stdout:\n%s\nstderr:\n%s", code, tt.code, out, errs)
			}
		})
	}

	// Incomplete: a process whose command line cannot be read.
	if err := os.MkdirAll(filepath.Join(quiet, "proc", "7", "cmdline"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(quiet, "proc", "7", "status"), []byte("Name:\tx\nUid:\t5\t5\t5\t5\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errs := runLlmfence(t, nil, "audit", "--root", quiet)
	if code != 2 || !strings.Contains(errs, "incomplete") || !strings.Contains(out, "could not read the command line of 1 processes") {
		t.Errorf("incomplete audit: exit %d\n%s\n%s", code, out, errs)
	}
}

func TestAuditJSONContract(t *testing.T) {
	root := auditRoot(t, true)
	code, out, errs := runLlmfence(t, nil, "audit", "--root", root, "--format", "json", "--fail-on", "none")
	if code != 1 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 {
		t.Fatalf("want a machine and a runtime record:\n%s", out)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(lines[1]), &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"kind", "product", "version", "pid", "user", "listen", "exposed", "settings", "findings", "risk"} {
		if _, ok := m[k]; !ok {
			t.Errorf("runtime record lacks %q: %s", k, lines[1])
		}
	}
	if m["kind"] != "runtime" || m["product"] != "ollama" || m["exposed"] != true || m["pid"] != float64(100) || m["user"] != "ollama" {
		t.Errorf("runtime record %s", lines[1])
	}
	if l, _ := m["listen"].([]any); len(l) != 1 || l[0] != "0.0.0.0:11434" {
		t.Errorf("listen %v", m["listen"])
	}
	if s, _ := m["settings"].(map[string]any); s["OLLAMA_HOST"] != "0.0.0.0" {
		t.Errorf("settings %v", m["settings"])
	}
	fs, _ := m["findings"].([]any)
	if len(fs) == 0 {
		t.Fatalf("no findings")
	}
	for _, f := range fs {
		f := f.(map[string]any)
		if f["id"] == nil || f["severity"] == nil || f["title"] == nil {
			t.Errorf("finding %v lacks id, severity or title", f)
		}
	}
}

// receiver is a stand-in for `llmfence serve` on loopback: it records the
// posts it accepts.
type receiver struct {
	mu    sync.Mutex
	posts []string
	auth  []string
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.auth = append(rc.auth, r.Header.Get("Authorization"))
	if r.Method != http.MethodPost || r.Header.Get("Authorization") != "Bearer test-key" || r.Header.Get("Content-Type") != "application/x-ndjson" {
		http.Error(w, "no", http.StatusUnauthorized)
		return
	}
	rc.posts = append(rc.posts, string(b))
	w.WriteHeader(http.StatusAccepted)
}

func TestAuditSend(t *testing.T) {
	root := auditRoot(t, true)
	spool := filepath.Join(t.TempDir(), "spool")
	env := map[string]string{EnvSendKey: "test-key"}

	// The target is down: the result is kept and the exit status says so.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := "http://" + l.Addr().String() + "/api/audit"
	l.Close()
	code, _, errs := runLlmfence(t, env, "audit", "--root", root, "--fail-on", "critical", "--send", down, "--spool", spool)
	if code != 2 || !strings.Contains(errs, "kept it in "+spool) {
		t.Fatalf("target down: exit %d\n%s", code, errs)
	}
	kept, _ := filepath.Glob(filepath.Join(spool, "audit-*-image-host.jsonl"))
	if len(kept) != 1 {
		t.Fatalf("kept files %v", kept)
	}
	if fi, err := os.Stat(kept[0]); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("kept file mode %v %v", fi.Mode(), err)
	}
	b, _ := os.ReadFile(kept[0])
	if !strings.HasPrefix(string(b), `{"kind":"machine"`) || !strings.Contains(string(b), `"kind":"runtime"`) {
		t.Errorf("kept result:\n%s", b)
	}

	// A wrong key is refused by the receiver: still kept, still status 2.
	rc := &receiver{}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	code, _, errs = runLlmfence(t, map[string]string{EnvSendKey: "wrong"}, "audit", "--root", root, "--fail-on", "critical", "--send", srv.URL+"/api/audit", "--spool", spool)
	if code != 2 || !strings.Contains(errs, "401") {
		t.Fatalf("wrong key: exit %d\n%s", code, errs)
	}

	// Up again: the kept results go first, then this one; the spool empties.
	keyFile := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(keyFile, []byte("test-key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv(EnvSendKey, "")
	code, _, errs = runLlmfence(t, nil, "audit", "--root", root, "--fail-on", "critical", "--send", srv.URL+"/api/audit", "--spool", spool, "--send-key-file", keyFile)
	if code != 0 {
		t.Fatalf("target up: exit %d\n%s", code, errs)
	}
	rc.mu.Lock()
	posts := append([]string(nil), rc.posts...)
	rc.mu.Unlock()
	if len(posts) != 3 {
		t.Fatalf("receiver got %d results, want 2 kept + 1 new", len(posts))
	}
	for _, p := range posts {
		if !strings.Contains(p, `"kind":"machine"`) || !strings.Contains(p, `"product":"ollama"`) {
			t.Errorf("post:\n%s", p)
		}
	}
	if left, _ := filepath.Glob(filepath.Join(spool, "*.jsonl")); len(left) != 0 {
		t.Errorf("spool not emptied: %v", left)
	}

	// No key at all is a usage error, before anything is read.
	code, _, errs = runLlmfence(t, nil, "audit", "--root", root, "--send", srv.URL)
	if code != 2 || !strings.Contains(errs, "no key") {
		t.Errorf("no key: exit %d %s", code, errs)
	}
}

func TestAuditReport(t *testing.T) {
	root := auditRoot(t, true)
	report := filepath.Join(t.TempDir(), "audit.html")
	code, _, errs := runLlmfence(t, nil, "audit", "--root", root, "--report", report, "--fail-on", "critical")
	if code != 0 {
		t.Fatalf("exit %d %s", code, errs)
	}
	b, err := os.ReadFile(report)
	if err != nil || !bytes.Contains(b, []byte("<!DOCTYPE html>")) || !bytes.Contains(b, []byte("zz-llmfence-loopback.conf")) && !bytes.Contains(b, []byte("OLLAMA_HOST=127.0.0.1:11434")) {
		t.Errorf("report: %v\n%s", err, b)
	}
}
