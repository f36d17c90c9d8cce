package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/llmfence/llmfence/internal/lab"
	"github.com/llmfence/llmfence/internal/service"
	"github.com/llmfence/llmfence/internal/store"
)

// testPostgres returns a DSN of a fresh schema in $LLMFENCE_TEST_POSTGRES,
// skipping (or failing in CI) without one.
func testPostgres(t *testing.T) string {
	t.Helper()
	base := os.Getenv("LLMFENCE_TEST_POSTGRES")
	if base == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("LLMFENCE_TEST_POSTGRES is not set, and CI is")
		}
		t.Skip("LLMFENCE_TEST_POSTGRES not set")
	}
	b := make([]byte, 6)
	rand.Read(b)
	schema := "llmfence_serve_" + hex.EncodeToString(b)
	exec := func(q string) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Fatalf("connect to test PostgreSQL: %v", err)
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	exec("CREATE SCHEMA " + schema)
	t.Cleanup(func() { exec("DROP SCHEMA " + schema + " CASCADE") })
	u, _ := url.Parse(base)
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// proc is an llmfence process the test runs.
type proc struct {
	cmd    *exec.Cmd
	stderr *syncBuffer
	exited chan struct{}
	killed bool
}

func startProc(t *testing.T, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: llmfenceCommand(t, args...), stderr: &syncBuffer{}, exited: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = io.Discard, p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			p.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-p.exited:
			case <-time.After(40 * time.Second):
				p.cmd.Process.Kill()
				<-p.exited
				t.Errorf("%v did not stop on SIGTERM; stderr:\n%s", args, p.stderr)
				return
			}
			if c := p.cmd.ProcessState.ExitCode(); c != 0 {
				t.Errorf("%v exited %d after SIGTERM; stderr:\n%s", args, c, p.stderr)
			}
		}
	})
	return p
}

func (p *proc) kill() {
	p.killed = true
	p.cmd.Process.Kill()
	<-p.exited
}

// name is the worker name the process records in shard rows.
func (p *proc) name() string {
	h, _ := os.Hostname()
	return h + ":" + strconv.Itoa(p.cmd.Process.Pid)
}

// apiToken creates an operator and returns an API token for it.
func apiToken(t *testing.T, db string) string {
	t.Helper()
	if _, e, c := runCLI(t, "correct horse battery\n", "--db", db, "users", "create", "--role", "operator", "ops"); c != 0 {
		t.Fatalf("users create: %s", e)
	}
	out, e, c := runCLI(t, "", "--db", db, "users", "token", "ops", "--name", "test")
	if c != 0 {
		t.Fatalf("users token: %s", e)
	}
	return strings.TrimSpace(out)
}

func waitHTTP(t *testing.T, p *proc, base string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-p.exited:
			t.Fatalf("serve exited: %s", p.stderr)
		default:
		}
		if r, err := http.Get(base + "/healthz"); err == nil {
			r.Body.Close()
			if r.StatusCode == 200 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve not answering: %s", p.stderr)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func startScanAPI(t *testing.T, base, token string, body map[string]any) string {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest("POST", base+"/api/scans", strings.NewReader(string(b)))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var run store.Run
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusAccepted || json.Unmarshal(raw, &run) != nil {
		t.Fatalf("start scan: %d %s", resp.StatusCode, raw)
	}
	return run.ID
}

func svcKeys(svcs []service.Service) []string {
	var out []string
	for _, s := range svcs {
		out = append(out, fmt.Sprintf("%s %s %s %s %d-models", s.Key(), s.Product, s.Version, s.Auth, len(s.Models)))
	}
	slices.Sort(out)
	return out
}

// scanOnce is the reference: one `llmfence scan` process over the fleet.
func scanOnce(t *testing.T, db, prefix string) []string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "ref.jsonl")
	if _, e, c := runCLI(t, "", "--db", db, "scan", "--format", "json", "-o", out, "--rate", "0", "--seed", "1", "--progress", "never",
		"--timeout", "2s", "--target-budget", "3s", "-p", "11434,8000,8080,1234,4000,5000", prefix); c != 0 {
		t.Fatalf("reference scan: %s", e)
	}
	return svcKeys(readJSONL(t, out))
}

var shardedScan = map[string]any{"rate": 100, "shards": 6, "seed": 1, "timeout": "2s", "target_budget": "3s", "ports": "11434,8000,8080,1234,4000,5000"}

// waitKillMidShard SIGKILLs victim once it is scanning a shard and has
// made progress in it.
func waitKillMidShard(t *testing.T, st store.ServerStore, runID string, victim *proc) {
	t.Helper()
	id, _ := strconv.ParseInt(runID, 10, 64)
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		var n int
		err := st.DB().QueryRowContext(context.Background(), rebindFor(st, `SELECT COUNT(*) FROM run_shards WHERE run_id = ? AND worker = ? AND status = 'running' AND done > 20`),
			id, victim.name()).Scan(&n)
		if err == nil && n > 0 {
			victim.kill()
			return
		}
		if err != nil {
			t.Logf("polling shards: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	rows, _ := st.DB().QueryContext(context.Background(), rebindFor(st, `SELECT shard, status, worker, done, attempts, error FROM run_shards WHERE run_id = ?`), id)
	var table []string
	for rows != nil && rows.Next() {
		var sh, att int
		var status, worker, errs string
		var done int64
		rows.Scan(&sh, &status, &worker, &done, &att, &errs)
		table = append(table, fmt.Sprintf("%d %s %s %d %d %s", sh, status, worker, done, att, errs))
	}
	r, _ := st.GetRun(context.Background(), runID)
	t.Fatalf("worker %s never held a shard; run %s (%v..%v); shards:\n%s\nstderr:\n%s", victim.name(), r.Status, r.StartedAt, r.FinishedAt, strings.Join(table, "\n"), victim.stderr)
}

func rebindFor(st store.ServerStore, q string) string {
	if st.Kind() != store.KindPostgres {
		return q
	}
	var b strings.Builder
	n := 0
	for _, r := range q {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

func waitFinished(t *testing.T, st store.ServerStore, runID string, d time.Duration, procs ...*proc) store.Run {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		r, err := st.GetRun(context.Background(), runID)
		if err == nil && r.Status != store.StatusRunning {
			return r
		}
		if time.Now().After(deadline) {
			p, _ := st.RunProgress(context.Background(), runID)
			var logs []string
			for _, pr := range procs {
				logs = append(logs, pr.stderr.String())
			}
			t.Fatalf("run %s not done after %v: %+v\n%s", runID, d, p, strings.Join(logs, "\n---\n"))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestWorkersOnPostgresSurviveSIGKILL: three `llmfence worker` processes
// share a sharded scan through PostgreSQL; one is SIGKILLed mid-shard; the
// run completes and its services are exactly those of one `llmfence scan`
// of the same fleet: nothing lost, nothing twice.
func TestWorkersOnPostgresSurviveSIGKILL(t *testing.T) {
	db := testPostgres(t)
	prefix := "127.111.0.0/24"
	startFleet(t, lab.Config{Seed: 31, Prefix: netip.MustParsePrefix(prefix), Live: 40})
	want := scanOnce(t, db, prefix)
	if len(want) < 20 {
		t.Fatalf("reference scan found only %d services", len(want))
	}
	token := apiToken(t, db)
	listen := freeAddr(t)
	serve := startProc(t, "--db", db, "serve", "--listen", listen, "--workers", "0", "--poll", "200ms", "--rescue-after", "5s",
		"--maintain-every", "2s", "--min-shard-timeout", "5s", "--max-parallel", "3")
	base := "http://" + listen
	waitHTTP(t, serve, base)
	var workers []*proc
	for i := 0; i < 3; i++ {
		workers = append(workers, startProc(t, "--db", db, "worker", "--shards", "1", "--poll", "200ms", "--rescue-after", "5s"))
	}
	runID := startScanAPI(t, base, token, mapWith(shardedScan, "targets", []string{prefix}))
	st, err := store.OpenServer(context.Background(), db, store.Options{Logger: e2eQuiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	waitKillMidShard(t, st, runID, workers[0])
	r := waitFinished(t, st, runID, 150*time.Second, append(workers, serve)...)
	if r.Status != store.StatusFinished {
		t.Fatalf("run %s ended %s: %s", runID, r.Status, r.Error)
	}
	svcs, _ := st.Services(context.Background(), runID)
	got := svcKeys(svcs)
	if !slices.Equal(got, want) {
		t.Errorf("sharded run with a killed worker found %d services, one process %d:\n got %v\nwant %v", len(got), len(want), got, want)
	}
	p, _ := st.RunProgress(context.Background(), runID)
	if p.RetriedJobs < 1 || p.ShardsDone != 6 {
		t.Errorf("progress %+v: the killed worker's shard should have run again", p)
	}
	if int64(r.Stats.AddressesProbed) != p.Total {
		t.Errorf("run counted %d pairs, shards cover %d", r.Stats.AddressesProbed, p.Total)
	}
}

// TestEmbeddedServeSurvivesSIGKILL: the same with the embedded SQLite
// store, where serve itself scans; serve is SIGKILLed mid-run and started
// again, and the run completes with exactly the services one scan finds.
func TestEmbeddedServeSurvivesSIGKILL(t *testing.T) {
	db := filepath.Join(t.TempDir(), "s.db")
	prefix := "127.112.0.0/24"
	startFleet(t, lab.Config{Seed: 32, Prefix: netip.MustParsePrefix(prefix), Live: 40})
	ref := filepath.Join(t.TempDir(), "ref.db")
	want := scanOnce(t, ref, prefix)
	token := apiToken(t, db)
	listen := freeAddr(t)
	args := []string{"--db", db, "serve", "--listen", listen, "--workers", "3", "--poll", "200ms", "--rescue-after", "5s",
		"--maintain-every", "2s", "--min-shard-timeout", "5s", "--max-parallel", "3"}
	serve := startProc(t, args...)
	base := "http://" + listen
	waitHTTP(t, serve, base)
	runID := startScanAPI(t, base, token, mapWith(shardedScan, "targets", []string{prefix}))
	st, err := store.OpenServer(context.Background(), db, store.Options{Logger: e2eQuiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	waitKillMidShard(t, st, runID, serve)
	serve2 := startProc(t, args...)
	waitHTTP(t, serve2, base)
	r := waitFinished(t, st, runID, 150*time.Second, serve2)
	if r.Status != store.StatusFinished {
		t.Fatalf("run %s ended %s: %s", runID, r.Status, r.Error)
	}
	svcs, _ := st.Services(context.Background(), runID)
	if got := svcKeys(svcs); !slices.Equal(got, want) {
		t.Errorf("embedded sharded run after a SIGKILL found %d services, one process %d:\n got %v\nwant %v", len(got), len(want), got, want)
	}
}

// TestWorkerNeedsReachablePostgres: bad input for a worker is said plainly.
func TestWorkerNeedsReachablePostgres(t *testing.T) {
	_, e, c := runCLI(t, "", "--db", filepath.Join(t.TempDir(), "x.db"), "worker")
	if c != 2 || !strings.Contains(e, "single-node") {
		t.Errorf("worker on SQLite: %d %s", c, e)
	}
	_, e, c = runCLI(t, "", "--db", "postgres://nobody:secretpw@127.0.0.1:1/x?connect_timeout=2", "worker")
	if c != 2 || !strings.Contains(e, "cannot reach PostgreSQL at 127.0.0.1:1") || strings.Contains(e, "secretpw") {
		t.Errorf("worker with an unreachable database: %d %s", c, e)
	}
}

func mapWith(m map[string]any, k string, v any) map[string]any {
	out := map[string]any{k: v}
	for kk, vv := range m {
		out[kk] = vv
	}
	return out
}

func e2eQuiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// TestServeAndWorkersStartTogether starts serve and three workers at the
// same moment on a new PostgreSQL database, as an orchestrator does: each
// creates River's tables if missing, and none may fail because another
// was creating them at the same time.
func TestServeAndWorkersStartTogether(t *testing.T) {
	db := testPostgres(t)
	apiToken(t, db) // the store's own tables exist; River's do not yet
	listen := freeAddr(t)
	procs := []*proc{startProc(t, "--db", db, "serve", "--listen", listen, "--workers", "0", "--poll", "200ms")}
	for i := 0; i < 3; i++ {
		procs = append(procs, startProc(t, "--db", db, "worker", "--shards", "1", "--poll", "200ms"))
	}
	waitHTTP(t, procs[0], "http://"+listen)
	for _, p := range procs[1:] {
		deadline := time.Now().Add(30 * time.Second)
		for !strings.Contains(p.stderr.String(), "taking up to") {
			select {
			case <-p.exited:
				t.Fatalf("a worker started beside serve and two others exited: %s", p.stderr)
			case <-time.After(100 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				t.Fatalf("a worker did not start within 30 s: %s", p.stderr)
			}
		}
	}
}
