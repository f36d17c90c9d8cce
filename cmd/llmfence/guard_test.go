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
	cfg, err := guardConfig(&f)
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

// TestGuardFlagsComeFromTheTable: every setting of the guard's table is a
// flag of the command, with the table's default and help, and a value
// given on the command line reaches the setting (switches without a
// value, lists by repeating the flag).
func TestGuardFlagsComeFromTheTable(t *testing.T) {
	for _, s := range guard.Settings() {
		t.Run(s.Key, func(t *testing.T) {
			var f guardFlags
			cmd := guardCommand(&env{stdout: io.Discard, stderr: io.Discard}, &f)
			fl := cmd.Flags().Lookup(s.Flag)
			if fl == nil {
				t.Fatalf("no flag --%s", s.Flag)
			}
			if fl.DefValue != s.Default() || fl.Usage != s.Usage() {
				t.Errorf("--%s: default %q, usage %q; the table says %q, %q", s.Flag, fl.DefValue, fl.Usage, s.Default(), s.Usage())
			}
			args, want := flagSample(t, s)
			if err := cmd.ParseFlags(args); err != nil {
				t.Fatalf("%q: %v", args, err)
			}
			cfg := guard.DefaultConfig()
			if err := f.set.Apply(&cfg); err != nil {
				t.Fatal(err)
			}
			if got := s.Text(&cfg); got != want {
				t.Errorf("%q: %s = %q, want %q", args, s.Key, got, want)
			}
		})
	}
}

// flagSample is a command line giving s a value other than its default,
// and that value as Setting.Text shows it.
func flagSample(t *testing.T, s guard.Setting) (args []string, want string) {
	flag, def := "--"+s.Flag, s.Default()
	switch s.Kind() {
	case guard.KindBool:
		if def == "true" {
			return []string{flag + "=false"}, "false"
		}
		return []string{flag}, "true"
	case guard.KindList:
		return []string{flag, "192.0.2.1", flag, "198.51.100.0/24"}, "192.0.2.1,198.51.100.0/24"
	case guard.KindInt, guard.KindFloat:
		return []string{flag, "7" + def}, "7" + def
	case guard.KindDuration:
		return []string{flag, "7h"}, "7h"
	case guard.KindChoice:
		for _, c := range s.Choices() {
			if c != def {
				return []string{flag, c}, c
			}
		}
	case guard.KindString:
		return []string{flag, def + "x"}, def + "x"
	}
	t.Fatalf("%s: kind %s", s.Key, s.Kind())
	return nil, ""
}

// --abuse-block is short for --abuse-<signal>-action block, and wins over
// the file as the settings' own flags do.
func TestGuardAbuseBlockShorthand(t *testing.T) {
	file := filepath.Join(t.TempDir(), "g.yaml")
	if err := os.WriteFile(file, []byte("abuse: {rate_jump: {action: log}, bulk_spam: {action: log}}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var f guardFlags
	cmd := guardCommand(&env{stdout: io.Discard, stderr: io.Discard}, &f)
	if err := cmd.ParseFlags([]string{"--config", file, "--abuse-block", "rate_jump,new_network"}); err != nil {
		t.Fatal(err)
	}
	cfg, err := guardConfig(&f)
	if err != nil {
		t.Fatal(err)
	}
	a := cfg.Abuse
	if a.RateJump.Action.String() != "block" || a.NewNetwork.Action.String() != "block" || a.BulkSpam.Action.String() != "log" {
		t.Errorf("actions: rate_jump %s, new_network %s, bulk_spam %s", a.RateJump.Action, a.NewNetwork.Action, a.BulkSpam.Action)
	}
	if err := guardCommand(&env{stdout: io.Discard, stderr: io.Discard}, &guardFlags{}).ParseFlags([]string{"--abuse-block", "output_watch"}); err == nil {
		t.Error("--abuse-block output_watch accepted")
	}
}
