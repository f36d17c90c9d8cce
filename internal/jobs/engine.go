package jobs

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/riverdriver/riverdatabasesql"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivermigrate"

	"github.com/llmfence/llmfence/internal/scan"
	"github.com/llmfence/llmfence/internal/store"
)

// Queues.
const (
	QueueScan    = "scan"    // scan shards: any worker
	QueueDefault = "default" // inventory, schedules, maintenance: serve
	QueueAlerts  = "alerts"  // alert deliveries: serve
)

// Config tunes an Engine. Start from DefaultConfig.
type Config struct {
	// ScanWorkers is how many scan shards this process runs at once; 0
	// takes no scan shards.
	ScanWorkers int
	// Serve makes this process work the default and alert queues too
	// (`llmfence serve`); a `llmfence worker` only scans.
	Serve bool
	// RescueAfter: a job whose worker died runs again this long after it
	// started (and after its kind's timeout).
	RescueAfter time.Duration
	// ShardTarget is how long one shard should take at the run's rate.
	ShardTarget time.Duration
	// MaxShards caps the shards of one run.
	MaxShards int
	// MaxParallel caps the shards of one run that scan at once.
	MaxParallel int
	// MinShardTimeout is the least time limit of a shard.
	MinShardTimeout time.Duration
	// ProgressEvery is how often a running shard reports its progress
	// (the run's live progress, and its sign of life).
	ProgressEvery time.Duration
	// StaleShard: a running shard whose progress report is older is
	// taken to be dead when counting the run's running shards.
	StaleShard time.Duration
	// PollInterval is how often idle workers look for jobs.
	PollInterval time.Duration
	// MaintainEvery is the period of the maintenance job.
	MaintainEvery time.Duration
	// Name identifies this process in shard rows (host:pid by default).
	Name string
	// Annotator, if set, makes the judge of each shard (the same
	// vulnerability data as llmfence scan); nil uses the embedded data.
	Annotator func() (scan.Annotator, error)
	// ProbeDir is where probe jobs write their journals ("" keeps none).
	ProbeDir string
	// Retention prunes old runs daily (OlderThan 0: keep everything).
	Retention store.PrunePolicy
	// Hooks plugs in the rest of serve (all optional).
	Hooks  Hooks
	Logger *slog.Logger
}

// Hooks connect jobs to the inventory's collaborators.
type Hooks struct {
	// Policy is the inventory policy (ages, SLAs).
	Policy store.InventoryPolicy
	// Owner routes services to owners.
	Owner func(host string, port int) string
	// Alerts, inside the transaction of an inventory change, turns its
	// events into alert jobs (see package alerting).
	Alerts func(ctx context.Context, e *Engine, tx *sql.Tx, events []store.Event) error
	// Periodic adds more periodic jobs (schedules, retention).
	Periodic []*river.PeriodicJob
	// Register adds more workers.
	Register func(w *river.Workers)
}

// DefaultConfig: rescue after 3 minutes, shards of about a minute, at
// most 4096 shards per run, polling every second, maintenance every
// minute.
func DefaultConfig() Config {
	host, _ := os.Hostname()
	return Config{
		RescueAfter:     3 * time.Minute,
		ShardTarget:     time.Minute,
		MaxShards:       4096,
		MaxParallel:     8,
		MinShardTimeout: 2 * time.Minute,
		StaleShard:      time.Minute,
		ProgressEvery:   2 * time.Second,
		PollInterval:    time.Second,
		MaintainEvery:   time.Minute,
		Name:            host + ":" + strconv.Itoa(os.Getpid()),
	}
}

// runner is the part of a River client the engine drives; the client's
// type differs by driver.
type runner interface {
	Start(ctx context.Context) error
	Stop(ctx context.Context) error
	StopAndCancel(ctx context.Context) error
}

// Engine owns the River clients of one process.
type Engine struct {
	st    store.ServerStore
	cfg   Config
	log   *slog.Logger
	ins   *river.Client[*sql.Tx] // inserts, also inside store transactions
	work  runner                 // nil when this process works no queue
	close []func()
}

// Open connects River to the store's database, migrating River's own
// tables, and prepares (but does not start) the workers.
func Open(ctx context.Context, st store.ServerStore, dsn string, cfg Config) (*Engine, error) {
	e := &Engine{st: st, cfg: cfg, log: cfg.Logger}
	if e.log == nil {
		e.log = slog.Default()
	}
	d := DefaultConfig()
	if e.cfg.RescueAfter <= 0 {
		e.cfg.RescueAfter = d.RescueAfter
	}
	if e.cfg.ShardTarget <= 0 {
		e.cfg.ShardTarget = d.ShardTarget
	}
	if e.cfg.MaxShards <= 0 {
		e.cfg.MaxShards = d.MaxShards
	}
	if e.cfg.MaxParallel <= 0 {
		e.cfg.MaxParallel = d.MaxParallel
	}
	if e.cfg.MinShardTimeout <= 0 {
		e.cfg.MinShardTimeout = d.MinShardTimeout
	}
	if e.cfg.ProgressEvery <= 0 {
		e.cfg.ProgressEvery = d.ProgressEvery
	}
	if e.cfg.StaleShard <= 0 {
		e.cfg.StaleShard = d.StaleShard
	}
	if e.cfg.PollInterval <= 0 {
		e.cfg.PollInterval = d.PollInterval
	}
	if e.cfg.MaintainEvery <= 0 {
		e.cfg.MaintainEvery = d.MaintainEvery
	}
	if e.cfg.Name == "" {
		e.cfg.Name = d.Name
	}
	if e.cfg.Hooks.Policy.SLA == nil {
		e.cfg.Hooks.Policy = store.DefaultInventoryPolicy()
	}
	workers := river.NewWorkers()
	e.register(workers)
	if e.cfg.Hooks.Register != nil {
		e.cfg.Hooks.Register(workers)
	}
	rc := &river.Config{
		Logger:               e.log,
		Workers:              workers,
		JobTimeout:           min(time.Minute, e.cfg.RescueAfter),
		RescueStuckJobsAfter: e.cfg.RescueAfter,
		FetchPollInterval:    e.cfg.PollInterval,
		// A worker that finishes a shard may fetch the next one after this
		// long. River's 100 ms was most of the cost of a shard: with 10 ms,
		// bench/servebench measures about 60 ms per shard instead of 100.
		FetchCooldown: min(e.cfg.PollInterval, 10*time.Millisecond),
		PeriodicJobs:  e.periodic(),
		ID:            sanitizeID(e.cfg.Name),
	}
	queues := map[string]river.QueueConfig{}
	if e.cfg.ScanWorkers > 0 {
		queues[QueueScan] = river.QueueConfig{MaxWorkers: e.cfg.ScanWorkers}
	}
	if e.cfg.Serve {
		queues[QueueDefault] = river.QueueConfig{MaxWorkers: 4}
		queues[QueueAlerts] = river.QueueConfig{MaxWorkers: 4}
	}
	if len(queues) > 0 {
		rc.Queues = queues
	}
	var err error
	switch st.Kind() {
	case store.KindSQLite:
		err = e.openSQLite(ctx, rc)
	case store.KindPostgres:
		err = e.openPostgres(ctx, dsn, rc)
	default:
		err = fmt.Errorf("no job engine for a %s store", st.Kind())
	}
	if err != nil {
		e.Close()
		return nil, err
	}
	return e, nil
}

func sanitizeID(s string) string {
	out := []rune{}
	for _, r := range s {
		if r == ':' || r == '.' || r == '-' || r == '_' || (r >= '0' && r <= '9') || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') {
			out = append(out, r)
		} else {
			out = append(out, '_')
		}
	}
	return string(out)
}

// openSQLite: River works through a connection of its own to the same
// file (one connection, as its SQLite driver asks) and inserts through the
// store's handle, so InsertTx joins store transactions.
func (e *Engine) openSQLite(ctx context.Context, rc *river.Config) error {
	db, err := store.OpenSQLiteConn(ctx, e.st)
	if err != nil {
		return err
	}
	e.close = append(e.close, func() { db.Close() })
	if err := migrateRiver(ctx, riversqlite.New(db)); err != nil {
		return err
	}
	rc.PollOnly = true
	ins, err := river.NewClient(riversqlite.New(e.st.DB()), &river.Config{Logger: e.log, Workers: rc.Workers})
	if err != nil {
		return fmt.Errorf("job engine: %w", err)
	}
	e.ins = ins
	if rc.Queues != nil {
		w, err := river.NewClient(riversqlite.New(db), rc)
		if err != nil {
			return fmt.Errorf("job engine: %w", err)
		}
		e.work = w
	}
	return nil
}

// openPostgres: River works through a pgx pool (LISTEN/NOTIFY wakes idle
// workers) and inserts through riverdatabasesql on the store's
// database/sql handle, so InsertTx joins store transactions.
func (e *Engine) openPostgres(ctx context.Context, dsn string, rc *river.Config) error {
	pcfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return fmt.Errorf("job engine: the PostgreSQL address does not parse: %w", err)
	}
	pcfg.MaxConns = 8
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return fmt.Errorf("job engine: %w", err)
	}
	e.close = append(e.close, pool.Close)
	if err := migrateRiverLocked(ctx, pool); err != nil {
		return err
	}
	ins, err := river.NewClient(riverdatabasesql.New(e.st.DB()), &river.Config{Logger: e.log, Workers: rc.Workers})
	if err != nil {
		return fmt.Errorf("job engine: %w", err)
	}
	e.ins = ins
	if rc.Queues != nil {
		w, err := river.NewClient(riverpgxv5.New(pool), rc)
		if err != nil {
			return fmt.Errorf("job engine: %w", err)
		}
		e.work = w
	}
	return nil
}

// riverMigrationLock is the PostgreSQL advisory lock every process takes
// around River's migrations: serve and workers started together on a new
// database would otherwise create River's tables at the same time, and
// all but one fail ("duplicate key value violates unique constraint").
const riverMigrationLock = 7405896417356231012

// migrateRiverLocked migrates River's tables while holding
// riverMigrationLock on a connection of its own.
func migrateRiverLocked(ctx context.Context, pool *pgxpool.Pool) error {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("job engine: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", int64(riverMigrationLock)); err != nil {
		return fmt.Errorf("job engine: wait for other processes' migrations: %w", err)
	}
	defer func() {
		// A fresh context: the lock must be given back even when ctx ended.
		_, _ = conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", int64(riverMigrationLock))
	}()
	return migrateRiver(ctx, riverpgxv5.New(pool))
}

func migrateRiver[TTx any](ctx context.Context, drv riverdriver.Driver[TTx]) error {
	m, err := rivermigrate.New(drv, nil)
	if err != nil {
		return fmt.Errorf("job engine: %w", err)
	}
	if _, err := m.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return fmt.Errorf("job engine: create River's tables: %w", err)
	}
	return nil
}

// Start starts working jobs (a no-op for an insert-only engine).
func (e *Engine) Start(ctx context.Context) error {
	if e.work == nil {
		return nil
	}
	if err := e.work.Start(ctx); err != nil {
		return fmt.Errorf("job engine: start: %w", err)
	}
	return nil
}

// Stop finishes running jobs, waiting up to grace, then cancels them
// (their shards are picked up again by another worker).
func (e *Engine) Stop(grace time.Duration) error {
	if e.work == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	err := e.work.Stop(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		cctx, ccancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer ccancel()
		err = e.work.StopAndCancel(cctx)
	}
	return err
}

// Close releases the engine's connections (after Stop).
func (e *Engine) Close() {
	for i := len(e.close) - 1; i >= 0; i-- {
		e.close[i]()
	}
	e.close = nil
}

// Insert enqueues a job outside any transaction.
func (e *Engine) Insert(ctx context.Context, args river.JobArgs, opts *river.InsertOpts) error {
	_, err := e.ins.Insert(ctx, args, opts)
	return err
}

// InsertTx enqueues a job inside a store transaction.
func (e *Engine) InsertTx(ctx context.Context, tx *sql.Tx, args river.JobArgs, opts *river.InsertOpts) error {
	_, err := e.ins.InsertTx(ctx, tx, args, opts)
	return err
}

// Store is the store the engine works on.
func (e *Engine) Store() store.ServerStore { return e.st }
