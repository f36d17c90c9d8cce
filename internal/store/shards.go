package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"time"
)

// Shards of a sharded run: the run is created with its shard rows and its
// shard jobs in one transaction (CreateShardedRun); each shard job reports
// ShardStart, ShardProgress and ShardDone (or ShardFailed); the last shard
// to finish ends the run, in the transaction that marks it done, so a run
// is finished exactly when every shard is.

// ShardStatus is the state of one shard.
type ShardStatus string

const (
	ShardPending ShardStatus = "pending"
	ShardRunning ShardStatus = "running"
	ShardDone    ShardStatus = "done"
	ShardFailed  ShardStatus = "failed"
)

// ShardStats is a shard's progress.
type ShardStats struct {
	Total, Done, Open, Services int64
}

// RunProgress aggregates a run's shards.
type RunProgress struct {
	Shards      int        `json:"shards"`
	ShardsDone  int        `json:"shards_done"`
	ShardsRun   int        `json:"shards_running"`
	Total       int64      `json:"total"`
	Done        int64      `json:"done"`
	Open        int64      `json:"open"`
	Services    int64      `json:"services"`
	LastReport  *time.Time `json:"last_report,omitempty"`
	RetriedJobs int        `json:"retried_shards"`
}

// ShardStore is what workers of sharded runs need from the store.
type ShardStore interface {
	CreateShardedRun(ctx context.Context, r Run, shards int, inTx func(ctx context.Context, tx *sql.Tx, run Run) error) (Run, error)
	ShardStart(ctx context.Context, runID string, shard int, worker string, total int64, parallel int, stale time.Duration) (attempt int, err error)
	ShardProgress(ctx context.Context, runID string, shard int, st ShardStats) error
	ShardDone(ctx context.Context, runID string, shard int, st ShardStats, inTx func(ctx context.Context, tx *sql.Tx, runFinished bool) error) (bool, error)
	ShardFailed(ctx context.Context, runID string, shard int, reason string, final bool) error
	RunProgress(ctx context.Context, runID string) (RunProgress, error)
	LeaseRate(ctx context.Context, runID string, n int, rate float64) (time.Time, error)
}

func (s *sqlStore) CreateShardedRun(ctx context.Context, r Run, shards int, inTx func(context.Context, *sql.Tx, Run) error) (Run, error) {
	if shards < 1 || shards > 100000 {
		return Run{}, fmt.Errorf("a sharded run needs 1 to 100000 shards, got %d: %w", shards, ErrBadInput)
	}
	if r.Spec == "" {
		return Run{}, fmt.Errorf("a sharded run needs its scan definition: %w", ErrBadInput)
	}
	r.Shards = shards
	var out Run
	err := s.write(ctx, func(tx *sql.Tx) error {
		var err error
		out, err = s.createRunTx(ctx, tx, r)
		if err != nil {
			return err
		}
		id, _ := parseID(out.ID)
		for i := 0; i < shards; i++ {
			if _, err := tx.ExecContext(ctx, s.d.rebind(`INSERT INTO run_shards (run_id, shard, status) VALUES (?, ?, ?)`),
				id, i, string(ShardPending)); err != nil {
				return err
			}
		}
		if inTx != nil {
			return inTx(ctx, tx, out)
		}
		return nil
	})
	if err != nil {
		return Run{}, s.errf(err, "record a new sharded scan run")
	}
	return out, nil
}

// ErrShardBusy: the run already has its allowed number of shards
// scanning; try again later.
var ErrShardBusy = errors.New("the run has enough shards scanning")

// ShardStart claims a shard for a worker. At most parallel shards of a run
// scan at once (0: no limit); a running shard whose last report is older
// than stale does not count (its worker is presumed dead).
func (s *sqlStore) ShardStart(ctx context.Context, runID string, shard int, worker string, total int64, parallel int, stale time.Duration) (int, error) {
	id, err := parseID(runID)
	if err != nil {
		return 0, err
	}
	var attempt int
	err = s.write(ctx, func(tx *sql.Tx) error {
		var status string
		if err := tx.QueryRowContext(ctx, s.d.rebind(`SELECT status FROM runs WHERE id = ?`), id).Scan(&status); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("no scan run %s: %w", runID, ErrNotFound)
			}
			return err
		}
		if status != string(StatusRunning) {
			return fmt.Errorf("scan run %s is already %s: %w", runID, status, ErrRunEnded)
		}
		now := s.clock()
		if parallel > 0 {
			var busy int
			if err := tx.QueryRowContext(ctx, s.d.rebind(`SELECT COUNT(*) FROM run_shards WHERE run_id = ? AND shard <> ? AND status = ?
				AND heartbeat_at >= ?`), id, shard, string(ShardRunning), dbTime(now.Add(-stale))).Scan(&busy); err != nil {
				return err
			}
			if busy >= parallel {
				return ErrShardBusy
			}
		}
		err := tx.QueryRowContext(ctx, s.d.rebind(`UPDATE run_shards SET status = ?, attempts = attempts + 1, worker = ?, total = ?,
			done = 0, open_ports = 0, services = 0, started_at = ?, heartbeat_at = ?, finished_at = NULL, error = ''
			WHERE run_id = ? AND shard = ? AND status <> ? RETURNING attempts`), string(ShardRunning), clean(worker), total, now, now,
			id, shard, string(ShardDone)).Scan(&attempt)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("shard %d of run %s is done already or unknown: %w", shard, runID, ErrRunEnded)
		}
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, s.d.rebind(`UPDATE runs SET heartbeat_at = ? WHERE id = ?`), now, id)
		return err
	})
	if err != nil && !errors.Is(err, ErrNotFound) && !errors.Is(err, ErrRunEnded) && !errors.Is(err, ErrShardBusy) {
		return 0, s.errf(err, "start shard %d of run %s", shard, runID)
	}
	return attempt, err
}

func (s *sqlStore) ShardProgress(ctx context.Context, runID string, shard int, st ShardStats) error {
	id, err := parseID(runID)
	if err != nil {
		return err
	}
	err = s.write(ctx, func(tx *sql.Tx) error {
		now := s.clock()
		res, err := tx.ExecContext(ctx, s.d.rebind(`UPDATE run_shards SET done = ?, open_ports = ?, services = ?, heartbeat_at = ?
			WHERE run_id = ? AND shard = ? AND status = ?`), st.Done, st.Open, st.Services, now, id, shard, string(ShardRunning))
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("shard %d of run %s is not running: %w", shard, runID, ErrRunEnded)
		}
		_, err = tx.ExecContext(ctx, s.d.rebind(`UPDATE runs SET heartbeat_at = ? WHERE id = ? AND status = ?`), now, id, string(StatusRunning))
		return err
	})
	if err != nil && !errors.Is(err, ErrRunEnded) {
		return s.errf(err, "record progress of shard %d of run %s", shard, runID)
	}
	return err
}

// ShardDone marks a shard done and, when it was the last one, ends the run
// as finished with the shards' sums, in the same transaction; inTx learns
// which, inside it.
func (s *sqlStore) ShardDone(ctx context.Context, runID string, shard int, st ShardStats, inTx func(context.Context, *sql.Tx, bool) error) (bool, error) {
	id, err := parseID(runID)
	if err != nil {
		return false, err
	}
	var finished bool
	err = s.write(ctx, func(tx *sql.Tx) error {
		now := s.clock()
		if _, err := tx.ExecContext(ctx, s.d.rebind(`UPDATE run_shards SET status = ?, done = ?, open_ports = ?, services = ?,
			finished_at = ?, heartbeat_at = ? WHERE run_id = ? AND shard = ?`), string(ShardDone), st.Done, st.Open, st.Services, now, now,
			id, shard); err != nil {
			return err
		}
		var left int
		if err := tx.QueryRowContext(ctx, s.d.rebind(`SELECT COUNT(*) FROM run_shards WHERE run_id = ? AND status <> ?`),
			id, string(ShardDone)).Scan(&left); err != nil {
			return err
		}
		if left == 0 {
			res, err := tx.ExecContext(ctx, s.d.rebind(`UPDATE runs SET status = ?, finished_at = ?, heartbeat_at = ?,
				addresses_probed = (SELECT COALESCE(SUM(done), 0) FROM run_shards WHERE run_id = ?),
				open_ports = (SELECT COALESCE(SUM(open_ports), 0) FROM run_shards WHERE run_id = ?)
				WHERE id = ? AND status = ?`), string(StatusFinished), now, now, id, id, id, string(StatusRunning))
			if err != nil {
				return err
			}
			n, _ := res.RowsAffected()
			finished = n > 0
		}
		if inTx != nil {
			return inTx(ctx, tx, finished)
		}
		return nil
	})
	if err != nil {
		return false, s.errf(err, "finish shard %d of run %s", shard, runID)
	}
	return finished, nil
}

// ShardFailed records a shard's failure; final (no retry left) ends the
// run as failed: a run with a shard that never completed did not complete.
func (s *sqlStore) ShardFailed(ctx context.Context, runID string, shard int, reason string, final bool) error {
	id, err := parseID(runID)
	if err != nil {
		return err
	}
	err = s.write(ctx, func(tx *sql.Tx) error {
		now := s.clock()
		status := ShardPending // waiting for its retry
		if final {
			status = ShardFailed
		}
		if _, err := tx.ExecContext(ctx, s.d.rebind(`UPDATE run_shards SET status = ?, error = ?, finished_at = ? WHERE run_id = ? AND shard = ?
			AND status <> ?`), string(status), clean(reason), now, id, shard, string(ShardDone)); err != nil {
			return err
		}
		if !final {
			return nil
		}
		_, err := tx.ExecContext(ctx, s.d.rebind(`UPDATE runs SET status = ?, finished_at = ?, error = ?,
			addresses_probed = (SELECT COALESCE(SUM(done), 0) FROM run_shards WHERE run_id = ?),
			open_ports = (SELECT COALESCE(SUM(open_ports), 0) FROM run_shards WHERE run_id = ?)
			WHERE id = ? AND status = ?`), string(StatusFailed), now, clean(fmt.Sprintf("shard %d failed: %s", shard, reason)),
			id, id, id, string(StatusRunning))
		return err
	})
	if err != nil {
		return s.errf(err, "record the failure of shard %d of run %s", shard, runID)
	}
	return nil
}

func (s *sqlStore) RunProgress(ctx context.Context, runID string) (RunProgress, error) {
	var p RunProgress
	id, err := parseID(runID)
	if err != nil {
		return p, err
	}
	var last sql.NullTime
	var lastS sql.NullString
	q := `SELECT COUNT(*), COALESCE(SUM(CASE WHEN status = 'done' THEN 1 ELSE 0 END), 0),
		COALESCE(SUM(CASE WHEN status = 'running' THEN 1 ELSE 0 END), 0), COALESCE(SUM(total), 0), COALESCE(SUM(done), 0),
		COALESCE(SUM(open_ports), 0), COALESCE(SUM(services), 0), COALESCE(SUM(CASE WHEN attempts > 1 THEN 1 ELSE 0 END), 0),
		MAX(heartbeat_at) FROM run_shards WHERE run_id = ?`
	dest := []any{&p.Shards, &p.ShardsDone, &p.ShardsRun, &p.Total, &p.Done, &p.Open, &p.Services, &p.RetriedJobs}
	if s.d.kind == KindSQLite {
		dest = append(dest, &lastS) // SQLite's MAX of a TIMESTAMP column comes back as text
	} else {
		dest = append(dest, &last)
	}
	if err := s.db.QueryRowContext(ctx, s.d.rebind(q), id).Scan(dest...); err != nil {
		return p, s.errf(err, "read progress of run %s", runID)
	}
	if last.Valid {
		t := last.Time.UTC()
		p.LastReport = &t
	} else if lastS.Valid {
		if t, err := time.Parse("2006-01-02 15:04:05.999999999-07:00", lastS.String); err == nil {
			t = t.UTC()
			p.LastReport = &t
		}
	}
	return p, nil
}

// LeaseRate reserves n connection starts of a run limited to rate per
// second (GCRA over run_rate): the caller may start them evenly from the
// returned time, n/rate seconds in all. Leases never overlap, so however
// many workers share a run, it starts at most rate connections a second.
func (s *sqlStore) LeaseRate(ctx context.Context, runID string, n int, rate float64) (time.Time, error) {
	id, err := parseID(runID)
	if err != nil {
		return time.Time{}, err
	}
	if rate <= 0 || n <= 0 {
		return time.Now(), nil
	}
	span := int64(math.Ceil(float64(n) / rate * 1e6))
	var start int64
	err = s.write(ctx, func(tx *sql.Tx) error {
		now := time.Now().UnixMicro()
		var tat int64
		err := tx.QueryRowContext(ctx, s.d.rebind(`SELECT tat_us FROM run_rate WHERE run_id = ?`), id).Scan(&tat)
		if errors.Is(err, sql.ErrNoRows) {
			tat = now
			if _, err := tx.ExecContext(ctx, s.d.rebind(`INSERT INTO run_rate (run_id, tat_us) VALUES (?, ?)
				ON CONFLICT (run_id) DO NOTHING`), id, now); err != nil {
				return err
			}
			// Another worker may have inserted first: read again under the lock.
			if err := tx.QueryRowContext(ctx, s.d.rebind(`SELECT tat_us FROM run_rate WHERE run_id = ?`+s.forUpdate()), id).Scan(&tat); err != nil {
				return err
			}
		} else if err != nil {
			return err
		} else if s.d.kind == KindPostgres {
			if err := tx.QueryRowContext(ctx, s.d.rebind(`SELECT tat_us FROM run_rate WHERE run_id = ? FOR UPDATE`), id).Scan(&tat); err != nil {
				return err
			}
		}
		start = max(tat, now)
		_, err = tx.ExecContext(ctx, s.d.rebind(`UPDATE run_rate SET tat_us = ? WHERE run_id = ?`), start+span, id)
		return err
	})
	if err != nil {
		return time.Time{}, s.errf(err, "lease connection slots of run %s", runID)
	}
	return time.UnixMicro(start), nil
}

func (s *sqlStore) forUpdate() string {
	if s.d.kind == KindPostgres {
		return " FOR UPDATE"
	}
	return ""
}
