package main

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/llmfence/llmfence/internal/cli"
	"github.com/llmfence/llmfence/internal/report"
	"github.com/llmfence/llmfence/internal/store"
)

// The captures command shows the prompts and responses `llmfence guard`
// stored (only when its capture is enabled; always redacted) and deletes
// old ones. It reads the store (--db).

func newCapturesCmd(e *env) *cobra.Command {
	var format, key string
	var since time.Duration
	var limit int
	cmd := &cobra.Command{
		Use:   "captures",
		Short: "List the prompts and responses llmfence guard captured (redacted), newest first",
		Long: `List the prompts and responses llmfence guard stored, newest first. The guard
stores them only when capture is enabled in its configuration, always after
redacting personal data and secrets (docs/redaction.md), and deletes them
after the retention period. The table shows a one-line excerpt; --format json
prints the whole stored text.`,
		Example: `  llmfence captures
  llmfence captures --since 1h --key alice --format json
  llmfence captures prune --older-than 720h`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkFormat(format); err != nil {
				return badKeysArg(err)
			}
			if since < 0 {
				return badKeysArg(errors.New("--since must not be negative"))
			}
			if limit < 0 {
				return badKeysArg(errors.New("--limit must not be negative"))
			}
			f := store.CaptureFilter{Key: strings.TrimSpace(key), Limit: limit}
			if since > 0 {
				f.Since = time.Now().Add(-since)
			}
			st, err := openGuardStore(cmd.Context(), e, storeUse{mustExist: true})
			if err != nil {
				return err
			}
			defer st.Close()
			cs, err := st.QueryCaptures(cmd.Context(), f)
			if err != nil {
				return err
			}
			if format == "json" {
				return report.WriteJSONL(e.stdout, cs)
			}
			if err := report.CapturesTable(e.stdout, cs, report.ListOptions{}); err != nil {
				return err
			}
			if len(cs) == 0 {
				fmt.Fprintln(e.stderr, "No captures. The guard stores prompts and responses only with capture enabled in its configuration.")
			}
			return nil
		},
	}
	formatFlag(cmd, &format)
	cmd.Flags().Var(cli.NewDuration(&since, 24*time.Hour, cli.NonNegative), "since", "only captures in this last `DURATION` (0 = all time)")
	cmd.Flags().StringVar(&key, "key", "", "only this key (`NAME` or ID)")
	cmd.Flags().IntVar(&limit, "limit", 50, "at most `N` captures, the newest (0 = no limit)")
	cmd.AddCommand(newCapturesPruneCmd(e))
	return cmd
}

func newCapturesPruneCmd(e *env) *cobra.Command {
	var olderThan string
	cmd := &cobra.Command{
		Use:   "prune",
		Short: "Delete stored captures older than a duration",
		Long: `Delete the captures older than --older-than. The guard does this by itself,
hourly, with its configured retention; prune is for a shorter retention
now, or for a store no guard runs on.`,
		Example: `  llmfence captures prune --older-than 720h
  llmfence captures prune --older-than 7d`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			d, err := parseLongDuration(olderThan)
			if err != nil || d <= 0 {
				return badKeysArg(fmt.Errorf("--older-than %q: want a positive duration such as 720h or 30d", olderThan))
			}
			before := time.Now().Add(-d)
			st, err := openGuardStore(cmd.Context(), e, storeUse{mustExist: true})
			if err != nil {
				return err
			}
			defer st.Close()
			n, err := st.PruneCaptures(cmd.Context(), before)
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "Deleted %d captures older than %s.\n", n, before.Local().Format(time.DateTime))
			return nil
		},
	}
	cmd.Flags().StringVar(&olderThan, "older-than", "720h", "delete captures older than this `DURATION` (e.g. 720h, 30d)")
	return cmd
}
