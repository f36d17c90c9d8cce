package main

import (
	"cmp"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/llmfence/llmfence/internal/cli"
	"github.com/llmfence/llmfence/internal/report"
	"github.com/llmfence/llmfence/internal/service"
	"github.com/llmfence/llmfence/internal/store"
)

// The history commands read the store: runs, hosts, findings, diff.

func formatFlag(cmd *cobra.Command, p *string) {
	cmd.Flags().StringVarP(p, "format", "f", "table", "output format: table or json")
}

func checkFormat(f string) error {
	if f != "table" && f != "json" {
		return fmt.Errorf("--format %q: want table or json", f)
	}
	return nil
}

func newRunsCmd(e *env) *cobra.Command {
	var format string
	var limit int
	cmd := &cobra.Command{
		Use:   "runs",
		Short: "List scan runs in the store, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkFormat(format); err != nil {
				return err
			}
			st, err := openStore(cmd.Context(), e, store.AccessExisting)
			if err != nil {
				return err
			}
			defer st.Close()
			// A run whose scanner was killed would read "running" forever.
			if _, err := st.MarkStaleRuns(cmd.Context(), store.StalePolicy{}); err != nil {
				e.log.Warn("could not check for abandoned runs", "err", err)
			}
			runs, err := st.Runs(cmd.Context(), limit)
			if err != nil {
				return err
			}
			if format == "json" {
				return report.WriteJSONL(e.stdout, runs)
			}
			return report.RunsTable(e.stdout, runs, report.ListOptions{})
		},
	}
	formatFlag(cmd, &format)
	cmd.Flags().IntVarP(&limit, "limit", "n", 20, "show at most this many runs (0 = all)")
	cmd.AddCommand(newRunsPruneCmd(e))
	return cmd
}

func newHostsCmd(e *env) *cobra.Command {
	var format, product, minRisk, auth, address, gateway string
	var since time.Duration
	cmd := &cobra.Command{
		Use:   "hosts",
		Short: "List every LLM service the store has seen, with first-seen and last-seen",
		Example: `  llmfence hosts
  llmfence hosts --product ollama --min-risk high
  llmfence hosts --auth none --since 24h --format json
  llmfence hosts --gateway none --product ollama    # Ollama servers with no gateway in front`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkFormat(format); err != nil {
				return err
			}
			var f store.HostFilter
			f.Product, f.Address, f.Gateway = product, address, gateway
			if minRisk != "" {
				sev, ok := service.ParseSeverity(minRisk)
				if !ok {
					return fmt.Errorf("--min-risk %q: want info, low, medium, high or critical", minRisk)
				}
				f.MinRisk = sev
			}
			switch service.Auth(auth) {
			case "", service.AuthNone, service.AuthRequired, service.AuthUnknown:
				f.Auth = service.Auth(auth)
			default:
				return fmt.Errorf("--auth %q: want none, required or unknown", auth)
			}
			if since > 0 {
				f.SeenSince = time.Now().Add(-since)
			}
			st, err := openStore(cmd.Context(), e, store.AccessExisting)
			if err != nil {
				return err
			}
			defer st.Close()
			hosts, err := st.Hosts(cmd.Context(), f)
			if err != nil {
				return err
			}
			if format == "json" {
				return report.WriteJSONL(e.stdout, hosts)
			}
			return report.HostsTable(e.stdout, hosts, report.ListOptions{})
		},
	}
	formatFlag(cmd, &format)
	cmd.Flags().StringVar(&product, "product", "", "only this product (ollama, vllm, llamacpp, ...)")
	cmd.Flags().StringVar(&minRisk, "min-risk", "", "only hosts rated at least this risk")
	cmd.Flags().StringVar(&auth, "auth", "", "only hosts with this auth state: none, required, unknown")
	cmd.Flags().StringVar(&address, "address", "", "only this address or CIDR")
	cmd.Flags().StringVar(&gateway, "gateway", "", "only hosts fenced by this gateway (llmfence-guard, litellm, nginx, caddy, basic-auth), by any, or by none")
	cmd.Flags().Var(cli.NewDuration(&since, 0, cli.NonNegative), "since", "only hosts seen within this long (e.g. 24h, 7d; 0 = any time)")
	return cmd
}

func newFindingsCmd(e *env) *cobra.Command {
	var format, run, minSev, id, address string
	cmd := &cobra.Command{
		Use:   "findings",
		Short: "List findings of a run (default: the latest finished run)",
		Example: `  llmfence findings
  llmfence findings --min-severity high --format json
  llmfence findings --run 12 --id LLMF-002`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkFormat(format); err != nil {
				return err
			}
			f := store.FindingFilter{Run: run, ID: id, Address: address}
			if minSev != "" {
				sev, ok := service.ParseSeverity(minSev)
				if !ok {
					return fmt.Errorf("--min-severity %q: want info, low, medium, high or critical", minSev)
				}
				f.MinSeverity = sev
			}
			st, err := openStore(cmd.Context(), e, store.AccessExisting)
			if err != nil {
				return err
			}
			defer st.Close()
			if r, err := st.GetRun(cmd.Context(), cmp.Or(f.Run, store.RefLatest)); err != nil {
				return err
			} else if f.Run == "" || f.Run != r.ID {
				f.Run = r.ID
				fmt.Fprintf(e.stderr, "llmfence: findings of run %s (%s, targets %s)\n", r.ID, cmp.Or(run, store.RefLatest), strings.Join(r.Targets, " "))
			}
			rows, err := st.Findings(cmd.Context(), f)
			if err != nil {
				return err
			}
			if format == "json" {
				return report.WriteJSONL(e.stdout, rows)
			}
			return report.FindingsTable(e.stdout, rows, report.ListOptions{})
		},
	}
	formatFlag(cmd, &format)
	cmd.Flags().StringVar(&run, "run", "", "run ID, latest, or previous (the latest run's predecessor over the same targets); default latest")
	cmd.Flags().StringVar(&minSev, "min-severity", "", "only findings at least this severe")
	cmd.Flags().StringVar(&id, "id", "", "only this finding ID")
	cmd.Flags().StringVar(&address, "address", "", "only this address or CIDR")
	return cmd
}

func newDiffCmd(e *env) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "diff [RUN_A RUN_B]",
		Short: "What appeared, disappeared or changed between two runs (default: the latest two over the same targets)",
		Long: `Compare two scan runs: services that appeared or disappeared, and for those in
both, what changed: version, product, authentication, risk, models added or
removed, model digests, system prompts, findings.

RUN is a run ID from "llmfence runs", or latest / previous. Without RUNs,
diff compares the latest finished run with the previous finished run over
the same targets and ports (previous), and says which runs it compared.`,
		Example: `  llmfence diff
  llmfence diff 41 42
  llmfence diff previous latest --format json`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 0 && len(args) != 2 {
				return fmt.Errorf("diff takes two runs (RUN_A RUN_B) or none (previous and latest), got %d", len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkFormat(format); err != nil {
				return err
			}
			a, b := store.RefPrevious, store.RefLatest
			if len(args) == 2 {
				a, b = args[0], args[1]
			}
			st, err := openStore(cmd.Context(), e, store.AccessExisting)
			if err != nil {
				return err
			}
			defer st.Close()
			d, err := st.Diff(cmd.Context(), a, b)
			if err != nil {
				return err
			}
			if len(args) == 0 {
				fmt.Fprintf(e.stderr, "llmfence: comparing run %s with run %s, the latest two finished runs over the same targets and ports\n", d.From.ID, d.To.ID)
			}
			if format == "json" {
				return report.WriteJSONL(e.stdout, []store.Diff{d})
			}
			return report.DiffText(e.stdout, d)
		},
	}
	formatFlag(cmd, &format)
	return cmd
}
