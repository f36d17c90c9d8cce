// Command scanbench measures `llmfence scan` against nmap on the same
// emulated fleet, in the same run, all on loopback.
//
//	go run ./bench/scanbench                 # full run (nmap -sV sample takes minutes)
//	go run ./bench/scanbench -sv-sample 0    # skip nmap -sV
//
// It builds llmfence, starts `llmfence lab` (a /16 inside 127.0.0.0/8 with
// -live emulated servers) in its own process, then times:
//
//  1. nmap -sT -Pn over the /16 on the same ports (discovery only);
//  2. llmfence scan over the /16 (discovery and full fingerprint in one
//     pass), checked against the lab's ground truth;
//  3. nmap -sV on a sample of live services (identification);
//  4. llmfence scan over a whole /8 on one port for -wide-seconds, to show
//     memory stays flat in the size of the target set;
//  5. a hostile fleet in a second lab process (-hostile-hosts servers on
//     -hostile-prefix, -hostile-share of them tarpits, bombs, garbage...):
//     nmap -sT and llmfence scan (default timeouts and budget, --rate 0) on
//     -hostile-ports, every well-behaved service checked, and stderr
//     checked for the standard library's "Unsolicited response" lines;
//     with -paced, llmfence once more at its default --rate, to show what
//     the rate cap alone costs.
//
// Ratios are against nmap measured in the same run. Nothing here is a test;
// figures go to docs/benchmarks.md.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/llmfence/llmfence/internal/targets"
)

func main() {
	var (
		prefix      = flag.String("prefix", "127.200.0.0/16", "lab prefix (inside 127.0.0.0/8)")
		live        = flag.Int("live", 2000, "live emulated servers")
		ports       = flag.String("ports", "", "ports for both scanners (default: llmfence's default list)")
		concurrency = flag.Int("concurrency", 1024, "llmfence --concurrency")
		svSample    = flag.Int("sv-sample", 3, "live services given to nmap -sV (0 skips it)")
		wideSecs    = flag.Int("wide-seconds", 20, "seconds of the /8 memory run (0 skips it)")
		keep        = flag.Bool("keep", false, "keep the work directory")

		hostilePrefix = flag.String("hostile-prefix", "127.210.0.0/16", "prefix of the hostile fleet (inside 127.0.0.0/8)")
		hostileHosts  = flag.Int("hostile-hosts", 300, "servers in the hostile fleet (0 skips the scenario)")
		hostileShare  = flag.Float64("hostile-share", 0.5, "share of hostile servers in it")
		hostilePorts  = flag.String("hostile-ports", "11434,8080", "ports scanned on the hostile fleet")
		paced         = flag.Bool("paced", false, "also scan the hostile fleet at the default --rate (131,072 pairs at 2,000/s: about 66 s)")
	)
	flag.Parse()
	log.SetFlags(0)
	ctx := context.Background()

	work, err := os.MkdirTemp("", "scanbench-")
	check(err)
	if !*keep {
		defer os.RemoveAll(work)
	} else {
		log.Printf("work directory: %s", work)
	}
	bin := filepath.Join(work, "llmfence")
	run("go", "build", "-o", bin, "./cmd/llmfence")
	if *ports == "" {
		defaults, err := targets.DefaultPortList()
		if err != nil {
			log.Fatal(err)
		}
		var ps []string
		for _, p := range defaults {
			ps = append(ps, fmt.Sprint(p))
		}
		*ports = strings.Join(ps, ",")
	}
	nports := len(strings.Split(*ports, ","))

	// The fleet, in its own process so its memory is not the scanner's.
	// Every llmfence the benchmark starts runs with --lang en: the
	// benchmark reads "pairs tried" from scan's standard error, which
	// follows the user's LANG otherwise.
	truthPath := filepath.Join(work, "truth.json")
	labCmd := exec.CommandContext(ctx, bin, "--lang", "en", "lab", "--lab-prefix", *prefix, "--lab-hosts", fmt.Sprint(*live),
		"--lab-hostile", "0.01", "--ground-truth", truthPath)
	labCmd.Stderr = os.Stderr
	check(labCmd.Start())
	defer func() { labCmd.Process.Signal(os.Interrupt); labCmd.Wait() }()
	truth := waitForLab(truthPath)
	log.Printf("lab: %d servers on %s; %d ports per address", len(truth), *prefix, nports)

	pfx := netip.MustParsePrefix(*prefix)
	pairs := (uint64(1) << (32 - pfx.Bits())) * uint64(nports)

	// 1. nmap -sT discovery.
	nmapOut := filepath.Join(work, "nmap.gnmap")
	t0 := time.Now()
	nm := exec.Command("nmap", "-sT", "-Pn", "-n", "-T5", "--max-retries", "1", "-p", *ports, "-oG", nmapOut, *prefix)
	nm.Stdout = nil
	nmRes, nmErr := timed(nm)
	nmapTime := time.Since(t0)
	if nmErr != nil {
		log.Fatalf("nmap: %v", nmErr)
	}
	nmapOpen := countGrepable(nmapOut)

	// 2. llmfence scan, discovery + fingerprint in one pass.
	db := filepath.Join(work, "bench.db")
	jsonOut := filepath.Join(work, "scan.jsonl")
	t0 = time.Now()
	sc := exec.Command(bin, "--lang", "en", "scan", "--db", db, "--format", "json", "-o", jsonOut, "--progress", "never",
		"--rate", "0", "--concurrency", fmt.Sprint(*concurrency), "--timeout", "2s", "--target-budget", "10s",
		"--keep-http", "-p", *ports, "--seed", "7", *prefix)
	var scStderr bytes.Buffer
	sc.Stderr = io.MultiWriter(os.Stderr, &scStderr)
	scRes, scErr := timed(sc)
	scanTime := time.Since(t0)
	if scErr != nil {
		log.Fatalf("llmfence scan: %v", scErr)
	}
	// Discovery time as the scanner measured it: until the last connect.
	sweep := scanTime
	if m := regexp.MustCompile(`discovery ([0-9.]+[a-zµ]+)`).FindStringSubmatch(scStderr.String()); m != nil {
		if d, err := time.ParseDuration(m[1]); err == nil {
			sweep = d
		}
	}
	got := readServices(jsonOut)
	acc := compare(truth, got)

	// 3. nmap -sV on a sample.
	var svTime time.Duration
	var svNamed, svTried int
	if *svSample > 0 {
		sample := sampleLive(truth, *svSample)
		svTried = len(sample)
		args := []string{"-sV", "-Pn", "-n", "-oG", filepath.Join(work, "sv.gnmap")}
		var hosts, ps []string
		for _, p := range sample {
			hosts = append(hosts, p.Addr)
			ps = append(ps, fmt.Sprint(p.Port))
		}
		args = append(args, "-p", strings.Join(uniq(ps), ","))
		args = append(args, hosts...)
		t0 = time.Now()
		if _, err := timed(exec.Command("nmap", args...)); err != nil {
			log.Fatalf("nmap -sV: %v", err)
		}
		svTime = time.Since(t0)
		svNamed = countNamed(filepath.Join(work, "sv.gnmap"))
	}

	// 4. Memory flatness: a /8 on one port for a fixed time.
	var wideRSS int64
	var wideDone string
	if *wideSecs > 0 {
		wctx, cancel := context.WithTimeout(ctx, time.Duration(*wideSecs)*time.Second)
		wc := exec.CommandContext(wctx, bin, "--lang", "en", "scan", "--db", filepath.Join(work, "wide.db"), "--format", "json", "-o", os.DevNull,
			"--progress", "never", "--rate", "0", "--concurrency", fmt.Sprint(*concurrency), "--timeout", "2s",
			"--target-budget", "10s", "-p", "11434", "127.0.0.0/8")
		wc.Cancel = func() error { return wc.Process.Signal(os.Interrupt) }
		var stderr bytes.Buffer
		wc.Stderr = &stderr
		res, _ := timed(wc)
		cancel()
		wideRSS = res.maxRSSKB
		for _, l := range strings.Split(stderr.String(), "\n") {
			if strings.Contains(l, "pairs tried") {
				wideDone = strings.TrimSpace(l)
			}
		}
	}

	// 5. The hostile fleet.
	var hr *hostileResult
	if *hostileHosts > 0 {
		hr = hostileScenario(ctx, bin, work, *hostilePrefix, *hostileHosts, *hostileShare, *hostilePorts, *paced)
	}

	// Report.
	fmt.Printf("\n## scanbench %s\n\n", time.Now().UTC().Format(time.RFC3339))
	fmt.Printf("fleet: %s (%d addresses), %d live emulated servers, %d ports per address = %d address:port pairs\n\n",
		*prefix, 1<<(32-pfx.Bits()), len(truth), nports, pairs)
	fmt.Printf("| tool | job | wall time | pairs/s | open ports found | services fully fingerprinted | peak RSS |\n|---|---|---|---|---|---|---|\n")
	fmt.Printf("| nmap -sT -Pn -T5 | discovery | %.2f s | %.0f | %d | 0 | %.1f MB |\n",
		nmapTime.Seconds(), float64(pairs)/nmapTime.Seconds(), nmapOpen, float64(nmRes.maxRSSKB)/1024)
	fmt.Printf("| llmfence scan | discovery (sweep, as the scan measured it) | %.2f s | %.0f | %d | - | - |\n",
		sweep.Seconds(), float64(pairs)/sweep.Seconds(), acc.found)
	fmt.Printf("| llmfence scan | discovery + fingerprint, whole process | %.2f s | %.0f | %d | %d (%.0f/s) | %.1f MB |\n",
		scanTime.Seconds(), float64(pairs)/scanTime.Seconds(), acc.found, acc.exact, float64(acc.exact)/scanTime.Seconds(),
		float64(scRes.maxRSSKB)/1024)
	if svTried > 0 {
		fmt.Printf("| nmap -sV | identification of %d sampled services | %.2f s | - | - | %d named | - |\n", svTried, svTime.Seconds(), svNamed)
	}
	fmt.Printf("\nratio, llmfence discovery pairs/s ÷ nmap -sT pairs/s: %.2f×; whole scan including every fingerprint ÷ nmap -sT: %.2f×\n",
		nmapTime.Seconds()/sweep.Seconds(), nmapTime.Seconds()/scanTime.Seconds())
	if svTried > 0 {
		fmt.Printf("identification per service: nmap -sV %.1f s/service; llmfence %.4f s/service (whole scan ÷ services)\n",
			svTime.Seconds()/float64(svTried), scanTime.Seconds()/float64(max(acc.exact, 1)))
	}
	fmt.Printf("\nground truth check: %d well-behaved live servers; found %d; exact on %d (product, version where the server shows it, models, system prompts; %d of them login walls reported as auth required); %d hostile servers, scan finished regardless\n",
		acc.wellBehaved, acc.found, acc.exact, acc.walls, acc.hostile)
	for _, m := range acc.mismatches[:min(len(acc.mismatches), 10)] {
		fmt.Printf("  mismatch: %s\n", m)
	}
	if wideRSS > 0 {
		fmt.Printf("\nmemory: /16 full scan peak RSS %.1f MB; /8 on one port for %ds peak RSS %.1f MB (%s)\n",
			float64(scRes.maxRSSKB)/1024, *wideSecs, float64(wideRSS)/1024, wideDone)
	}
	if hr != nil {
		hr.print()
	}
}

// hostileResult is scenario 5.
type hostileResult struct {
	prefix, ports        string
	hosts, nports        int
	share                float64
	pairs                uint64
	nmapTime, scanTime   time.Duration
	nmapOpen             int
	acc                  accuracy
	unsolicited          int
	scanRSSKB            int64
	pacedTime            time.Duration
	pacedAcc             accuracy
	pacedRan             bool
	scanCPU, pacedCPU    time.Duration
	summary, pacedSumary string
}

func hostileScenario(ctx context.Context, bin, work, prefix string, hosts int, share float64, ports string, paced bool) *hostileResult {
	truthPath := filepath.Join(work, "hostile-truth.json")
	labCmd := exec.CommandContext(ctx, bin, "--lang", "en", "lab", "--lab-prefix", prefix, "--lab-hosts", fmt.Sprint(hosts),
		"--lab-hostile", fmt.Sprint(share), "--ground-truth", truthPath)
	labCmd.Stderr = os.Stderr
	check(labCmd.Start())
	defer func() { labCmd.Process.Signal(os.Interrupt); labCmd.Wait() }()
	truth := onPorts(waitForLab(truthPath), ports)
	r := &hostileResult{prefix: prefix, ports: ports, hosts: hosts, share: share, nports: len(strings.Split(ports, ","))}
	pfx := netip.MustParsePrefix(prefix)
	r.pairs = (uint64(1) << (32 - pfx.Bits())) * uint64(r.nports)
	log.Printf("hostile fleet: %d servers on %s, %.0f%% hostile; %d of them on ports %s", hosts, prefix, share*100, len(truth), ports)

	nmapOut := filepath.Join(work, "hostile-nmap.gnmap")
	t0 := time.Now()
	if _, err := timed(exec.Command("nmap", "-sT", "-Pn", "-n", "-T5", "--max-retries", "1", "-p", ports, "-oG", nmapOut, prefix)); err != nil {
		log.Fatalf("nmap on the hostile fleet: %v", err)
	}
	r.nmapTime = time.Since(t0)
	r.nmapOpen = countGrepable(nmapOut)

	scanOnce := func(name string, extra ...string) (time.Duration, accuracy, int, int64, time.Duration, string) {
		out := filepath.Join(work, name+".jsonl")
		args := append([]string{"--lang", "en", "scan", "--db", filepath.Join(work, name+".db"), "--format", "json", "-o", out,
			"--progress", "never", "--keep-http", "-p", ports, "--seed", "7"}, extra...)
		args = append(args, prefix)
		sc := exec.Command(bin, args...)
		var stderr bytes.Buffer
		sc.Stderr = &stderr
		t0 := time.Now()
		res, err := timed(sc)
		d := time.Since(t0)
		if err != nil {
			log.Fatalf("llmfence scan (%s): %v\n%s", name, err, stderr.String())
		}
		var cpu time.Duration
		if ru, ok := sc.ProcessState.SysUsage().(*syscall.Rusage); ok {
			cpu = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		}
		summary := ""
		for _, l := range strings.Split(stderr.String(), "\n") {
			if strings.Contains(l, "pairs tried") {
				summary = strings.TrimSpace(l)
			}
		}
		return d, compare(truth, readServices(out)), strings.Count(stderr.String(), "Unsolicited"), res.maxRSSKB, cpu, summary
	}
	r.scanTime, r.acc, r.unsolicited, r.scanRSSKB, r.scanCPU, r.summary = scanOnce("hostile", "--rate", "0")
	if paced {
		var u int
		r.pacedTime, r.pacedAcc, u, _, r.pacedCPU, r.pacedSumary = scanOnce("hostile-paced")
		r.unsolicited += u
		r.pacedRan = true
	}
	return r
}

func (r *hostileResult) print() {
	fmt.Printf("\n### hostile fleet: %d servers on %s, %.0f%% hostile; %d ports (%s) = %d address:port pairs\n\n",
		r.hosts, r.prefix, r.share*100, r.nports, r.ports, r.pairs)
	fmt.Printf("| tool | wall time | CPU | open ports found | well-behaved services fingerprinted exactly | peak RSS |\n|---|---|---|---|---|---|\n")
	fmt.Printf("| nmap -sT -Pn -T5 | %.2f s | - | %d | 0 | - |\n", r.nmapTime.Seconds(), r.nmapOpen)
	fmt.Printf("| llmfence scan --rate 0 (default timeouts and budget) | %.2f s | %.2f s | %d | %d of %d | %.1f MB |\n",
		r.scanTime.Seconds(), r.scanCPU.Seconds(), r.acc.found, r.acc.exact, r.acc.wellBehaved, float64(r.scanRSSKB)/1024)
	if r.pacedRan {
		fmt.Printf("| llmfence scan, default --rate 2000 | %.2f s | %.2f s | %d | %d of %d | - |\n",
			r.pacedTime.Seconds(), r.pacedCPU.Seconds(), r.pacedAcc.found, r.pacedAcc.exact, r.pacedAcc.wellBehaved)
	}
	fmt.Printf("\nllmfence ÷ nmap -sT wall time: %.2f× (target: at most 3×); %d hostile servers on these ports; \"Unsolicited response\" lines on stderr: %d\n",
		r.scanTime.Seconds()/r.nmapTime.Seconds(), r.acc.hostile, r.unsolicited)
	fmt.Printf("scan summary: %s\n", r.summary)
	if r.pacedRan {
		fmt.Printf("paced scan summary: %s\n", r.pacedSumary)
	}
	for _, m := range r.acc.mismatches[:min(len(r.acc.mismatches), 10)] {
		fmt.Printf("  mismatch: %s\n", m)
	}
}

// onPorts keeps the personas listening on one of ports (a comma list).
func onPorts(ps []persona, ports string) []persona {
	want := map[int]bool{}
	for _, p := range strings.Split(ports, ",") {
		var n int
		fmt.Sscan(strings.TrimSpace(p), &n)
		want[n] = true
	}
	var out []persona
	for _, p := range ps {
		if want[p.Port] {
			out = append(out, p)
		}
	}
	return out
}

type result struct{ maxRSSKB int64 }

func timed(c *exec.Cmd) (result, error) {
	err := c.Run()
	var r result
	if c.ProcessState != nil {
		if ru, ok := c.ProcessState.SysUsage().(*syscall.Rusage); ok {
			r.maxRSSKB = ru.Maxrss
		}
	}
	return r, err
}

type persona struct {
	Addr         string `json:"addr"`
	Port         int    `json:"port"`
	Stack        string `json:"stack"`
	Version      string `json:"version"`
	AuthRequired bool   `json:"auth_required"`
	AuthMode     string `json:"auth_mode"`
	Hostile      string `json:"hostile"`
	Models       []struct {
		Name         string `json:"name"`
		SystemPrompt string `json:"system_prompt"`
	} `json:"models"`
}

type svc struct {
	Host    string `json:"host"`
	Port    int    `json:"port"`
	Product string `json:"product"`
	Version string `json:"version"`
	Auth    string `json:"auth"`
	Gateway string `json:"gateway"`
	Models  []struct {
		Name         string `json:"name"`
		SystemPrompt string `json:"system_prompt"`
	} `json:"models"`
}

// versionHidden lists stacks whose version no read-only request reveals.
var versionHidden = map[string]bool{"lmstudio": true, "jan": true, "gpt4all": true, "text-generation-webui": true, "openai-compatible": true}

type accuracy struct {
	wellBehaved, hostile, found, exact, walls int
	mismatches                                []string
}

// compare checks scan results against the lab's ground truth. A service is
// exact when product and version match and, where the server shows them to
// strangers, every model and system prompt does too.
func compare(truth []persona, got []svc) accuracy {
	by := map[string]svc{}
	for _, s := range got {
		by[net.JoinHostPort(s.Host, fmt.Sprint(s.Port))] = s
	}
	var a accuracy
	for _, p := range truth {
		if p.Hostile != "" {
			a.hostile++
			continue
		}
		a.wellBehaved++
		s, ok := by[net.JoinHostPort(p.Addr, fmt.Sprint(p.Port))]
		if !ok {
			a.mismatches = append(a.mismatches, fmt.Sprintf("%s:%d %s not found", p.Addr, p.Port, p.Stack))
			continue
		}
		a.found++
		var why []string
		switch {
		case p.AuthRequired && s.Product == "http":
			// A login wall that shows nothing of what is behind it: right
			// when it is reported as demanding credentials, and an nginx
			// basic-auth front is named as the gateway.
			if s.Auth != "required" {
				why = append(why, "login wall not reported as auth required")
			}
			if p.AuthMode == "proxy" && s.Gateway != "nginx" {
				why = append(why, fmt.Sprintf("nginx front reported as gateway %q", s.Gateway))
			}
			if len(why) == 0 {
				a.exact++
				a.walls++
			} else {
				a.mismatches = append(a.mismatches, fmt.Sprintf("%s:%d %s: %s", p.Addr, p.Port, p.Stack, strings.Join(why, "; ")))
			}
			continue
		case s.Product != p.Stack:
			why = append(why, fmt.Sprintf("product %q, want %q", s.Product, p.Stack))
		}
		if p.Version != "" && s.Version != p.Version && !p.AuthRequired && !versionHidden[p.Stack] {
			why = append(why, fmt.Sprintf("version %q, want %q", s.Version, p.Version))
		}
		if !p.AuthRequired {
			want := map[string]string{}
			for _, m := range p.Models {
				want[m.Name] = m.SystemPrompt
			}
			have := map[string]string{}
			for _, m := range s.Models {
				have[m.Name] = m.SystemPrompt
			}
			for n, sp := range want {
				if h, ok := have[n]; !ok {
					why = append(why, "model "+n+" missing")
				} else if p.Stack == "ollama" && h != sp {
					why = append(why, "system prompt of "+n+" differs")
				}
			}
		}
		if len(why) == 0 {
			a.exact++
		} else {
			a.mismatches = append(a.mismatches, fmt.Sprintf("%s:%d %s: %s", p.Addr, p.Port, p.Stack, strings.Join(why, "; ")))
		}
	}
	return a
}

func readServices(path string) []svc {
	f, err := os.Open(path)
	check(err)
	defer f.Close()
	var out []svc
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		var s svc
		check(json.Unmarshal(sc.Bytes(), &s))
		out = append(out, s)
	}
	check(sc.Err())
	return out
}

func waitForLab(truthPath string) []persona {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		b, err := os.ReadFile(truthPath)
		if err == nil && len(b) > 0 {
			var gt struct {
				Personas []persona `json:"personas"`
			}
			if json.Unmarshal(b, &gt) == nil && len(gt.Personas) > 0 {
				ps := gt.Personas
				// Ready once the last persona accepts connections.
				last := ps[len(ps)-1]
				for time.Now().Before(deadline) {
					c, err := net.DialTimeout("tcp", net.JoinHostPort(last.Addr, fmt.Sprint(last.Port)), time.Second)
					if err == nil {
						c.Close()
						return ps
					}
					time.Sleep(100 * time.Millisecond)
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	log.Fatal("lab did not come up within 60s")
	return nil
}

func sampleLive(truth []persona, n int) []persona {
	var out []persona
	seen := map[string]bool{}
	for _, p := range truth {
		if p.Hostile != "" || p.AuthRequired || seen[p.Stack] {
			continue
		}
		seen[p.Stack] = true
		out = append(out, p)
		if len(out) == n {
			break
		}
	}
	return out
}

func countGrepable(path string) int {
	b, err := os.ReadFile(path)
	check(err)
	return strings.Count(string(b), "/open/")
}

// countNamed counts open ports nmap -sV gave a service name other than the
// port's registered guess or "unknown".
func countNamed(path string) int {
	b, err := os.ReadFile(path)
	check(err)
	n := 0
	for _, l := range strings.Split(string(b), "\n") {
		i := strings.Index(l, "Ports: ")
		if i < 0 {
			continue
		}
		for _, p := range strings.Split(l[i+7:], ", ") {
			f := strings.Split(p, "/")
			if len(f) >= 7 && f[1] == "open" && f[6] != "" {
				n++
			}
		}
	}
	return n
}

func uniq(xs []string) []string {
	sort.Strings(xs)
	out := xs[:0]
	for i, x := range xs {
		if i == 0 || x != xs[i-1] {
			out = append(out, x)
		}
	}
	return out
}

func run(name string, args ...string) {
	c := exec.Command(name, args...)
	c.Stdout, c.Stderr = os.Stderr, os.Stderr
	if err := c.Run(); err != nil {
		log.Fatalf("%s %s: %v", name, strings.Join(args, " "), err)
	}
}

func check(err error) {
	if err != nil {
		log.Fatal(err)
	}
}
