package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// ---- API keys ----

const keyColumns = `id, name, hash, created_at, expires_at, revoked_at, rotated_at, last_used_at,
	admin, allow_cloud, models, rpm, tpm, concurrent, daily_tokens, monthly_tokens`

func scanKey(sc interface{ Scan(...any) error }) (APIKey, error) {
	var (
		k                                   APIKey
		created                             time.Time
		expires, revoked, rotated, lastUsed sql.NullTime
		models                              string
	)
	if err := sc.Scan(&k.ID, &k.Name, &k.Hash, &created, &expires, &revoked, &rotated, &lastUsed,
		&k.Admin, &k.AllowCloud, &models, &k.Limits.RPM, &k.Limits.TPM, &k.Limits.Concurrent,
		&k.Limits.Daily, &k.Limits.Monthly); err != nil {
		return APIKey{}, err
	}
	k.CreatedAt = created.UTC()
	k.ExpiresAt = fromNull(expires)
	k.RevokedAt = fromNull(revoked)
	k.RotatedAt = fromNull(rotated)
	k.LastUsedAt = fromNull(lastUsed)
	if err := json.Unmarshal([]byte(models), &k.Models); err != nil {
		return APIKey{}, fmt.Errorf("key %s: models: %w", k.ID, err)
	}
	k.Models = nonNil(k.Models)
	return k, nil
}

func fromNull(t sql.NullTime) time.Time {
	if !t.Valid {
		return time.Time{}
	}
	return t.Time.UTC()
}

// nullable stores a zero time as NULL.
func nullable(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return dbTime(t)
}

// isUniqueViolation reports whether err is a unique-constraint failure on
// either back end.
func isUniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "23505"
	}
	return err != nil && strings.Contains(err.Error(), "UNIQUE constraint failed")
}

func (s *sqlStore) CreateKey(ctx context.Context, k APIKey) (APIKey, error) {
	k.ID, k.Name = strings.TrimSpace(k.ID), strings.TrimSpace(k.Name)
	switch {
	case k.ID == "":
		return APIKey{}, fmt.Errorf("create API key: empty key ID: %w", ErrBadInput)
	case k.Name == "":
		return APIKey{}, fmt.Errorf("create API key: empty name: %w", ErrBadInput)
	case len(k.Hash) == 0:
		return APIKey{}, fmt.Errorf("create API key %q: no key hash: %w", k.Name, ErrBadInput)
	}
	if k.CreatedAt.IsZero() {
		k.CreatedAt = s.clock()
	}
	k.CreatedAt = dbTime(k.CreatedAt)
	k.Name = clean(k.Name)
	k.Models = nonNil(k.Models)
	for i := range k.Models {
		k.Models[i] = clean(k.Models[i])
	}
	models, _ := json.Marshal(k.Models) // []string always marshals
	for _, t := range []*time.Time{&k.ExpiresAt, &k.RevokedAt, &k.RotatedAt, &k.LastUsedAt} {
		if !t.IsZero() {
			*t = dbTime(*t)
		}
	}
	err := s.write(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, s.d.rebind(`SELECT COUNT(*) FROM api_keys WHERE id = ? OR (name = ? AND revoked_at IS NULL)`),
			k.ID, k.Name).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return ErrExists
		}
		_, err := tx.ExecContext(ctx, s.d.rebind(`INSERT INTO api_keys (`+keyColumns+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
			k.ID, k.Name, k.Hash, k.CreatedAt, nullable(k.ExpiresAt), nullable(k.RevokedAt), nullable(k.RotatedAt),
			nullable(k.LastUsedAt), k.Admin, k.AllowCloud, string(models), k.Limits.RPM, k.Limits.TPM,
			k.Limits.Concurrent, k.Limits.Daily, k.Limits.Monthly)
		return err
	})
	if errors.Is(err, ErrExists) || isUniqueViolation(err) {
		return APIKey{}, fmt.Errorf("create API key %q: a key with this name (or ID) already exists; revoke it or rotate it instead: %w", k.Name, ErrExists)
	}
	if err != nil {
		return APIKey{}, s.errf(err, "create API key %q", k.Name)
	}
	return k, nil
}

func (s *sqlStore) GetKeyByID(ctx context.Context, id string) (APIKey, error) {
	k, err := scanKey(s.db.QueryRowContext(ctx, s.d.rebind("SELECT "+keyColumns+" FROM api_keys WHERE id = ?"), id))
	if errors.Is(err, sql.ErrNoRows) {
		return APIKey{}, fmt.Errorf("no API key with ID %q: %w", id, ErrNotFound)
	}
	if err != nil {
		return APIKey{}, s.errf(err, "read API key %q", id)
	}
	return k, nil
}

func (s *sqlStore) GetKeyByName(ctx context.Context, name string) (APIKey, error) {
	return s.keyByName(ctx, s.db, name, false)
}

// keyByName finds the active key of that name or, unless activeOnly, the
// most recent revoked one when none is active.
func (s *sqlStore) keyByName(ctx context.Context, q queryer, name string, activeOnly bool) (APIKey, error) {
	query := "SELECT " + keyColumns + " FROM api_keys WHERE name = ?"
	if activeOnly {
		query += " AND revoked_at IS NULL"
	}
	// Active first (NULL revoked_at), then the newest.
	query += " ORDER BY CASE WHEN revoked_at IS NULL THEN 0 ELSE 1 END, created_at DESC, id LIMIT 1"
	k, err := scanKey(q.QueryRowContext(ctx, s.d.rebind(query), strings.TrimSpace(name)))
	if errors.Is(err, sql.ErrNoRows) {
		what := "no API key named %q"
		if activeOnly {
			what = "no active API key named %q"
		}
		return APIKey{}, fmt.Errorf(what+" (see `llmfence keys list`): %w", name, ErrNotFound)
	}
	if err != nil {
		return APIKey{}, s.errf(err, "read API key %q", name)
	}
	return k, nil
}

func (s *sqlStore) ListKeys(ctx context.Context) ([]APIKey, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT "+keyColumns+" FROM api_keys ORDER BY name, created_at, id")
	if err != nil {
		return nil, s.errf(err, "list API keys")
	}
	defer rows.Close()
	var out []APIKey
	for rows.Next() {
		k, err := scanKey(rows)
		if err != nil {
			return nil, s.errf(err, "list API keys")
		}
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, s.errf(err, "list API keys")
	}
	return out, nil
}

// updateActive runs one UPDATE on the active key of that name and returns
// the key as it is afterwards.
func (s *sqlStore) updateActive(ctx context.Context, name, what, set string, args ...any) (APIKey, error) {
	var k APIKey
	err := s.write(ctx, func(tx *sql.Tx) error {
		cur, err := s.keyByName(ctx, tx, name, true)
		if err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, s.d.rebind("UPDATE api_keys SET "+set+" WHERE id = ? AND revoked_at IS NULL"),
			append(args, cur.ID)...)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 { // revoked meanwhile by another process
			return fmt.Errorf("API key %q was revoked meanwhile: %w", name, ErrRevoked)
		}
		k, err = scanKey(tx.QueryRowContext(ctx, s.d.rebind("SELECT "+keyColumns+" FROM api_keys WHERE id = ?"), cur.ID))
		return err
	})
	if errors.Is(err, ErrNotFound) || errors.Is(err, ErrRevoked) {
		return APIKey{}, fmt.Errorf("%s: %w", what, err)
	}
	if err != nil {
		return APIKey{}, s.errf(err, "%s", what)
	}
	return k, nil
}

func (s *sqlStore) RevokeKey(ctx context.Context, name string) (APIKey, error) {
	return s.updateActive(ctx, name, fmt.Sprintf("revoke API key %q", name), "revoked_at = ?", s.clock())
}

func (s *sqlStore) RotateKey(ctx context.Context, name string, hash []byte) (APIKey, error) {
	if len(hash) == 0 {
		return APIKey{}, fmt.Errorf("rotate API key %q: no key hash: %w", name, ErrBadInput)
	}
	return s.updateActive(ctx, name, fmt.Sprintf("rotate API key %q", name), "hash = ?, rotated_at = ?", hash, s.clock())
}

func (s *sqlStore) TouchKey(ctx context.Context, id string, at time.Time) error {
	at = dbTime(at)
	err := s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, s.d.rebind(`UPDATE api_keys SET last_used_at = ?
			WHERE id = ? AND (last_used_at IS NULL OR last_used_at < ?)`), at, id, at)
		return err
	})
	if err != nil {
		return s.errf(err, "record use of API key %q", id)
	}
	return nil
}

// ---- usage ----

const usageInsert = `INSERT INTO usage_records (at, key_id, key_name, client_ip,
	method, route, model, status, prompt_tokens, completion_tokens, latency_ms, bytes_in, bytes_out,
	truncated, client_gone, error, client_cert, requests) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

// usageRowsPerInsert is how many records one multi-row INSERT carries
// (18 parameters each, well under either back end's limit).
const usageRowsPerInsert = 64

// usageInsertRows is usageInsert for n rows.
func usageInsertRows(n int) string {
	row := "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
	head, _, _ := strings.Cut(usageInsert, "VALUES")
	return head + "VALUES " + strings.TrimSuffix(strings.Repeat(row+", ", n), ", ")
}

func (s *sqlStore) AppendUsage(ctx context.Context, recs []UsageRecord) error {
	if len(recs) == 0 {
		return nil
	}
	return s.appendUsage(ctx, recs, nil)
}

func (s *sqlStore) AppendSpooled(ctx context.Context, spoolID string, recs []UsageRecord, next SpoolPosition) error {
	if strings.TrimSpace(spoolID) == "" {
		return fmt.Errorf("record spooled usage: empty spool ID: %w", ErrBadInput)
	}
	return s.appendUsage(ctx, recs, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, s.d.rebind(`INSERT INTO guard_audit_spools (spool_id, segment, position, updated_at)
			VALUES (?, ?, ?, ?) ON CONFLICT (spool_id) DO UPDATE SET segment = excluded.segment,
			position = excluded.position, updated_at = excluded.updated_at`), spoolID, next.Segment, next.Offset, s.clock())
		return err
	})
}

// appendUsage inserts recs and runs also (if not nil) in one transaction.
func (s *sqlStore) appendUsage(ctx context.Context, recs []UsageRecord, also func(*sql.Tx) error) error {
	now := s.clock()
	stmt, err := s.prepared(ctx, &s.usageStmt, s.d.rebind(usageInsert))
	if err != nil {
		return s.errf(err, "record %d usage records", len(recs))
	}
	args := func(dst []any, r *UsageRecord) []any {
		at := now
		if !r.Time.IsZero() {
			at = dbTime(r.Time)
		}
		return append(dst, at, clean(r.KeyID), clean(r.KeyName), clean(r.ClientIP),
			clean(r.Method), clean(r.Route), clean(r.Model), r.Status, r.PromptTokens, r.CompletionTokens,
			r.LatencyMS, r.BytesIn, r.BytesOut, r.Truncated, r.ClientGone, clean(r.Error), clean(r.ClientCert),
			r.Count())
	}
	err = s.write(ctx, func(tx *sql.Tx) error {
		rest := recs
		if len(rest) >= usageRowsPerInsert {
			// Large batches (the audit spool's) go in with multi-row
			// INSERTs: one statement per usageRowsPerInsert records.
			many, err := tx.PrepareContext(ctx, s.d.rebind(usageInsertRows(usageRowsPerInsert)))
			if err != nil {
				return err
			}
			defer many.Close()
			vals := make([]any, 0, usageRowsPerInsert*18)
			for len(rest) >= usageRowsPerInsert {
				vals = vals[:0]
				for i := range usageRowsPerInsert {
					vals = args(vals, &rest[i])
				}
				if _, err := many.ExecContext(ctx, vals...); err != nil {
					return err
				}
				rest = rest[usageRowsPerInsert:]
			}
		}
		ins := tx.StmtContext(ctx, stmt)
		defer ins.Close()
		vals := make([]any, 0, 18)
		for i := range rest {
			if _, err := ins.ExecContext(ctx, args(vals[:0], &rest[i])...); err != nil {
				return err
			}
		}
		if also != nil {
			return also(tx)
		}
		return nil
	})
	if err != nil {
		return s.errf(err, "record %d usage records", len(recs))
	}
	return nil
}

func (s *sqlStore) SpoolPosition(ctx context.Context, spoolID string) (SpoolPosition, error) {
	var p SpoolPosition
	err := s.db.QueryRowContext(ctx, s.d.rebind("SELECT segment, position FROM guard_audit_spools WHERE spool_id = ?"),
		spoolID).Scan(&p.Segment, &p.Offset)
	if errors.Is(err, sql.ErrNoRows) {
		return SpoolPosition{}, nil
	}
	if err != nil {
		return SpoolPosition{}, s.errf(err, "read the position of audit spool %q", spoolID)
	}
	return p, nil
}

func (s *sqlStore) PruneUsage(ctx context.Context, before time.Time) (int64, error) {
	cut := dbTime(before)
	if cut.Before(before) {
		cut = cut.Add(time.Microsecond)
	}
	var n int64
	err := s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.d.rebind("DELETE FROM usage_records WHERE at < ?"), cut)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, s.errf(err, "delete usage records older than %s", before.UTC().Format(time.RFC3339))
	}
	return n, nil
}

// usageWhere renders a filter as a WHERE clause with '?' placeholders.
func usageWhere(f UsageFilter) (string, []any) {
	var conds []string
	var args []any
	if !f.Since.IsZero() {
		conds = append(conds, "at >= ?")
		args = append(args, dbTime(f.Since))
	}
	if !f.Until.IsZero() {
		conds = append(conds, "at < ?")
		args = append(args, dbTime(f.Until))
	}
	if k := strings.TrimSpace(f.Key); k != "" {
		conds = append(conds, "(key_name = ? OR key_id = ?)")
		args = append(args, k, k)
	}
	if len(conds) == 0 {
		return "", nil
	}
	return " WHERE " + strings.Join(conds, " AND "), args
}

func (s *sqlStore) QueryUsage(ctx context.Context, f UsageFilter) ([]UsageRecord, error) {
	where, args := usageWhere(f)
	q := `SELECT at, key_id, key_name, client_ip, method, route, model, status, prompt_tokens, completion_tokens,
		latency_ms, bytes_in, bytes_out, truncated, client_gone, error, client_cert, requests FROM usage_records` + where + " ORDER BY at DESC, id DESC"
	if f.Limit > 0 {
		q += " LIMIT ?"
		args = append(args, f.Limit)
	}
	rows, err := s.db.QueryContext(ctx, s.d.rebind(q), args...)
	if err != nil {
		return nil, s.errf(err, "read usage records")
	}
	defer rows.Close()
	var out []UsageRecord
	for rows.Next() {
		var r UsageRecord
		if err := rows.Scan(&r.Time, &r.KeyID, &r.KeyName, &r.ClientIP, &r.Method, &r.Route, &r.Model, &r.Status,
			&r.PromptTokens, &r.CompletionTokens, &r.LatencyMS, &r.BytesIn, &r.BytesOut, &r.Truncated,
			&r.ClientGone, &r.Error, &r.ClientCert, &r.Requests); err != nil {
			return nil, s.errf(err, "read usage records")
		}
		r.Time = r.Time.UTC()
		if r.Requests <= 1 {
			r.Requests = 0 // one request: the field is left out, as it was written
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, s.errf(err, "read usage records")
	}
	return out, nil
}

func (s *sqlStore) SummarizeUsage(ctx context.Context, f UsageFilter) ([]UsageSummary, error) {
	where, args := usageWhere(f)
	// MIN/MAX of a timestamp lose the column type on SQLite (they come back
	// as the stored text), so first and last are scanned through anyTime.
	q := `SELECT key_id, MAX(key_name), CAST(SUM(requests) AS BIGINT), CAST(SUM(prompt_tokens) AS BIGINT), CAST(SUM(completion_tokens) AS BIGINT),
		CAST(SUM(CASE WHEN status >= 400 OR status = 0 OR error <> '' THEN requests ELSE 0 END) AS BIGINT), MIN(at), MAX(at)
		FROM usage_records` + where + " GROUP BY key_id ORDER BY MAX(key_name), key_id"
	rows, err := s.db.QueryContext(ctx, s.d.rebind(q), args...)
	if err != nil {
		return nil, s.errf(err, "summarise usage")
	}
	defer rows.Close()
	var out []UsageSummary
	for rows.Next() {
		var u UsageSummary
		var first, last any
		if err := rows.Scan(&u.KeyID, &u.KeyName, &u.Requests, &u.PromptTokens, &u.CompletionTokens, &u.Errors,
			&first, &last); err != nil {
			return nil, s.errf(err, "summarise usage")
		}
		if u.First, err = anyTime(first); err != nil {
			return nil, s.errf(err, "summarise usage")
		}
		if u.Last, err = anyTime(last); err != nil {
			return nil, s.errf(err, "summarise usage")
		}
		out = append(out, u)
	}
	if err := rows.Err(); err != nil {
		return nil, s.errf(err, "summarise usage")
	}
	return out, nil
}

// anyTime converts an aggregated timestamp to a time: PostgreSQL returns a
// time.Time, SQLite the text it stored (_time_format=sqlite).
func anyTime(v any) (time.Time, error) {
	var s string
	switch t := v.(type) {
	case nil:
		return time.Time{}, nil
	case time.Time:
		return t.UTC(), nil
	case string:
		s = t
	case []byte:
		s = string(t)
	default:
		return time.Time{}, fmt.Errorf("unexpected time value %T", v)
	}
	for _, layout := range []string{"2006-01-02 15:04:05.999999999-07:00", "2006-01-02 15:04:05.999999999Z07:00",
		"2006-01-02 15:04:05.999999999", time.RFC3339Nano} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("cannot read time %q", s)
}
