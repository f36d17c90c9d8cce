package main

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/llmfence/llmfence/internal/lab"
	"github.com/llmfence/llmfence/internal/report"
	"github.com/llmfence/llmfence/internal/store"
)

type labFlags struct {
	seed        int64
	prefix      string
	live        int
	hostile     float64
	groundTruth string
}

func (f *labFlags) register(cmd *cobra.Command, defPrefix string, defLive int) {
	fl := cmd.Flags()
	fl.Int64Var(&f.seed, "lab-seed", 1, "seed the fleet is drawn from (same seed, same fleet)")
	fl.StringVar(&f.prefix, "lab-prefix", defPrefix, "loopback prefix the fleet's hosts are drawn from (inside 127.0.0.0/8)")
	fl.IntVar(&f.live, "lab-hosts", defLive, "number of emulated servers")
	fl.Float64Var(&f.hostile, "lab-hostile", 0.02, "share of hostile servers (tarpits, gzip bombs, garbage, ...)")
	fl.StringVar(&f.groundTruth, "ground-truth", "", "write the fleet's ground truth (JSON) to `FILE`")
}

func (f *labFlags) start(ctx context.Context) (*lab.Fleet, netip.Prefix, error) {
	prefix, err := netip.ParsePrefix(f.prefix)
	if err != nil {
		return nil, prefix, fmt.Errorf("--lab-prefix %q: %w", f.prefix, err)
	}
	personas, err := lab.Generate(lab.Config{Seed: f.seed, Prefix: prefix, Live: f.live, HostileFraction: f.hostile})
	if err != nil {
		return nil, prefix, err
	}
	if f.groundTruth != "" {
		if err := writeFileAtomic(f.groundTruth, func(fh *os.File) error { return lab.WriteGroundTruth(fh, personas) }); err != nil {
			return nil, prefix, fmt.Errorf("--ground-truth: %w", err)
		}
	}
	fleet, err := lab.Start(ctx, personas)
	if err != nil {
		return nil, prefix, err
	}
	return fleet, prefix.Masked(), nil
}

func newLabCmd(e *env) *cobra.Command {
	var f labFlags
	var pf probeLabFlags
	cmd := &cobra.Command{
		Use:   "lab",
		Short: "Serve an emulated fleet of LLM servers on loopback (for tests, demos, benchmarks)",
		Long: `Serve an emulated fleet of self-hosted LLM servers on loopback addresses
(127.0.0.0/8), each a persona drawn from a seed: a stack (Ollama, vLLM,
llama.cpp, LM Studio, LocalAI, TGI, text-generation-webui, Open WebUI,
KoboldCpp, SGLang, LiteLLM, Xinference, GPT4All, Jan, generic
OpenAI-compatible), a version, authentication on or off, models and system
prompts, answering with the real servers' response shapes. A few personas are
hostile (tarpits, gzip bombs, endless bodies) to show the scanner stays
bounded. Runs until interrupted.`,
		Example: `  llmfence lab --lab-hosts 2000 --lab-prefix 127.200.0.0/16 --ground-truth fleet.json
  llmfence scan 127.200.0.0/16`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if pf.persona != "" {
				return pf.serve(ctx, e, f.groundTruth)
			}
			fleet, prefix, err := f.start(ctx)
			if err != nil {
				return err
			}
			defer fleet.Close()
			fmt.Fprintf(e.stderr, "llmfence: lab: %d emulated servers on %s; scan it with: llmfence scan %s\n", f.live, prefix, prefix)
			fmt.Fprintln(e.stderr, "llmfence: lab: press Ctrl-C to stop")
			<-ctx.Done()
			return nil
		},
	}
	f.register(cmd, "127.200.0.0/16", 2000)
	pf.register(cmd)
	return cmd
}

func newDemoCmd(e *env) *cobra.Command {
	var lf labFlags
	var sf scanFlags
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Start the lab fleet on loopback, scan it, write the HTML report, say where",
		Long: `A tour of llmfence in one command, touching nothing but loopback: start a
small emulated fleet of LLM servers on 127.77.0.0/24, scan it with the
default ports, save the run to the store, print the table and write a
self-contained HTML report.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if sf.report == "" {
				wd, err := os.Getwd()
				if err != nil {
					return err
				}
				sf.report = filepath.Join(wd, "llmfence-demo-report.html")
			}
			fleet, prefix, err := lf.start(ctx)
			if err != nil {
				return err
			}
			defer fleet.Close()
			fmt.Fprintln(e.stderr, e.text.T("cli.demo.started", "n", strconv.Itoa(lf.live), "prefix", prefix.String()))
			sf.ports = defaultPortSpec()
			start := time.Now()
			if err := runScan(ctx, e, &sf, []string{prefix.String()}, []string{"llmfence", "demo"}); err != nil {
				return err
			}
			abs, _ := filepath.Abs(sf.report)
			fmt.Fprintln(e.stderr, e.text.T("cli.demo.finished", "elapsed", time.Since(start).Round(time.Millisecond).String(), "path", abs))
			fmt.Fprintln(e.stderr, e.text.T("cli.demo.next"))
			dbFlag := ""
			if e.db != "" {
				dbFlag = " --db " + store.Redact(e.db)
			}
			fmt.Fprintln(e.stderr, e.text.T("cli.demo.serve", "db", dbFlag, "listen", DefaultServeListen))
			return nil
		},
	}
	lf.register(cmd, "127.77.0.0/24", 40)
	sf.register(cmd, false)
	cmd.Flags().Lookup("rate").DefValue = "0"
	sf.rate = 0
	cmd.Flags().Lookup("timeout").DefValue = "2s"
	sf.timeout = 2 * time.Second
	cmd.Flags().Lookup("target-budget").DefValue = "5s"
	sf.budget = 5 * time.Second
	return cmd
}

// writeFileAtomic writes an output file the one way (report.WriteFileAtomic:
// atomically, readable by its owner only).
func writeFileAtomic(path string, write func(*os.File) error) error {
	return report.WriteFileAtomic(path, write)
}
