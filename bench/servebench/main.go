// Command servebench measures llmfence serve, all on loopback:
//
//  1. dashboard: the dashboard and API answer times (p50/p95/max per page)
//     over a seeded inventory of -services services, -history history rows
//     (timeline events) and -findings findings, on SQLite and on PostgreSQL
//     ($LLMFENCE_TEST_POSTGRES, a fresh schema);
//
//  2. sharded: a /16 lab fleet scanned by `llmfence scan` and, in the same
//     run, by `llmfence serve` with two `llmfence worker` processes on
//     PostgreSQL, alternating, with the ratio of their wall times;
//
//  3. overhead: a smaller fleet scanned by the workers with more and more
//     shards, to show the cost per shard stays flat.
//
//     flock /tmp/llmfence-bench.lock go run ./bench/servebench
//     go run ./bench/servebench -part dashboard -services 10000 -history 100000 -findings 50000
//
// Nothing here is a test; figures go to docs/benchmarks.md.
package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/llmfence/llmfence/internal/console"
	"github.com/llmfence/llmfence/internal/jobs"
	"github.com/llmfence/llmfence/internal/service"
	"github.com/llmfence/llmfence/internal/store"
	"github.com/llmfence/llmfence/internal/users"
)

func main() {
	var (
		part     = flag.String("part", "all", "dashboard, sharded, overhead, writes or all")
		services = flag.Int("services", 100000, "services to seed")
		history  = flag.Int("history", 1000000, "history rows (timeline events) to seed")
		findings = flag.Int("findings", 500000, "findings to seed")
		requests = flag.Int("requests", 60, "requests per page")
		backends = flag.String("backends", "sqlite,postgres", "store back ends for the dashboard part")
		prefix   = flag.String("prefix", "127.200.0.0/16", "lab prefix for the sharded part")
		live     = flag.Int("live", 2000, "live servers in the lab")
		rounds   = flag.Int("rounds", 2, "rounds of the sharded comparison")
		shards   = flag.Int("shards", 16, "shards of the sharded scan")
	)
	flag.Parse()
	log.SetFlags(0)
	ctx := context.Background()
	if *part == "all" || *part == "dashboard" {
		for _, be := range strings.Split(*backends, ",") {
			dashboard(ctx, be, *services, *history, *findings, *requests)
		}
	}
	if *part == "all" || *part == "writes" {
		writes(ctx)
	}
	if *part == "all" || *part == "sharded" || *part == "overhead" {
		bin := build()
		defer os.RemoveAll(filepath.Dir(bin))
		if *part != "overhead" {
			shardedVsSingle(ctx, bin, *prefix, *live, *rounds, *shards)
		}
		if *part != "sharded" {
			overhead(ctx, bin)
		}
	}
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func check(err error) {
	if err != nil {
		log.Fatal(err)
	}
}

// pgSchema makes a fresh schema in $LLMFENCE_TEST_POSTGRES.
func pgSchema(ctx context.Context) (dsn string, drop func()) {
	base := os.Getenv("LLMFENCE_TEST_POSTGRES")
	if base == "" {
		log.Fatal("set LLMFENCE_TEST_POSTGRES for the PostgreSQL parts")
	}
	schema := fmt.Sprintf("servebench_%d", time.Now().UnixNano())
	exec := func(q string) {
		conn, err := pgx.Connect(ctx, base)
		check(err)
		defer conn.Close(ctx)
		_, err = conn.Exec(ctx, q)
		check(err)
	}
	exec("CREATE SCHEMA " + schema)
	u, _ := url.Parse(base)
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String(), func() { exec("DROP SCHEMA " + schema + " CASCADE") }
}

// ---- part 1: dashboard ----

func dashboard(ctx context.Context, backend string, nsvc, nhist, nfind, reqs int) {
	var dsn string
	switch backend {
	case "sqlite":
		dir, err := os.MkdirTemp("", "servebench-")
		check(err)
		defer os.RemoveAll(dir)
		dsn = filepath.Join(dir, "s.db")
	case "postgres":
		var drop func()
		dsn, drop = pgSchema(ctx)
		defer drop()
	default:
		log.Fatalf("backend %q", backend)
	}
	st, err := store.OpenServer(ctx, dsn, store.Options{Logger: quiet()})
	check(err)
	defer st.Close()
	t0 := time.Now()
	seed(ctx, st, nsvc, nhist, nfind)
	seedTime := time.Since(t0)
	jc := jobs.DefaultConfig()
	jc.Logger = quiet()
	eng, err := jobs.Open(ctx, st, dsn, jc) // insert-only: no queues
	check(err)
	defer eng.Close()
	srv := httptest.NewServer(console.New(st, eng, console.Config{Logger: quiet()}))
	defer srv.Close()
	u, err := users.Create(ctx, st, "bench", "bench-password-123", users.RoleAdmin)
	check(err)
	tok, hash := users.NewToken("lft_")
	check(st.CreateAPIToken(ctx, u.ID, "bench", hash, time.Time{}))
	mid := nsvc / 2
	var fid int64
	check(st.DB().QueryRowContext(ctx, "SELECT MAX(id) FROM inv_findings").Scan(&fid))
	var cursor int64
	check(st.DB().QueryRowContext(ctx, "SELECT MAX(seq) FROM inv_events").Scan(&cursor))
	pages := []string{
		"/", "/services", "/services?sort=last_seen", "/services?state=offline", "/services?q=198.19.1", "/services?min_risk=critical&product=vllm",
		"/services?offset=10000", fmt.Sprintf("/services?after=r3.%d", mid), fmt.Sprintf("/services/%d", mid), "/findings",
		"/findings?min_severity=critical", "/findings?status=resolved", "/findings?offset=10000", fmt.Sprintf("/findings?after=r3.%d", fid/2),
		fmt.Sprintf("/findings/%d", fid/2), "/scans",
		"/api/overview", "/api/services?limit=200", fmt.Sprintf("/api/services?limit=200&sort=last_seen&after=t%d.%d", time.Now().Add(-45*24*time.Hour).UnixMicro(), mid),
		"/api/findings?limit=200", fmt.Sprintf("/api/findings?limit=200&status=all&after=r2.%d", fid/2), fmt.Sprintf("/api/services/%d/timeline", mid),
		fmt.Sprintf("/api/changes?cursor=%d&limit=200", cursor/2), "/api/export/services/csv?state=online&min_risk=critical&product=vllm",
	}
	client := &http.Client{Timeout: 30 * time.Second}
	fmt.Printf("\n## dashboard and API on %s: %d services, %d history rows, %d findings (seeded in %s)\n\n", backend, nsvc, nhist, nfind, seedTime.Round(time.Second))
	fmt.Println("| page | p50 ms | p95 ms | max ms | bytes |")
	fmt.Println("|---|---|---|---|---|")
	var worst float64
	for _, p := range pages {
		var lat []float64
		size := 0
		for i := 0; i < reqs+3; i++ {
			req, _ := http.NewRequest("GET", srv.URL+p, nil)
			req.Header.Set("Authorization", "Bearer "+tok)
			start := time.Now()
			resp, err := client.Do(req)
			check(err)
			n, _ := io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			el := time.Since(start)
			if resp.StatusCode != 200 {
				log.Fatalf("%s: %d", p, resp.StatusCode)
			}
			if i >= 3 {
				lat = append(lat, float64(el.Microseconds())/1000)
				size = int(n)
			}
		}
		slices.Sort(lat)
		p95 := lat[int(float64(len(lat))*0.95)-1]
		worst = max(worst, p95)
		fmt.Printf("| `%s` | %.1f | %.1f | %.1f | %d |\n", p, lat[len(lat)/2], p95, lat[len(lat)-1], size)
	}
	fmt.Printf("\nworst p95 on %s: %.1f ms (target < 200 ms)\n", backend, worst)
}

// seed bulk-loads the inventory with plausible rows.
func seed(ctx context.Context, st store.ServerStore, nsvc, nhist, nfind int) {
	db := st.DB()
	pg := st.Kind() == store.KindPostgres
	rng := rand.New(rand.NewPCG(1, 2))
	products := []string{"ollama", "vllm", "llamacpp", "lmstudio", "localai", "tgi", "openwebui", "litellm", "sglang", "xinference"}
	sevs := []string{"info", "low", "medium", "high", "critical"}
	states := []string{"online", "online", "online", "online", "offline", "stale", "expired"}
	now := time.Now().UTC()
	insert := func(table, cols string, n, per int, row func(i int) []any) {
		ncol := strings.Count(cols, ",") + 1
		tx, err := db.BeginTx(ctx, nil)
		check(err)
		for start := 0; start < n; start += per {
			end := min(n, start+per)
			var b strings.Builder
			var args []any
			b.WriteString("INSERT INTO " + table + " (" + cols + ") VALUES ")
			for i := start; i < end; i++ {
				if i > start {
					b.WriteString(",")
				}
				b.WriteString("(")
				for c := 0; c < ncol; c++ {
					if c > 0 {
						b.WriteString(",")
					}
					if pg {
						b.WriteString("$" + strconv.Itoa(len(args)+c+1))
					} else {
						b.WriteString("?")
					}
				}
				b.WriteString(")")
				args = append(args, row(i)...)
			}
			_, err := tx.ExecContext(ctx, b.String(), args...)
			check(err)
			if (end/per)%20 == 0 {
				check(tx.Commit())
				tx, err = db.BeginTx(ctx, nil)
				check(err)
			}
		}
		check(tx.Commit())
	}
	addr := func(i int) string { return fmt.Sprintf("198.%d.%d.%d", 18+(i>>16)&1, (i>>8)&255, i&255) }
	insert("inv_services", "fp, host, port, product, version, auth, tls, risk, risk_rank, model_count, open_findings, state, state_since, first_seen, last_seen, first_run, last_run, owner, tags, doc, changed_seq",
		nsvc, 200, func(i int) []any {
			sev := rng.IntN(5)
			seen := now.Add(-time.Duration(rng.IntN(90*24)) * time.Hour)
			return []any{store.ServiceFP(addr(i), 11434), addr(i), 11434, products[i%len(products)], "0." + strconv.Itoa(i%20) + ".1",
				[]string{"none", "required"}[i%2], 0, sevs[sev], sev + 1, i % 7, 5, states[i%len(states)], seen, seen.Add(-30 * 24 * time.Hour), seen,
				1, 2, "team-" + strconv.Itoa(i%40), "", `{"host":"` + addr(i) + `","port":11434,"models":[]}`, i}
		})
	statuses := []string{"open", "open", "open", "open", "open", "open", "open", "acknowledged", "accepted", "resolved", "resolved"}
	insert("inv_findings", "fp, service_id, host, port, product, finding_id, severity, severity_rank, title, detail, status, first_seen, last_seen, last_run, opened_at, owner, changed_seq",
		nfind, 200, func(i int) []any {
			svc := i%nsvc + 1
			sev := rng.IntN(5)
			return []any{fmt.Sprintf("f%023d", i), svc, addr(svc - 1), 11434, products[(svc-1)%len(products)], fmt.Sprintf("LLMF-%03d", 1+i%12),
				sevs[sev], sev + 1, "finding title", "detail of finding " + strconv.Itoa(i), statuses[i%len(statuses)], now, now, 2, now,
				"team-" + strconv.Itoa(svc%40), i}
		})
	kinds := []string{"service.new", "service.version", "model.added", "finding.opened", "finding.resolved", "service.state"}
	insert("inv_events", "at, kind, service_id, finding_id, run_id, host, port, actor, severity, summary, detail",
		nhist, 250, func(i int) []any {
			svc := i%nsvc + 1
			return []any{now.Add(-time.Duration(nhist-i) * time.Second), kinds[i%len(kinds)], svc, 0, 1 + i%50, addr(svc - 1), 11434, "",
				sevs[i%5], "an event of the service's history", ""}
		})
	check(st.Recount(ctx))
	if pg {
		_, err := db.ExecContext(ctx, "ANALYZE")
		check(err)
	} else {
		_, err := db.ExecContext(ctx, "ANALYZE")
		check(err)
	}
}

// ---- part 2 and 3: sharded scans ----

func build() string {
	dir, err := os.MkdirTemp("", "servebench-bin-")
	check(err)
	bin := filepath.Join(dir, "llmfence")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/llmfence")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	check(cmd.Run())
	return bin
}

type proc struct{ cmd *exec.Cmd }

// start runs llmfence in the background. Every llmfence the benchmark
// runs says its lines in English (--lang en), whatever the user's LANG.
func start(bin string, args ...string) *proc {
	cmd := exec.Command(bin, append([]string{"--lang", "en"}, args...)...)
	cmd.Stdout, cmd.Stderr = io.Discard, os.Stderr
	// Children die with the benchmark, even when it stops on an error:
	// they would hold the benchmark lock's inherited descriptor otherwise.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	check(cmd.Start())
	return &proc{cmd}
}

func (p *proc) stop() {
	p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		p.cmd.Process.Kill()
		<-done
	}
}

func freeAddr() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	check(err)
	defer ln.Close()
	return ln.Addr().String()
}

func runCLI(bin string, stdin string, args ...string) string {
	cmd := exec.Command(bin, append([]string{"--lang", "en"}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			log.Fatalf("llmfence %v: %v\n%s", args, err, ee.Stderr)
		}
		check(err)
	}
	return string(out)
}

func startLab(bin, prefix string, live int) *proc {
	p := start(bin, "lab", "--lab-prefix", prefix, "--lab-hosts", strconv.Itoa(live), "--lab-hostile", "0")
	time.Sleep(3 * time.Second) // the fleet binds its listeners
	return p
}

// singleScan times `llmfence scan` and returns wall time and services.
func singleScan(bin, db, prefix string) (time.Duration, int) {
	t0 := time.Now()
	runCLI(bin, "", "--db", db, "scan", "--rate", "0", "--progress", "never", "--format", "json", "-o", os.DevNull, prefix)
	el := time.Since(t0)
	st, err := store.Open(context.Background(), db)
	check(err)
	defer st.Close()
	r, err := st.GetRun(context.Background(), store.RefLatest)
	check(err)
	return el, r.Stats.Services
}

// cluster is serve plus workers on a PostgreSQL schema.
type cluster struct {
	base, token, dsn string
	procs            []*proc
	drop             func()
}

func startCluster(ctx context.Context, bin string, workers int) *cluster {
	dsn, drop := pgSchema(ctx)
	c := &cluster{dsn: dsn, drop: drop}
	runCLI(bin, "bench-password-123\n", "--db", dsn, "users", "create", "--role", "operator", "bench")
	c.token = strings.TrimSpace(runCLI(bin, "", "--db", dsn, "users", "token", "bench"))
	listen := freeAddr()
	c.base = "http://" + listen
	c.procs = append(c.procs, start(bin, "--db", dsn, "serve", "--listen", listen, "--workers", "0", "--poll", "100ms"))
	for i := 0; i < workers; i++ {
		c.procs = append(c.procs, start(bin, "--db", dsn, "worker", "--shards", "1", "--poll", "100ms"))
	}
	for i := 0; i < 100; i++ {
		if r, err := http.Get(c.base + "/healthz"); err == nil {
			r.Body.Close()
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(time.Second) // workers connect
	return c
}

func (c *cluster) stop() {
	for _, p := range c.procs {
		p.stop()
	}
	c.drop()
}

// scan starts a sharded scan through the API and waits for it.
func (c *cluster) scan(ctx context.Context, prefix string, shards int) (time.Duration, store.Run) {
	body, _ := json.Marshal(map[string]any{"targets": []string{prefix}, "rate": 0, "shards": shards})
	req, _ := http.NewRequest("POST", c.base+"/api/scans", strings.NewReader(string(body)))
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Content-Type", "application/json")
	t0 := time.Now()
	resp, err := http.DefaultClient.Do(req)
	check(err)
	var run store.Run
	json.NewDecoder(resp.Body).Decode(&run)
	resp.Body.Close()
	st, err := store.Open(ctx, c.dsn)
	check(err)
	defer st.Close()
	for {
		r, err := st.GetRun(ctx, run.ID)
		check(err)
		if r.Status != store.StatusRunning {
			return time.Since(t0), r
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func shardedVsSingle(ctx context.Context, bin, prefix string, live, rounds, shards int) {
	lab := startLab(bin, prefix, live)
	defer lab.stop()
	dir, _ := os.MkdirTemp("", "servebench-")
	defer os.RemoveAll(dir)
	c := startCluster(ctx, bin, 2)
	defer c.stop()
	fmt.Printf("\n## sharded scan of %s (%d live servers): llmfence scan vs serve + 2 workers on PostgreSQL, %d shards, %d rounds\n\n", prefix, live, shards, rounds)
	fmt.Println("| round | llmfence scan | services | serve + 2 workers | services | sharded / single |")
	fmt.Println("|---|---|---|---|---|---|")
	var sumS, sumW time.Duration
	for i := 1; i <= rounds; i++ {
		ts, ns := singleScan(bin, filepath.Join(dir, fmt.Sprintf("r%d.db", i)), prefix)
		tw, r := c.scan(ctx, prefix, shards)
		sumS += ts
		sumW += tw
		fmt.Printf("| %d | %.2f s | %d | %.2f s | %d | %.3f |\n", i, ts.Seconds(), ns, tw.Seconds(), r.Stats.Services, tw.Seconds()/ts.Seconds())
	}
	fmt.Printf("\nall rounds: sharded / single = %.3f (target ≤ 1.05)\n", sumW.Seconds()/sumS.Seconds())
	pairs := float64(65536 * 15)
	fmt.Printf("per worker: %.0f pairs/s (2 workers, wall time of all rounds)\n", pairs*float64(rounds)/sumW.Seconds()/2)
	sizes(ctx, c.dsn)
}

// sizes reports PostgreSQL bytes per stored service (tables and indexes).
func sizes(ctx context.Context, dsn string) {
	conn, err := pgx.Connect(ctx, dsn)
	check(err)
	defer conn.Close(ctx)
	var svcs, runs int64
	var bytesSvc, bytesFind, bytesInv, bytesJobs int64
	check(conn.QueryRow(ctx, "SELECT COUNT(*), COUNT(DISTINCT run_id) FROM services").Scan(&svcs, &runs))
	check(conn.QueryRow(ctx, "SELECT pg_total_relation_size('services'), pg_total_relation_size('findings'), pg_total_relation_size('inv_services') + pg_total_relation_size('inv_findings') + pg_total_relation_size('inv_events'), pg_total_relation_size('river_job')").
		Scan(&bytesSvc, &bytesFind, &bytesInv, &bytesJobs))
	fmt.Printf("PostgreSQL: %d service rows in %d runs: %.0f bytes per service row with its findings (tables and indexes), inventory %.0f bytes per service, River's job table %d kB\n",
		svcs, runs, float64(bytesSvc+bytesFind)/float64(svcs), float64(bytesInv)/float64(svcs/runs), bytesJobs/1024)
}

// writes measures the store's service writes per second (batches of 100,
// as scans save them) on SQLite and PostgreSQL.
func writes(ctx context.Context) {
	fmt.Printf("\n## store writes: services saved per second, batches of 100\n\n| store | services | seconds | services/s |\n|---|---|---|---|\n")
	for _, be := range []string{"sqlite", "postgres"} {
		var dsn string
		if be == "sqlite" {
			dir, _ := os.MkdirTemp("", "servebench-")
			defer os.RemoveAll(dir)
			dsn = filepath.Join(dir, "s.db")
		} else {
			var drop func()
			dsn, drop = pgSchema(ctx)
			defer drop()
		}
		st, err := store.OpenServer(ctx, dsn, store.Options{Logger: quiet()})
		check(err)
		run, err := st.CreateRun(ctx, store.Run{})
		check(err)
		const n = 20000
		t0 := time.Now()
		for b := 0; b < n; b += 100 {
			batch := make([]service.Service, 100)
			for i := range batch {
				k := b + i
				batch[i] = service.Service{Host: fmt.Sprintf("198.18.%d.%d", k>>8, k&255), Port: 11434, Product: "ollama", Version: "0.6.8",
					Auth: service.AuthNone, Risk: service.SeverityHigh, Models: []service.Model{{Name: "llama3:8b", Digest: "sha256:abc", Family: "llama"}},
					Findings: []service.Finding{{ID: "LLMF-001", Severity: service.SeverityHigh, Title: "open"}, {ID: "LLMF-011", Severity: service.SeverityInfo, Title: "version"}}}
			}
			check(st.SaveServices(ctx, run.ID, batch))
		}
		el := time.Since(t0)
		fmt.Printf("| %s | %d | %.2f | %.0f |\n", be, n, el.Seconds(), n/el.Seconds())
		st.Close()
	}
}

func overhead(ctx context.Context, bin string) {
	prefix := "127.201.0.0/20"
	lab := startLab(bin, prefix, 200)
	defer lab.stop()
	c := startCluster(ctx, bin, 2)
	defer c.stop()
	pairs := 4096 * 15
	fmt.Printf("\n## shard overhead: %s (%d pairs, 200 live servers) by 2 workers, shards from 1 to 256\n\n", prefix, pairs)
	fmt.Println("| shards | pairs per shard | wall time | services | time per shard beyond 1 shard |")
	fmt.Println("|---|---|---|---|---|")
	var base time.Duration
	for _, n := range []int{1, 4, 16, 64, 256} {
		el, r := c.scan(ctx, prefix, n)
		if n == 1 {
			base = el
		}
		per := "–"
		if n > 1 {
			per = fmt.Sprintf("%.1f ms", float64((el-base).Microseconds())/1000/float64(n-1))
		}
		fmt.Printf("| %d | %d | %.2f s | %d | %s |\n", n, pairs/n, el.Seconds(), r.Stats.Services, per)
	}
}

var _ = sql.ErrNoRows
