package store

import (
	"context"
	"database/sql"
	"strings"
	"time"
)

// MaxAbuseBatch is the most aggregated signals one SaveAbuseSignals call
// writes.
const MaxAbuseBatch = 1000

// AbuseSignal is the guard's abuse signals of one kind for one key in one
// minute (migration 0014): how many fired, and the last one's particulars.
type AbuseSignal struct {
	Minute  time.Time `json:"minute"`
	KeyID   string    `json:"key_id"`
	KeyName string    `json:"key_name"`
	Kind    string    `json:"kind"`
	// Action is the strongest action taken (log, alert, block).
	Action string `json:"action"`
	Count  int64  `json:"count"`
	// Suppressed counts the signals the detector's cooldown did not
	// notify (they are not in Count).
	Suppressed int64     `json:"suppressed,omitempty"`
	ClientIP   string    `json:"client_ip,omitempty"`
	Route      string    `json:"route,omitempty"`
	Detail     string    `json:"detail"`
	Categories []string  `json:"categories,omitempty"`
	LastAt     time.Time `json:"last_at"`
}

// AbuseFilter narrows AbuseSignals.
type AbuseFilter struct {
	Since time.Time
	Key   string // key ID or name
	Kind  string
}

// AbuseStore keeps aggregated abuse signals.
type AbuseStore interface {
	// SaveAbuseSignals adds aggregated signals (at most MaxAbuseBatch) in
	// one transaction: counts of the same minute, key and kind add up.
	SaveAbuseSignals(ctx context.Context, sigs []AbuseSignal) error
	// AbuseSignals lists signals, newest first.
	AbuseSignals(ctx context.Context, f AbuseFilter, p Page) ([]AbuseSignal, bool, error)
	// PruneAbuseSignals deletes signals older than before.
	PruneAbuseSignals(ctx context.Context, before time.Time) (int64, error)
}

var actionRank = map[string]int{"log": 1, "alert": 2, "block": 3}

func (s *sqlStore) SaveAbuseSignals(ctx context.Context, sigs []AbuseSignal) error {
	if len(sigs) > MaxAbuseBatch {
		sigs = sigs[:MaxAbuseBatch]
	}
	if len(sigs) == 0 {
		return nil
	}
	err := s.write(ctx, func(tx *sql.Tx) error {
		for _, g := range sigs {
			minute := dbTime(g.Minute.Truncate(time.Minute))
			var action string
			err := tx.QueryRowContext(ctx, s.d.rebind(`SELECT action FROM abuse_signals WHERE minute = ? AND key_id = ? AND kind = ?`),
				minute, clean(g.KeyID), clean(g.Kind)).Scan(&action)
			if err != nil && err != sql.ErrNoRows {
				return err
			}
			if actionRank[action] > actionRank[g.Action] {
				g.Action = action
			}
			if _, err := tx.ExecContext(ctx, s.d.rebind(`INSERT INTO abuse_signals (minute, key_id, kind, key_name, action, count, suppressed, client_ip, route, detail, categories, last_at)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (minute, key_id, kind) DO UPDATE SET key_name = excluded.key_name,
				action = excluded.action, count = abuse_signals.count + excluded.count, suppressed = abuse_signals.suppressed + excluded.suppressed,
				client_ip = excluded.client_ip, route = excluded.route, detail = excluded.detail, categories = excluded.categories, last_at = excluded.last_at`),
				minute, clean(g.KeyID), clean(g.Kind), clean(g.KeyName), clean(g.Action), g.Count, g.Suppressed, clean(g.ClientIP), clean(g.Route),
				clean(g.Detail), clean(strings.Join(g.Categories, ",")), dbTime(g.LastAt)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return s.errf(err, "save abuse signals")
	}
	return nil
}

func (s *sqlStore) AbuseSignals(ctx context.Context, f AbuseFilter, p Page) ([]AbuseSignal, bool, error) {
	p = p.norm()
	q := `SELECT minute, key_id, kind, key_name, action, count, suppressed, client_ip, route, detail, categories, last_at FROM abuse_signals WHERE 1 = 1`
	var args []any
	if !f.Since.IsZero() {
		q += " AND last_at >= ?"
		args = append(args, dbTime(f.Since))
	}
	if f.Key != "" {
		q += " AND (key_id = ? OR key_name = ?)"
		args = append(args, f.Key, f.Key)
	}
	if f.Kind != "" {
		q += " AND kind = ?"
		args = append(args, f.Kind)
	}
	q += " ORDER BY last_at DESC, key_id, kind LIMIT ? OFFSET ?"
	args = append(args, p.Limit+1, min(p.Offset, MaxOffset))
	rows, err := s.db.QueryContext(ctx, s.d.rebind(q), args...)
	if err != nil {
		return nil, false, s.errf(err, "list abuse signals")
	}
	defer rows.Close()
	out := []AbuseSignal{}
	for rows.Next() {
		var g AbuseSignal
		var cats string
		if err := rows.Scan(&g.Minute, &g.KeyID, &g.Kind, &g.KeyName, &g.Action, &g.Count, &g.Suppressed, &g.ClientIP, &g.Route,
			&g.Detail, &cats, &g.LastAt); err != nil {
			return nil, false, s.errf(err, "list abuse signals")
		}
		g.Minute, g.LastAt = g.Minute.UTC(), g.LastAt.UTC()
		if cats != "" {
			g.Categories = strings.Split(cats, ",")
		}
		out = append(out, g)
	}
	more := len(out) > p.Limit
	if more {
		out = out[:p.Limit]
	}
	return out, more, rows.Err()
}

func (s *sqlStore) PruneAbuseSignals(ctx context.Context, before time.Time) (int64, error) {
	var n int64
	err := s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.d.rebind(`DELETE FROM abuse_signals WHERE last_at < ?`), dbTime(before))
		if err == nil {
			n, _ = res.RowsAffected()
		}
		return err
	})
	if err != nil {
		return 0, s.errf(err, "prune abuse signals")
	}
	return n, nil
}
