package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/llmfence/llmfence/internal/cli"
	"github.com/llmfence/llmfence/internal/locale"
	"github.com/llmfence/llmfence/internal/report"
	"github.com/llmfence/llmfence/internal/risk"
	"github.com/llmfence/llmfence/internal/scan"
	"github.com/llmfence/llmfence/internal/scanrun"
	"github.com/llmfence/llmfence/internal/service"
	"github.com/llmfence/llmfence/internal/store"
	"github.com/llmfence/llmfence/internal/targets"
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
	list         bool
	yes          bool
	noDNS        bool
	allowRsv     bool
}

// confirmAbove is the size of a scan, in (address, port) pairs, above which
// `llmfence scan` asks before starting when standard input is a terminal
// (a /16 on one port; --yes skips the question).
const confirmAbove = 1 << 16

func (f *scanFlags) register(cmd *cobra.Command, withTargets bool) {
	d := scanrun.DefaultOptions()
	fl := cmd.Flags()
	if withTargets {
		fl.StringArrayVar(&f.inputLists, "input-list", nil, "read targets from `FILE` (nmap's -iL also works; - for stdin); repeatable")
		fl.StringArrayVar(&f.exclude, "exclude", nil, "never touch these targets (same syntax as targets; repeatable; exclusions always win)")
		fl.StringArrayVar(&f.excludeFiles, "exclude-file", nil, "read exclusions from `FILE`; repeatable")
		fl.StringVarP(&f.ports, "ports", "p", scanrun.DefaultPortSpec(), "ports to try on targets given without a port (e.g. 11434,8000-8010)")
	}
	fl.Float64Var(&f.rate, "rate", d.Rate, "new connections per second across the whole scan (0 = unlimited)")
	fl.IntVar(&f.concurrency, "concurrency", d.Concurrency, "most TCP connects in flight at once; the scanner adapts below this to what the network sustains")
	fl.IntVar(&f.fingerprints, "fingerprints", d.Fingerprints, "most services fingerprinted at once (separate from connects, so tarpits cannot stall discovery)")
	fl.Var(cli.NewDuration(&f.timeout, d.Timeout, cli.Positive), "timeout", "timeout for one TCP connect and for one HTTP request (more than 0)")
	fl.Var(cli.NewDuration(&f.budget, d.TargetBudget, cli.Positive), "target-budget", "most time spent fingerprinting one service, to bound tarpits (more than 0)")
	fl.IntVar(&f.retries, "retries", d.Retries, "extra connect attempts after a timeout (a refused port is not retried)")
	fl.StringVar(&f.contact, "contact", "", "contact (email or URL) added to the User-Agent so network owners can reach you")
	fl.VarP(cli.NewEnum(&f.format, "table", "table", "json", "jsonl", "csv", "html"), "format", "f", "output format: table, json (JSON Lines, one service per line; jsonl is the same), csv, html")
	fl.StringVarP(&f.output, "output", "o", "-", "write the output to `FILE` instead of standard output")
	fl.StringVar(&f.report, "report", "", "also write a self-contained HTML report to `FILE`")
	fl.BoolVar(&f.active, "active", false, "also send one benign generate request (\"Reply with OK\") per service to confirm it will generate for strangers")
	fl.Uint64Var(&f.seed, "seed", 0, "seed of the random visiting order (0 = random)")
	fl.Var(cli.NewEnum(&f.progress, "auto", "auto", "always", "never"), "progress", "progress line on standard error: auto (only on a terminal), always, never")
	fl.BoolVar(&f.keepHTTP, "keep-http", false, "also report open HTTP services that match no LLM server (the summary counts them)")
	fl.StringVar(&f.failOn, "fail-on", "", "exit with status 1 when any service is rated at least this risk (info, low, medium, high, critical)")
	fl.BoolVar(&f.noDNS, "no-dns", false, "never resolve host names: a name among the targets or exclusions is an error")
	fl.BoolVar(&f.allowRsv, "allow-reserved", false, "also scan reserved ranges (multicast, 240.0.0.0/4, 0.0.0.0/8, documentation ranges; see the README)")
	f.yes = !withTargets // demo scans its own lab without asking
	if withTargets {
		fl.BoolVarP(&f.list, "list", "L", false, "dry run: print what would be scanned (pairs, ranges, ports) and how long it would take at --rate, send nothing")
		fl.BoolVarP(&f.yes, "yes", "y", false, fmt.Sprintf("do not ask before a scan of more than %d address:port pairs (asked only when standard input is a terminal)", confirmAbove))
	}
}

// options maps the flags to the scan-run options.
func (f *scanFlags) options() scanrun.Options {
	o := scanrun.DefaultOptions()
	o.Ports, o.Seed, o.Rate = f.ports, f.seed, f.rate
	o.Concurrency, o.Fingerprints, o.Timeout, o.TargetBudget, o.Retries = f.concurrency, f.fingerprints, f.timeout, f.budget, f.retries
	o.Contact, o.Active, o.KeepHTTP, o.FailOn = f.contact, f.active, f.keepHTTP, service.Severity(f.failOn)
	o.NoDNS, o.AllowReserved = f.noDNS, f.allowRsv
	return o
}

func defaultPortSpec() string { return scanrun.DefaultPortSpec() }

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

Scope guard: reserved ranges (multicast 224.0.0.0/4, 240.0.0.0/4 and
255.255.255.255, "this network" 0.0.0.0/8, the documentation ranges
192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24, 2001:db8::/32 and a few IPv6
special ranges) are left out unless --allow-reserved; loopback, private,
100.64.0.0/10 and link-local space are scanned. --list prints what would
be scanned and how long it would take, sending nothing. A scan of more than
65536 address:port pairs asks first when standard input is a terminal
(--yes skips the question). Targets that leave nothing to scan (an empty
file, exclusions that remove everything) are an error.

Scan only what you are authorised to scan.

` + cli.Scheme,
		Example: `  llmfence scan 127.0.0.1
  llmfence scan 10.20.0.0/16 db.internal:11434 -iL hosts.txt --exclude-file keep-out.txt
  llmfence scan --format json 192.0.2.0/24 > services.jsonl
  llmfence scan --report scan.html --contact secops@example.com 10.0.0.0/8
  llmfence scan --list --rate 500 10.20.0.0/16`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 && len(f.inputLists) == 0 {
				return cli.Usagef("", "no targets: give addresses, CIDRs, ranges, host names or URLs, or -iL FILE")
			}
			return runScan(cmd.Context(), e, &f, args, os.Args)
		},
	}
	f.register(cmd, true)
	return cmd
}

// runScan validates everything it can before the first packet, then scans
// (internal/scanrun), streaming JSON Lines as services are found; table,
// CSV and HTML are rendered from the store when the run ends.
func runScan(ctx context.Context, e *env, f *scanFlags, args, cmdline []string) (err error) {
	opts := f.options()
	if err := opts.Validate(); err != nil {
		return err
	}
	tg := scanTargets(e, f, args)
	if done, err := planOrConfirm(ctx, e, f, opts, tg); done || err != nil {
		return err
	}
	if f.report != "" {
		if err := checkWritable(f.report); err != nil {
			return fmt.Errorf("--report: %w", err)
		}
	}
	out, closeOut, err := openOutput(e, f.output)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := closeOut(); cerr != nil && err == nil {
			err = fmt.Errorf("writing output: %w", cerr)
		}
	}()
	st, err := openStore(ctx, e, store.AccessCreateFile)
	if err != nil {
		return err
	}
	defer st.Close()
	judge, err := newJudge()
	if err != nil {
		return err
	}
	sess, finishProgress := newScanSession(e, f, opts, out, cmdline)
	sess.Store, sess.Annotator = st, judge
	sum, scanErr := sess.Run(ctx, tg)
	finishProgress()
	if sum.Run.ID == "" { // refused before the run was recorded
		return scanErr
	}
	endCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := renderRun(endCtx, st, sum, f.format, f.report, out, e.text); err != nil {
		return err
	}
	printScanSummary(e, f, sum)
	if scanErr != nil {
		return scanErr
	}
	if sum.FailOnTripped {
		return cli.Findingsf("services rated %s or worse were found (--fail-on %s)", sum.Worst, opts.FailOn)
	}
	return nil
}

// scanTargets gathers the targets: where the user said "-" as a target,
// that is standard input.
func scanTargets(e *env, f *scanFlags, args []string) scanrun.Targets {
	tg := scanrun.Targets{InputLists: append([]string(nil), f.inputLists...), Exclude: f.exclude,
		ExcludeFiles: f.excludeFiles, Stdin: e.stdin}
	for _, a := range args {
		if a == "-" {
			tg.InputLists = append(tg.InputLists, "-")
			continue
		}
		tg.Include = append(tg.Include, a)
	}
	return tg
}

// planOrConfirm prints the plan for --list (done), or asks on a terminal
// before a scan the user did not confirm with --yes.
func planOrConfirm(ctx context.Context, e *env, f *scanFlags, opts scanrun.Options, tg scanrun.Targets) (done bool, err error) {
	if f.list {
		plan, err := (&scanrun.Session{Options: opts, Logger: e.log}).Plan(ctx, tg)
		if err != nil {
			return true, err
		}
		return true, writePlan(e.stdout, plan, opts, e.text)
	}
	if !f.yes && !slices.Contains(tg.InputLists, "-") && isTerminalReader(e.stdin) {
		plan, err := (&scanrun.Session{Options: opts, Logger: e.log}).Plan(ctx, tg)
		if err != nil {
			return true, err
		}
		if err := confirmScan(e, plan, opts); err != nil {
			return true, err
		}
	}
	return false, nil
}

// newScanSession wires the session's callbacks: the run line and the
// guard's note on standard error, the progress bar, and JSON Lines to out
// as services are found. The caller sets Store and Annotator.
func newScanSession(e *env, f *scanFlags, opts scanrun.Options, out io.Writer, cmdline []string) (*scanrun.Session, func()) {
	var jsonw *report.JSONLinesWriter
	if f.format == "json" || f.format == "jsonl" {
		jsonw = report.JSONLines(out)
	}
	sess := &scanrun.Session{Options: opts, Logger: e.log, Args: cmdline,
		Started: func(run store.Run, pairs uint64) {
			if jsonw != nil {
				jsonw.SetRunID(run.ID)
			}
			fmt.Fprintln(e.stderr, e.text.T("cli.scan.started", "run", run.ID, "pairs", u64(pairs), "store", storeName(e.db)))
		},
		Guarded: func(hits []targets.BlockedHit) {
			fmt.Fprintln(e.stderr, e.text.T("cli.scan.left_out", "ranges", blockedText(e.text, hits)))
		}}
	finishProgress := func() {}
	if f.progress == "always" || (f.progress == "auto" && isTerminal(e.stderr)) {
		sess.Progress, finishProgress = scan.ProgressBar(e.stderr)
	}
	if jsonw != nil {
		sess.OnService = func(svc *service.Service) error {
			if err := jsonw.Write(svc); err != nil {
				return fmt.Errorf("writing output: %w", err)
			}
			return nil
		}
	}
	return sess, finishProgress
}

// printScanSummary writes the run's closing lines on standard error.
func printScanSummary(e *env, f *scanFlags, sum scanrun.Summary) {
	stats := sum.Stats
	fmt.Fprintln(e.stderr, e.text.T("cli.scan.summary", "run", sum.Run.ID,
		"tried", u64(stats.Done), "open", u64(stats.Open), "services", u64(stats.Services),
		"fenced", u64(stats.Fenced), "unidentified", u64(stats.Unidentified), "http_hint", keepHTTPHint(e.text, f, stats),
		"worst", string(sum.Worst), "worst_msg", risk.SeverityID(sum.Worst),
		"sweep", stats.Sweep.Round(time.Millisecond).String(), "elapsed", stats.Elapsed.Round(time.Millisecond).String()))
	if f.rate > 0 && stats.RateWait > stats.Sweep/2 {
		fmt.Fprintln(e.stderr, e.text.T("cli.scan.rate_paced", "run", sum.Run.ID,
			"rate", strconv.FormatFloat(f.rate, 'g', -1, 64), "wait", stats.RateWait.Round(time.Millisecond).String()))
	}
	if f.report != "" {
		fmt.Fprintln(e.stderr, e.text.T("cli.report_written", "path", f.report))
	}
}

// u64 says a count as the summary lines print it.
func u64(n uint64) string { return strconv.FormatUint(n, 10) }

// keepHTTPHint points at --keep-http when unidentified HTTP services were
// left out.
func keepHTTPHint(p *locale.Printer, f *scanFlags, st scan.Stats) string {
	if st.OtherHTTP > 0 && !f.keepHTTP {
		return p.T("cli.scan.http_hint", "http", u64(st.OtherHTTP))
	}
	return ""
}

// renderRun writes the table, CSV or HTML output and the --report file
// from what the store kept of the run.
func renderRun(ctx context.Context, st store.Store, sum scanrun.Summary, format, reportPath string, out io.Writer, text *locale.Printer) error {
	if format != "table" && format != "csv" && format != "html" && reportPath == "" {
		return nil
	}
	r, err := loadReport(ctx, st, sum.Run.ID)
	if err != nil {
		return err
	}
	r.Text = text
	switch format {
	case "table":
		if len(r.Services) == 0 {
			fmt.Fprintln(out, report.NothingFound(text, sum.Stats.Done, sum.Stats.Open))
			break
		}
		err = report.Table(out, r.Services, report.TableOptions{Color: report.UseColor(out, os.Getenv), Text: text})
	case "csv":
		err = report.CSV(out, r.Services)
	case "html":
		err = report.HTML(out, r)
	}
	if err != nil {
		return fmt.Errorf("writing output: %w", err)
	}
	if reportPath != "" {
		return writeHTMLFile(reportPath, r)
	}
	return nil
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
	fh, err := report.CreateOutput(path)
	if err != nil {
		return nil, nil, fmt.Errorf("--output: %w", err)
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

// writePlan prints the dry run of --list.
func writePlan(w io.Writer, p scanrun.Plan, o scanrun.Options, text *locale.Printer) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintln(bw, text.T("cli.scan.plan", "pairs", u64(p.Pairs), "ranges", strconv.Itoa(len(p.Ranges)+p.MoreRanges), "seed", fmt.Sprint(p.Seed)))
	fmt.Fprintf(bw, "# %s\n", estimateText(text, p, o))
	if len(p.Blocked) > 0 {
		fmt.Fprintln(bw, text.T("cli.scan.plan_left_out", "ranges", blockedText(text, p.Blocked)))
	}
	for _, r := range p.Ranges {
		ports := make([]string, len(r.Ports))
		for i, pt := range r.Ports {
			ports[i] = strconv.Itoa(int(pt))
		}
		fmt.Fprintf(bw, "%s\tports %s\n", r, strings.Join(ports, ","))
	}
	if p.MoreRanges > 0 {
		fmt.Fprintln(bw, text.T("cli.scan.plan_more", "more", strconv.Itoa(p.MoreRanges)))
	}
	return bw.Flush()
}

// estimateText bounds the sweep's duration in words.
func estimateText(text *locale.Printer, p scanrun.Plan, o scanrun.Options) string {
	args := []string{"slowest", cli.Approx(p.Slowest), "timeout", o.Timeout.String(),
		"retries", fmt.Sprint(o.Retries), "concurrency", fmt.Sprint(o.Concurrency)}
	if o.Rate <= 0 {
		return text.T("cli.scan.estimate_unlimited", args...)
	}
	return text.T("cli.scan.estimate_rate", append(args, "rate", strconv.FormatFloat(o.Rate, 'g', -1, 64), "fastest", cli.Approx(p.Fastest))...)
}

// blockedText lists what the scope guard left out.
func blockedText(text *locale.Printer, hits []targets.BlockedHit) string {
	parts := make([]string, len(hits))
	for i, h := range hits {
		parts[i] = text.T("cli.scan.blocked_range", "addresses", fmt.Sprint(h.Addresses), "prefix", h.Range.Prefix, "name", h.Range.Name)
	}
	sep := ", "
	if text.Lang() == locale.Japanese {
		sep = "、"
	}
	return strings.Join(parts, sep)
}

// confirmScan asks before a scan of more than confirmAbove pairs (the
// caller checked that standard input is a terminal); anything but yes
// stops.
func confirmScan(e *env, p scanrun.Plan, o scanrun.Options) error {
	if p.Pairs <= confirmAbove {
		return nil
	}
	fmt.Fprintln(e.stderr, e.text.T("cli.scan.confirm_plan", "pairs", u64(p.Pairs), "estimate", estimateText(e.text, p, o)))
	fmt.Fprint(e.stderr, e.text.T("cli.scan.confirm_ask"))
	line, err := bufio.NewReader(e.stdin).ReadString('\n')
	if err != nil && line == "" {
		return cli.Usagef("--yes", "not confirmed (no answer); pass --yes to scan without asking")
	}
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return nil
	}
	return cli.Usagef("--yes", "not confirmed; nothing was scanned (--list shows what would be, --yes skips the question)")
}

// isTerminalReader reports whether r is a terminal.
func isTerminalReader(r io.Reader) bool {
	f, ok := r.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
