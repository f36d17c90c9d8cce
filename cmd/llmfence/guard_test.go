package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/llmfence/llmfence/internal/guard"
	gkeys "github.com/llmfence/llmfence/internal/guard/keys"
	"github.com/llmfence/llmfence/internal/store"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func TestGuardCommandServesWithStoredKeys(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"model":"tiny","response":"hi","done":true,"prompt_eval_count":2,"eval_count":1}`)
	}))
	defer up.Close()
	db := filepath.Join(t.TempDir(), "g.db")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	st, err := store.OpenGuard(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	key, _, err := gkeys.NewManager(st, gkeys.Options{}).Create(ctx, gkeys.Spec{Name: "alice", Models: []string{"tiny"}})
	st.Close()
	if err != nil {
		t.Fatal(err)
	}

	listen, metrics := freeAddr(t), freeAddr(t)
	var stderr bytes.Buffer
	e := &env{stdout: io.Discard, stderr: &stderr, db: db}
	cmd := newGuardCmd(e)
	cmd.SetArgs([]string{"--upstream", up.URL, "--listen", listen, "--metrics", metrics, "--allow", "127.0.0.0/8"})
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(ctx) }()

	base := "http://" + listen
	var resp *http.Response
	for range 100 {
		resp, err = http.Get(base + "/api/tags")
		if err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("guard did not start: %v; stderr: %s", err, stderr.String())
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("no key: %d", resp.StatusCode)
	}
	req, _ := http.NewRequest("POST", base+"/api/generate", strings.NewReader(`{"model":"tiny","prompt":"x","stream":false}`))
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"done":true`) {
		t.Fatalf("with key: %d %s", resp.StatusCode, body)
	}
	if r, err := http.Get("http://" + metrics + "/healthz"); err != nil || r.StatusCode != 200 {
		t.Fatalf("metrics listener: %v", err)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("guard exited with %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("guard did not shut down")
	}
	// Shutdown flushed the audit log to the store.
	st, err = store.OpenGuard(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	recs, err := st.QueryUsage(context.Background(), store.UsageFilter{Key: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 || recs[0].PromptTokens != 2 || recs[0].CompletionTokens != 1 || recs[0].Status != 200 {
		t.Errorf("usage records %+v", recs)
	}
}

func TestGuardCommandRejectsBadSettings(t *testing.T) {
	cfgFile := filepath.Join(t.TempDir(), "g.yaml")
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--upstream", "ftp://x"}, "upstream"},
		{[]string{"--allow", "300.1.1.1/8"}, "allow"},
		{[]string{"--kind", "nope"}, "kind"},
		{[]string{"--config", cfgFile}, "reading guard config"},
		{[]string{"--tls-cert", "a.crt"}, "go together"},
		{[]string{"--client-ca", "ca.pem"}, "need TLS"},
		{[]string{"--tls-cert", "/nonexistent/a.crt", "--tls-key", "/nonexistent/a.key"}, "loading certificate"},
		{[]string{"--oidc-issuer", "https://login.example.com"}, "audience is required"},
		{[]string{"--oidc-audience", "llmfence"}, "need an issuer"},
		{[]string{"--oidc-issuer", "http://login.example.com", "--oidc-audience", "x"}, "loopback"},
		{[]string{"--oidc-issuer", "https://login.example.com", "--oidc-audience", "x", "--oidc-admin-claim", "groups"}, "claim=value"},
	}
	for _, c := range cases {
		e := &env{stdout: io.Discard, stderr: io.Discard, db: filepath.Join(t.TempDir(), "x.db")}
		cmd := newGuardCmd(e)
		cmd.SetArgs(c.args)
		cmd.SilenceUsage, cmd.SilenceErrors = true, true
		err := cmd.ExecuteContext(context.Background())
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: error %v, want one mentioning %q", c.args, err, c.want)
		}
	}
}

func TestGuardConfigTLSAndOIDC(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "g.yaml")
	yaml := `tls: {cert: /etc/gw.crt, key: /etc/gw.key}
oidc:
  issuer: https://login.example.com/realms/ai
  audience: llmfence
  admin_claim: groups=llm-admins
  default_models: ["llama3*"]
`
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	var f guardFlags
	cmd := guardCommand(&env{stdout: io.Discard, stderr: io.Discard}, &f)
	if err := cmd.ParseFlags([]string{"--config", file, "--client-ca", "/etc/ca.pem",
		"--oidc-models-claim", "llm_models", "--oidc-admin-claim", "roles=admin"}); err != nil {
		t.Fatal(err)
	}
	cfg, err := guardConfig(cmd, &f)
	if err != nil {
		t.Fatal(err)
	}
	want := guard.TLSFiles{Cert: "/etc/gw.crt", Key: "/etc/gw.key", ClientCA: "/etc/ca.pem"}
	if cfg.TLS != want {
		t.Errorf("tls = %+v, want %+v", cfg.TLS, want)
	}
	o := cfg.OIDC
	if o.Issuer != "https://login.example.com/realms/ai" || o.Audience != "llmfence" || o.AdminClaim != "roles=admin" ||
		o.ModelsClaim != "llm_models" || len(o.DefaultModels) != 1 || o.DefaultModels[0] != "llama3*" {
		t.Errorf("oidc = %+v", o)
	}
}
