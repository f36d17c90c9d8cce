//go:build unix

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Configuration reload of a real `llmfence guard` process, run with
// --config, and sent SIGHUP or left to notice the
// changed file, while a slow stream is in flight.

// slowOllama is a fake Ollama. A streaming /api/generate sends a chunk
// every 50 ms until release is closed, then the final done line, whose
// eval_count is the number of chunks sent; other generations answer at
// once.
type slowOllama struct {
	*httptest.Server
	release     chan struct{}
	releaseOnce sync.Once
}

func newSlowOllama(t *testing.T) *slowOllama {
	t.Helper()
	o := &slowOllama{release: make(chan struct{})}
	o.Server = httptest.NewServer(http.HandlerFunc(o.serve))
	t.Cleanup(o.Close)
	t.Cleanup(o.finish) // runs first: no handler is left waiting
	return o
}

// finish lets streams in flight end.
func (o *slowOllama) finish() { o.releaseOnce.Do(func() { close(o.release) }) }

func (o *slowOllama) serve(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/":
		io.WriteString(w, "Ollama is running")
		return
	case "/api/version":
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"version":"0.6.8"}`)
		return
	case "/api/generate":
	default:
		http.NotFound(w, r)
		return
	}
	var req struct {
		Model  string `json:"model"`
		Stream *bool  `json:"stream"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		http.Error(w, `{"error":"bad request"}`, http.StatusBadRequest)
		return
	}
	const created = `"created_at":"2026-11-23T12:00:00Z"`
	if req.Stream != nil && !*req.Stream {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"model":%q,%s,"response":"ok","done":true,"done_reason":"stop","prompt_eval_count":3,"eval_count":1}`, req.Model, created)
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	fl := w.(http.Flusher)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	chunks := 0
	for {
		fmt.Fprintf(w, `{"model":%q,%s,"response":"w%d ","done":false}`+"\n", req.Model, created, chunks)
		fl.Flush()
		chunks++
		select {
		case <-r.Context().Done():
			return
		case <-o.release:
			fmt.Fprintf(w, `{"model":%q,%s,"response":"","done":true,"done_reason":"stop","prompt_eval_count":3,"eval_count":%d}`+"\n",
				req.Model, created, chunks)
			return
		case <-tick.C:
		}
	}
}

// reloadFixture is a fake Ollama, a store with one key, a config file
// and the guard process reading it.
type reloadFixture struct {
	up                            *slowOllama
	key                           string
	config                        string
	upstream, listen, metricsAddr string
	proc                          *guardProc
	// ctx bounds every request, so a stuck stream fails the test instead
	// of hanging it.
	ctx context.Context
}

// configSize is the size every config file of these tests is padded to,
// so a rewrite can keep the file's size.
const configSize = 1024

// yaml renders a config file: the fixed part (upstream and listeners)
// plus extra, padded to configSize.
func (f *reloadFixture) yaml(t *testing.T, extra string) []byte {
	t.Helper()
	s := fmt.Sprintf("upstream: %s\nkind: ollama\nlisten: %q\nmetrics_listen: %q\n%s\n", f.upstream, f.listen, f.metricsAddr, extra)
	if len(s) > configSize-4 {
		t.Fatalf("test config too long: %d bytes", len(s))
	}
	return []byte(s + "# " + strings.Repeat("-", configSize-len(s)-3) + "\n")
}

// rewrite replaces the config file through a rename, as editors and
// configuration tools do. keepStamp keeps its modification time (the size
// is always kept), so that the file poll cannot see the change and only a
// signal reloads; otherwise the modification time moves on by a second.
func (f *reloadFixture) rewrite(t *testing.T, data []byte, keepStamp bool) {
	t.Helper()
	fi, err := os.Stat(f.config)
	if err != nil {
		t.Fatal(err)
	}
	tmp := f.config + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	mod := fi.ModTime()
	if !keepStamp {
		mod = mod.Add(time.Second)
	}
	if err := os.Chtimes(tmp, mod, mod); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, f.config); err != nil {
		t.Fatal(err)
	}
}

// newReloadFixture starts everything with the config extra.
func newReloadFixture(t *testing.T, extra string) *reloadFixture {
	t.Helper()
	dir := t.TempDir()
	db := filepath.Join(dir, "guard.db")
	f := &reloadFixture{
		up:     newSlowOllama(t),
		key:    giCreateKey(t, db, "alice", "--models", "*"),
		config: filepath.Join(dir, "guard.yaml"),
		listen: freeAddr(t), metricsAddr: freeAddr(t),
	}
	f.upstream = f.up.URL
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	t.Cleanup(cancel)
	f.ctx = ctx
	if err := os.WriteFile(f.config, f.yaml(t, extra), 0o600); err != nil {
		t.Fatal(err)
	}
	f.proc = startConfiguredGuard(t, db, f.config, f.listen, f.metricsAddr)
	return f
}

// startConfiguredGuard runs `llmfence guard --config FILE` in its own
// process and waits until the reload watch is on (the "guard listening"
// line is logged after it starts).
func startConfiguredGuard(t *testing.T, db, config, listen, metrics string) *guardProc {
	t.Helper()
	return startGuardProc(t, listen, metrics,
		func(stderr string) bool { return strings.Contains(stderr, `msg="guard listening"`) },
		"--db", db, "--log-level", "info", "guard", "--config", config)
}

func (p *guardProc) signal(t *testing.T, sig os.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %v: %v", sig, err)
	}
}

// alive fails the test if the process has exited.
func (p *guardProc) alive(t *testing.T) {
	t.Helper()
	select {
	case <-p.exited:
		t.Fatalf("guard exited with status %d; stderr:\n%s", p.cmd.ProcessState.ExitCode(), p.stderr.String())
	default:
	}
}

// generate sends a non-streaming generation with a prompt of promptLen
// bytes and returns the status.
func (f *reloadFixture) generate(t *testing.T, promptLen int) int {
	t.Helper()
	resp := giPost(t, f.ctx, f.proc.base+"/api/generate", f.key,
		fmt.Sprintf(`{"model":"tiny","prompt":%q,"stream":false}`, strings.Repeat("x", promptLen)))
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// bigPrompt makes a request body of about 200 bytes: under the starting
// max_body_bytes (4096), over the reloaded one (64).
const bigPrompt = 160

// waitLog waits until the process has logged a line holding all of want
// after the first mark bytes of its stderr (a reload by file poll takes up
// to two poll intervals).
func (p *guardProc) waitLog(t *testing.T, mark int, want ...string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !logged(p.stderr.String()[mark:], want...) {
		p.alive(t)
		if time.Now().After(deadline) {
			t.Fatalf("no log line with %q; stderr:\n%s", want, p.stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// startStream starts a streaming generation and reads its first chunk.
func (f *reloadFixture) startStream(t *testing.T) (*http.Response, *bufio.Reader) {
	t.Helper()
	resp := giPost(t, f.ctx, f.proc.base+"/api/generate", f.key, `{"model":"tiny","prompt":"slow story","stream":true}`)
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		t.Fatalf("stream: status %d: %s", resp.StatusCode, b)
	}
	br := bufio.NewReader(resp.Body)
	first, err := br.ReadBytes('\n')
	if err != nil {
		resp.Body.Close()
		t.Fatalf("stream: first line: %v", err)
	}
	var l ollamaLine
	if err := json.Unmarshal(first, &l); err != nil || l.Done {
		resp.Body.Close()
		t.Fatalf("stream: first line %q (%v), want a chunk", first, err)
	}
	return resp, br
}

// finishStream lets the upstream end the stream and checks that every
// chunk and the final done line arrived.
func (f *reloadFixture) finishStream(t *testing.T, resp *http.Response, br *bufio.Reader) {
	t.Helper()
	f.up.finish()
	defer resp.Body.Close()
	lines := readLines(t, br)
	if len(lines) == 0 {
		t.Fatal("stream: nothing after the first chunk")
	}
	last := lines[len(lines)-1]
	if !last.Done || last.Error != "" || last.EvalCount == nil || last.PromptEvalCount == nil {
		t.Fatalf("stream: final line %+v, want done with eval_count and prompt_eval_count", last)
	}
	chunks := 1 // read by startStream
	for i, l := range lines[:len(lines)-1] {
		if l.Done || l.Error != "" {
			t.Fatalf("stream: line %d %+v before the end", i+2, l)
		}
		chunks++
	}
	if int64(chunks) != *last.EvalCount {
		t.Errorf("stream: %d chunks relayed, the upstream sent %d", chunks, *last.EvalCount)
	}
}

func TestGuardProcessReload(t *testing.T) {
	t.Run("SIGHUP", func(t *testing.T) {
		t.Parallel()
		f := newReloadFixture(t, "max_body_bytes: 4096")
		if got := f.generate(t, bigPrompt); got != http.StatusOK {
			t.Fatalf("before the reload: status %d, want 200", got)
		}
		resp, br := f.startStream(t)
		// Same size, same modification time: the file poll cannot see
		// this change, so only the signal can apply it.
		mark := len(f.proc.stderr.String())
		f.rewrite(t, f.yaml(t, "max_body_bytes: 64"), true)
		f.proc.signal(t, syscall.SIGHUP)
		f.proc.waitLog(t, mark, `msg="configuration reloaded" trigger=SIGHUP changed=max_body_bytes`)
		if got := f.generate(t, bigPrompt); got != http.StatusRequestEntityTooLarge {
			t.Errorf("after the reload: status %d, want 413 under the new max_body_bytes", got)
		}
		f.finishStream(t, resp, br)
		if got := f.generate(t, 1); got != http.StatusOK {
			t.Errorf("small request after the reload: status %d, want 200", got)
		}
		f.proc.alive(t)
		logs := f.proc.stderr.String()
		if strings.Contains(logs, `trigger="config file changed"`) {
			t.Errorf("the file poll reloaded too; the test cannot tell which applied the change:\n%s", logs)
		}
	})

	t.Run("file change", func(t *testing.T) {
		t.Parallel()
		f := newReloadFixture(t, "max_body_bytes: 4096")
		if got := f.generate(t, bigPrompt); got != http.StatusOK {
			t.Fatalf("before the reload: status %d, want 200", got)
		}
		resp, br := f.startStream(t)
		// max_conns_per_ip needs a restart: kept, with a warning.
		mark := len(f.proc.stderr.String())
		f.rewrite(t, f.yaml(t, "max_body_bytes: 64\nmax_conns_per_ip: 3"), false)
		f.proc.waitLog(t, mark, `msg="configuration reloaded" trigger="config file changed" changed=max_body_bytes`)
		if got := f.generate(t, bigPrompt); got != http.StatusRequestEntityTooLarge {
			t.Errorf("after the reload: status %d, want 413 under the new max_body_bytes", got)
		}
		f.finishStream(t, resp, br)
		f.proc.alive(t)
		logs := f.proc.stderr.String()
		if !strings.Contains(logs, `need a restart; keeping their running values" trigger="config file changed" fields=max_conns_per_ip`) {
			t.Errorf("no warning naming max_conns_per_ip:\n%s", logs)
		}
		if strings.Contains(logs, "trigger=SIGHUP") {
			t.Errorf("no signal was sent, yet:\n%s", logs)
		}
	})

	t.Run("invalid config keeps the running one", func(t *testing.T) {
		t.Parallel()
		f := newReloadFixture(t, "max_body_bytes: 4096")
		cases := []struct {
			name, extra, wantErr string
		}{
			// Each would block this client or refuse bigPrompt if applied.
			{"YAML syntax", "max_body_bytes: 64\ndeny: [127.0.0.0/8", "yaml:"},
			{"invalid value", "max_body_bytes: -5", "max_body_bytes must be positive"},
			{"unknown field", "max_body_bytes: 64\nmax_body_size: 64", "field max_body_size not found"},
			{"bad CIDR", "max_body_bytes: 64\ndeny: [\"127.0.0.300/8\"]", "deny list"},
		}
		for _, tc := range cases {
			mark := len(f.proc.stderr.String())
			f.rewrite(t, f.yaml(t, tc.extra), false)
			f.proc.signal(t, syscall.SIGHUP)
			f.proc.waitLog(t, mark, `level=ERROR msg="config reload failed; keeping the running configuration" trigger=SIGHUP`, tc.wantErr)
			f.proc.alive(t)
			if got := f.generate(t, bigPrompt); got != http.StatusOK {
				t.Errorf("%s: status %d after the failed reload, want 200 under the running configuration", tc.name, got)
			}
		}
		if strings.Contains(f.proc.stderr.String(), `msg="configuration reloaded"`) {
			t.Errorf("an invalid configuration was applied:\n%s", f.proc.stderr.String())
		}
		// The watch survives the failures: a good file applies.
		mark := len(f.proc.stderr.String())
		f.rewrite(t, f.yaml(t, "max_body_bytes: 64"), false)
		f.proc.signal(t, syscall.SIGHUP)
		f.proc.waitLog(t, mark, `msg="configuration reloaded" trigger=SIGHUP changed=max_body_bytes`)
		if got := f.generate(t, bigPrompt); got != http.StatusRequestEntityTooLarge {
			t.Errorf("after the good file: status %d, want 413", got)
		}
		f.proc.alive(t)
	})
}

// logged reports whether one line of logs holds all of want.
func logged(logs string, want ...string) bool {
	for _, line := range strings.Split(logs, "\n") {
		all := true
		for _, w := range want {
			all = all && strings.Contains(line, w)
		}
		if all {
			return true
		}
	}
	return false
}
