package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/llmfence/llmfence/internal/report"
	"github.com/llmfence/llmfence/internal/store"
)

func newProbesCmd(e *env) *cobra.Command {
	var format, host, model string
	var port, limit int
	cmd := &cobra.Command{
		Use:   "probes",
		Short: "List probe runs in the store, newest first, with their verdicts",
		Long: `List the runs of llmfence probe kept in the store: which model on which
host:port (the host and port scan records), when, how the run ended and the
verdict of each suite.`,
		Example: `  llmfence probes
  llmfence probes --host 127.0.0.1 --port 11434
  llmfence probes --model qwen2.5:7b --format json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkFormat(format); err != nil {
				return usage("%v", err)
			}
			st, err := store.OpenProbeWith(cmd.Context(), e.db, store.Options{Logger: e.log, Access: store.AccessExisting})
			if err != nil {
				return storeError(err, store.AccessExisting)
			}
			defer st.Close()
			runs, err := st.ProbeRuns(cmd.Context(), store.ProbeRunFilter{Host: host, Port: port, Model: model, Limit: limit})
			if err != nil {
				return err
			}
			if format == "json" {
				return report.WriteJSONL(e.stdout, runs)
			}
			if len(runs) == 0 {
				fmt.Fprintln(e.stdout, "No probe runs in the store yet (llmfence probe URL --model NAME).")
				return nil
			}
			return report.ProbeRunsTable(e.stdout, runs, report.ListOptions{})
		},
	}
	formatFlag(cmd, &format)
	cmd.Flags().StringVar(&host, "host", "", "only runs against this host")
	cmd.Flags().IntVar(&port, "port", 0, "only runs against this port")
	cmd.Flags().StringVar(&model, "model", "", "only runs of this model")
	cmd.Flags().IntVar(&limit, "limit", 50, "most runs listed (0: all)")
	return cmd
}
