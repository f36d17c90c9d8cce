package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/llmfence/llmfence/internal/cli"
	"github.com/llmfence/llmfence/internal/jobs"
	"github.com/llmfence/llmfence/internal/store"
)

// workerFlags are the knobs of `llmfence worker`.
type workerFlags struct {
	shards int
	rescue time.Duration
	poll   time.Duration
	grace  time.Duration
}

func newWorkerCmd(e *env) *cobra.Command {
	var wf workerFlags
	cmd := &cobra.Command{
		Use:   "worker",
		Short: "Take scan shards from a shared PostgreSQL queue (scale llmfence serve out to more machines)",
		Long: `Run scan shards of the runs llmfence serve starts, from the job queue in the
PostgreSQL database they share. Start any number of workers on any number of
machines, each with --db pointing at the same database. A worker that dies
has its shard run again by another within minutes; results are saved keyed
by run and target, so nothing is counted twice.

SQLite cannot be shared between machines (River's SQLite driver is
single-node): with a SQLite store, llmfence serve runs the shards itself.`,
		Example: `  llmfence worker --db postgres://llmfence@db.internal/llmfence --shards 4`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runWorker(cmd, e, &wf, args)
		},
	}
	cmd.Flags().IntVar(&wf.shards, "shards", 2, "scan shards this worker runs at once")
	cmd.Flags().Var(cli.NewDuration(&wf.grace, 10*time.Second, cli.NonNegative), "grace", "on SIGTERM, let running shards finish this long before handing them back")
	cmd.Flags().Var(cli.NewDuration(&wf.rescue, 3*time.Minute, cli.Positive), "rescue-after", "rerun a job whose worker died after this long (and after its own timeout)")
	cmd.Flags().Var(cli.NewDuration(&wf.poll, time.Second, cli.Positive), "poll", "how often an idle worker looks for shards")
	cmd.Flags().MarkHidden("rescue-after")
	cmd.Flags().MarkHidden("poll")
	return cmd
}

// runWorker takes scan shards from the shared queue until stopped.
func runWorker(cmd *cobra.Command, e *env, wf *workerFlags, args []string) error {
	ctx := cmd.Context()
	kind, _, err := store.ParseDSN(e.db)
	if err != nil {
		return badKeysArg(fmt.Errorf("--db: %w", err))
	}
	if kind != store.KindPostgres {
		return badKeysArg(errors.New("llmfence worker needs --db postgres://…: River's SQLite driver is single-node, so with SQLite llmfence serve runs the scan shards itself"))
	}
	if wf.shards < 1 {
		return badKeysArg(fmt.Errorf("--shards %d: want at least 1", wf.shards))
	}
	st, err := store.OpenServer(ctx, e.db, store.Options{Logger: e.log})
	if err != nil {
		return err
	}
	defer st.Close()
	cfg := engineConfig(e, wf.shards, false, wf.rescue, wf.poll, time.Minute, time.Minute)
	// Every process registers every job kind and periodic job:
	// whichever River elects leader rescues and schedules them.
	xf := defaultExtFlags()
	ext, err := xf.build(ctx, e, st, &cfg)
	if err != nil {
		return err
	}
	eng, err := jobs.Open(ctx, st, e.db, cfg)
	if err != nil {
		return err
	}
	defer eng.Close()
	ext.attach(eng)
	if err := eng.Start(context.WithoutCancel(ctx)); err != nil {
		return err
	}
	fmt.Fprintf(e.stderr, "llmfence: worker %s: taking up to %d scan shards at once from %s\n", cfg.Name, wf.shards, storeName(e.db))
	<-ctx.Done()
	fmt.Fprintln(e.stderr, "llmfence: worker: stopping; unfinished shards go back to the queue")
	if err := eng.Stop(wf.grace); err != nil {
		e.log.Warn("shards were cancelled at shutdown; they run again elsewhere", "err", err)
	}
	return nil
}
