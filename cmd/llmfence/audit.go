package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/llmfence/llmfence/internal/audit"
	"github.com/llmfence/llmfence/internal/cli"
	"github.com/llmfence/llmfence/internal/fingerprint"
	"github.com/llmfence/llmfence/internal/inspect"
	"github.com/llmfence/llmfence/internal/service"
	"github.com/llmfence/llmfence/internal/version"
)

// EnvSendKey names the environment variable holding the --send key.
const EnvSendKey = "LLMFENCE_SEND_KEY"

// auditFlags are the knobs of `llmfence audit`.
type auditFlags struct {
	format      string
	output      string
	report      string
	inspect     bool
	send        string
	sendKeyFile string
	spool       string
	failOn      string
	noProbe     bool
	timeout     time.Duration
	root        string // hidden: audit a machine image below this directory
}

func newAuditCmd(e *env) *cobra.Command {
	var f auditFlags
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Find local LLM runtimes on this machine: how they listen, their settings, their model stores",
		Long: `audit looks at the machine it runs on, not at the network: which LLM
runtimes run (Ollama, llama.cpp llama-server, vLLM, SGLang, TGI, LocalAI,
LM Studio, text-generation-webui, KoboldCpp, Jan, GPT4All, Open WebUI), as
which user, in which container, bound to which addresses, with which
settings (environment, command line, systemd units and drop-ins), and which
model stores sit on disk (Ollama, Hugging Face cache, LM Studio, GPT4All,
llama.cpp cache) with their size, model count and largest models.

A runtime bound to all interfaces or a network address is reported as
exposed. Each runtime that listens in the audit's own network namespace is
asked once what it is, with the scan's read-only fingerprint requests to its
own loopback port; nothing else is sent anywhere (except the result, with
--send). Model files are never opened unless --inspect is given; sizes come
from file metadata.

Findings and remediation come from the same catalogue as 'llmfence scan'
(docs/findings.md), with the audit's own entries LLMF-013..017. The fix comes
first, as commands for this machine.

Run it as root for a complete answer: other users' environments, open
sockets and home directories are hidden from a normal user, and what could
not be read is reported, never taken as safe.

Exit status:
  0  nothing at or above --fail-on
  1  a runtime or store at or above --fail-on (default high)
  2  usage error, the audit could not read everything (run as root), or
     --send could not deliver the result (it is kept, see --spool)
  130 interrupted`,
		Example: `  sudo llmfence audit
  sudo llmfence audit --format json > audit.jsonl
  sudo llmfence audit --report audit.html --inspect
  sudo LLMFENCE_SEND_KEY=... llmfence audit --send https://llmfence.example.internal/api/audit`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageError("audit takes no arguments (it audits the machine it runs on), got %q", args)
			}
			return nil
		},
		SilenceUsage: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runAudit(cmd, e, &f)
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&f.format, "format", "f", "table", "output format: table, json (JSON Lines: a machine record, then one per runtime and store), html")
	fl.StringVarP(&f.output, "output", "o", "-", "write the output to `FILE` instead of standard output")
	fl.StringVar(&f.report, "report", "", "also write a self-contained HTML report to `FILE`")
	fl.BoolVar(&f.inspect, "inspect", false, "also inspect every model store (reads every model file: integrity, unsafe pickles, harmful system prompts)")
	fl.StringVar(&f.send, "send", "", "POST the result (JSON Lines) to `URL` (llmfence serve), with the key from $"+EnvSendKey+" or --send-key-file")
	fl.StringVar(&f.sendKeyFile, "send-key-file", "", "read the --send key from `FILE`")
	fl.StringVar(&f.spool, "spool", "", "keep results --send could not deliver in `DIR` (default $XDG_STATE_HOME/llmfence/audit-spool); they are sent first next time")
	fl.StringVar(&f.failOn, "fail-on", "high", "exit with status 1 when a runtime or store is rated at least this risk (none, info, low, medium, high, critical)")
	fl.BoolVar(&f.noProbe, "no-probe", false, "do not ask runtimes on their loopback port what they are")
	fl.Var(cli.NewDuration(&f.timeout, 5*time.Second, cli.Positive), "timeout", "timeout of one loopback request")
	fl.StringVar(&f.root, "root", "/", "read the machine below `DIR` (a mounted image); loopback probes are off then")
	_ = fl.MarkHidden("root")
	return cmd
}

func runAudit(cmd *cobra.Command, e *env, f *auditFlags) error {
	ctx := cmd.Context()
	if f.format != "table" && f.format != "json" && f.format != "html" {
		return usageError("--format %q: want table, json or html", f.format)
	}
	failOn, ok := service.ParseSeverity(f.failOn)
	if !ok {
		return usageError("--fail-on %q: want none, info, low, medium, high or critical", f.failOn)
	}
	if f.timeout <= 0 {
		return usageError("--timeout must be positive")
	}
	sender, err := auditSender(f)
	if err != nil {
		return err
	}
	for _, p := range []string{f.report, f.output} {
		if p != "" && p != "-" {
			if err := checkWritable(p); err != nil {
				return usageError("%v", err)
			}
		}
	}
	opts, err := auditOptions(e, f)
	if err != nil {
		return err
	}
	res, err := audit.Run(ctx, opts)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return err
	}
	if err := writeAuditResults(e, f, res); err != nil {
		return err
	}
	if sender != nil {
		if err := sendAudit(cmd, e, sender, res); err != nil {
			return err
		}
	}
	return auditStatus(res, failOn)
}

// auditSender checks --send and its key; nil when nothing is sent.
func auditSender(f *auditFlags) (*audit.Sender, error) {
	if f.send == "" {
		return nil, nil
	}
	if err := audit.CheckSendURL(f.send); err != nil {
		return nil, usageError("--send: %v", err)
	}
	key, err := sendKey(f)
	if err != nil {
		return nil, usageError("--send: %v", err)
	}
	spool := f.spool
	if spool == "" {
		spool = audit.DefaultSpoolDir()
	}
	return &audit.Sender{URL: f.send, Key: key, SpoolDir: spool, UserAgent: version.UserAgent("")}, nil
}

// auditOptions wires the audit: the machine (or the image under --root),
// the fingerprinting of listening runtimes unless --no-probe, and the
// model inspection under --inspect.
func auditOptions(e *env, f *auditFlags) (audit.Options, error) {
	judge, err := newJudge()
	if err != nil {
		return audit.Options{}, err
	}
	opts := audit.Options{Version: version.String(), Logger: e.log, Judge: judge}
	if f.root != "/" && f.root != "" {
		opts.Reader, opts.ReaderName = audit.NewLinux(f.root), "linux (image at "+f.root+")"
	} else {
		r, name, err := audit.HostReader()
		if err != nil {
			return opts, err
		}
		opts.Reader, opts.ReaderName = r, name
		if !f.noProbe {
			p, err := fingerprint.New(fingerprint.Options{Timeout: f.timeout, TargetBudget: 6 * f.timeout, MaxModels: 64, Logger: e.log})
			if err != nil {
				return opts, err
			}
			opts.Prober = audit.FingerprintProber(p)
		}
	}
	if f.inspect {
		in, err := inspect.New(inspect.Options{Logger: e.log})
		if err != nil {
			return opts, err
		}
		opts.Inspector = audit.InspectorFor(in, judge)
	}
	return opts, nil
}

// writeAuditResults writes the output in --format and the --report file.
func writeAuditResults(e *env, f *auditFlags, res *audit.Result) error {
	out, closeOut, err := openOutput(e, f.output)
	if err != nil {
		return usageError("%v", err)
	}
	switch f.format {
	case "json":
		err = audit.WriteJSONL(out, res)
	case "html":
		err = audit.WriteHTMLIn(out, res, e.text)
	default:
		err = audit.WriteTableIn(out, res, e.text)
	}
	if cerr := closeOut(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("writing the output: %w", err)
	}
	if f.report != "" {
		if err := writeFileAtomic(f.report, func(fh *os.File) error { return audit.WriteHTMLIn(fh, res, e.text) }); err != nil {
			return fmt.Errorf("--report: %w", err)
		}
	}
	return nil
}

// sendKey reads the --send key: --send-key-file, else $LLMFENCE_SEND_KEY.
// It is never taken from the command line, where other users could read it.
func sendKey(f *auditFlags) (string, error) {
	if f.sendKeyFile != "" {
		b, err := os.ReadFile(f.sendKeyFile)
		if err != nil {
			return "", fmt.Errorf("reading the key: %w", err)
		}
		if k := strings.TrimSpace(string(b)); k != "" {
			return k, nil
		}
		return "", fmt.Errorf("%s is empty", f.sendKeyFile)
	}
	if k := strings.TrimSpace(os.Getenv(EnvSendKey)); k != "" {
		return k, nil
	}
	return "", fmt.Errorf("no key: set $%s or --send-key-file FILE", EnvSendKey)
}

// sendAudit delivers earlier kept results, then this one.
func sendAudit(cmd *cobra.Command, e *env, s *audit.Sender, res *audit.Result) error {
	ctx := cmd.Context()
	var payload bytes.Buffer
	if err := audit.WriteJSONL(&payload, res); err != nil {
		return err
	}
	if sent, left, err := s.Flush(ctx); sent > 0 || err != nil {
		fmt.Fprintln(e.stderr, e.text.T("cli.audit.sent_kept", "sent", fmt.Sprint(sent), "url", s.URL, "left", fmt.Sprint(left), "dir", s.SpoolDir))
	}
	if err := s.Send(ctx, payload.Bytes(), res.Machine.Host); err != nil {
		return err // kept locally: NotSentError says where
	}
	fmt.Fprintln(e.stderr, e.text.T("cli.audit.sent", "url", s.URL))
	return nil
}

// auditStatus maps the result to the exit status: 1 for a rating at or
// above the threshold, else 2 when something could not be read.
func auditStatus(res *audit.Result, failOn service.Severity) error {
	t := max(failOn.Rank(), 1)
	var failed []string
	for _, rt := range res.Runtimes {
		if rt.Risk.Rank() >= t {
			failed = append(failed, fmt.Sprintf("%s (pid %d) is %s", rt.Product, rt.PID, rt.Risk))
		}
	}
	for _, st := range res.Stores {
		if st.Risk.Rank() >= t {
			failed = append(failed, fmt.Sprintf("store %s is %s", st.Path, st.Risk))
		}
	}
	if len(failed) > 0 {
		return &cli.FindingsError{Err: fmt.Errorf("at or above %s: %s", failOn, strings.Join(failed, "; "))}
	}
	if !res.Machine.Complete {
		return errors.New("the audit is incomplete: some processes, settings or files could not be read (see the notes; run as root)")
	}
	return nil
}
