package jobs

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/riverqueue/river"

	"github.com/llmfence/llmfence/internal/scan"
	"github.com/llmfence/llmfence/internal/scanrun"
	"github.com/llmfence/llmfence/internal/store"
)

// ScanShardArgs is one shard of a sharded run.
type ScanShardArgs struct {
	RunID  string `json:"run_id"`
	Shard  int    `json:"shard"`
	Shards int    `json:"shards"`
	// TimeoutSec is this shard's time limit, planned from its size and
	// the run's rate; River also waits this long before rescuing it.
	TimeoutSec int `json:"timeout_sec"`
	// Parallel is how many shards of the run may scan at once (each then
	// gets at least rate/Parallel, which bounds its duration).
	Parallel int `json:"parallel"`
}

func (ScanShardArgs) Kind() string { return "scan_shard" }

func (ScanShardArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueScan, MaxAttempts: 5, UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

type shardWorker struct {
	river.WorkerDefaults[ScanShardArgs]
	e *Engine
}

func (w *shardWorker) Timeout(job *river.Job[ScanShardArgs]) time.Duration {
	if job.Args.TimeoutSec > 0 {
		return time.Duration(job.Args.TimeoutSec) * time.Second
	}
	return 10 * time.Minute
}

// NextRetry retries a shard soon: its work is idempotent.
func (w *shardWorker) NextRetry(job *river.Job[ScanShardArgs]) time.Time {
	return time.Now().Add(time.Duration(job.Attempt) * 2 * time.Second)
}

func (w *shardWorker) Work(ctx context.Context, job *river.Job[ScanShardArgs]) error {
	a := job.Args
	err := w.e.runShard(ctx, a)
	if err == nil || errors.Is(err, store.ErrRunEnded) {
		return nil
	}
	if errors.Is(err, store.ErrShardBusy) {
		// The run has Parallel shards scanning: wait without using up
		// an attempt.
		return river.JobSnooze(time.Second + time.Duration(rand.IntN(1000))*time.Millisecond)
	}
	final := job.Attempt >= job.MaxAttempts
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if ferr := w.e.st.ShardFailed(fctx, a.RunID, a.Shard, err.Error(), final); ferr != nil {
		w.e.log.Error("could not record a shard failure", "run", a.RunID, "shard", a.Shard, "err", ferr)
	}
	return err
}

// runShard scans one shard into its run.
func (e *Engine) runShard(ctx context.Context, a ScanShardArgs) error {
	run, err := e.st.GetRun(ctx, a.RunID)
	if err != nil {
		return err
	}
	if run.Status != store.StatusRunning {
		return store.ErrRunEnded
	}
	spec, err := scanrun.DecodeSpec(run.Spec)
	if err != nil {
		return err
	}
	set, err := scanrun.BuildSet(ctx, spec, nil)
	if err != nil {
		return fmt.Errorf("rebuild the targets of run %s: %w", a.RunID, err)
	}
	defer set.Close()
	pairs, err := set.ShardCount(ctx, uint64(a.Shard), uint64(a.Shards))
	if err != nil {
		return err
	}
	if _, err := e.st.ShardStart(ctx, a.RunID, a.Shard, e.cfg.Name, int64(pairs), a.Parallel, e.cfg.StaleShard); err != nil {
		return err
	}
	opts := spec.Options
	rate := opts.Rate
	opts.Rate = 0 // the run-wide limiter below replaces the scanner's own
	opts.Heartbeat = e.cfg.ProgressEvery
	sess := &scanrun.Session{Store: e.st, Options: opts, Logger: e.log}
	if e.cfg.Annotator != nil {
		ann, err := e.cfg.Annotator()
		if err != nil {
			return err
		}
		sess.Annotator = ann
	}
	w := scanrun.Walker{Set: set, Shard: uint64(a.Shard), Shards: uint64(a.Shards), Pairs: pairs}
	if rate > 0 {
		w.Pace = newPacer(e.st, a.RunID, rate).wait
	}
	sum, err := sess.Scan(ctx, a.RunID, w, func(ctx context.Context, st scan.Stats) error {
		return e.st.ShardProgress(ctx, a.RunID, a.Shard, store.ShardStats{Total: int64(pairs), Done: int64(st.Done),
			Open: int64(st.Open), Services: int64(st.Services)})
	})
	if err != nil {
		return err
	}
	stats := store.ShardStats{Total: int64(pairs), Done: int64(sum.Stats.Done), Open: int64(sum.Stats.Open), Services: int64(sum.Saved)}
	_, err = e.st.ShardDone(context.WithoutCancel(ctx), a.RunID, a.Shard, stats, func(ctx context.Context, tx *sql.Tx, finished bool) error {
		if !finished {
			return nil
		}
		return e.InsertTx(ctx, tx, InventoryApplyArgs{RunID: a.RunID}, nil)
	})
	return err
}

// pacer spends run-wide rate leases: it leases a slice of the run's
// connection budget from the store and hands its slots out evenly.
type pacer struct {
	st    store.ShardStore
	runID string
	rate  float64
	batch int

	mu    sync.Mutex
	start time.Time
	used  int
	have  int
}

func newPacer(st store.ShardStore, runID string, rate float64) *pacer {
	// About 200 ms of the run's rate per lease: few store writes, fine
	// granularity.
	b := int(math.Max(1, math.Min(rate/5, 5000)))
	return &pacer{st: st, runID: runID, rate: rate, batch: b}
}

func (p *pacer) wait(ctx context.Context) error {
	p.mu.Lock()
	if p.used >= p.have {
		start, err := p.st.LeaseRate(ctx, p.runID, p.batch, p.rate)
		if err != nil {
			p.mu.Unlock()
			return err
		}
		p.start, p.used, p.have = start, 0, p.batch
	}
	at := p.start.Add(time.Duration(float64(p.used) / p.rate * float64(time.Second)))
	p.used++
	p.mu.Unlock()
	if d := time.Until(at); d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// ScanRequest is a sharded scan to start.
type ScanRequest struct {
	Targets    scanrun.Targets
	Options    scanrun.Options
	Args       []string // recorded command line or request description
	ScheduleID string
	// Shards forces a shard count; 0 plans from ShardTarget.
	Shards int
}

// StartScan records a sharded run and enqueues its shard jobs in one
// transaction: either the run and all its shards exist, or nothing does.
func (e *Engine) StartScan(ctx context.Context, req ScanRequest) (store.Run, error) {
	o := req.Options
	for o.Seed == 0 {
		o.Seed = rand.Uint64()
	}
	sess := &scanrun.Session{Options: o}
	set, err := sess.Prepare(ctx, req.Targets)
	if err != nil {
		return store.Run{}, err
	}
	count := set.Count()
	set.Close()
	o = sess.Options // validated, defaults filled
	shards := req.Shards
	if shards <= 0 {
		shards = e.PlanShards(count, o.Rate)
	}
	shards = int(min(uint64(shards), max(count, 1), uint64(e.cfg.MaxShards)))
	perShard := float64(count) / float64(shards)
	parallel := max(1, min(shards, e.cfg.MaxParallel))
	timeout := e.shardTimeout(perShard, parallel, o)
	spec, err := scanrun.EncodeSpec(scanrun.Spec{Targets: req.Targets, Options: o})
	if err != nil {
		return store.Run{}, &scanrun.UsageError{Err: err}
	}
	scope, err := scanrun.ScopeKey(req.Targets, o.Ports)
	if err != nil {
		return store.Run{}, err
	}
	run := store.Run{Targets: req.Targets.Describe(), Ports: o.Ports, Args: req.Args, ScopeKey: scope, Spec: spec,
		ScheduleID: req.ScheduleID, OwnerHost: e.cfg.Name}
	return e.st.CreateShardedRun(ctx, run, shards, func(ctx context.Context, tx *sql.Tx, r store.Run) error {
		params := make([]river.InsertManyParams, shards)
		for i := range params {
			params[i] = river.InsertManyParams{Args: ScanShardArgs{RunID: r.ID, Shard: i, Shards: shards,
				TimeoutSec: int(timeout / time.Second), Parallel: parallel}}
		}
		_, err := e.ins.InsertManyTx(ctx, tx, params)
		return err
	})
}

// PlanShards picks a shard count so each shard takes about ShardTarget
// at the run's rate (unlimited rate: about 20,000 pairs a shard).
func (e *Engine) PlanShards(pairs uint64, rate float64) int {
	per := 20000.0
	if rate > 0 {
		per = math.Max(1, rate*e.cfg.ShardTarget.Seconds())
	}
	n := int(math.Ceil(float64(pairs) / per))
	return max(1, min(n, e.cfg.MaxShards))
}

// shardTimeout bounds one shard: with at most parallel shards of the run
// scanning at once, each gets at least rate/parallel connections a second,
// so its sweep takes at most parallel·pairs/rate. The timeout allows twice
// that, plus two fingerprint budgets for the slowest services, plus ten
// seconds, and never less than MinShardTimeout. River rescues a dead
// worker's shard after max(RescueAfter, this timeout).
func (e *Engine) shardTimeout(pairs float64, parallel int, o scanrun.Options) time.Duration {
	rate := o.Rate
	if rate <= 0 {
		rate = 2000 // unlimited: a conservative floor of what one worker sustains
	}
	sweep := time.Duration(float64(parallel) * pairs / rate * float64(time.Second))
	t := 2*sweep + 2*o.TargetBudget + 10*time.Second
	return max(t, e.cfg.MinShardTimeout)
}
