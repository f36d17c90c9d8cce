// Command llmfence finds, fences and inspects self-hosted open LLM servers.
//
// This package parses flags and wires the internal packages together; the
// work itself lives under internal/.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/llmfence/llmfence/internal/cli"
	"github.com/llmfence/llmfence/internal/locale"
	"github.com/llmfence/llmfence/internal/store"
	"github.com/llmfence/llmfence/internal/version"
)

// env is what every command needs from the process: streams and a logger.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	log            *slog.Logger
	db             string          // --db
	text           *locale.Printer // human-facing text in the --lang language
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run executes one command line and returns the exit status. Errors
// become a status in one place, cli.ExitCode (see internal/cli).
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	e := &env{stdin: stdin, stdout: stdout, stderr: stderr}
	root := newRoot(e)
	if err := setupLang(root, e, args); err != nil {
		fmt.Fprintf(stderr, "llmfence: %v\n", cli.Usage("--lang", err))
		return cli.ExitError
	}
	root.SetArgs(nmapStyleArgs(args))
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return cli.ExitOK
	}
	msg := err.Error()
	if errors.Is(err, context.Canceled) && strings.HasSuffix(msg, context.Canceled.Error()) {
		msg = "interrupted before the command finished"
	}
	fmt.Fprintf(stderr, "llmfence: %s\n", msg)
	if cli.IsUsage(err) && cmd != nil {
		fmt.Fprintf(stderr, "llmfence: see \"%s --help\"\n", cmd.CommandPath())
	}
	return cli.ExitCode(ctx, err)
}

// usageErrors makes every flag-parsing and argument error of cmd and its
// subcommands a *cli.UsageError: the root's flag error function is
// inherited by every command, and each argument validator is wrapped.
func usageErrors(cmd *cobra.Command) {
	cmd.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return flagError(err) })
	var wrap func(c *cobra.Command)
	wrap = func(c *cobra.Command) {
		if c.Args != nil {
			args := c.Args
			c.Args = func(c *cobra.Command, a []string) error { return cli.Usage("", args(c, a)) }
		}
		for _, sub := range c.Commands() {
			wrap(sub)
		}
	}
	wrap(cmd)
}

// flagError turns pflag's `invalid argument "x" for "-f, --format" flag:
// reason` into `--format "x": reason`, naming the flag first.
func flagError(err error) error {
	msg := err.Error()
	const pre, mid, post = `invalid argument "`, `" for "`, `" flag: `
	if strings.HasPrefix(msg, pre) {
		if i := strings.LastIndex(msg, mid); i > 0 {
			if j := strings.Index(msg[i:], post); j > 0 {
				val := msg[len(pre):i]
				name := msg[i+len(mid) : i+j]
				if k := strings.LastIndex(name, "--"); k >= 0 {
					name = name[k:]
				}
				return &cli.UsageError{Flag: name, Err: fmt.Errorf("%s %q: %s", name, val, msg[i+j+len(post):])}
			}
		}
	}
	return cli.Usage("", err)
}

// openStore opens the store --db names. Only commands that record new
// things (scan, demo, probe) pass store.AccessCreateFile; commands that read or
// change what is recorded pass store.AccessExisting, so a mistyped --db is
// an error, never a new empty store. A --db that names no supported store
// is a usage error.
func openStore(ctx context.Context, e *env, access store.Access) (store.Store, error) {
	st, err := store.OpenWith(ctx, e.db, store.Options{Logger: e.log, Access: access})
	return st, storeError(err, access)
}

// storeError says an open error in the user's terms.
func storeError(err error, access store.Access) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, store.ErrBadInput):
		return cli.Usage("--db", err)
	case errors.Is(err, store.ErrNoStore) && access == store.AccessExisting:
		return fmt.Errorf("%w; \"llmfence scan\" records scans", err)
	}
	return err
}

// versionText is what "llmfence version" and "llmfence --version" print.
func versionText() string {
	v := version.String()
	if c := version.Commit(); c != "" {
		v += " (" + c + ")"
	}
	return "llmfence " + v
}

// nmapStyleArgs accepts nmap's spelling of a target-list file, -iL, which
// single-dash flag parsing cannot express, as --input-list.
func nmapStyleArgs(args []string) []string {
	out := make([]string, 0, len(args))
	for _, a := range args {
		switch {
		case a == "--":
			return append(out, args[len(out):]...)
		case a == "-iL":
			a = "--input-list"
		case len(a) > 4 && a[:4] == "-iL=":
			a = "--input-list=" + a[4:]
		}
		out = append(out, a)
	}
	return out
}

// rootLong is the root command's description; cli.Scheme (the exit
// statuses) follows it.
const rootLong = `llmfence finds, fences and inspects self-hosted open LLMs.

  scan      discover and fingerprint LLM servers (Ollama, vLLM, llama.cpp, ...)
            on networks you own, rate their risk, and keep the history
  demo      start the built-in lab fleet on loopback, scan it, write a report
  lab       serve the emulated fleet on loopback (tests, demos, benchmarks)
  runs, hosts, findings, diff
            what the store knows, and what changed between two scans
  audit     local LLM runtimes and model stores on this machine: how they
            listen, their settings, their models
  serve, worker, users, disclose
            continuous inventory with a web dashboard, scheduled and sharded
            scans, alerts; scan workers on more machines; accounts; reports
            per owner
  probe, probes
            how one model you run behaves: guardrails, backdoor triggers,
            leaks, jailbreaks; probes lists the runs

Scan only networks you are authorised to scan.

`

// rootFlags are the flags every command shares.
type rootFlags struct {
	logLevel, logFormat, cpuProfile string
	stopProfile                     func() // set when --cpuprofile started a profile
}

// setUp applies the shared flags before any command runs: the logger, the
// standard logger's destination and the CPU profile.
func (rf *rootFlags) setUp(e *env) error {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(rf.logLevel)); err != nil {
		return cli.Usagef("--log-level", "%q: want debug, info, warn or error", rf.logLevel)
	}
	hopts := &slog.HandlerOptions{Level: lvl}
	switch rf.logFormat {
	case "text":
		e.log = slog.New(slog.NewTextHandler(e.stderr, hopts))
	case "json":
		e.log = slog.New(slog.NewJSONHandler(e.stderr, hopts))
	default:
		return cli.Usagef("--log-format", "%q: want text or json", rf.logFormat)
	}
	// net/http's client prints what misbehaving peers send
	// ("Unsolicited response received on idle HTTP channel
	// starting with ...") through the standard logger: hostile
	// bytes belong in the debug log, not on the terminal.
	log.SetFlags(0)
	log.SetOutput(debugLogWriter{e.log})
	if rf.cpuProfile != "" {
		f, err := os.Create(rf.cpuProfile)
		if err != nil {
			return fmt.Errorf("--cpuprofile: %w", err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return fmt.Errorf("--cpuprofile: %w", err)
		}
		rf.stopProfile = func() { pprof.StopCPUProfile(); f.Close() }
	}
	return nil
}

func newRoot(e *env) *cobra.Command {
	var rf rootFlags
	root := &cobra.Command{
		Use:           "llmfence",
		Short:         "Find, fence and inspect self-hosted LLM servers",
		Long:          rootLong + cli.Scheme,
		Version:       versionText(),
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			return rf.setUp(e)
		},
		PersistentPostRun: func(cmd *cobra.Command, args []string) {
			if rf.stopProfile != nil {
				rf.stopProfile()
			}
		},
	}
	root.PersistentFlags().StringVar(&rf.cpuProfile, "cpuprofile", "", "write a CPU profile to `FILE` (for performance work)")
	root.PersistentFlags().MarkHidden("cpuprofile")
	root.PersistentFlags().StringVar(&rf.logLevel, "log-level", "warn", "log level: debug, info, warn, error")
	root.PersistentFlags().StringVar(&rf.logFormat, "log-format", "text", "log format: text or json")
	root.PersistentFlags().StringVar(&e.db, "db", "", "store: a SQLite file path (default: per-user data dir, or $LLMFENCE_DB) or postgres://user@host/db")

	root.AddCommand(
		newVersionCmd(e),
		newScanCmd(e),
		newDemoCmd(e),
		newLabCmd(e),
		newRunsCmd(e),
		newHostsCmd(e),
		newFindingsCmd(e),
		newDiffCmd(e),
		newInspectCmd(e),
		newDatascanCmd(e),
		newKeysCmd(e),
		newUsageCmd(e),
		newCapturesCmd(e),
		newGuardCmd(e),
		newVulnDBCmd(e),
		newAuditCmd(e),
		newServeCmd(e),
		newWorkerCmd(e),
		newUsersCmd(e),
		newDiscloseCmd(e),
		newProbeCmd(e),
		newProbesCmd(e),
	)
	root.Flags().BoolP("version", "v", false, `print the llmfence version (as "llmfence version")`)
	root.SetVersionTemplate("{{.Version}}\n")
	usageErrors(root)
	return root
}

func newVersionCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the llmfence version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			fmt.Fprintln(e.stdout, versionText())
			return nil
		},
	}
}

// debugLogWriter sends the standard logger's lines to l at debug level.
type debugLogWriter struct{ l *slog.Logger }

func (w debugLogWriter) Write(p []byte) (int, error) {
	w.l.Debug(strings.TrimRight(string(p), "\n"), "from", "standard logger")
	return len(p), nil
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
