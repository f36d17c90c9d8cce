package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	"github.com/llmfence/llmfence/internal/credential"
)

// StalePolicy says when a running run's owner counts as gone.
type StalePolicy struct {
	// HeartbeatAge: a run whose last heartbeat is older is stale.
	// 0 means DefaultStaleAge.
	HeartbeatAge time.Duration
	// Host is this machine's name: a one-process run owned by a process
	// on this host that no longer exists is stale at once. "" means
	// os.Hostname().
	Host string
	// Alive reports whether a process ID exists on this host; nil means
	// a signal-0 probe.
	Alive func(pid int) bool
}

// DefaultStaleAge is how old a heartbeat may be before its run is marked
// interrupted: eight missed beats at DefaultHeartbeat.
const DefaultStaleAge = 2 * time.Minute

// DefaultHeartbeat is how often a scan's owner should call Heartbeat.
const DefaultHeartbeat = 15 * time.Second

// PrunePolicy says which runs PruneRuns deletes: runs that ended before
// now-OlderThan, except the Keep newest finished runs of each scope and
// any run still running. Both zero deletes nothing.
type PrunePolicy struct {
	OlderThan time.Duration
	// Keep is how many of the newest finished runs of each scope survive
	// whatever their age (so "diff" and the inventory always have a
	// previous run to compare with).
	Keep int
	// DryRun counts without deleting.
	DryRun bool
}

// PruneResult says what PruneRuns deleted (or would delete).
type PruneResult struct {
	Runs     int      `json:"runs"`
	Services int64    `json:"services"`
	Findings int64    `json:"findings"`
	RunIDs   []string `json:"run_ids,omitempty"`
}

func (s *sqlStore) Heartbeat(ctx context.Context, runID string, stats RunStats) error {
	id, err := parseID(runID)
	if err != nil {
		return err
	}
	return s.heartbeat(ctx, id, runID, &stats)
}

func (s *sqlStore) heartbeat(ctx context.Context, id int64, runID string, stats *RunStats) error {
	err := s.write(ctx, func(tx *sql.Tx) error {
		q := `UPDATE runs SET heartbeat_at = ? WHERE id = ? AND status = ?`
		args := []any{s.clock(), id, string(StatusRunning)}
		if stats != nil {
			q = `UPDATE runs SET heartbeat_at = ?, addresses_probed = ?, open_ports = ? WHERE id = ? AND status = ?`
			args = []any{s.clock(), stats.AddressesProbed, stats.OpenPorts, id, string(StatusRunning)}
		}
		res, err := tx.ExecContext(ctx, s.d.rebind(q), args...)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n > 0 {
			return err
		}
		var cur string
		err = tx.QueryRowContext(ctx, s.d.rebind("SELECT status FROM runs WHERE id = ?"), id).Scan(&cur)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("no scan run %s: %w", runID, ErrNotFound)
		}
		if err != nil {
			return err
		}
		return fmt.Errorf("scan run %s is already %s: %w", runID, cur, ErrRunEnded)
	})
	if err != nil && !errors.Is(err, ErrNotFound) && !errors.Is(err, ErrRunEnded) {
		return s.errf(err, "record a heartbeat of run %s", runID)
	}
	return err
}

func processAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

func (s *sqlStore) MarkStaleRuns(ctx context.Context, p StalePolicy) ([]string, error) {
	if p.HeartbeatAge <= 0 {
		p.HeartbeatAge = DefaultStaleAge
	}
	if p.Host == "" {
		p.Host, _ = os.Hostname()
	}
	if p.Alive == nil {
		p.Alive = processAlive
	}
	now := s.clock()
	rows, err := s.db.QueryContext(ctx, s.d.rebind(`SELECT id, heartbeat_at, started_at, owner_host, owner_pid, shards
		FROM runs WHERE status = ?`), string(StatusRunning))
	if err != nil {
		return nil, s.errf(err, "look for abandoned scan runs")
	}
	type cand struct {
		id     int64
		reason string
	}
	var stale []cand
	for rows.Next() {
		var (
			id, pid, shards int64
			hb              sql.NullTime
			started         time.Time
			host            string
		)
		if err := rows.Scan(&id, &hb, &started, &host, &pid, &shards); err != nil {
			rows.Close()
			return nil, s.errf(err, "look for abandoned scan runs")
		}
		last := started
		if hb.Valid {
			last = hb.Time
		}
		switch {
		case shards > 0:
			// A sharded run lives while its shard jobs do: the job
			// engine rescues a dead worker's shard, and the run ends when
			// its last shard does (see ShardDone, ShardFailed).
			continue
		case host != "" && host == p.Host && pid > 0 && pid != int64(os.Getpid()) && !p.Alive(int(pid)):
			stale = append(stale, cand{id, fmt.Sprintf("interrupted: the scanning process (pid %d on %s) is gone", pid, host)})
		case now.Sub(last.UTC()) > p.HeartbeatAge:
			stale = append(stale, cand{id, fmt.Sprintf("interrupted: no sign of life from the scanner since %s", last.UTC().Format(time.RFC3339))})
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, s.errf(err, "look for abandoned scan runs")
	}
	var out []string
	for _, c := range stale {
		err := s.write(ctx, func(tx *sql.Tx) error {
			res, err := tx.ExecContext(ctx, s.d.rebind(`UPDATE runs SET status = ?, finished_at = ?, error = ?
				WHERE id = ? AND status = ?`), string(StatusInterrupted), now, c.reason, c.id, string(StatusRunning))
			if err != nil {
				return err
			}
			if n, _ := res.RowsAffected(); n > 0 {
				out = append(out, formatID(c.id))
			}
			return nil
		})
		if err != nil {
			return out, s.errf(err, "mark run %d interrupted", c.id)
		}
	}
	if len(out) > 0 {
		s.log.Info("abandoned scan runs marked interrupted", "runs", out)
	}
	return out, nil
}

func (s *sqlStore) PruneRuns(ctx context.Context, p PrunePolicy) (PruneResult, error) {
	var res PruneResult
	if p.OlderThan < 0 || p.Keep < 0 {
		return res, fmt.Errorf("prune runs: age and keep must not be negative: %w", ErrBadInput)
	}
	if p.OlderThan == 0 {
		return res, nil
	}
	cutoff := dbTime(s.now().Add(-p.OlderThan))
	rows, err := s.db.QueryContext(ctx, s.d.rebind(`SELECT id, scope_key, status FROM runs
		WHERE status <> ? ORDER BY id DESC`), string(StatusRunning))
	if err != nil {
		return res, s.errf(err, "prune runs")
	}
	kept := map[string]int{}
	keep := map[int64]bool{}
	for rows.Next() {
		var (
			id            int64
			scope, status string
		)
		if err := rows.Scan(&id, &scope, &status); err != nil {
			rows.Close()
			return res, s.errf(err, "prune runs")
		}
		if status == string(StatusFinished) && kept[scope] < p.Keep {
			kept[scope]++
			keep[id] = true
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return res, s.errf(err, "prune runs")
	}
	cand, err := s.db.QueryContext(ctx, s.d.rebind(`SELECT id FROM runs WHERE status <> ? AND COALESCE(finished_at, started_at) < ?
		ORDER BY id`), string(StatusRunning), cutoff)
	if err != nil {
		return res, s.errf(err, "prune runs")
	}
	var ids []int64
	for cand.Next() {
		var id int64
		if err := cand.Scan(&id); err != nil {
			cand.Close()
			return res, s.errf(err, "prune runs")
		}
		if !keep[id] {
			ids = append(ids, id)
		}
	}
	cand.Close()
	if err := cand.Err(); err != nil {
		return res, s.errf(err, "prune runs")
	}
	for _, id := range ids {
		var nsvc, nf int64
		if err := s.db.QueryRowContext(ctx, s.d.rebind(`SELECT COUNT(*) FROM services WHERE run_id = ?`), id).Scan(&nsvc); err != nil {
			return res, s.errf(err, "prune runs")
		}
		if err := s.db.QueryRowContext(ctx, s.d.rebind(`SELECT COUNT(*) FROM findings WHERE run_id = ?`), id).Scan(&nf); err != nil {
			return res, s.errf(err, "prune runs")
		}
		if !p.DryRun {
			// One run per transaction keeps SQLite's write lock short.
			err := s.write(ctx, func(tx *sql.Tx) error {
				for _, q := range []string{`DELETE FROM findings WHERE run_id = ?`, `DELETE FROM services WHERE run_id = ?`,
					`DELETE FROM run_shards WHERE run_id = ?`, `DELETE FROM run_rate WHERE run_id = ?`, `DELETE FROM runs WHERE id = ?`} {
					if _, err := tx.ExecContext(ctx, s.d.rebind(q), id); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				return res, s.errf(err, "prune run %d", id)
			}
		}
		res.Runs++
		res.Services += nsvc
		res.Findings += nf
		res.RunIDs = append(res.RunIDs, formatID(id))
	}
	return res, nil
}

// redactTargets masks credentials in targets given as URLs.
func redactTargets(ts []string) []string {
	if ts == nil {
		return nil
	}
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = credential.Text(t)
	}
	return out
}
