package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"
)

// ---- captures (migration 0003) ----

const captureColumns = `at, key_id, key_name, client_ip, route, model, status, prompt, response, redactions,
	prompt_truncated, response_truncated, redactor_version`

func (s *sqlStore) AppendCaptures(ctx context.Context, cs []Capture) error {
	if len(cs) == 0 {
		return nil
	}
	now := s.clock()
	err := s.write(ctx, func(tx *sql.Tx) error {
		ins, err := tx.PrepareContext(ctx, s.d.rebind(`INSERT INTO guard_captures (`+captureColumns+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`))
		if err != nil {
			return err
		}
		defer ins.Close()
		for _, c := range cs {
			at := now
			if !c.Time.IsZero() {
				at = dbTime(c.Time)
			}
			red := []byte("{}")
			if len(c.Redactions) > 0 {
				red, _ = json.Marshal(c.Redactions) // map[string]int always marshals
			}
			if _, err := ins.ExecContext(ctx, at, clean(c.KeyID), clean(c.KeyName), clean(c.ClientIP), clean(c.Route),
				clean(c.Model), c.Status, clean(c.Prompt), clean(c.Response), string(red), c.PromptTruncated,
				c.ResponseTruncated, c.RedactorVersion); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return s.errf(err, "store %d captured requests", len(cs))
	}
	return nil
}

func (s *sqlStore) QueryCaptures(ctx context.Context, f CaptureFilter) ([]Capture, error) {
	where, args := usageWhere(UsageFilter{Since: f.Since, Until: f.Until, Key: f.Key})
	q := "SELECT " + captureColumns + " FROM guard_captures" + where + " ORDER BY at DESC, id DESC"
	if f.Limit > 0 {
		q += " LIMIT ?"
		args = append(args, f.Limit)
	}
	rows, err := s.db.QueryContext(ctx, s.d.rebind(q), args...)
	if err != nil {
		return nil, s.errf(err, "read captured requests")
	}
	defer rows.Close()
	var out []Capture
	for rows.Next() {
		var (
			c   Capture
			red string
		)
		if err := rows.Scan(&c.Time, &c.KeyID, &c.KeyName, &c.ClientIP, &c.Route, &c.Model, &c.Status, &c.Prompt,
			&c.Response, &red, &c.PromptTruncated, &c.ResponseTruncated, &c.RedactorVersion); err != nil {
			return nil, s.errf(err, "read captured requests")
		}
		c.Time = c.Time.UTC()
		if err := json.Unmarshal([]byte(red), &c.Redactions); err != nil {
			return nil, s.errf(fmt.Errorf("redactions %q: %w", red, err), "read captured requests")
		}
		if len(c.Redactions) == 0 {
			c.Redactions = nil
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, s.errf(err, "read captured requests")
	}
	return out, nil
}

func (s *sqlStore) PruneCaptures(ctx context.Context, before time.Time) (int64, error) {
	// Stored times have microsecond precision: a capture is older than
	// before when it is older than before rounded up to the microsecond.
	cut := dbTime(before)
	if cut.Before(before) {
		cut = cut.Add(time.Microsecond)
	}
	var n int64
	err := s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.d.rebind("DELETE FROM guard_captures WHERE at < ?"), cut)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, s.errf(err, "delete captured requests older than %s", before.UTC().Format(time.RFC3339))
	}
	return n, nil
}
