package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Channel is where alerts go.
type Channel struct {
	ID             int64     `json:"id"`
	Name           string    `json:"name"`
	Kind           string    `json:"kind"`
	Endpoint       string    `json:"endpoint"`
	MinSeverity    string    `json:"min_severity"`
	Rules          string    `json:"rules,omitempty"`
	Tags           string    `json:"tags,omitempty"`
	Owners         string    `json:"owners,omitempty"`
	DigestMinutes  int       `json:"digest_minutes,omitempty"`
	Enabled        bool      `json:"enabled"`
	DisabledReason string    `json:"disabled_reason,omitempty"`
	Failures       int       `json:"failures"`
	CreatedBy      string    `json:"created_by,omitempty"`
	CreatedAt      time.Time `json:"created_at"`
}

// Delivery is one alert to one channel.
type Delivery struct {
	ID        int64
	ChannelID int64
	Status    string
	Attempts  int
	Rule      string
	Payload   string
	LastError string
}

// AlertStore keeps alert channels and deliveries.
type AlertStore interface {
	SaveChannel(ctx context.Context, c Channel) (Channel, error)
	Channels(ctx context.Context) ([]Channel, error)
	GetChannel(ctx context.Context, id int64) (Channel, error)
	// QueueAlert, inside tx, records an alert for a channel unless the
	// same (host, port, rule, subject) alerted within window; it returns
	// the delivery to send (0 when suppressed or put in the digest).
	QueueAlert(ctx context.Context, tx *sql.Tx, channelID int64, rule, host string, port int, subject, payload string, window time.Duration, digest bool) (int64, error)
	// QueueDelivery records a delivery outside the dedupe (test pings,
	// digests).
	QueueDelivery(ctx context.Context, tx *sql.Tx, channelID int64, rule, payload string) (int64, error)
	GetDelivery(ctx context.Context, id int64) (Delivery, Channel, error)
	// DeliveryDone records the outcome of one attempt. A success resets
	// the channel's failure count; a final failure counts one more, and
	// disableAfter consecutive final failures disable the channel with
	// reason. It reports whether the channel was disabled now.
	DeliveryDone(ctx context.Context, id int64, ok, final bool, errText string, disableAfter int) (bool, error)
	// TakeDigest removes a channel's waiting digest entries (oldest first).
	TakeDigest(ctx context.Context, tx *sql.Tx, channelID int64, olderThan time.Time) ([]string, error)
	DigestChannels(ctx context.Context) ([]int64, error)
	WithTx(ctx context.Context, fn func(tx *sql.Tx) error) error
	ChannelsTx(ctx context.Context, tx *sql.Tx) ([]Channel, error)
}

const channelCols = `id, name, kind, endpoint, min_severity, rules, tags, owners, digest_minutes, enabled, disabled_reason, failures, created_by, created_at`

func scanChannel(sc interface{ Scan(...any) error }) (Channel, error) {
	var c Channel
	var en int
	err := sc.Scan(&c.ID, &c.Name, &c.Kind, &c.Endpoint, &c.MinSeverity, &c.Rules, &c.Tags, &c.Owners, &c.DigestMinutes, &en,
		&c.DisabledReason, &c.Failures, &c.CreatedBy, &c.CreatedAt)
	c.Enabled, c.CreatedAt = en != 0, c.CreatedAt.UTC()
	return c, err
}

// WithTx runs fn in a write transaction.
func (s *sqlStore) WithTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	if err := s.write(ctx, fn); err != nil {
		return s.errf(err, "write")
	}
	return nil
}

func (s *sqlStore) SaveChannel(ctx context.Context, c Channel) (Channel, error) {
	err := s.write(ctx, func(tx *sql.Tx) error {
		return tx.QueryRowContext(ctx, s.d.rebind(`INSERT INTO alert_channels (name, kind, endpoint, min_severity, rules, tags, owners, digest_minutes,
			enabled, disabled_reason, failures, created_by, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1, '', 0, ?, ?)
			ON CONFLICT (name) DO UPDATE SET kind = excluded.kind, endpoint = excluded.endpoint, min_severity = excluded.min_severity,
				rules = excluded.rules, tags = excluded.tags, owners = excluded.owners, digest_minutes = excluded.digest_minutes,
				enabled = 1, disabled_reason = '', failures = 0
			RETURNING id`), clean(c.Name), c.Kind, clean(c.Endpoint), c.MinSeverity, clean(c.Rules), clean(c.Tags), clean(c.Owners),
			c.DigestMinutes, clean(c.CreatedBy), s.clock()).Scan(&c.ID)
	})
	if err != nil {
		return Channel{}, s.errf(err, "save alert channel %q", c.Name)
	}
	return s.GetChannel(ctx, c.ID)
}

func (s *sqlStore) Channels(ctx context.Context) ([]Channel, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT "+channelCols+" FROM alert_channels ORDER BY name LIMIT 1000")
	if err != nil {
		return nil, s.errf(err, "list alert channels")
	}
	defer rows.Close()
	out := []Channel{}
	for rows.Next() {
		c, err := scanChannel(rows)
		if err != nil {
			return nil, s.errf(err, "list alert channels")
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

func (s *sqlStore) GetChannel(ctx context.Context, id int64) (Channel, error) {
	c, err := scanChannel(s.db.QueryRowContext(ctx, s.d.rebind("SELECT "+channelCols+" FROM alert_channels WHERE id = ?"), id))
	if errors.Is(err, sql.ErrNoRows) {
		return c, fmt.Errorf("no alert channel %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return c, s.errf(err, "read alert channel %d", id)
	}
	return c, nil
}

func (s *sqlStore) QueueAlert(ctx context.Context, tx *sql.Tx, channelID int64, rule, host string, port int, subject, payload string,
	window time.Duration, digest bool) (int64, error) {
	now := s.clock()
	var last time.Time
	err := tx.QueryRowContext(ctx, s.d.rebind(`SELECT last_at FROM alert_seen WHERE channel_id = ? AND host = ? AND port = ? AND rule = ? AND subject = ?`),
		channelID, host, port, rule, subject).Scan(&last)
	switch {
	case err == nil && now.Sub(last.UTC()) < window:
		return 0, nil // the same change alerted a moment ago
	case err != nil && !errors.Is(err, sql.ErrNoRows):
		return 0, err
	}
	if _, err := tx.ExecContext(ctx, s.d.rebind(`INSERT INTO alert_seen (channel_id, host, port, rule, subject, last_at) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (channel_id, host, port, rule, subject) DO UPDATE SET last_at = excluded.last_at`), channelID, host, port, rule, subject, now); err != nil {
		return 0, err
	}
	if digest {
		_, err := tx.ExecContext(ctx, s.d.rebind(`INSERT INTO alert_digest (channel_id, queued_at, alert) VALUES (?, ?, ?)`), channelID, now, payload)
		return 0, err
	}
	return s.QueueDelivery(ctx, tx, channelID, rule, payload)
}

func (s *sqlStore) QueueDelivery(ctx context.Context, tx *sql.Tx, channelID int64, rule, payload string) (int64, error) {
	var id int64
	err := tx.QueryRowContext(ctx, s.d.rebind(`INSERT INTO alert_deliveries (channel_id, created_at, rule, payload) VALUES (?, ?, ?, ?) RETURNING id`),
		channelID, s.clock(), rule, payload).Scan(&id)
	return id, err
}

func (s *sqlStore) GetDelivery(ctx context.Context, id int64) (Delivery, Channel, error) {
	var d Delivery
	err := s.db.QueryRowContext(ctx, s.d.rebind(`SELECT id, channel_id, status, attempts, rule, payload, last_error FROM alert_deliveries WHERE id = ?`), id).
		Scan(&d.ID, &d.ChannelID, &d.Status, &d.Attempts, &d.Rule, &d.Payload, &d.LastError)
	if errors.Is(err, sql.ErrNoRows) {
		return d, Channel{}, fmt.Errorf("no delivery %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return d, Channel{}, s.errf(err, "read delivery %d", id)
	}
	c, err := s.GetChannel(ctx, d.ChannelID)
	return d, c, err
}

func (s *sqlStore) DeliveryDone(ctx context.Context, id int64, ok, final bool, errText string, disableAfter int) (bool, error) {
	disabled := false
	err := s.write(ctx, func(tx *sql.Tx) error {
		var ch int64
		if err := tx.QueryRowContext(ctx, s.d.rebind(`SELECT channel_id FROM alert_deliveries WHERE id = ?`), id).Scan(&ch); err != nil {
			return err
		}
		now := s.clock()
		switch {
		case ok:
			if _, err := tx.ExecContext(ctx, s.d.rebind(`UPDATE alert_deliveries SET status = 'sent', sent_at = ?, attempts = attempts + 1, last_error = ''
				WHERE id = ?`), now, id); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, s.d.rebind(`UPDATE alert_channels SET failures = 0 WHERE id = ?`), ch)
			return err
		case !final:
			_, err := tx.ExecContext(ctx, s.d.rebind(`UPDATE alert_deliveries SET attempts = attempts + 1, last_error = ? WHERE id = ?`), clean(errText), id)
			return err
		}
		if _, err := tx.ExecContext(ctx, s.d.rebind(`UPDATE alert_deliveries SET status = 'dead', attempts = attempts + 1, last_error = ? WHERE id = ?`),
			clean(errText), id); err != nil {
			return err
		}
		var failures int
		if err := tx.QueryRowContext(ctx, s.d.rebind(`UPDATE alert_channels SET failures = failures + 1 WHERE id = ? RETURNING failures`), ch).Scan(&failures); err != nil {
			return err
		}
		if disableAfter > 0 && failures >= disableAfter {
			res, err := tx.ExecContext(ctx, s.d.rebind(`UPDATE alert_channels SET enabled = 0, disabled_reason = ? WHERE id = ? AND enabled = 1`),
				clean(fmt.Sprintf("disabled after %d failed deliveries in a row; last error: %s", failures, errText)), ch)
			if err != nil {
				return err
			}
			n, _ := res.RowsAffected()
			disabled = n > 0
		}
		return nil
	})
	if err != nil {
		return false, s.errf(err, "record delivery %d", id)
	}
	return disabled, nil
}

func (s *sqlStore) TakeDigest(ctx context.Context, tx *sql.Tx, channelID int64, olderThan time.Time) ([]string, error) {
	rows, err := tx.QueryContext(ctx, s.d.rebind(`SELECT id, alert FROM alert_digest WHERE channel_id = ? ORDER BY id LIMIT 1000`), channelID)
	if err != nil {
		return nil, err
	}
	var ids []int64
	var out []string
	var first time.Time
	for rows.Next() {
		var id int64
		var a string
		if err := rows.Scan(&id, &a); err != nil {
			rows.Close()
			return nil, err
		}
		ids, out = append(ids, id), append(out, a)
	}
	rows.Close()
	if len(ids) == 0 {
		return nil, rows.Err()
	}
	if err := tx.QueryRowContext(ctx, s.d.rebind(`SELECT queued_at FROM alert_digest WHERE id = ?`), ids[0]).Scan(&first); err != nil {
		return nil, err
	}
	if first.UTC().After(olderThan) {
		return nil, nil // the oldest entry has not waited a whole digest period
	}
	for _, id := range ids {
		if _, err := tx.ExecContext(ctx, s.d.rebind(`DELETE FROM alert_digest WHERE id = ?`), id); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (s *sqlStore) DigestChannels(ctx context.Context) ([]int64, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT DISTINCT channel_id FROM alert_digest`)
	if err != nil {
		return nil, s.errf(err, "list digests")
	}
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	return out, rows.Err()
}

// ChannelsTx lists channels inside a transaction.
func (s *sqlStore) ChannelsTx(ctx context.Context, tx *sql.Tx) ([]Channel, error) {
	rows, err := tx.QueryContext(ctx, "SELECT "+channelCols+" FROM alert_channels WHERE enabled = 1 ORDER BY id")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Channel
	for rows.Next() {
		c, err := scanChannel(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}
