package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/llmfence/llmfence/internal/store"
)

// newRunsPruneCmd is `llmfence runs prune`: retention of old runs.
func newRunsPruneCmd(e *env) *cobra.Command {
	var olderThan string
	var keep int
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "prune",
		Short: "Delete scan runs older than an age, keeping the newest finished runs of each scope",
		Long: `Delete old scan runs with their services and findings. The host history
(llmfence hosts) and the inventory of llmfence serve keep what they learnt.
Running runs are never deleted, and the --keep newest finished runs of each
scope (the same targets, exclusions and ports) survive whatever their age,
so diff always has a previous run to compare with.`,
		Example: `  llmfence runs prune --older-than 90d
  llmfence runs prune --older-than 30d --keep 5 --dry-run`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			age, err := parseLongDuration(olderThan)
			if err != nil || age <= 0 {
				return badKeysArg(fmt.Errorf("--older-than %q: want a positive duration such as 2160h or 90d", olderThan))
			}
			if keep < 0 {
				return badKeysArg(fmt.Errorf("--keep %d: want 0 or more", keep))
			}
			st, err := openStore(cmd.Context(), e, store.AccessExisting)
			if err != nil {
				return err
			}
			defer st.Close()
			res, err := st.PruneRuns(cmd.Context(), store.PrunePolicy{OlderThan: age, Keep: keep, DryRun: dryRun})
			if err != nil {
				return err
			}
			verb := "deleted"
			if dryRun {
				verb = "would delete"
			}
			fmt.Fprintf(e.stdout, "%s %d runs (%d services, %d findings)\n", verb, res.Runs, res.Services, res.Findings)
			return nil
		},
	}
	cmd.Flags().StringVar(&olderThan, "older-than", "90d", "delete runs that ended longer ago than this `DURATION` (e.g. 2160h, 90d)")
	cmd.Flags().IntVar(&keep, "keep", 3, "always keep this many newest finished runs of each scope")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "say what would be deleted, delete nothing")
	return cmd
}
