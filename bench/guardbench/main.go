// Command guardbench measures what `llmfence guard` costs in front of a
// fast streaming LLM server, next to nginx and Caddy doing the same job
// (reverse proxy + API-key check), all in one run on loopback.
//
// It starts a fake Ollama (this program re-run with -serve-upstream: POST
// /api/generate streams 20 NDJSON lines as fast as it can, then a
// done:true object with eval_count; GET /api/version), then in front of it
// nginx (1 worker, map on $http_authorization), Caddy (header matcher,
// admin off), the standard library's httputil.ReverseProxy with a bearer
// check (this program re-run with -serve-goproxy: the floor under any Go
// gateway on net/http) and the guard (authentication, per-key limits and
// the SQLite usage audit all on). Its own Go load generator runs closed loops at each
// concurrency against the upstream directly (the anchor) and each proxy,
// timing every request to the end of its stream, and prints throughput,
// added latency (p50/p99 minus the direct p50/p99) and the throughput ratio
// to nginx. Last, a fresh guard takes a paced ~1,000 req/s and its peak RSS
// (VmHWM) is reported.
//
//	go build -o tmp/llmfence ./cmd/llmfence
//	go run ./bench/guardbench -llmfence tmp/llmfence [-d 5s] [-conc 1,16,64]
//
// Needs nginx and caddy on PATH. This is a benchmark, not a test: figures
// depend on the machine, and load generator, proxies and upstream share
// its CPUs.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

func main() {
	var (
		bin      = flag.String("llmfence", "", "llmfence binary (default: go build ./cmd/llmfence into the work dir)")
		dur      = flag.Duration("d", 5*time.Second, "measured time per cell")
		warm     = flag.Duration("warm", time.Second, "unmeasured warm-up per cell")
		concArg  = flag.String("conc", "1,16,64", "comma-separated concurrency levels")
		rssRate  = flag.Int("rss-rate", 1000, "request rate for the guard's memory measurement")
		rssDur   = flag.Duration("rss-d", 10*time.Second, "duration of the memory measurement")
		nStreams = flag.Int("streams", 2000, "concurrent streams of the realistic load (0: skip it)")
		ramp     = flag.Duration("ramp", 2*time.Second, "time over which the realistic load's streams start")
		only     = flag.String("only", "", "run only this part: rps or streams")
		keep     = flag.Bool("keep", false, "keep the work directory (configs, logs, guard.db)")
		upstream = flag.String("serve-upstream", "", "internal: run as the fake upstream on this address")
		goproxy  = flag.String("serve-goproxy", "", "internal: run as the Go reference proxy on this address")
		gpUp     = flag.String("goproxy-upstream", "", "internal: upstream URL of -serve-goproxy")
		gpKey    = flag.String("goproxy-key", "", "internal: key -serve-goproxy admits")
	)
	flag.Parse()
	if *upstream != "" {
		upstreamChild(*upstream)
		return
	}
	if *goproxy != "" {
		goProxyChild(*goproxy, *gpUp, *gpKey)
		return
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	var concs []int
	for _, f := range strings.Split(*concArg, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			log.Error("bad -conc", "value", *concArg)
			os.Exit(2)
		}
		concs = append(concs, n)
	}
	ctx, cancel := signalContext()
	defer cancel()
	if err := run(ctx, log, *bin, concs, *warm, *dur, *rssRate, *rssDur, *keep, *nStreams, *ramp, *only); err != nil {
		log.Error("guardbench failed", "err", err)
		os.Exit(1)
	}
}

type row struct {
	target string
	conc   int
	res    result
}

func run(ctx context.Context, log *slog.Logger, bin string, concs []int, warm, dur time.Duration, rssRate int, rssDur time.Duration, keep bool,
	nStreams int, ramp time.Duration, only string) error {
	for _, tool := range []string{"nginx", "caddy"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s is needed on PATH: %w", tool, err)
		}
	}
	dir, err := os.MkdirTemp("", "guardbench-")
	if err != nil {
		return fmt.Errorf("work dir: %w", err)
	}
	if keep {
		log.Info("work dir kept", "dir", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	if bin == "" {
		bin = filepath.Join(dir, "llmfence")
		log.Info("building llmfence", "out", bin)
		b := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/llmfence")
		b.Stdout, b.Stderr = os.Stderr, os.Stderr
		if err := b.Run(); err != nil {
			return fmt.Errorf("go build ./cmd/llmfence (run from the repository root): %w", err)
		}
	} else if bin, err = filepath.Abs(bin); err != nil {
		return err
	}

	up, upBase, err := startUpstream(dir)
	if err != nil {
		return err
	}
	defer up.stop()
	upURL, _ := url.Parse(upBase)

	key, err := guardSetup(ctx, dir, bin)
	if err != nil {
		return err
	}
	auth := "Bearer " + key

	ports := make([]int, 4)
	for i := range ports {
		if ports[i], err = freePort(); err != nil {
			return err
		}
	}
	ngx, err := startNginx(dir, upURL.Host, key, ports[0])
	if err != nil {
		return err
	}
	defer ngx.stop()
	cdy, err := startCaddy(dir, upURL.Host, key, ports[1])
	if err != nil {
		return err
	}
	defer cdy.stop()
	gop, gopBase, err := startGoProxy(upBase, key)
	if err != nil {
		return err
	}
	defer gop.stop()
	grd, err := startGuard(dir, bin, "guard", upBase, ports[2])
	if err != nil {
		return err
	}
	defer grd.stop()

	base := func(p int) string { return "http://127.0.0.1:" + strconv.Itoa(p) }
	targets := []target{
		{name: "direct", base: upBase},
		{name: "nginx", base: base(ports[0]), auth: auth},
		{name: "caddy", base: base(ports[1]), auth: auth},
		{name: "go httputil", base: gopBase, auth: auth},
		{name: "llmfence guard", base: base(ports[2]), auth: auth},
	}
	procs := map[string]*proc{"nginx": ngx, "caddy": cdy, "go httputil": gop, "llmfence guard": grd}
	for _, t := range targets[1:] {
		if err := waitHTTP(ctx, procs[t.name], t.base); err != nil {
			return err
		}
		// Each proxy must refuse a missing or wrong key and pass the right one.
		for _, c := range []struct {
			auth string
			want int
		}{{"", 401}, {"Bearer wrong-" + key[:8], 401}, {auth, 200}} {
			got, err := probe(ctx, t, c.auth)
			if err != nil {
				return fmt.Errorf("%s: probe: %w", t.name, err)
			}
			if got != c.want {
				return fmt.Errorf("%s answered %d to Authorization %q, want %d: %s", t.name, got, redact(c.auth, key), c.want, procs[t.name].tail())
			}
		}
	}

	if only == "streams" {
		concs = nil
	}
	var rows []row
	for _, c := range concs {
		for _, t := range targets {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			r := closedLoop(ctx, t, c, warm, dur)
			log.Info("cell", "target", t.name, "conc", c, "req/s", fmt.Sprintf("%.0f", r.rps()),
				"p50", r.pct(0.5), "p99", r.pct(0.99), "errors", r.errs)
			if r.errs > 0 {
				log.Warn("errors", "target", t.name, "conc", c, "first", r.firstErr)
			}
			rows = append(rows, row{t.name, c, r})
		}
	}
	rssSat := map[string]int64{}
	for name, p := range procs {
		pids := append([]int{p.cmd.Process.Pid}, children(p.cmd.Process.Pid)...)
		for _, pid := range pids {
			if v, err := procStatus(pid, "VmHWM"); err == nil {
				rssSat[name] += v
			}
		}
	}
	grd.stop()
	ngx.stop()
	cdy.stop()
	if only != "rps" && nStreams > 0 {
		sr, err := realisticLoad(ctx, log, dir, bin, upBase, upURL.Host, key, gopBase, nStreams, ramp)
		if err != nil {
			return err
		}
		defer reportStreams(os.Stdout, sr, nStreams, ramp)
	}
	if only == "streams" {
		return nil
	}

	// A fresh guard for the memory figure, so the peak is the one of the
	// paced load and not of the saturation runs.
	port, err := freePort()
	if err != nil {
		return err
	}
	g2, err := startGuard(dir, bin, "guard-rss", upBase, port)
	if err != nil {
		return err
	}
	defer g2.stop()
	gt := target{name: "llmfence guard", base: base(port), auth: auth}
	if err := waitHTTP(ctx, g2, gt.base); err != nil {
		return err
	}
	idle, _ := procStatus(g2.cmd.Process.Pid, "VmRSS")
	rr := paced(ctx, gt, rssRate, 64, rssDur)
	hwm, err := procStatus(g2.cmd.Process.Pid, "VmHWM")
	if err != nil {
		return fmt.Errorf("guard memory: %w", err)
	}
	log.Info("paced", "req/s", fmt.Sprintf("%.0f", rr.rps()), "errors", rr.errs, "VmHWM_KiB", hwm)
	if rr.errs > 0 {
		log.Warn("paced errors", "first", rr.firstErr)
	}

	report(os.Stdout, rows, concs, dur, rssSat, rssRate, rssDur, rr, idle, hwm)
	return nil
}

func redact(s, key string) string { return strings.ReplaceAll(s, key, "<key>") }

func report(w *os.File, rows []row, concs []int, dur time.Duration, rssSat map[string]int64, rate int, rssDur time.Duration, rr result, idle, hwm int64) {
	get := func(name string, c int) result {
		for _, r := range rows {
			if r.target == name && r.conc == c {
				return r.res
			}
		}
		return result{}
	}
	ms := func(d time.Duration) string { return fmt.Sprintf("%.3f", float64(d)/1e6) }
	add := func(d time.Duration) string { return fmt.Sprintf("%+.3f", float64(d)/1e6) }
	fmt.Fprintf(w, "\n## guardbench — %s/%s, %d CPUs, %s per cell, upstream streams %d NDJSON lines + done\n\n",
		runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), dur, upstreamLines)
	fmt.Fprintln(w, "| target | conc | req/s | vs go httputil | vs nginx | p50 ms | p99 ms | added p50 ms | added p99 ms | errors |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, c := range concs {
		d, n, g := get("direct", c), get("nginx", c), get("go httputil", c)
		for _, name := range []string{"direct", "nginx", "caddy", "go httputil", "llmfence guard"} {
			r := get(name, c)
			vsN, vsG, a50, a99 := "—", "—", "—", "—"
			if n.rps() > 0 && name != "direct" {
				vsN = fmt.Sprintf("%.2f", r.rps()/n.rps())
			}
			if g.rps() > 0 && name != "direct" {
				vsG = fmt.Sprintf("%.2f", r.rps()/g.rps())
			}
			if name != "direct" {
				a50, a99 = add(r.pct(0.5)-d.pct(0.5)), add(r.pct(0.99)-d.pct(0.99))
			}
			fmt.Fprintf(w, "| %s | %d | %.0f | %s | %s | %s | %s | %s | %s | %d |\n",
				name, c, r.rps(), vsG, vsN, ms(r.pct(0.5)), ms(r.pct(0.99)), a50, a99, r.errs)
		}
	}
	fmt.Fprintf(w, "\nPeak RSS (VmHWM) after the saturation runs: guard %.1f MiB, nginx (master+worker) %.1f MiB, caddy %.1f MiB, go httputil %.1f MiB.\n",
		float64(rssSat["llmfence guard"])/1024, float64(rssSat["nginx"])/1024, float64(rssSat["caddy"])/1024, float64(rssSat["go httputil"])/1024)
	fmt.Fprintf(w, "Guard at a paced %d req/s for %s (fresh process): achieved %.0f req/s, p50 %s ms, p99 %s ms, errors %d; RSS idle %.1f MiB, peak (VmHWM) %.1f MiB.\n",
		rate, rssDur, rr.rps(), ms(rr.pct(0.5)), ms(rr.pct(0.99)), rr.errs, float64(idle)/1024, float64(hwm)/1024)
	fmt.Fprintln(w, "\nGuard: API-key auth, per-key limits (rpm/tpm/concurrent/daily/monthly, prompt reserved), the meter, the audit log (local spool, fsync interval, copied into SQLite in batches) and the abuse signals at their defaults on; capture off (its default); nginx, Caddy and go httputil (the standard library's ReverseProxy, the floor under any net/http gateway): Bearer check only, no access log.")
	fmt.Fprintln(w, "Throughput and latencies count complete streams only; errors are truncated streams or failed requests (Caddy 2.6 and the bare httputil.ReverseProxy both cut some streams short with \"use of closed network connection\" on the upstream read, cf. caddyserver/caddy#5431).")
}

// streamRow is one target of the realistic load.
type streamRow struct {
	name string
	res  streamResult
}

// realisticLoad runs the realistic load against the upstream directly,
// fresh nginx and guard processes (so CPU time and peak RSS are this
// load's) and the bare ReverseProxy.
func realisticLoad(ctx context.Context, log *slog.Logger, dir, bin, upBase, upHost, key, gopBase string, n int, ramp time.Duration) ([]streamRow, error) {
	auth := "Bearer " + key
	base := func(p int) string { return "http://127.0.0.1:" + strconv.Itoa(p) }
	var rows []streamRow
	runOne := func(name string, t target, p *proc) error {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var before time.Duration
		if p != nil {
			before = cpuTime(p.cmd.Process.Pid)
		}
		r := streamLoad(ctx, t, n, ramp)
		if p != nil {
			r.cpu = cpuTime(p.cmd.Process.Pid) - before
			for _, pid := range append([]int{p.cmd.Process.Pid}, children(p.cmd.Process.Pid)...) {
				if v, err := procStatus(pid, "VmHWM"); err == nil {
					r.hwm += v
				}
			}
		}
		log.Info("streams", "target", name, "streams", n, "failed", r.failed, "ttft_p99", pctOf(r.ttft, 0.99),
			"gap_p99", pctOf(r.gaps, 0.99), "cpu", r.cpu, "tokens", r.tokens, "VmHWM_KiB", r.hwm)
		if r.failed > 0 {
			log.Warn("stream errors", "target", name, "first", r.firstErr)
		}
		rows = append(rows, streamRow{name, r})
		return nil
	}
	if err := runOne("direct", target{name: "direct", base: upBase}, nil); err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	ngx, err := startNginx(dir, upHost, key, port)
	if err != nil {
		return nil, err
	}
	nt := target{name: "nginx", base: base(port), auth: auth}
	if err := waitHTTP(ctx, ngx, nt.base); err != nil {
		ngx.stop()
		return nil, err
	}
	err = runOne("nginx", nt, ngx)
	ngx.stop()
	if err != nil {
		return nil, err
	}
	if err := runOne("go httputil", target{name: "go httputil", base: gopBase, auth: auth}, nil); err != nil {
		return nil, err
	}
	if port, err = freePort(); err != nil {
		return nil, err
	}
	mport, err := freePort()
	if err != nil {
		return nil, err
	}
	g, err := startGuardMetrics(dir, bin, "guard-streams", upBase, port, "127.0.0.1:"+strconv.Itoa(mport))
	if err != nil {
		return nil, err
	}
	defer g.stop()
	gt := target{name: "llmfence guard", base: base(port), auth: auth}
	if err := waitHTTP(ctx, g, gt.base); err != nil {
		return nil, err
	}
	// Where the guard's memory is with every stream open: the Go runtime's
	// own figures, read from /metrics after the ramp.
	memc := make(chan string, 1)
	go func() {
		select {
		case <-ctx.Done():
			memc <- ""
			return
		case <-time.After(ramp + time.Second):
		}
		memc <- readMemMetrics(base(mport) + "/metrics")
	}()
	if err := runOne("llmfence guard", gt, g); err != nil {
		return nil, err
	}
	rows[len(rows)-1].res.mem = <-memc
	log.Info("guard memory with the streams open", "breakdown", rows[len(rows)-1].res.mem)
	return rows, nil
}

// readMemMetrics reads a few Go runtime figures from a Prometheus text
// page.
func readMemMetrics(url string) string {
	resp, err := http.Get(url)
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	want := map[string]string{"go_goroutines": "goroutines", "go_memstats_heap_inuse_bytes": "heap in use",
		"go_memstats_stack_inuse_bytes": "stacks", "go_memstats_sys_bytes": "from the OS"}
	var parts []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) != 2 {
			continue
		}
		if label, ok := want[f[0]]; ok {
			v, _ := strconv.ParseFloat(f[1], 64)
			if f[0] == "go_goroutines" {
				parts = append(parts, fmt.Sprintf("%s %.0f", label, v))
			} else {
				parts = append(parts, fmt.Sprintf("%s %.1f MiB", label, v/(1<<20)))
			}
		}
	}
	slices.Sort(parts)
	return strings.Join(parts, ", ")
}

func reportStreams(w *os.File, rows []streamRow, n int, ramp time.Duration) {
	ms := func(d time.Duration) string { return fmt.Sprintf("%.2f", float64(d)/1e6) }
	add := func(d time.Duration) string { return fmt.Sprintf("%+.2f", float64(d)/1e6) }
	var direct streamResult
	for _, r := range rows {
		if r.name == "direct" {
			direct = r.res
		}
	}
	fmt.Fprintf(w, "\n## realistic load — %d concurrent streams (started over %s), each %d tokens, one every %s\n\n",
		n, ramp, slowTokens, slowEvery)
	fmt.Fprintln(w, "| target | streams ok | failed | TTFT p50 ms | TTFT p99 ms | added TTFT p99 ms | gap p50 ms | gap p99 ms | added gap p99 ms | CPU ms per 1,000 tokens | peak RSS MiB |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, r := range rows {
		x := r.res
		addT, addG, cpu, rss := "—", "—", "—", "—"
		if r.name != "direct" {
			addT = add(pctOf(x.ttft, 0.99) - pctOf(direct.ttft, 0.99))
			addG = add(pctOf(x.gaps, 0.99) - pctOf(direct.gaps, 0.99))
		}
		if x.cpu > 0 && x.tokens > 0 {
			cpu = fmt.Sprintf("%.1f", float64(x.cpu)/1e6/float64(x.tokens)*1000)
		}
		if x.hwm > 0 {
			rss = fmt.Sprintf("%.1f", float64(x.hwm)/1024)
		}
		fmt.Fprintf(w, "| %s | %d | %d | %s | %s | %s | %s | %s | %s | %s | %s |\n", r.name, len(x.ttft), x.failed,
			ms(pctOf(x.ttft, 0.5)), ms(pctOf(x.ttft, 0.99)), addT, ms(pctOf(x.gaps, 0.5)), ms(pctOf(x.gaps, 0.99)), addG, cpu, rss)
	}
	for _, r := range rows {
		if r.res.mem != "" {
			fmt.Fprintf(w, "\nGuard memory with every stream open (Go runtime): %s.\n", r.res.mem)
		}
	}
	fmt.Fprintln(w, "\nTTFT: request sent to first token line read; gap: between consecutive token lines; added: the proxy's p99 minus the direct p99. CPU and peak RSS are those of fresh nginx (master + worker) and guard processes over this load alone; the bare ReverseProxy's are not measured.")
}
