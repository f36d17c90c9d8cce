package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// WatchedPath is a file, directory or Ollama store inspected on a period.
type WatchedPath struct {
	ID         int64      `json:"id"`
	Path       string     `json:"path"`
	Kind       string     `json:"kind"`
	EveryHours int        `json:"every_hours"`
	NextRun    time.Time  `json:"next_run"`
	LastRunAt  *time.Time `json:"last_run_at,omitempty"`
	LastStatus string     `json:"last_status,omitempty"`
	Files      int        `json:"files"`
	Failed     int        `json:"failed"`
	CreatedBy  string     `json:"created_by,omitempty"`
}

// PathResult is the latest inspection of one file.
type PathResult struct {
	PathID    int64     `json:"path_id"`
	File      string    `json:"file"`
	CheckedAt time.Time `json:"checked_at"`
	Format    string    `json:"format"`
	Size      int64     `json:"size"`
	SHA256    string    `json:"sha256"`
	Verdict   string    `json:"verdict"`
	Severity  string    `json:"severity"`
	Doc       string    `json:"-"`
}

// PathStore keeps watched paths and their results.
type PathStore interface {
	SavePath(ctx context.Context, p WatchedPath) (WatchedPath, error)
	Paths(ctx context.Context) ([]WatchedPath, error)
	DeletePath(ctx context.Context, id int64) error
	// DuePaths claims paths whose next run is due (moving it on by their
	// period) and returns them.
	DuePaths(ctx context.Context, now time.Time) ([]WatchedPath, error)
	// SavePathResults replaces a path's results with those of a complete
	// inspection and records its outcome.
	SavePathResults(ctx context.Context, id int64, results []PathResult, status string, files, failed int) error
	PathResults(ctx context.Context, id int64, p Page) ([]PathResult, bool, error)
}

const pathCols = `id, path, kind, every_hours, next_run, last_run_at, last_status, files, failed, created_by`

func scanPath(sc interface{ Scan(...any) error }) (WatchedPath, error) {
	var p WatchedPath
	var last sql.NullTime
	err := sc.Scan(&p.ID, &p.Path, &p.Kind, &p.EveryHours, &p.NextRun, &last, &p.LastStatus, &p.Files, &p.Failed, &p.CreatedBy)
	p.NextRun, p.LastRunAt = p.NextRun.UTC(), nullTime(last)
	return p, err
}

func (s *sqlStore) SavePath(ctx context.Context, p WatchedPath) (WatchedPath, error) {
	if p.EveryHours < 1 || p.EveryHours > 24*365 {
		return WatchedPath{}, fmt.Errorf("inspect a path every 1 to 8760 hours: %w", ErrBadInput)
	}
	if p.Kind != "files" && p.Kind != "ollama-store" {
		return WatchedPath{}, fmt.Errorf("path kind %q: want files or ollama-store: %w", p.Kind, ErrBadInput)
	}
	now := s.clock()
	err := s.write(ctx, func(tx *sql.Tx) error {
		return tx.QueryRowContext(ctx, s.d.rebind(`INSERT INTO watched_paths (path, kind, every_hours, next_run, created_by, created_at)
			VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (path) DO UPDATE SET kind = excluded.kind, every_hours = excluded.every_hours,
			next_run = excluded.next_run RETURNING id`), clean(p.Path), p.Kind, p.EveryHours, now, clean(p.CreatedBy), now).Scan(&p.ID)
	})
	if err != nil {
		return WatchedPath{}, s.errf(err, "save watched path")
	}
	ps, err := s.Paths(ctx)
	for _, x := range ps {
		if x.ID == p.ID {
			return x, nil
		}
	}
	return p, err
}

func (s *sqlStore) Paths(ctx context.Context) ([]WatchedPath, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT "+pathCols+" FROM watched_paths ORDER BY path LIMIT 1000")
	if err != nil {
		return nil, s.errf(err, "list watched paths")
	}
	defer rows.Close()
	out := []WatchedPath{}
	for rows.Next() {
		p, err := scanPath(rows)
		if err != nil {
			return nil, s.errf(err, "list watched paths")
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

func (s *sqlStore) DeletePath(ctx context.Context, id int64) error {
	var n int64
	err := s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.d.rebind(`DELETE FROM watched_paths WHERE id = ?`), id)
		if err == nil {
			n, _ = res.RowsAffected()
		}
		return err
	})
	if err != nil {
		return s.errf(err, "delete watched path %d", id)
	}
	if n == 0 {
		return fmt.Errorf("no watched path %d: %w", id, ErrNotFound)
	}
	return nil
}

func (s *sqlStore) DuePaths(ctx context.Context, now time.Time) ([]WatchedPath, error) {
	var due []WatchedPath
	err := s.write(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, s.d.rebind("SELECT "+pathCols+" FROM watched_paths WHERE next_run <= ?"+s.forUpdate()), dbTime(now))
		if err != nil {
			return err
		}
		for rows.Next() {
			p, err := scanPath(rows)
			if err != nil {
				rows.Close()
				return err
			}
			due = append(due, p)
		}
		rows.Close()
		for _, p := range due {
			if _, err := tx.ExecContext(ctx, s.d.rebind(`UPDATE watched_paths SET next_run = ? WHERE id = ?`),
				dbTime(now.Add(time.Duration(p.EveryHours)*time.Hour)), p.ID); err != nil {
				return err
			}
		}
		return rows.Err()
	})
	if err != nil {
		return nil, s.errf(err, "claim due paths")
	}
	return due, nil
}

func (s *sqlStore) SavePathResults(ctx context.Context, id int64, results []PathResult, status string, files, failed int) error {
	err := s.write(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, s.d.rebind(`DELETE FROM path_results WHERE path_id = ?`), id); err != nil {
			return err
		}
		now := s.clock()
		for _, r := range results {
			if _, err := tx.ExecContext(ctx, s.d.rebind(`INSERT INTO path_results (path_id, file, checked_at, format, size, sha256, verdict, severity, doc)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (path_id, file) DO NOTHING`), id, clean(r.File), now, clean(r.Format), r.Size,
				clean(r.SHA256), clean(r.Verdict), clean(r.Severity), clean(r.Doc)); err != nil {
				return err
			}
		}
		_, err := tx.ExecContext(ctx, s.d.rebind(`UPDATE watched_paths SET last_run_at = ?, last_status = ?, files = ?, failed = ? WHERE id = ?`),
			now, clean(status), files, failed, id)
		return err
	})
	if err != nil {
		return s.errf(err, "save results of watched path %d", id)
	}
	return nil
}

func (s *sqlStore) PathResults(ctx context.Context, id int64, p Page) ([]PathResult, bool, error) {
	p = p.norm()
	rows, err := s.db.QueryContext(ctx, s.d.rebind(`SELECT path_id, file, checked_at, format, size, sha256, verdict, severity, doc FROM path_results
		WHERE path_id = ? ORDER BY CASE verdict WHEN 'malicious' THEN 0 WHEN 'suspicious' THEN 1 WHEN 'invalid' THEN 2 ELSE 3 END, file LIMIT ? OFFSET ?`),
		id, p.Limit+1, min(p.Offset, MaxOffset))
	if err != nil {
		return nil, false, s.errf(err, "read results of watched path %d", id)
	}
	defer rows.Close()
	out := []PathResult{}
	for rows.Next() {
		var r PathResult
		if err := rows.Scan(&r.PathID, &r.File, &r.CheckedAt, &r.Format, &r.Size, &r.SHA256, &r.Verdict, &r.Severity, &r.Doc); err != nil {
			return nil, false, s.errf(err, "read results")
		}
		r.CheckedAt = r.CheckedAt.UTC()
		out = append(out, r)
	}
	more := len(out) > p.Limit
	if more {
		out = out[:p.Limit]
	}
	return out, more, rows.Err()
}

var _ = errors.New
