// Package ollamatest runs a real, isolated Ollama server for integration
// tests: it finds the ollama binary, starts `ollama serve` on a free loopback
// port with its own model store and home directory, and creates tiny
// random-weight models on it (see package ggufmodeltest) with a chosen system
// prompt, so scanners, guards and inspectors can be tested against the real
// API instead of a mock.
//
// The harness targets Ollama 0.6.8 (WantVersion). The binary is taken from
// $LLMFENCE_OLLAMA, else `ollama` in $(go env GOPATH)/bin, else PATH. When it
// is missing, tests are skipped, unless the CI environment variable is set,
// in which case they fail: CI must install it, e.g. with
//
//	go install -ldflags=-X=github.com/ollama/ollama/version.Version=0.6.8 github.com/ollama/ollama@v0.6.8
//
// The server only listens on 127.0.0.1 and never needs the network.
package ollamatest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/llmfence/llmfence/internal/ggufmodeltest"
)

// WantVersion is the Ollama release the harness and its tests are written
// against.
const WantVersion = "0.6.8"

// EnvBinary names the environment variable that overrides the ollama binary.
const EnvBinary = "LLMFENCE_OLLAMA"

// DefaultTemplate is the prompt template given to created models unless one
// is chosen: system prompt, a space, then the user prompt.
const DefaultTemplate = "{{ .System }} {{ .Prompt }}"

const (
	startTimeout   = 60 * time.Second
	requestTimeout = 2 * time.Minute
	stopTimeout    = 15 * time.Second
	logTailBytes   = 16 << 10
)

// Binary returns the path of the ollama binary: $LLMFENCE_OLLAMA, else
// `ollama` in $(go env GOPATH)/bin, else `ollama` on PATH. If none exists
// the test is skipped, or failed when the CI environment variable is set.
func Binary(t testing.TB) string {
	t.Helper()
	path, err := findBinary(t.Context())
	if err == nil {
		return path
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("ollama binary required in CI: %v", err)
		return ""
	}
	t.Skipf("skipping: %v", err)
	return ""
}

func findBinary(ctx context.Context) (string, error) {
	if p := os.Getenv(EnvBinary); p != "" {
		if err := executable(p); err != nil {
			return "", fmt.Errorf("$%s=%s: %w", EnvBinary, p, err)
		}
		return p, nil
	}
	var tried []string
	if gopath := goPath(ctx); gopath != "" {
		// GOPATH may be a list; go install writes to the first entry.
		p := filepath.Join(filepath.SplitList(gopath)[0], "bin", "ollama")
		if executable(p) == nil {
			return p, nil
		}
		tried = append(tried, p)
	}
	if p, err := exec.LookPath("ollama"); err == nil {
		return p, nil
	}
	tried = append(tried, "PATH")
	return "", fmt.Errorf("no ollama binary (set $%s; looked in %s)", EnvBinary, strings.Join(tried, ", "))
}

func executable(p string) error {
	fi, err := os.Stat(p)
	if err != nil {
		return err
	}
	if fi.IsDir() || fi.Mode().Perm()&0o111 == 0 {
		return errors.New("not an executable file")
	}
	return nil
}

func goPath(ctx context.Context) string {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "go", "env", "GOPATH").Output(); err == nil {
		if p := strings.TrimSpace(string(out)); p != "" {
			return p
		}
	}
	if p := os.Getenv("GOPATH"); p != "" {
		return p
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, "go")
	}
	return ""
}

// Server is a running `ollama serve` owned by one test.
type Server struct {
	URL       string         // base URL, e.g. http://127.0.0.1:41234
	Addr      netip.AddrPort // the loopback address it listens on
	ModelsDir string         // OLLAMA_MODELS, inside the test's temp dir
	LogPath   string         // server (and runner) output
	Binary    string         // the ollama binary that runs

	client *http.Client
}

// Start runs `ollama serve` on a free 127.0.0.1 port and waits until it
// answers GET /. The server gets its own HOME, OLLAMA_MODELS (both under
// t.TempDir()), OLLAMA_NOPRUNE, one parallel request and one loaded model;
// proxy variables and the caller's other OLLAMA_* settings (except
// OLLAMA_DEBUG) are dropped. It is stopped in t.Cleanup, and its log is
// shown if the test failed.
func Start(t testing.TB) *Server {
	t.Helper()
	bin := Binary(t)
	dir := t.TempDir()
	s := &Server{
		ModelsDir: filepath.Join(dir, "models"),
		LogPath:   filepath.Join(dir, "ollama.log"),
		Binary:    bin,
		client:    &http.Client{},
	}
	home := filepath.Join(dir, "home")
	for _, d := range []string{s.ModelsDir, home} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatalf("preparing ollama directories: %v", err)
		}
	}
	logf, err := os.OpenFile(s.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatalf("creating ollama log: %v", err)
	}
	t.Cleanup(func() { logf.Close() })

	// A port picked by listening and closing can be taken again before
	// ollama binds it; try a few.
	var lastErr error
	for range 3 {
		addr, err := freePort()
		if err != nil {
			t.Fatalf("finding a free loopback port: %v", err)
		}
		s.Addr = addr
		s.URL = "http://" + addr.String()
		fmt.Fprintf(logf, "--- llmfence ollamatest: starting %s serve on %s\n", bin, addr)

		proc, err := s.spawn(home, logf)
		if err != nil {
			t.Fatalf("starting ollama: %v", err)
		}
		if lastErr = s.waitReady(t.Context(), proc); lastErr == nil {
			t.Cleanup(func() {
				if err := proc.stop(stopTimeout); err != nil {
					t.Errorf("stopping ollama: %v", err)
				}
				if t.Failed() {
					t.Logf("ollama log (%s), last %d bytes:\n%s", s.LogPath, logTailBytes, tail(s.LogPath, logTailBytes))
				}
			})
			return s
		}
		_ = proc.stop(stopTimeout)
		if !strings.Contains(tail(s.LogPath, 4096), "address already in use") {
			break
		}
	}
	t.Fatalf("ollama did not start: %v\nlog %s:\n%s", lastErr, s.LogPath, tail(s.LogPath, logTailBytes))
	return nil
}

func freePort() (netip.AddrPort, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return netip.AddrPort{}, err
	}
	defer l.Close()
	return netip.ParseAddrPort(l.Addr().String())
}

// serverEnv is the environment of `ollama serve`: the caller's, minus
// anything that could point it at the network or at the caller's models.
func (s *Server) serverEnv(home string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch up := strings.ToUpper(k); {
		case up == "OLLAMA_DEBUG":
			env = append(env, kv)
		case up == "HOME", strings.HasPrefix(up, "OLLAMA_"),
			up == "HTTP_PROXY", up == "HTTPS_PROXY", up == "ALL_PROXY", up == "NO_PROXY":
			// replaced or dropped
		default:
			env = append(env, kv)
		}
	}
	return append(env,
		"HOME="+home,
		"OLLAMA_HOST="+s.Addr.String(),
		"OLLAMA_MODELS="+s.ModelsDir,
		"OLLAMA_NOPRUNE=1",
		"OLLAMA_NUM_PARALLEL=1",
		"OLLAMA_MAX_LOADED_MODELS=1",
	)
}

type process struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
	err  error         // exit status, valid after done
}

func (s *Server) spawn(home string, log io.Writer) (*process, error) {
	cmd := exec.Command(s.Binary, "serve")
	cmd.Env = s.serverEnv(home)
	cmd.Dir = home
	cmd.Stdout = log
	cmd.Stderr = log
	setProcessGroup(cmd)
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// stop asks the server to shut down (it unloads its runners on SIGTERM),
// kills it if it does not within timeout, and then kills whatever is left
// of the process group it started.
func (p *process) stop(timeout time.Duration) error {
	var err error
	select {
	case <-p.done:
	default:
		_ = terminate(p.cmd)
		select {
		case <-p.done:
		case <-time.After(timeout):
			err = fmt.Errorf("ollama (pid %d) ignored SIGTERM for %v; killed", p.cmd.Process.Pid, timeout)
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	}
	killGroup(p.cmd)
	return err
}

func (s *Server) waitReady(ctx context.Context, p *process) error {
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/", nil)
		if err != nil {
			return err
		}
		resp, err := s.client.Do(req)
		if err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("GET / answered %s: %q", resp.Status, body)
		}
		select {
		case <-p.done:
			return fmt.Errorf("ollama exited before answering: %v", p.err)
		case <-ctx.Done():
			return fmt.Errorf("no answer on %s within %v: %w", s.URL, startTimeout, err)
		case <-tick.C:
		}
	}
}

func tail(path string, n int64) string {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Sprintf("(cannot read log: %v)", err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() > n {
		_, _ = f.Seek(-n, io.SeekEnd)
	}
	b, _ := io.ReadAll(f)
	return string(b)
}

// Model describes a model for Create. Zero fields take defaults: Template
// DefaultTemplate, Weights the ggufmodeltest defaults.
type Model struct {
	Name       string
	System     string
	Template   string
	Parameters map[string]any
	Weights    ggufmodeltest.Options
}

// CreateModel creates model name with the given SYSTEM prompt from a tiny
// random-weight GGUF and returns its digest as /api/tags reports it.
func (s *Server) CreateModel(t testing.TB, name, system string) (digest string) {
	t.Helper()
	return s.Create(t, Model{Name: name, System: system})
}

// Create writes the tiny GGUF, uploads it as a blob, creates the model with
// POST /api/create and returns the model's digest from /api/tags.
func (s *Server) Create(t testing.TB, m Model) (digest string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), requestTimeout)
	defer cancel()
	digest, err := s.create(ctx, t.TempDir(), m)
	if err != nil {
		t.Fatalf("creating ollama model %q: %v", m.Name, err)
	}
	return digest
}

func (s *Server) create(ctx context.Context, dir string, m Model) (string, error) {
	path := filepath.Join(dir, "model.gguf")
	sum, _, err := ggufmodeltest.WriteFile(path, m.Weights)
	if err != nil {
		return "", err
	}
	blob := "sha256:" + sum
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("opening model file: %w", err)
	}
	defer f.Close()
	if err := s.do(ctx, http.MethodPost, "/api/blobs/"+blob, f, nil); err != nil {
		return "", fmt.Errorf("uploading blob: %w", err)
	}

	tmpl := m.Template
	if tmpl == "" {
		tmpl = DefaultTemplate
	}
	req := map[string]any{
		"model":    m.Name,
		"files":    map[string]string{"model.gguf": blob},
		"template": tmpl,
		"stream":   false,
	}
	if m.System != "" {
		req["system"] = m.System
	}
	if len(m.Parameters) > 0 {
		req["parameters"] = m.Parameters
	}
	var status struct {
		Status string `json:"status"`
	}
	if err := s.postJSON(ctx, "/api/create", req, &status); err != nil {
		return "", err
	}
	if status.Status != "success" {
		return "", fmt.Errorf("/api/create answered status %q", status.Status)
	}

	tags, err := s.Tags(ctx)
	if err != nil {
		return "", err
	}
	for _, tm := range tags {
		if SameModel(tm.Name, m.Name) {
			return tm.Digest, nil
		}
	}
	return "", fmt.Errorf("model %q created but missing from /api/tags", m.Name)
}

// SameModel reports whether two Ollama model names are the same model,
// treating a missing tag as ":latest".
func SameModel(a, b string) bool {
	norm := func(s string) string {
		s = strings.ToLower(s)
		if i := strings.LastIndexByte(s, '/'); !strings.Contains(s[i+1:], ":") {
			s += ":latest"
		}
		return s
	}
	return norm(a) == norm(b)
}

// TagModel is one entry of /api/tags.
type TagModel struct {
	Name   string `json:"name"`
	Model  string `json:"model"`
	Digest string `json:"digest"`
	Size   int64  `json:"size"`
}

// Tags lists the server's models (GET /api/tags).
func (s *Server) Tags(ctx context.Context) ([]TagModel, error) {
	var out struct {
		Models []TagModel `json:"models"`
	}
	if err := s.do(ctx, http.MethodGet, "/api/tags", nil, &out); err != nil {
		return nil, err
	}
	return out.Models, nil
}

// Generation is the final /api/generate answer.
type Generation struct {
	Response      string `json:"response"`
	Done          bool   `json:"done"`
	DoneReason    string `json:"done_reason"`
	EvalCount     int    `json:"eval_count"`
	TotalDuration int64  `json:"total_duration"` // nanoseconds
	LoadDuration  int64  `json:"load_duration"`  // nanoseconds
}

// Generate runs a non-streaming /api/generate of at most numPredict tokens
// and fails the test on any error.
func (s *Server) Generate(t testing.TB, model, prompt string, numPredict int) Generation {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), requestTimeout)
	defer cancel()
	var g Generation
	err := s.postJSON(ctx, "/api/generate", map[string]any{
		"model":   model,
		"prompt":  prompt,
		"stream":  false,
		"options": map[string]any{"num_predict": numPredict, "seed": 1},
	}, &g)
	if err != nil {
		t.Fatalf("generating with %q: %v", model, err)
	}
	return g
}

func (s *Server) postJSON(ctx context.Context, path string, in, out any) error {
	b, err := json.Marshal(in)
	if err != nil {
		return err
	}
	return s.do(ctx, http.MethodPost, path, bytes.NewReader(b), out)
}

// do sends one request and decodes a JSON answer into out (if not nil).
// Non-2xx answers become errors carrying Ollama's error message.
func (s *Server) do(ctx context.Context, method, path string, body io.Reader, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, s.URL+path, body)
	if err != nil {
		return err
	}
	if body != nil {
		ct := "application/json"
		if strings.HasPrefix(path, "/api/blobs/") {
			ct = "application/octet-stream"
		}
		req.Header.Set("Content-Type", ct)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
	if err != nil {
		return fmt.Errorf("%s %s: reading answer: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(data, &e) == nil && e.Error != "" {
			return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, e.Error)
		}
		return fmt.Errorf("%s %s: %s: %q", method, path, resp.Status, data)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("%s %s: decoding answer: %w", method, path, err)
		}
	}
	return nil
}
