package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/llmfence/llmfence/internal/fingerprint"
	"github.com/llmfence/llmfence/internal/report"
	"github.com/llmfence/llmfence/internal/scan"
	"github.com/llmfence/llmfence/internal/service"
	"github.com/llmfence/llmfence/internal/store"
	"github.com/llmfence/llmfence/internal/targets"
	"github.com/llmfence/llmfence/internal/version"
)

// scanFlags are the knobs of one scan, shared by `scan` and `demo`.
type scanFlags struct {
	inputLists   []string
	exclude      []string
	excludeFiles []string
	ports        string
	rate         float64
	concurrency  int
	fingerprints int
	timeout      time.Duration
	budget       time.Duration
	retries      int
	contact      string
	format       string
	output       string
	report       string
	active       bool
	seed         uint64
	progress     string
	keepHTTP     bool
	failOn       string
}

func (f *scanFlags) register(cmd *cobra.Command, withTargets bool) {
	fl := cmd.Flags()
	if withTargets {
		fl.StringArrayVar(&f.inputLists, "input-list", nil, "read targets from `FILE` (nmap's -iL also works; - for stdin); repeatable")
		fl.StringArrayVar(&f.exclude, "exclude", nil, "never touch these targets (same syntax as targets; repeatable; exclusions always win)")
		fl.StringArrayVar(&f.excludeFiles, "exclude-file", nil, "read exclusions from `FILE`; repeatable")
		fl.StringVarP(&f.ports, "ports", "p", defaultPortSpec(), "ports to try on targets given without a port (e.g. 11434,8000-8010)")
	}
	fl.Float64Var(&f.rate, "rate", 2000, "new connections per second across the whole scan (0 = unlimited)")
	fl.IntVar(&f.concurrency, "concurrency", 4096, "most TCP connects in flight at once; the scanner adapts below this to what the network sustains")
	fl.IntVar(&f.fingerprints, "fingerprints", 256, "most services fingerprinted at once (separate from connects, so tarpits cannot stall discovery)")
	fl.DurationVar(&f.timeout, "timeout", 3*time.Second, "timeout for one TCP connect and for one HTTP request")
	fl.DurationVar(&f.budget, "target-budget", 30*time.Second, "most time spent fingerprinting one service (bounds tarpits)")
	fl.IntVar(&f.retries, "retries", 1, "extra connect attempts after a timeout (a refused port is not retried)")
	fl.StringVar(&f.contact, "contact", "", "contact (email or URL) added to the User-Agent so network owners can reach you")
	fl.StringVarP(&f.format, "format", "f", "table", "output format: table, json (JSON Lines, one service per line), csv, html")
	fl.StringVarP(&f.output, "output", "o", "-", "write the output to `FILE` instead of standard output")
	fl.StringVar(&f.report, "report", "", "also write a self-contained HTML report to `FILE`")
	fl.BoolVar(&f.active, "active", false, "also send one benign generate request (\"Reply with OK\") per service to confirm it will generate for strangers")
	fl.Uint64Var(&f.seed, "seed", 0, "seed of the random visiting order (0 = random)")
	fl.StringVar(&f.progress, "progress", "auto", "progress line on standard error: auto (only on a terminal), always, never")
	fl.BoolVar(&f.keepHTTP, "keep-http", false, "also report HTTP services that match no LLM server")
	fl.StringVar(&f.failOn, "fail-on", "", "exit with status 3 when any service is rated at least this risk (low, medium, high, critical)")
}

func defaultPortSpec() string {
	ps := make([]string, len(targets.DefaultPorts))
	for i, p := range targets.DefaultPorts {
		ps[i] = fmt.Sprint(p)
	}
	return strings.Join(ps, ",")
}

func newScanCmd(e *env) *cobra.Command {
	var f scanFlags
	cmd := &cobra.Command{
		Use:   "scan [flags] TARGET...",
		Short: "Discover and fingerprint LLM servers, rate their risk, keep the history",
		Long: `Discover and fingerprint self-hosted LLM servers on networks you own.

A TARGET is an IPv4 or IPv6 address, a CIDR (10.20.0.0/16), a range
(10.0.0.1-10.0.0.50 or 10.0.0.1-50), a host name, any of those with a port
(db.internal:11434, [::1]:8000), or a URL (https://llm.example.internal/).
-iL FILE reads targets from a file (one or more per line, # comments), and
"-" reads them from standard input. Exclusions always win.

Targets given without a port are tried on --ports, by default the ports these
servers use out of the box (see "llmfence scan --help" and the README). The
address space is visited in a random order, rate-limited, so no network sees
a burst.

The scan is passive: it only reads (for Ollama GET /, /api/version, /api/tags,
/api/ps and POST /api/show, which changes nothing). It never pulls, pushes,
creates, copies, deletes or generates unless you pass --active, and even then
it sends one harmless prompt.

Every run is saved to the store (--db); see "llmfence runs", "hosts",
"findings" and "diff".

Scan only what you are authorised to scan.`,
		Example: `  llmfence scan 127.0.0.1
  llmfence scan 10.20.0.0/16 db.internal:11434 -iL hosts.txt --exclude-file keep-out.txt
  llmfence scan --format json 192.0.2.0/24 > services.jsonl
  llmfence scan --report scan.html --contact secops@example.com 10.0.0.0/8`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 && len(f.inputLists) == 0 {
				return fmt.Errorf("no targets: give addresses, CIDRs, ranges, host names or URLs, or -iL FILE (see llmfence scan --help)")
			}
			return runScan(cmd.Context(), e, &f, args, os.Args)
		},
	}
	f.register(cmd, true)
	return cmd
}

// runScan validates everything it can before the first packet, then scans,
// streaming results to the output and the store.
func runScan(ctx context.Context, e *env, f *scanFlags, args, cmdline []string) (err error) {
	ports, err := targets.ParsePorts(f.ports)
	if err != nil {
		return fmt.Errorf("--ports: %w", err)
	}
	var failOn service.Severity
	if f.failOn != "" {
		var ok bool
		if failOn, ok = service.ParseSeverity(f.failOn); !ok {
			return fmt.Errorf("--fail-on %q: want low, medium, high or critical", f.failOn)
		}
	}
	if f.concurrency < 1 {
		return fmt.Errorf("--concurrency must be at least 1, got %d", f.concurrency)
	}
	if f.fingerprints < 1 {
		return fmt.Errorf("--fingerprints must be at least 1, got %d", f.fingerprints)
	}
	if f.timeout <= 0 {
		return fmt.Errorf("--timeout must be positive, got %v", f.timeout)
	}
	// Where the user said "-" as a target, that is standard input.
	var include []string
	inputLists := append([]string(nil), f.inputLists...)
	for _, a := range args {
		if a == "-" {
			inputLists = append(inputLists, "-")
			continue
		}
		include = append(include, a)
	}
	set, err := targets.NewSet(ctx, targets.Options{
		Ports:    ports,
		Seed:     f.seed,
		Resolver: net.DefaultResolver,
		Stdin:    e.stdin,
	}, include, inputLists, f.exclude, f.excludeFiles)
	if err != nil {
		return err
	}
	defer set.Close()

	out, closeOut, err := openOutput(e, f.output)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := closeOut(); cerr != nil && err == nil {
			err = fmt.Errorf("writing output: %w", cerr)
		}
	}()
	if f.report != "" {
		if err := checkWritable(f.report); err != nil {
			return fmt.Errorf("--report: %w", err)
		}
	}
	format := strings.ToLower(f.format)
	switch format {
	case "table", "json", "jsonl", "csv", "html":
	default:
		return fmt.Errorf("--format %q: want table, json, csv or html", f.format)
	}

	st, err := store.Open(ctx, e.db)
	if err != nil {
		return err
	}
	defer st.Close()

	judge, err := newJudge()
	if err != nil {
		return err
	}
	prober, err := fingerprint.New(fingerprint.Options{
		Timeout:      f.timeout,
		TargetBudget: f.budget,
		UserAgent:    userAgent(f.contact),
		Active:       f.active,
		Logger:       e.log,
	})
	if err != nil {
		return err
	}
	showProgress := f.progress == "always" || (f.progress == "auto" && isTerminal(e.stderr))
	var progress func(scan.Stats)
	finishProgress := func() {}
	if showProgress {
		progress, finishProgress = scan.ProgressBar(e.stderr)
	}
	scanner, err := scan.New(scan.Options{
		Rate:         f.rate,
		Concurrency:  f.concurrency,
		Fingerprints: f.fingerprints,
		DialTimeout:  f.timeout,
		Retries:      f.retries,
		KeepHTTP:     f.keepHTTP,
		Progress:     progress,
		Logger:       e.log,
	}, prober, judge)
	if err != nil {
		return err
	}

	run, err := st.CreateRun(ctx, store.Run{
		Targets:     append(append(append([]string(nil), include...), prefixAll("-iL ", inputLists)...), prefixAll("--exclude ", f.exclude)...),
		Ports:       f.ports,
		Args:        cmdline,
		ToolVersion: version.String(),
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stderr, "llmfence: run %s: scanning %d address:port pairs (store: %s)\n", run.ID, set.Count(), storeName(e.db))

	// Stream: JSON Lines go out as services arrive; table, CSV and HTML
	// are rendered from the store when the run ends, so nothing is held in
	// memory here but the current batch.
	var jsonw *report.JSONLinesWriter
	if format == "json" || format == "jsonl" {
		jsonw = report.JSONLines(out)
	}
	var batch []service.Service
	worst := service.SeverityNone
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := st.SaveServices(ctx, run.ID, batch)
		batch = batch[:0]
		return err
	}
	emit := func(svc *service.Service) error {
		if svc.Risk.Rank() > worst.Rank() {
			worst = svc.Risk
		}
		if jsonw != nil {
			if err := jsonw.Write(svc); err != nil {
				return fmt.Errorf("writing output: %w", err)
			}
		}
		batch = append(batch, *svc)
		if len(batch) >= 100 {
			return flush()
		}
		return nil
	}
	stats, scanErr := scanner.Run(ctx, walker{set}, emit)
	finishProgress()
	if err := flush(); err != nil && scanErr == nil {
		scanErr = fmt.Errorf("saving results: %w", err)
	}
	rs := store.RunStats{AddressesProbed: int64(stats.Done), OpenPorts: int64(stats.Open)}
	// The run record is written even when the user interrupted the scan.
	endCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	switch {
	case scanErr == nil:
		err = st.FinishRun(endCtx, run.ID, rs)
	case errors.Is(scanErr, context.Canceled):
		err = st.EndRun(endCtx, run.ID, store.StatusInterrupted, "interrupted", rs)
	default:
		err = st.EndRun(endCtx, run.ID, store.StatusFailed, scanErr.Error(), rs)
	}
	if err != nil && scanErr == nil {
		scanErr = err
	}

	if format == "table" || format == "csv" || format == "html" || f.report != "" {
		r, err := loadReport(endCtx, st, run.ID)
		if err != nil {
			return err
		}
		r.Text = e.text
		switch format {
		case "table":
			if len(r.Services) == 0 {
				fmt.Fprintln(out, report.NothingFound(e.text, stats.Done, stats.Open))
				break
			}
			if err := report.Table(out, r.Services, report.TableOptions{Color: isTerminal(out), Text: e.text}); err != nil {
				return fmt.Errorf("writing output: %w", err)
			}
		case "csv":
			if err := report.CSV(out, r.Services); err != nil {
				return fmt.Errorf("writing output: %w", err)
			}
		case "html":
			if err := report.HTML(out, r); err != nil {
				return fmt.Errorf("writing output: %w", err)
			}
		}
		if f.report != "" {
			if err := writeHTMLFile(f.report, r); err != nil {
				return err
			}
		}
	}
	fmt.Fprintf(e.stderr, "llmfence: run %s: %d pairs tried, %d open, %d LLM services, %d fenced by a gateway, %d open but unidentified%s, worst risk %s; discovery %s, all fingerprints %s\n",
		run.ID, stats.Done, stats.Open, stats.Services, stats.Fenced, stats.Unidentified, keepHTTPHint(f, stats), worst, stats.Sweep.Round(time.Millisecond), stats.Elapsed.Round(time.Millisecond))
	if f.rate > 0 && stats.RateWait > stats.Sweep/2 {
		fmt.Fprintf(e.stderr, "llmfence: run %s: discovery was paced by --rate %g (%s spent waiting for it); on networks you own, --rate 0 lifts the cap\n",
			run.ID, f.rate, stats.RateWait.Round(time.Millisecond))
	}
	if f.report != "" {
		fmt.Fprintf(e.stderr, "llmfence: report written to %s\n", f.report)
	}
	if scanErr != nil {
		return scanErr
	}
	if failOn != "" && worst.Rank() >= failOn.Rank() {
		return &exitError{code: 3, err: fmt.Errorf("services rated %s or worse were found (--fail-on %s)", worst, failOn)}
	}
	return nil
}

// keepHTTPHint points at --keep-http when unidentified HTTP services were
// left out.
func keepHTTPHint(f *scanFlags, st scan.Stats) string {
	if st.OtherHTTP > 0 && !f.keepHTTP {
		return fmt.Sprintf(" (%d of them HTTP; --keep-http lists them)", st.OtherHTTP)
	}
	return ""
}

// walker adapts a target set to the scanner's view of targets.
type walker struct{ s *targets.Set }

func (w walker) Count() uint64 { return w.s.Count() }
func (w walker) Walk(ctx context.Context, fn func(scan.Target) error) error {
	return w.s.Walk(ctx, func(t targets.Target) error {
		return fn(scan.Target{Addr: netip.AddrPortFrom(t.Addr, t.Port), Hostname: t.Hostname, TLS: t.TLS})
	})
}

func userAgent(contact string) string {
	ua := "llmfence/" + version.String()
	if contact != "" {
		ua += " (+" + contact + ")"
	}
	return ua
}

func prefixAll(p string, xs []string) []string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = p + x
	}
	return out
}

func storeName(dsn string) string {
	if dsn == "" {
		if p, err := store.DefaultPath(); err == nil {
			return p
		}
	}
	return store.Redact(dsn)
}

func loadReport(ctx context.Context, st store.Store, runID string) (report.Report, error) {
	run, err := st.GetRun(ctx, runID)
	if err != nil {
		return report.Report{}, err
	}
	svcs, err := st.Services(ctx, runID)
	if err != nil {
		return report.Report{}, err
	}
	return report.Report{
		RunID:    run.ID,
		Started:  run.StartedAt,
		Finished: run.FinishedAt,
		Targets:  run.Targets,
		Services: svcs,
	}, nil
}

// openOutput opens --output; "-" is standard output.
func openOutput(e *env, path string) (io.Writer, func() error, error) {
	if path == "" || path == "-" {
		return e.stdout, func() error { return nil }, nil
	}
	fh, err := os.Create(path)
	if err != nil {
		return nil, nil, fmt.Errorf("cannot write output file: %w", err)
	}
	return fh, fh.Close, nil
}

// checkWritable fails early when path cannot be created, so a long scan does
// not end in "cannot write report".
func checkWritable(path string) error {
	dir := filepath.Dir(path)
	st, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("cannot write %s: %w", path, err)
	}
	if !st.IsDir() {
		return fmt.Errorf("cannot write %s: %s is not a directory", path, dir)
	}
	fh, err := os.CreateTemp(dir, ".llmfence-write-check-*")
	if err != nil {
		return fmt.Errorf("cannot write %s: directory %s is not writable", path, dir)
	}
	name := fh.Name()
	fh.Close()
	os.Remove(name)
	return nil
}

func writeHTMLFile(path string, r report.Report) error {
	return writeFileAtomic(path, func(fh *os.File) error { return report.HTML(fh, r) })
}
