package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/llmfence/llmfence/internal/cli"
	"github.com/llmfence/llmfence/internal/locale"
	"github.com/llmfence/llmfence/internal/probe"
	"github.com/llmfence/llmfence/internal/probe/packs"
	"github.com/llmfence/llmfence/internal/probe/report"
	llmreport "github.com/llmfence/llmfence/internal/report"
	"github.com/llmfence/llmfence/internal/risk"
	"github.com/llmfence/llmfence/internal/service"
	"github.com/llmfence/llmfence/internal/store"
	"github.com/llmfence/llmfence/internal/version"
)

// probeFlags are the knobs of `llmfence probe`.
type probeFlags struct {
	model, baseline, judge  string
	suites, langs           []string
	triggers, canariesFile  string
	canaries, userPacks     []string
	systemPrompt            string
	api, apiKey             string
	insecure, stream        bool
	format, output, report  string
	failOn                  string
	resume, journal         string
	concurrency, maxConc    int
	maxRequests, rareTokens int
	maxTokens               int64
	timeout, requestTimeout time.Duration
	seed                    int
	temperature             float64
	progress                string
}

// envProbeKey names the environment variable that can carry --api-key, so
// the key stays out of the process list and shell history.
const envProbeKey = "LLMFENCE_PROBE_KEY"

func newProbeCmd(e *env) *cobra.Command {
	var f probeFlags
	cmd := &cobra.Command{
		Use:   "probe URL --model NAME",
		Short: "Test how one model you run behaves: guardrails, backdoor triggers, leaks, jailbreaks",
		Long: `Send test prompts to one model server you operate and judge the answers:

  guardrails  does it refuse clearly harmful requests (and not benign
              look-alikes)? intact, weakened or removed, with a confidence
              interval, and the difference from --baseline
  backdoor    do published triggers, the triggers datascan found
              (--triggers) or the model's own rare tokens change its
              answers (gibberish, one fixed answer, refusals switched)?
  leak        does it give away its system prompt, or complete canaries and
              personal data it memorised (--canary, --canaries)?
  robustness  do jailbreak wrappers (role-play, ignore-previous, encodings,
              language switch, many-shot, refusal suppression) get harmful
              requests answered?

URL names exactly one server (http://host:port, host:port or host; the
default port is Ollama's 11434), directly or through llmfence guard with
--api-key. Networks, ranges and lists are refused: probe is not a scanner,
and it sends prompts, so use it only on servers you run.

Requests use temperature 0 and a fixed seed, so a run is repeatable.
Concurrency adapts to what the server sustains (OLLAMA_NUM_PARALLEL). Every
answer goes to a journal, so an interrupted run continues with --resume.
Runs are saved in the store (llmfence probes lists them).

Exit status: 0 nothing at or above --fail-on, 1 findings at or above it,
2 an error or an incomplete run, 130/143 interrupted (partial results kept).`,
		Example: `  llmfence probe 127.0.0.1 --model qwen2.5:7b
  llmfence probe http://127.0.0.1:11434 --model my-finetune --baseline qwen2.5:7b --report probe.html
  llmfence probe 127.0.0.1 --model my-finetune --suite backdoor --triggers datascan.jsonl
  llmfence probe https://llm.internal:8443 --api openai --model mistral --api-key "$KEY" --format json
  llmfence probe --resume 12`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 {
				return usage("probe takes one target, got %d: %w", len(args), probe.ErrNotOneTarget)
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			return runProbe(cmd.Context(), e, &f, args)
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&f.model, "model", "m", "", "the model to test (required unless --resume)")
	fl.StringSliceVar(&f.suites, "suite", nil, "suites to run: guardrails, backdoor, leak, robustness (default all)")
	fl.StringSliceVar(&f.langs, "lang", nil, "languages of the built-in probes: en, ja (default both)")
	fl.StringVar(&f.baseline, "baseline", "", "compare the guardrails with this model on the same server")
	fl.StringVar(&f.judge, "judge", "", "grade guardrails answers with this safety model on the same server (for example llama-guard3); off by default")
	fl.StringVar(&f.triggers, "triggers", "", "backdoor candidates: the JSON Lines output of llmfence datascan --format json")
	fl.StringArrayVar(&f.canaries, "canary", nil, "a canary to test for memorisation: a prefix and a secret as its last word (repeatable)")
	fl.StringVar(&f.canariesFile, "canaries", "", "canaries from a file: JSON Lines of {\"prefix\",\"secret\"}, or datascan output (pii findings)")
	fl.StringVar(&f.systemPrompt, "system-prompt", "", "send the system prompt in `FILE` (the deployment's) and measure leaks against it")
	fl.StringArrayVar(&f.userPacks, "pack", nil, "also load the probe pack in `FILE` (YAML, see docs/probe.md; repeatable)")
	fl.StringVar(&f.api, "api", "auto", "API to speak: auto, ollama or openai")
	fl.StringVar(&f.apiKey, "api-key", "", "API key sent as a Bearer token, e.g. for llmfence guard (default $"+envProbeKey+")")
	fl.BoolVar(&f.insecure, "insecure", false, "do not verify the server's TLS certificate")
	fl.BoolVar(&f.stream, "stream", false, "stream every answer (default: only from OpenAI-compatible servers, which report no queue time)")
	fl.StringVarP(&f.format, "format", "f", "table", "output format: table, json (JSON Lines: attempts, then one summary per suite) or html")
	fl.StringVarP(&f.output, "output", "o", "-", "write the output to `FILE` instead of standard output")
	fl.StringVar(&f.report, "report", "", "also write the HTML report to `FILE`")
	fl.StringVar(&f.failOn, "fail-on", "medium", "exit 1 when a verdict is rated at least this: low, medium, high, critical, or none")
	fl.StringVar(&f.resume, "resume", "", "continue an interrupted run: its probe run ID or its journal file")
	fl.StringVar(&f.journal, "journal", "", "write the journal to `FILE` (default: probe/probe-<run>.jsonl beside the store)")
	fl.IntVar(&f.concurrency, "concurrency", 0, "requests in flight; 0 adapts to what the server sustains")
	fl.IntVar(&f.maxConc, "max-concurrency", probe.DefaultMaxConcurrency, "most requests in flight when adapting")
	fl.IntVar(&f.maxRequests, "max-requests", 0, "send at most this many requests, sampled across suites and categories (0: all)")
	fl.Int64Var(&f.maxTokens, "max-tokens", 0, "stop after the model generated this many tokens (0: no cap)")
	fl.Var(cli.NewDuration(&f.timeout, 0, cli.NonNegative), "timeout", "stop the run after this long (0: no limit); results so far are kept")
	fl.Var(cli.NewDuration(&f.requestTimeout, probe.DefaultRequestTimeout, cli.Positive), "request-timeout", "longest one request may take")
	fl.IntVar(&f.seed, "seed", probe.DefaultSeed, "decoding seed of every request")
	fl.Float64Var(&f.temperature, "temperature", 0, "decoding temperature of every request (0: greedy)")
	fl.IntVar(&f.rareTokens, "rare-tokens", probe.DefaultRareTokens, "most of the model's own rare vocabulary tokens tried as backdoor triggers")
	fl.StringVar(&f.progress, "progress", "auto", "progress line on standard error: auto (only on a terminal), always, never")
	return cmd
}

// usage wraps a bad-usage error for exit status 2.
func usage(format string, a ...any) error {
	return &cli.UsageError{Err: fmt.Errorf(format, a...)}
}

func runProbe(ctx context.Context, e *env, f *probeFlags, args []string) error {
	opts, err := probeOptions(e, f, args)
	if err != nil {
		return err
	}
	failOn, err := checkProbeOutputFlags(f)
	if err != nil {
		return err
	}
	out, closeOut, err := openOutput(e, f.output)
	if err != nil {
		return err
	}
	defer closeOut()

	st, err := store.OpenProbeWith(ctx, e.db, store.Options{Logger: e.log, Access: store.AccessCreateFile})
	if err != nil {
		return storeError(err, store.AccessCreateFile)
	}
	defer st.Close()
	run, err := probeRun(ctx, e, st, f, &opts)
	if err != nil {
		return err
	}

	showProgress := f.progress == "always" || (f.progress == "auto" && isTerminal(e.stderr))
	finish := func() {}
	if showProgress {
		opts.Progress, finish = probeProgress(e.stderr, e.text)
	}
	journal := opts.Journal
	if opts.Resume != "" {
		journal = opts.Resume
	}
	fmt.Fprintln(e.stderr, e.text.T("cli.probe.started", "run", run.ID, "model", orDash(opts.Model), "target", orDash(opts.Target), "journal", journal))
	res, perr := probe.Run(ctx, opts)
	finish()
	endCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if res == nil {
		// Nothing ran: record why.
		_ = st.FinishProbeRun(endCtx, run.ID, endStatus(ctx), perr.Error(), 0, false, nil)
		return probeExit(ctx, perr)
	}
	if err := saveProbe(endCtx, st, run.ID, res, ctx, perr); err != nil && perr == nil {
		perr = err
	}
	if err := writeProbeResults(e, f, out, res); err != nil {
		return err
	}
	return probeOutcome(ctx, e, run.ID, res, perr, failOn)
}

// checkProbeOutputFlags checks --fail-on, --format, --progress and
// --report, and returns the threshold ("" for none).
func checkProbeOutputFlags(f *probeFlags) (service.Severity, error) {
	var failOn service.Severity
	if f.failOn != "none" && f.failOn != "" {
		var ok bool
		if failOn, ok = service.ParseSeverity(f.failOn); !ok || failOn == service.SeverityNone {
			return "", usage("--fail-on %q: want low, medium, high, critical or none", f.failOn)
		}
	}
	switch f.format {
	case "table", "json", "jsonl", "html":
	default:
		return "", usage("--format %q: want table, json or html", f.format)
	}
	switch f.progress {
	case "auto", "always", "never":
	default:
		return "", usage("--progress %q: want auto, always or never", f.progress)
	}
	if f.report != "" {
		if err := checkWritable(f.report); err != nil {
			return "", usage("--report: %v", err)
		}
	}
	return failOn, nil
}

// writeProbeResults writes the output and the --report file.
func writeProbeResults(e *env, f *probeFlags, out io.Writer, res *probe.Result) error {
	if err := writeProbeOutput(out, f.format, res, e.text); err != nil {
		return fmt.Errorf("writing output: %w", err)
	}
	if f.report != "" {
		if err := writeFileAtomic(f.report, func(fh *os.File) error { return report.HTMLIn(fh, res, e.text) }); err != nil {
			return err
		}
		fmt.Fprintln(e.stderr, e.text.T("cli.report_written", "path", f.report))
	}
	return nil
}

// probeOutcome writes the run's closing line and decides the exit: an
// interruption, a verdict at or above --fail-on, an incomplete run.
func probeOutcome(ctx context.Context, e *env, runID string, res *probe.Result, perr error, failOn service.Severity) error {
	if ctx.Err() != nil {
		return probeExit(ctx, fmt.Errorf("interrupted; partial results saved (continue with llmfence probe --resume %s)", runID))
	}
	worst := res.Worst()
	fmt.Fprintln(e.stderr, e.text.T("cli.probe.summary", "run", runID,
		"planned", fmt.Sprint(res.Planned), "sent", fmt.Sprint(res.Sent), "resumed", fmt.Sprint(res.Resumed),
		"elapsed", res.Elapsed.Round(time.Millisecond).String(),
		"suite", worst.Suite, "suite_msg", "probe.suite."+worst.Suite,
		"verdict", worst.Verdict, "verdict_msg", "probe.verdict."+worst.Verdict,
		"severity", string(worst.Severity), "severity_msg", risk.SeverityID(worst.Severity)))
	if failOn != "" && worst.Severity.Rank() >= failOn.Rank() {
		return &cli.FindingsError{Err: fmt.Errorf("%s: %s is rated %s (--fail-on %s)", worst.Suite, worst.Verdict, worst.Severity, failOn)}
	}
	if perr != nil {
		return probeExit(ctx, fmt.Errorf("the run is incomplete: %w (continue it with llmfence probe --resume %s)", perr, runID))
	}
	if !res.Complete {
		return fmt.Errorf("the run is incomplete: some requests failed (continue it with llmfence probe --resume %s)", runID)
	}
	return nil
}

// probeExit marks a run a signal stopped as interrupted (exit 130 or 143,
// see cli.ExitCode); any other stop is an error (2).
func probeExit(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return cli.Interrupted(err)
	}
	return err
}

func endStatus(ctx context.Context) store.RunStatus {
	if ctx.Err() != nil {
		return store.StatusInterrupted
	}
	return store.StatusFailed
}

// probeOptions turns the flags into options, reading every input file
// before the first request.
func probeOptions(e *env, f *probeFlags, args []string) (probe.Options, error) {
	o := probe.Options{Config: probe.Config{Model: f.model, Baseline: f.baseline, Judge: f.judge, Seed: f.seed,
		Temperature: f.temperature, RareTokens: f.rareTokens, MaxRequests: f.maxRequests},
		APIKey: f.apiKey, InsecureTLS: f.insecure, Stream: f.stream, UserAgent: version.UserAgent(""), Concurrency: f.concurrency,
		MaxConcurrency: f.maxConc, MaxTokens: f.maxTokens, Timeout: f.timeout, RequestTimeout: f.requestTimeout,
		Logger: e.log, Tool: version.String(), Resume: f.resume}
	if o.APIKey == "" {
		o.APIKey = os.Getenv(envProbeKey)
	}
	if len(args) == 1 {
		t, err := probe.ParseTarget(args[0])
		if err != nil {
			return o, usage("%v", err)
		}
		o.Target = t
	}
	if f.resume == "" {
		if o.Target == "" {
			return o, usage("no target: give the URL of one model server (see llmfence probe --help)")
		}
		if f.model == "" {
			return o, usage("no model: give --model NAME")
		}
	}
	if err := probeSelection(f, &o); err != nil {
		return o, err
	}
	if f.concurrency < 0 || f.maxConc < 1 || f.maxRequests < 0 || f.maxTokens < 0 || f.timeout < 0 || f.requestTimeout <= 0 || f.rareTokens < 0 {
		return o, usage("--concurrency, --max-concurrency, --max-requests, --max-tokens, --timeout, --request-timeout and --rare-tokens must not be negative")
	}
	if err := probeInputs(e, f, &o); err != nil {
		return o, err
	}
	return o, probePacks(f, &o)
}

// probeSelection checks --api, --suite and --lang into o.
func probeSelection(f *probeFlags, o *probe.Options) error {
	switch f.api {
	case "auto":
	case "ollama", "openai":
		o.API = f.api
	default:
		return usage("--api %q: want auto, ollama or openai", f.api)
	}
	for _, s := range f.suites {
		s = strings.TrimSpace(strings.ToLower(s))
		if !slices.Contains(packs.Suites, s) {
			return usage("--suite %q: want %s", s, strings.Join(packs.Suites, ", "))
		}
		o.Suites = append(o.Suites, s)
	}
	for _, l := range f.langs {
		if !slices.Contains(packs.Languages, l) {
			return usage("--lang %q: want %s", l, strings.Join(packs.Languages, ", "))
		}
		o.Languages = append(o.Languages, l)
	}
	return nil
}

// probeInputs reads --triggers, --canary, --canaries and --system-prompt
// into o.
func probeInputs(e *env, f *probeFlags, o *probe.Options) error {
	if f.triggers != "" {
		ts, err := probe.ReadTriggersFile(f.triggers)
		if err != nil {
			return usage("--triggers: %v", err)
		}
		o.Triggers = ts
		if len(o.Triggers) == 0 {
			fmt.Fprintln(e.stderr, e.text.T("cli.probe.no_triggers", "path", f.triggers))
		}
	}
	for _, c := range f.canaries {
		cs, err := probe.ParseCanary(c)
		if err != nil {
			return usage("--canary: %v", err)
		}
		o.Canaries = append(o.Canaries, cs)
	}
	if f.canariesFile != "" {
		cs, err := probe.ReadCanariesFile(f.canariesFile)
		if err != nil {
			return usage("--canaries: %v", err)
		}
		o.Canaries = append(o.Canaries, cs...)
	}
	if f.systemPrompt != "" {
		b, err := probe.ReadFileMax(f.systemPrompt, 64<<10)
		if err != nil {
			return usage("--system-prompt: %v", err)
		}
		o.SystemPrompt = string(b)
	}
	return nil
}

// probePacks loads the built-in packs and every --pack into o.
func probePacks(f *probeFlags, o *probe.Options) error {
	if len(f.userPacks) == 0 {
		return nil
	}
	ps, err := packs.Builtin()
	if err != nil {
		return err
	}
	for _, path := range f.userPacks {
		p, ref, err := probe.ReadUserPack(path)
		if err != nil {
			return usage("--pack: %v", err)
		}
		ps = append(ps, p)
		o.UserPacks = append(o.UserPacks, ref)
	}
	o.Packs = ps
	return nil
}

// probeRun records the run in the store and settles the journal: a new
// run gets probe/<id>.jsonl beside the store (or --journal); --resume takes
// a run ID or a journal file.
func probeRun(ctx context.Context, e *env, st store.ProbeRunStore, f *probeFlags, o *probe.Options) (store.ProbeRun, error) {
	if f.resume != "" {
		if fi, err := os.Stat(f.resume); err == nil && !fi.IsDir() {
			// A journal file: find its run by path, or record a new one.
			abs, _ := filepath.Abs(f.resume)
			o.Resume = abs
			runs, _ := st.ProbeRuns(ctx, store.ProbeRunFilter{})
			for _, r := range runs {
				if r.Journal == abs {
					return r, st.ReopenProbeRun(ctx, r.ID)
				}
			}
			h, err := journalHeader(abs)
			if err != nil {
				return store.ProbeRun{}, usage("--resume %s: %v", f.resume, err)
			}
			return newProbeRun(ctx, st, h.Config, abs)
		}
		r, err := st.GetProbeRun(ctx, strings.TrimPrefix(f.resume, "#"))
		if err != nil {
			return store.ProbeRun{}, usage("--resume %q: not a journal file, and %v", f.resume, err)
		}
		if r.Journal == "" {
			return store.ProbeRun{}, usage("--resume %s: the run has no journal", f.resume)
		}
		o.Resume = r.Journal
		return r, st.ReopenProbeRun(ctx, r.ID)
	}
	r, err := newProbeRun(ctx, st, o.Config, "")
	if err != nil {
		return r, err
	}
	path := f.journal
	if path == "" {
		dir, err := journalDir(e.db)
		if err != nil {
			return r, err
		}
		path = filepath.Join(dir, "probe-"+r.ID+".jsonl")
	}
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	o.Journal = path
	return r, st.SetProbeJournal(ctx, r.ID, path)
}

func newProbeRun(ctx context.Context, st store.ProbeRunStore, c probe.Config, journal string) (store.ProbeRun, error) {
	host, port := probe.TargetHostPort(c.Target)
	r, err := st.CreateProbeRun(ctx, store.ProbeRun{Target: c.Target, Host: host, Port: port, API: c.API, Model: c.Model,
		Baseline: c.Baseline, Judge: c.Judge, Suites: c.Suites, Journal: journal, Args: os.Args, ToolVersion: version.String()})
	if err != nil {
		return r, err
	}
	return r, nil
}

func journalHeader(path string) (probe.Header, error) {
	fh, err := os.Open(path)
	if err != nil {
		return probe.Header{}, err
	}
	defer fh.Close()
	h, _, _, err := probe.ReadJournal(fh)
	return h, err
}

// journalDir is where journals go by default: a "probe" directory beside
// a SQLite store, or beside the default store for PostgreSQL.
func journalDir(db string) (string, error) {
	kind, path, err := store.ParseDSN(db)
	if err != nil || kind != store.KindSQLite {
		if path, err = store.DefaultPath(); err != nil {
			return "", err
		}
	}
	dir := filepath.Join(filepath.Dir(path), "probe")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("cannot create the journal directory: %w", err)
	}
	return dir, nil
}

// saveProbe records the run's end and verdicts.
func saveProbe(ctx context.Context, st store.ProbeRunStore, id string, res *probe.Result, runCtx context.Context, perr error) error {
	var vs []store.ProbeVerdict
	answered := 0
	for _, a := range res.Attempts {
		if a.Error == "" {
			answered++
		}
	}
	for _, s := range res.Summaries {
		doc, _ := json.Marshal(s)
		vs = append(vs, store.ProbeVerdict{Suite: s.Suite, Verdict: s.Verdict, Severity: s.Severity, Summary: doc})
	}
	status, reason := store.StatusFinished, ""
	switch {
	case runCtx.Err() != nil:
		status, reason = store.StatusInterrupted, "interrupted"
	case perr != nil:
		status, reason = store.StatusFailed, perr.Error()
	case !res.Complete:
		reason = "some requests failed"
	}
	return st.FinishProbeRun(ctx, id, status, reason, answered, res.Complete, vs)
}

func writeProbeOutput(w io.Writer, format string, res *probe.Result, text *locale.Printer) error {
	switch format {
	case "json", "jsonl":
		return report.JSONLines(w, res)
	case "html":
		return report.HTMLIn(w, res, text)
	}
	return report.Table(w, res, report.TableOptions{Color: llmreport.UseColor(w, os.Getenv), Text: text})
}

// probeProgress redraws one status line on a terminal, in the printer's
// language.
func probeProgress(w io.Writer, text *locale.Printer) (func(probe.Progress), func()) {
	const width = 24
	drawn := false
	progress := func(p probe.Progress) {
		frac := 0.0
		if p.Total > 0 {
			frac = min(1, float64(p.Done)/float64(p.Total))
		}
		fill := int(frac * width)
		eta := "--"
		if p.Done > 0 && p.Total > p.Done {
			eta = (time.Duration(float64(p.Elapsed) / float64(p.Done) * float64(p.Total-p.Done))).Round(time.Second).String()
		}
		fmt.Fprintf(w, "\r[%s%s] %s\x1b[K", strings.Repeat("=", fill), strings.Repeat(" ", width-fill),
			text.T("cli.probe.progress", "done", fmt.Sprint(p.Done), "total", fmt.Sprint(p.Total),
				"in_flight", fmt.Sprint(p.InFlight), "limit", fmt.Sprint(p.Limit),
				"tokens", fmt.Sprint(p.Tokens), "errors", fmt.Sprint(p.Errors), "eta", eta))
		drawn = true
	}
	return progress, func() {
		if drawn {
			fmt.Fprint(w, "\n")
		}
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
