package fingerprint

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/llmfence/llmfence/internal/guard"
	"github.com/llmfence/llmfence/internal/lab"
	"github.com/llmfence/llmfence/internal/service"
)

// needBinary finds a server binary the test drives; it skips without one,
// except under CI, where the binary must be installed.
func needBinary(t *testing.T, name string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/usr/bin", "/usr/local/bin"} {
		p := filepath.Join(dir, name)
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s is not installed (CI needs it)", name)
	}
	t.Skipf("%s is not installed", name)
	return ""
}

// persona serves one lab persona of stack on loopback and returns its
// address.
func persona(t *testing.T, stack string, auth bool) (lab.Persona, string) {
	t.Helper()
	authFrac := -1.0
	if auth {
		authFrac = 1
	}
	ps, err := lab.Generate(lab.Config{Seed: 11, Live: 1, Stacks: []string{stack}, AuthFraction: authFrac, TLSFraction: -1})
	if err != nil {
		t.Fatal(err)
	}
	p := ps[0]
	srv := httptest.NewServer(lab.Handler(&p, nil))
	t.Cleanup(srv.Close)
	return p, srv.Listener.Addr().String()
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startProcess runs a server until the test ends and waits until addr
// accepts connections.
func startProcess(t *testing.T, addr string, cmd *exec.Cmd) {
	t.Helper()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", cmd.Path, err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		select {
		case <-exited:
			t.Fatalf("%s exited early:\n%s", cmd.Path, out.String())
		default:
		}
		if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not listening on %s:\n%s", cmd.Path, addr, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func probeAddr(t *testing.T, addr string) *service.Service {
	t.Helper()
	p := testProber(t, Options{})
	s, err := p.Probe(context.Background(), netip.MustParseAddrPort(addr), "", false, nil)
	if err != nil {
		t.Fatalf("Probe %s: %v", addr, err)
	}
	return s
}

// nginxFront starts a real nginx on loopback in front of upstream with the
// given location blocks (%s is the upstream, %s the password file).
func nginxFront(t *testing.T, upstream, locations string) string {
	t.Helper()
	bin := needBinary(t, "nginx")
	dir := t.TempDir()
	listen := freePort(t)
	pw := filepath.Join(dir, "htpasswd")
	if err := os.WriteFile(pw, []byte("scanner-never-knows:{PLAIN}secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	conf := fmt.Sprintf(`daemon off;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log;
worker_processes 1;
events {}
http {
  access_log off;
  client_body_temp_path %[1]s/body; proxy_temp_path %[1]s/proxy;
  fastcgi_temp_path %[1]s/fastcgi; uwsgi_temp_path %[1]s/uwsgi; scgi_temp_path %[1]s/scgi;
  server {
    listen %[2]s;
%[3]s
  }
}
`, dir, listen, strings.NewReplacer("UPSTREAM", upstream, "PASSWORDS", pw).Replace(locations))
	if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	startProcess(t, listen, exec.Command(bin, "-p", dir, "-c", filepath.Join(dir, "nginx.conf"), "-e", filepath.Join(dir, "error.log")))
	return listen
}

// TestGatewayNginxBasicAuth: a real nginx with auth_basic in front of an
// Ollama persona. All of it fenced: nothing of Ollama shows, the fence is
// named. Only the API fenced: Ollama is identified and the fence named.
func TestGatewayNginxBasicAuth(t *testing.T) {
	_, up := persona(t, lab.StackOllama, false)

	whole := nginxFront(t, up, `    location / { auth_basic "LLM"; auth_basic_user_file PASSWORDS; proxy_pass http://UPSTREAM; }`)
	s := probeAddr(t, whole)
	if s.Product != "http" || s.Gateway != "nginx" || s.Auth != service.AuthRequired || s.Extra["gateway_auth"] != "basic" {
		t.Errorf("whole site behind nginx: product %q gateway %q auth %q extra %v; evidence:\n%s",
			s.Product, s.Gateway, s.Auth, s.Extra, strings.Join(s.Evidence, "\n"))
	}

	apiOnly := nginxFront(t, up, `    location / { proxy_pass http://UPSTREAM; }
    location /api/ { auth_basic "LLM"; auth_basic_user_file PASSWORDS; proxy_pass http://UPSTREAM; }
    location /v1/ { auth_basic "LLM"; auth_basic_user_file PASSWORDS; proxy_pass http://UPSTREAM; }`)
	s = probeAddr(t, apiOnly)
	if s.Product != "ollama" || s.Gateway != "nginx" || s.Auth != service.AuthRequired {
		t.Errorf("API behind nginx: product %q gateway %q auth %q; evidence:\n%s", s.Product, s.Gateway, s.Auth, strings.Join(s.Evidence, "\n"))
	}
	if len(s.Models) != 0 {
		t.Errorf("models read through the fence: %v", s.Models)
	}
}

// TestGatewayNginxPassesUpstreamRefusal: nginx as a plain reverse proxy in
// front of a vLLM that checks its own --api-key. nginx stamps its Server
// header on the 401, but the refusal is vLLM's: no gateway.
func TestGatewayNginxPassesUpstreamRefusal(t *testing.T) {
	_, up := persona(t, lab.StackVLLM, true)
	front := nginxFront(t, up, `    location / { proxy_pass http://UPSTREAM; }`)
	s := probeAddr(t, front)
	if s.Gateway != "" {
		t.Errorf("gateway %q for a refusal that came from the model server; evidence:\n%s", s.Gateway, strings.Join(s.Evidence, "\n"))
	}
	if s.Product != lab.StackVLLM || s.Auth != service.AuthRequired {
		t.Errorf("product %q auth %q, want vllm required", s.Product, s.Auth)
	}
	if !strings.HasPrefix(s.ServerHeader, "nginx") {
		t.Errorf("Server header %q: the test did not go through nginx", s.ServerHeader)
	}
}

// TestGatewayCaddyBasicAuth: a real Caddy with basicauth in front of a
// vLLM persona without a key of its own.
func TestGatewayCaddyBasicAuth(t *testing.T) {
	bin := needBinary(t, "caddy")
	_, up := persona(t, lab.StackVLLM, false)
	dir := t.TempDir()
	env := append(os.Environ(), "HOME="+dir, "XDG_DATA_HOME="+dir, "XDG_CONFIG_HOME="+dir)
	hc := exec.Command(bin, "hash-password", "--plaintext", "secret")
	hc.Env = env
	hash, err := hc.Output()
	if err != nil {
		t.Fatalf("caddy hash-password: %v", err)
	}
	listen := freePort(t)
	caddyfile := fmt.Sprintf(`{
	admin off
	auto_https off
}
http://%s {
	basicauth {
		scanner-never-knows %s
	}
	reverse_proxy %s
}
`, listen, strings.TrimSpace(string(hash)), up)
	cf := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(cf, []byte(caddyfile), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "run", "--config", cf, "--adapter", "caddyfile")
	cmd.Env = env
	startProcess(t, listen, cmd)
	s := probeAddr(t, listen)
	if s.Product != "http" || s.Gateway != "caddy" || s.Auth != service.AuthRequired || s.Extra["gateway_auth"] != "basic" {
		t.Errorf("vLLM behind Caddy basicauth: product %q gateway %q auth %q extra %v; evidence:\n%s",
			s.Product, s.Gateway, s.Auth, s.Extra, strings.Join(s.Evidence, "\n"))
	}
}

// TestGatewayLLMFenceGuard: a real llmfence guard (in-process, its own
// handler) in front of an Ollama persona, as an anonymous scanner sees it.
func TestGatewayLLMFenceGuard(t *testing.T) {
	_, up := persona(t, lab.StackOllama, false)
	cfg := guard.DefaultConfig()
	cfg.Upstream = "http://" + up
	g, err := guard.New(guard.Options{Config: cfg, Auth: guard.AuthenticatorFunc(func(context.Context, string) (*guard.Principal, error) {
		return nil, guard.ErrInvalidKey
	})})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(g)
	t.Cleanup(func() { srv.Close(); g.Close(context.Background()) })
	s := probeAddr(t, srv.Listener.Addr().String())
	if s.Gateway != "llmfence-guard" || s.Auth != service.AuthRequired || s.Extra["gateway_auth"] != "bearer" {
		t.Errorf("Ollama behind llmfence guard: product %q gateway %q auth %q extra %v; evidence:\n%s",
			s.Product, s.Gateway, s.Auth, s.Extra, strings.Join(s.Evidence, "\n"))
	}
	if len(s.Models) != 0 || s.Version != "" {
		t.Errorf("read through the guard: version %q models %v", s.Version, s.Models)
	}
	t.Logf("behind llmfence guard: product %q", s.Product)
}
