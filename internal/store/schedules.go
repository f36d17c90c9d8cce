package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Schedule is a scan on a cron schedule.
type Schedule struct {
	ID        int64      `json:"id"`
	Name      string     `json:"name"`
	Cron      string     `json:"cron"`
	Targets   []string   `json:"targets"`
	Exclude   []string   `json:"exclude"`
	Ports     string     `json:"ports,omitempty"`
	Rate      float64    `json:"rate"`
	Enabled   bool       `json:"enabled"`
	NextRun   time.Time  `json:"next_run"`
	LastRunID string     `json:"last_run_id,omitempty"`
	LastRunAt *time.Time `json:"last_run_at,omitempty"`
	Missed    int        `json:"missed"`
	CreatedBy string     `json:"created_by,omitempty"`
}

// ScheduleStore keeps schedules.
type ScheduleStore interface {
	SaveSchedule(ctx context.Context, s Schedule) (Schedule, error)
	Schedules(ctx context.Context) ([]Schedule, error)
	GetSchedule(ctx context.Context, id int64) (Schedule, error)
	DeleteSchedule(ctx context.Context, id int64) error
	// ClaimDueSchedules moves every enabled schedule whose next run is due
	// to its next slot (next(now)), inside one transaction, and calls inTx
	// for each with the slot it was due at and whether it is late beyond
	// grace: enqueue the run there, so a slot is claimed exactly when its
	// job exists.
	ClaimDueSchedules(ctx context.Context, now time.Time, grace time.Duration, next func(cron string, after time.Time) (time.Time, error),
		inTx func(ctx context.Context, tx *sql.Tx, s Schedule, slot time.Time, late bool) error) (int, error)
	// ScheduleRan records the run a schedule started.
	ScheduleRan(ctx context.Context, id int64, runID string) error
	// PreviousRun is the newest finished run of the same scope before runID.
	PreviousRun(ctx context.Context, runID string) (Run, error)
}

const scheduleCols = `id, name, cron, targets, exclude, ports, rate, enabled, next_run, last_run_id, last_run_at, missed, created_by`

func scanSchedule(sc interface{ Scan(...any) error }) (Schedule, error) {
	var (
		s      Schedule
		tg, ex string
		en     int
		next   time.Time
		lastID int64
		lastAt sql.NullTime
	)
	err := sc.Scan(&s.ID, &s.Name, &s.Cron, &tg, &ex, &s.Ports, &s.Rate, &en, &next, &lastID, &lastAt, &s.Missed, &s.CreatedBy)
	if err != nil {
		return s, err
	}
	s.Enabled, s.NextRun, s.LastRunAt = en != 0, next.UTC(), nullTime(lastAt)
	if lastID > 0 {
		s.LastRunID = formatID(lastID)
	}
	if err := json.Unmarshal([]byte(tg), &s.Targets); err != nil {
		return s, err
	}
	if err := json.Unmarshal([]byte(ex), &s.Exclude); err != nil {
		return s, err
	}
	return s, nil
}

// SaveSchedule creates a schedule, or replaces the one with the same name.
func (s *sqlStore) SaveSchedule(ctx context.Context, sc Schedule) (Schedule, error) {
	if sc.Name == "" || len(sc.Name) > 100 {
		return Schedule{}, fmt.Errorf("a schedule needs a name of 1 to 100 characters: %w", ErrBadInput)
	}
	tg, _ := json.Marshal(nonNil(sc.Targets))
	ex, _ := json.Marshal(nonNil(sc.Exclude))
	now := s.clock()
	err := s.write(ctx, func(tx *sql.Tx) error {
		return tx.QueryRowContext(ctx, s.d.rebind(`INSERT INTO schedules (name, cron, targets, exclude, ports, rate, enabled, next_run, created_by, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (name) DO UPDATE SET cron = excluded.cron, targets = excluded.targets, exclude = excluded.exclude,
				ports = excluded.ports, rate = excluded.rate, enabled = excluded.enabled, next_run = excluded.next_run, updated_at = excluded.updated_at
			RETURNING id`), clean(sc.Name), clean(sc.Cron), string(tg), string(ex), clean(sc.Ports), sc.Rate, boolInt(sc.Enabled),
			dbTime(sc.NextRun), clean(sc.CreatedBy), now, now).Scan(&sc.ID)
	})
	if err != nil {
		return Schedule{}, s.errf(err, "save schedule %q", sc.Name)
	}
	return s.GetSchedule(ctx, sc.ID)
}

func (s *sqlStore) Schedules(ctx context.Context) ([]Schedule, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT "+scheduleCols+" FROM schedules ORDER BY name LIMIT 1000")
	if err != nil {
		return nil, s.errf(err, "list schedules")
	}
	defer rows.Close()
	out := []Schedule{}
	for rows.Next() {
		sc, err := scanSchedule(rows)
		if err != nil {
			return nil, s.errf(err, "list schedules")
		}
		out = append(out, sc)
	}
	return out, rows.Err()
}

func (s *sqlStore) GetSchedule(ctx context.Context, id int64) (Schedule, error) {
	sc, err := scanSchedule(s.db.QueryRowContext(ctx, s.d.rebind("SELECT "+scheduleCols+" FROM schedules WHERE id = ?"), id))
	if errors.Is(err, sql.ErrNoRows) {
		return sc, fmt.Errorf("no schedule %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return sc, s.errf(err, "read schedule %d", id)
	}
	return sc, nil
}

func (s *sqlStore) DeleteSchedule(ctx context.Context, id int64) error {
	var n int64
	err := s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.d.rebind(`DELETE FROM schedules WHERE id = ?`), id)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return s.errf(err, "delete schedule %d", id)
	}
	if n == 0 {
		return fmt.Errorf("no schedule %d: %w", id, ErrNotFound)
	}
	return nil
}

func (s *sqlStore) ClaimDueSchedules(ctx context.Context, now time.Time, grace time.Duration, next func(string, time.Time) (time.Time, error),
	inTx func(context.Context, *sql.Tx, Schedule, time.Time, bool) error) (int, error) {
	n := 0
	err := s.write(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, s.d.rebind("SELECT "+scheduleCols+" FROM schedules WHERE enabled = 1 AND next_run <= ?"+s.forUpdate()), dbTime(now))
		if err != nil {
			return err
		}
		var due []Schedule
		for rows.Next() {
			sc, err := scanSchedule(rows)
			if err != nil {
				rows.Close()
				return err
			}
			due = append(due, sc)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, sc := range due {
			nx, err := next(sc.Cron, now)
			if err != nil {
				return fmt.Errorf("schedule %q: %w", sc.Name, err)
			}
			late := now.Sub(sc.NextRun) > grace
			missed := 0
			if late {
				missed = 1
			}
			if _, err := tx.ExecContext(ctx, s.d.rebind(`UPDATE schedules SET next_run = ?, missed = missed + ? WHERE id = ?`),
				dbTime(nx), missed, sc.ID); err != nil {
				return err
			}
			if err := inTx(ctx, tx, sc, sc.NextRun, late); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	if err != nil {
		return 0, s.errf(err, "start due schedules")
	}
	return n, nil
}

func (s *sqlStore) ScheduleRan(ctx context.Context, id int64, runID string) error {
	rid, err := parseID(runID)
	if err != nil {
		return err
	}
	err = s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, s.d.rebind(`UPDATE schedules SET last_run_id = ?, last_run_at = ? WHERE id = ?`), rid, s.clock(), id)
		return err
	})
	if err != nil {
		return s.errf(err, "record the run of schedule %d", id)
	}
	return nil
}

// PreviousRun is the newest finished run of the same scope before runID.
func (s *sqlStore) PreviousRun(ctx context.Context, runID string) (Run, error) {
	r, err := s.GetRun(ctx, runID)
	if err != nil {
		return Run{}, err
	}
	id, _ := parseID(r.ID)
	var prev int64
	err = s.db.QueryRowContext(ctx, s.d.rebind(`SELECT id FROM runs WHERE scope_key = ? AND scope_key <> '' AND status = ? AND id < ?
		ORDER BY id DESC LIMIT 1`), r.ScopeKey, string(StatusFinished), id).Scan(&prev)
	if errors.Is(err, sql.ErrNoRows) {
		return Run{}, fmt.Errorf("no earlier finished run of the same scope as run %s: %w", runID, ErrNotFound)
	}
	if err != nil {
		return Run{}, s.errf(err, "find the previous run of run %s", runID)
	}
	return s.GetRun(ctx, formatID(prev))
}

// RecordEvent writes one inventory event (a schedule that missed its
// time, ...) through the alert hook.
func (s *sqlStore) RecordEvent(ctx context.Context, tx *sql.Tx, ev Event) (Event, error) {
	it := &invTx{s: s, tx: tx, now: s.clock()}
	if _, err := it.event(ctx, ev); err != nil {
		return ev, err
	}
	return it.events[0], nil
}
