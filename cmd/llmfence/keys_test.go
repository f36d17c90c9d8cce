package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/llmfence/llmfence/internal/cli"
	apikeys "github.com/llmfence/llmfence/internal/guard/keys"
	"github.com/llmfence/llmfence/internal/store"
)

// runKeysCLI runs the keys / usage commands under a root like newRoot's
// (which does not wire them in yet) against the store db.
func runKeysCLI(t *testing.T, db string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errb bytes.Buffer
	e := &env{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, db: db,
		log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	root := &cobra.Command{Use: "llmfence", SilenceUsage: true, SilenceErrors: true}
	root.AddCommand(newKeysCmd(e), newUsageCmd(e))
	root.SetArgs(args)
	root.SetOut(&out)
	root.SetErr(&errb)
	err = root.ExecuteContext(context.Background())
	return out.String(), errb.String(), err
}

func openKeysStore(t *testing.T, db string) store.GuardStore {
	t.Helper()
	st, err := store.OpenGuard(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

var oneKeyLine = regexp.MustCompile(`^lf_[0-9A-Za-z]{8}_[0-9A-Za-z]{43}\n$`)

// createKey runs `keys create` and returns the printed key, checking that
// it is the only line on stdout.
func createKey(t *testing.T, db string, args ...string) string {
	t.Helper()
	out, errOut, err := runKeysCLI(t, db, append([]string{"keys", "create"}, args...)...)
	if err != nil {
		t.Fatalf("keys create %v: %v\n%s", args, err, errOut)
	}
	if !oneKeyLine.MatchString(out) {
		t.Fatalf("keys create %v: stdout %q is not exactly one key line", args, out)
	}
	key := strings.TrimSpace(out)
	if strings.Contains(errOut, key) {
		t.Errorf("the key also went to stderr")
	}
	return key
}

func TestKeysLifecycle(t *testing.T) {
	ctx := context.Background()
	db := filepath.Join(t.TempDir(), "llmfence.db")
	before := time.Now()
	key := createKey(t, db, "alice", "--models", "llama3*,qwen*", "--rpm", "60", "--tpm", "40000",
		"--concurrent", "2", "--daily-tokens", "2000000", "--monthly-tokens", "-1", "--expires", "720h", "--allow-cloud")
	st := openKeysStore(t, db)
	m := apikeys.NewManager(st, apikeys.Options{CacheTTL: -1})

	k, err := m.Authenticate(ctx, key)
	if err != nil {
		t.Fatalf("the printed key does not authenticate: %v", err)
	}
	want := apikeys.Limits{RPM: 60, TPM: 40000, Concurrent: 2, Daily: 2000000, Monthly: -1}
	if k.Name != "alice" || strings.Join(k.Models, ",") != "llama3*,qwen*" || k.Limits != want || k.Admin || !k.AllowCloud {
		t.Errorf("stored key = %+v", k)
	}
	if exp := k.Expires.Sub(before); exp < 720*time.Hour || exp > 721*time.Hour {
		t.Errorf("expires in %v, want 720h", exp)
	}
	adminKey := createKey(t, db, "ops", "--admin", "--models", "*", "--expires", "30d")
	if k, err := m.Authenticate(ctx, adminKey); err != nil || !k.Admin || k.Expires.Sub(before) < 30*24*time.Hour {
		t.Errorf("ops key: %+v, %v", k, err)
	}

	// list never shows a secret, in either format.
	secret := key[strings.LastIndex(key, "_")+1:]
	hash := hex.EncodeToString(apikeys.Hash(key))
	table, _, err := runKeysCLI(t, db, "keys", "list")
	if err != nil {
		t.Fatal(err)
	}
	jsonOut, _, err := runKeysCLI(t, db, "keys", "list", "--format", "json")
	if err != nil {
		t.Fatal(err)
	}
	for name, out := range map[string]string{"table": table, "json": jsonOut} {
		if strings.Contains(out, secret) || strings.Contains(out, secret[:16]) || strings.Contains(out, hash[:16]) ||
			strings.Contains(out, "lf_") || strings.Contains(strings.ToLower(out), "hash") {
			t.Errorf("keys list (%s) shows secret material:\n%s", name, out)
		}
	}
	if !regexp.MustCompile(`(?m)^alice\s+` + k.ID + `\s+active\s`).MatchString(table) {
		t.Errorf("table does not list alice as active:\n%s", table)
	}
	views := decodeJSONL[struct {
		ID, Name, Status string
		Models           []string
		Limits           apikeys.Limits
	}](t, jsonOut)
	if len(views) != 2 || views[0].Name != "alice" || views[0].ID != k.ID || views[0].Status != "active" ||
		views[0].Limits != want || views[1].Name != "ops" {
		t.Errorf("json list = %+v", views)
	}

	// rotate prints a new key alone; the old one stops working.
	out, _, err := runKeysCLI(t, db, "keys", "rotate", "alice")
	if err != nil || !oneKeyLine.MatchString(out) {
		t.Fatalf("keys rotate: %q, %v", out, err)
	}
	rotated := strings.TrimSpace(out)
	if _, err := m.Authenticate(ctx, key); !errors.Is(err, apikeys.ErrUnknownKey) {
		t.Errorf("old key after rotate: %v", err)
	}
	if k2, err := m.Authenticate(ctx, rotated); err != nil || k2.ID != k.ID || k2.Limits != want {
		t.Errorf("rotated key: %+v, %v", k2, err)
	}

	// revoke refuses the key afterwards and shows it as revoked.
	if _, errOut, err := runKeysCLI(t, db, "keys", "revoke", "alice"); err != nil || !strings.Contains(errOut, "Revoked") {
		t.Fatalf("keys revoke: %v %s", err, errOut)
	}
	if _, err := m.Authenticate(ctx, rotated); !errors.Is(err, apikeys.ErrRevoked) {
		t.Errorf("after revoke: %v, want ErrRevoked", err)
	}
	table, _, _ = runKeysCLI(t, db, "keys", "list")
	if !regexp.MustCompile(`(?m)^alice\s+` + k.ID + `\s+revoked\s`).MatchString(table) {
		t.Errorf("table does not show alice revoked:\n%s", table)
	}
	if _, _, err := runKeysCLI(t, db, "keys", "revoke", "alice"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("second revoke: %v, want not found", err)
	}
	if _, _, err := runKeysCLI(t, db, "keys", "rotate", "alice"); !errors.Is(err, store.ErrRevoked) {
		t.Errorf("rotate after revoke: %v, want revoked", err)
	}
	// The name is free again.
	fresh := createKey(t, db, "alice", "--models", "*")
	if k3, err := m.Authenticate(ctx, fresh); err != nil || k3.ID == k.ID {
		t.Errorf("re-created alice: %+v, %v", k3, err)
	}
}

func TestKeysBadInput(t *testing.T) {
	db := filepath.Join(t.TempDir(), "llmfence.db")
	createKey(t, db, "taken", "--models", "*")
	for _, tc := range []struct {
		name string
		args []string
		code int   // exit status (cli.ExitCode); 0: not checked
		is   error // or a sentinel the error must match
		msg  string
	}{
		{"bad name", []string{"keys", "create", "a b"}, 2, nil, "key name"},
		{"bad glob", []string{"keys", "create", "x", "--models", "llama[3"}, 2, nil, "--models"},
		{"bad expiry", []string{"keys", "create", "x", "--expires", "soon"}, 2, nil, "--expires"},
		{"negative expiry", []string{"keys", "create", "x", "--expires", "-1h"}, 2, nil, "--expires"},
		{"duplicate", []string{"keys", "create", "taken"}, 0, store.ErrExists, "already exists"},
		{"no name", []string{"keys", "create"}, 0, nil, "accepts 1 arg"},
		{"list format", []string{"keys", "list", "--format", "xml"}, 2, nil, "--format"},
		{"revoke unknown", []string{"keys", "revoke", "nobody"}, 0, store.ErrNotFound, "nobody"},
		{"rotate unknown", []string{"keys", "rotate", "nobody"}, 0, store.ErrNotFound, "nobody"},
		{"usage since", []string{"usage", "--since", "-1h"}, 2, nil, "--since"},
		{"usage format", []string{"usage", "--format", "csv"}, 2, nil, "--format"},
	} {
		out, _, err := runKeysCLI(t, db, tc.args...)
		if err == nil {
			t.Errorf("%s: succeeded", tc.name)
			continue
		}
		if out != "" {
			t.Errorf("%s: printed %q on stdout", tc.name, out)
		}
		if tc.code != 0 && cli.ExitCode(context.Background(), err) != tc.code {
			t.Errorf("%s: %v, want exit status %d", tc.name, err, tc.code)
		}
		if tc.is != nil && !errors.Is(err, tc.is) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.is)
		}
		if !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: message %q lacks %q", tc.name, err, tc.msg)
		}
	}
	// Nothing but "taken" was created.
	list, err := openKeysStore(t, db).ListKeys(context.Background())
	if err != nil || len(list) != 1 {
		t.Errorf("keys after bad input: %d, %v", len(list), err)
	}
}

func TestUsageAggregates(t *testing.T) {
	ctx := context.Background()
	db := filepath.Join(t.TempDir(), "llmfence.db")
	createKey(t, db, "alice", "--models", "*")
	createKey(t, db, "bob", "--models", "*")
	createKey(t, db, "dave", "--models", "*")
	st := openKeysStore(t, db)
	alice, _ := st.GetKeyByName(ctx, "alice")
	bob, _ := st.GetKeyByName(ctx, "bob")
	now := time.Now()
	rec := func(k store.APIKey, ago time.Duration, status int, p, c int64, errMsg string) store.UsageRecord {
		return store.UsageRecord{Time: now.Add(-ago), KeyID: k.ID, KeyName: k.Name, Method: "POST", Route: "/api/chat",
			Model: "llama3.2:3b", Status: status, PromptTokens: p, CompletionTokens: c, Error: errMsg}
	}
	if err := st.AppendUsage(ctx, []store.UsageRecord{
		rec(alice, time.Hour, 200, 10, 100, ""),
		rec(alice, 2*time.Hour, 200, 20, 200, ""),
		rec(alice, 3*time.Hour, 429, 0, 0, "rate limited"),
		rec(bob, 30*time.Minute, 200, 5, 50, ""),
		rec(bob, 48*time.Hour, 200, 1000, 1000, ""), // outside the default 24h
		{Time: now.Add(-time.Minute), Method: "POST", Route: "/api/pull", Status: 401, Error: "no API key"},
	}); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name  string
		args  []string
		keys  map[string][4]int64 // name -> requests, prompt, completion, errors
		total [4]int64
	}{
		{"default 24h", nil,
			map[string][4]int64{"": {1, 0, 0, 1}, "alice": {3, 30, 300, 1}, "bob": {1, 5, 50, 0}}, [4]int64{5, 35, 350, 2}},
		{"since 72h", []string{"--since", "72h"},
			map[string][4]int64{"": {1, 0, 0, 1}, "alice": {3, 30, 300, 1}, "bob": {2, 1005, 1050, 0}}, [4]int64{6, 1035, 1350, 2}},
		{"all time, one key", []string{"--since", "0", "--key", "bob"},
			map[string][4]int64{"bob": {2, 1005, 1050, 0}}, [4]int64{2, 1005, 1050, 0}},
		{"by id", []string{"--key", alice.ID},
			map[string][4]int64{"alice": {3, 30, 300, 1}}, [4]int64{3, 30, 300, 1}},
		{"a key without usage", []string{"--key", "dave"}, map[string][4]int64{}, [4]int64{}},
	} {
		out, _, err := runKeysCLI(t, db, append([]string{"usage", "--format", "json"}, tc.args...)...)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		// One record per key; the total is the sum of the records.
		recs := decodeJSONL[struct {
			KeyName          string `json:"key_name"`
			Requests         int64  `json:"requests"`
			PromptTokens     int64  `json:"prompt_tokens"`
			CompletionTokens int64  `json:"completion_tokens"`
			Errors           int64  `json:"errors"`
		}](t, out)
		got := map[string][4]int64{}
		var gotTotal [4]int64
		for _, k := range recs {
			got[k.KeyName] = [4]int64{k.Requests, k.PromptTokens, k.CompletionTokens, k.Errors}
			gotTotal = [4]int64{gotTotal[0] + k.Requests, gotTotal[1] + k.PromptTokens, gotTotal[2] + k.CompletionTokens, gotTotal[3] + k.Errors}
		}
		if mustMarshal(t, got) != mustMarshal(t, tc.keys) || gotTotal != tc.total {
			t.Errorf("%s: keys %v total %v; want %v total %v", tc.name, got, gotTotal, tc.keys, tc.total)
		}
	}

	// A key nobody has is a mistake, not an empty report.
	if _, _, err := runKeysCLI(t, db, "usage", "--key", "carol"); cliExitCode(err) != 2 {
		t.Errorf("usage --key carol (no such key): %v, want exit status 2", err)
	}

	table, _, err := runKeysCLI(t, db, "usage")
	if err != nil {
		t.Fatal(err)
	}
	for _, re := range []string{
		`(?m)^KEY\s+ID\s+REQUESTS\s+PROMPT\s+COMPLETION\s+TOTAL TOKENS\s+ERRORS$`,
		`(?m)^\(no key\)\s+-\s+1\s+0\s+0\s+0\s+1$`,
		`(?m)^alice\s+` + alice.ID + `\s+3\s+30\s+300\s+330\s+1$`,
		`(?m)^bob\s+` + bob.ID + `\s+1\s+5\s+50\s+55\s+0$`,
		`(?m)^TOTAL\s+5\s+35\s+350\s+385\s+2$`,
	} {
		if !regexp.MustCompile(re).MatchString(table) {
			t.Errorf("usage table lacks %s:\n%s", re, table)
		}
	}
}

func mustMarshal(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func cliExitCode(err error) int {
	if err == nil {
		return 0
	}
	return cli.ExitCode(context.Background(), err)
}
