package jobs

import (
	"context"
	"database/sql"
	"time"

	"github.com/riverqueue/river"

	"github.com/llmfence/llmfence/internal/scanrun"
	"github.com/llmfence/llmfence/internal/store"
)

// InventoryApplyArgs folds an ended run into the inventory.
type InventoryApplyArgs struct {
	RunID string `json:"run_id"`
}

func (InventoryApplyArgs) Kind() string { return "inventory_apply" }
func (InventoryApplyArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueDefault, MaxAttempts: 10, UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

type applyWorker struct {
	river.WorkerDefaults[InventoryApplyArgs]
	e *Engine
}

func (w *applyWorker) Timeout(*river.Job[InventoryApplyArgs]) time.Duration { return 10 * time.Minute }

func (w *applyWorker) Work(ctx context.Context, job *river.Job[InventoryApplyArgs]) error {
	_, err := w.e.ApplyRun(ctx, job.Args.RunID)
	return err
}

// ApplyRun applies one ended run to the inventory, with coverage from its
// stored definition and alerts enqueued in the same transaction.
func (e *Engine) ApplyRun(ctx context.Context, runID string) (store.ApplyResult, error) {
	return e.st.ApplyRun(ctx, runID, store.ApplyOptions{
		Policy:   e.cfg.Hooks.Policy,
		Coverage: scanrun.Coverage,
		Owner:    e.cfg.Hooks.Owner,
		InTx:     e.alertHook(),
	})
}

func (e *Engine) alertHook() store.TxHook {
	if e.cfg.Hooks.Alerts == nil {
		return nil
	}
	return func(ctx context.Context, tx *sql.Tx, events []store.Event) error {
		return e.cfg.Hooks.Alerts(ctx, e, tx, events)
	}
}

// AlertHook is the transaction hook for workflow changes made outside
// jobs (the API): their events raise alerts in the same transaction.
func (e *Engine) AlertHook() store.TxHook { return e.alertHook() }

// MaintenanceArgs is the periodic housekeeping job.
type MaintenanceArgs struct{}

func (MaintenanceArgs) Kind() string { return "maintenance" }
func (MaintenanceArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueDefault, MaxAttempts: 3, UniqueOpts: river.UniqueOpts{ByPeriod: 30 * time.Second}}
}

type maintainWorker struct {
	river.WorkerDefaults[MaintenanceArgs]
	e *Engine
}

func (w *maintainWorker) Timeout(*river.Job[MaintenanceArgs]) time.Duration { return 5 * time.Minute }

func (w *maintainWorker) Work(ctx context.Context, job *river.Job[MaintenanceArgs]) error {
	return w.e.Maintain(ctx)
}

// Maintain ends abandoned one-process runs, applies ended runs not yet in
// the inventory, and applies the inventory's time rules.
func (e *Engine) Maintain(ctx context.Context) error {
	if _, err := e.st.MarkStaleRuns(ctx, store.StalePolicy{}); err != nil {
		return err
	}
	runs, err := e.st.UnappliedRuns(ctx, 50)
	if err != nil {
		return err
	}
	for _, id := range runs {
		if err := e.Insert(ctx, InventoryApplyArgs{RunID: id}, nil); err != nil {
			return err
		}
	}
	_, err = e.st.Maintain(ctx, e.cfg.Hooks.Policy, e.alertHook())
	return err
}

func (e *Engine) register(w *river.Workers) {
	river.AddWorker(w, &shardWorker{e: e})
	river.AddWorker(w, &applyWorker{e: e})
	river.AddWorker(w, &maintainWorker{e: e})
	river.AddWorker(w, &pruneWorker{e: e})
	river.AddWorker(w, &inspectTickWorker{e: e})
	river.AddWorker(w, &inspectPathWorker{e: e})
	river.AddWorker(w, &datascanWorker{e: e})
	river.AddWorker(w, &probeWorker{e: e})
}

func (e *Engine) periodic() []*river.PeriodicJob {
	out := []*river.PeriodicJob{
		river.NewPeriodicJob(river.PeriodicInterval(e.cfg.MaintainEvery), func() (river.JobArgs, *river.InsertOpts) {
			return MaintenanceArgs{}, nil
		}, &river.PeriodicJobOpts{RunOnStart: true, ID: "maintenance"}),
	}
	out = append(out, river.NewPeriodicJob(river.PeriodicInterval(24*time.Hour), func() (river.JobArgs, *river.InsertOpts) {
		return PruneArgs{}, nil
	}, &river.PeriodicJobOpts{RunOnStart: true, ID: "retention_prune"}))
	out = append(out, river.NewPeriodicJob(river.PeriodicInterval(e.cfg.MaintainEvery), func() (river.JobArgs, *river.InsertOpts) {
		return InspectTickArgs{}, nil
	}, &river.PeriodicJobOpts{RunOnStart: true, ID: "inspect_tick"}))
	return append(out, e.cfg.Hooks.Periodic...)
}

// PruneArgs is the daily retention job.
type PruneArgs struct{}

func (PruneArgs) Kind() string { return "retention_prune" }
func (PruneArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueDefault, MaxAttempts: 3, UniqueOpts: river.UniqueOpts{ByPeriod: time.Hour}}
}

type pruneWorker struct {
	river.WorkerDefaults[PruneArgs]
	e *Engine
}

func (w *pruneWorker) Timeout(*river.Job[PruneArgs]) time.Duration { return 30 * time.Minute }

func (w *pruneWorker) Work(ctx context.Context, _ *river.Job[PruneArgs]) error {
	if w.e.cfg.Retention.OlderThan <= 0 {
		return nil
	}
	res, err := w.e.st.PruneRuns(ctx, w.e.cfg.Retention)
	if err == nil && res.Runs > 0 {
		w.e.log.Info("old runs pruned", "runs", res.Runs, "services", res.Services)
	}
	if err != nil {
		return err
	}
	// Guard abuse signals are kept as long as runs.
	n, err := w.e.st.PruneAbuseSignals(ctx, time.Now().Add(-w.e.cfg.Retention.OlderThan))
	if err == nil && n > 0 {
		w.e.log.Info("old abuse signals pruned", "rows", n)
	}
	return err
}
