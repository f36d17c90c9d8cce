package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// User is an account of llmfence serve.
type User struct {
	ID           int64      `json:"id"`
	Name         string     `json:"name"`
	PasswordHash string     `json:"-"`
	Role         string     `json:"role"`
	OIDCSubject  string     `json:"oidc_subject,omitempty"`
	Disabled     bool       `json:"disabled"`
	CreatedAt    time.Time  `json:"created_at"`
	LastLogin    *time.Time `json:"last_login,omitempty"`
}

// Session is a signed-in browser.
type Session struct {
	TokenHash string
	UserID    int64
	CSRF      string
	CreatedAt time.Time
	ExpiresAt time.Time
	LastSeen  time.Time
}

// AuditEntry is one change someone made.
type AuditEntry struct {
	Seq    int64     `json:"seq"`
	At     time.Time `json:"at"`
	Actor  string    `json:"actor"`
	Action string    `json:"action"`
	Object string    `json:"object,omitempty"`
	Detail string    `json:"detail,omitempty"`
	Remote string    `json:"remote,omitempty"`
}

// UserStore keeps accounts, sessions, API tokens and the audit trail.
type UserStore interface {
	CreateUser(ctx context.Context, u User) (User, error)
	UserByName(ctx context.Context, name string) (User, error)
	UserByID(ctx context.Context, id int64) (User, error)
	UserByOIDC(ctx context.Context, subject string) (User, error)
	Users(ctx context.Context) ([]User, error)
	UpdateUser(ctx context.Context, u User) error
	CountUsers(ctx context.Context) (int, error)
	CreateSession(ctx context.Context, s Session, remote string) error
	SessionByHash(ctx context.Context, hash string) (Session, User, error)
	TouchSession(ctx context.Context, hash string, expires time.Time) error
	DeleteSession(ctx context.Context, hash string) error
	CreateAPIToken(ctx context.Context, userID int64, name, hash string, expires time.Time) error
	UserByAPIToken(ctx context.Context, hash string) (User, error)
	CreateSetupToken(ctx context.Context, hash string, expires time.Time) error
	UseSetupToken(ctx context.Context, hash string) error
	Audit(ctx context.Context, e AuditEntry) error
	AuditLog(ctx context.Context, p Page) ([]AuditEntry, bool, error)
}

const userCols = `id, name, password_hash, role, oidc_subject, disabled, created_at, last_login`

func scanUser(sc interface{ Scan(...any) error }) (User, error) {
	var u User
	var dis int
	var created time.Time
	var last sql.NullTime
	err := sc.Scan(&u.ID, &u.Name, &u.PasswordHash, &u.Role, &u.OIDCSubject, &dis, &created, &last)
	u.Disabled, u.CreatedAt, u.LastLogin = dis != 0, created.UTC(), nullTime(last)
	return u, err
}

func (s *sqlStore) CreateUser(ctx context.Context, u User) (User, error) {
	u.Name = strings.TrimSpace(u.Name)
	if u.Name == "" || len(u.Name) > 64 {
		return User{}, fmt.Errorf("a user name has 1 to 64 characters: %w", ErrBadInput)
	}
	u.CreatedAt = s.clock()
	err := s.write(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, s.d.rebind(`SELECT COUNT(*) FROM users WHERE name = ?`), u.Name).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return fmt.Errorf("user %q: %w", u.Name, ErrExists)
		}
		return tx.QueryRowContext(ctx, s.d.rebind(`INSERT INTO users (name, password_hash, role, oidc_subject, disabled, created_at)
			VALUES (?, ?, ?, ?, ?, ?) RETURNING id`), u.Name, u.PasswordHash, u.Role, u.OIDCSubject, boolInt(u.Disabled), u.CreatedAt).Scan(&u.ID)
	})
	if errors.Is(err, ErrExists) {
		return User{}, err
	}
	if err != nil {
		return User{}, s.errf(err, "create user %q", u.Name)
	}
	return u, nil
}

func (s *sqlStore) userBy(ctx context.Context, col string, v any) (User, error) {
	u, err := scanUser(s.db.QueryRowContext(ctx, s.d.rebind("SELECT "+userCols+" FROM users WHERE "+col+" = ?"), v))
	if errors.Is(err, sql.ErrNoRows) {
		return User{}, fmt.Errorf("no such user: %w", ErrNotFound)
	}
	if err != nil {
		return User{}, s.errf(err, "read a user")
	}
	return u, nil
}

func (s *sqlStore) UserByName(ctx context.Context, name string) (User, error) {
	return s.userBy(ctx, "name", strings.TrimSpace(name))
}
func (s *sqlStore) UserByID(ctx context.Context, id int64) (User, error) {
	return s.userBy(ctx, "id", id)
}
func (s *sqlStore) UserByOIDC(ctx context.Context, sub string) (User, error) {
	if sub == "" {
		return User{}, fmt.Errorf("no such user: %w", ErrNotFound)
	}
	return s.userBy(ctx, "oidc_subject", sub)
}

func (s *sqlStore) Users(ctx context.Context) ([]User, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT "+userCols+" FROM users ORDER BY name LIMIT 1000")
	if err != nil {
		return nil, s.errf(err, "list users")
	}
	defer rows.Close()
	var out []User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, s.errf(err, "list users")
		}
		out = append(out, u)
	}
	return out, rows.Err()
}

func (s *sqlStore) UpdateUser(ctx context.Context, u User) error {
	err := s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, s.d.rebind(`UPDATE users SET password_hash = ?, role = ?, oidc_subject = ?, disabled = ?, last_login = ?
			WHERE id = ?`), u.PasswordHash, u.Role, u.OIDCSubject, boolInt(u.Disabled), u.LastLogin, u.ID)
		if err != nil {
			return err
		}
		if u.Disabled {
			_, err = tx.ExecContext(ctx, s.d.rebind(`DELETE FROM sessions WHERE user_id = ?`), u.ID)
		}
		return err
	})
	if err != nil {
		return s.errf(err, "update user %q", u.Name)
	}
	return nil
}

func (s *sqlStore) CountUsers(ctx context.Context) (int, error) {
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM users WHERE disabled = 0`).Scan(&n); err != nil {
		return 0, s.errf(err, "count users")
	}
	return n, nil
}

func (s *sqlStore) CreateSession(ctx context.Context, se Session, remote string) error {
	err := s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, s.d.rebind(`INSERT INTO sessions (token_hash, user_id, csrf, created_at, expires_at, last_seen, remote)
			VALUES (?, ?, ?, ?, ?, ?, ?)`), se.TokenHash, se.UserID, se.CSRF, dbTime(se.CreatedAt), dbTime(se.ExpiresAt), dbTime(se.LastSeen), clean(remote))
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, s.d.rebind(`DELETE FROM sessions WHERE expires_at < ?`), s.clock())
		return err
	})
	if err != nil {
		return s.errf(err, "create a session")
	}
	return nil
}

func (s *sqlStore) SessionByHash(ctx context.Context, hash string) (Session, User, error) {
	var se Session
	var created, expires, last time.Time
	row := s.db.QueryRowContext(ctx, s.d.rebind(`SELECT s.token_hash, s.user_id, s.csrf, s.created_at, s.expires_at, s.last_seen,
		u.id, u.name, u.password_hash, u.role, u.oidc_subject, u.disabled, u.created_at, u.last_login
		FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.token_hash = ?`), hash)
	var u User
	var dis int
	var ucreated time.Time
	var ulast sql.NullTime
	err := row.Scan(&se.TokenHash, &se.UserID, &se.CSRF, &created, &expires, &last,
		&u.ID, &u.Name, &u.PasswordHash, &u.Role, &u.OIDCSubject, &dis, &ucreated, &ulast)
	if errors.Is(err, sql.ErrNoRows) {
		return se, u, fmt.Errorf("no such session: %w", ErrNotFound)
	}
	if err != nil {
		return se, u, s.errf(err, "read a session")
	}
	se.CreatedAt, se.ExpiresAt, se.LastSeen = created.UTC(), expires.UTC(), last.UTC()
	u.Disabled, u.CreatedAt, u.LastLogin = dis != 0, ucreated.UTC(), nullTime(ulast)
	return se, u, nil
}

func (s *sqlStore) TouchSession(ctx context.Context, hash string, expires time.Time) error {
	err := s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, s.d.rebind(`UPDATE sessions SET last_seen = ?, expires_at = ? WHERE token_hash = ?`), s.clock(), dbTime(expires), hash)
		return err
	})
	if err != nil {
		return s.errf(err, "refresh a session")
	}
	return nil
}

func (s *sqlStore) DeleteSession(ctx context.Context, hash string) error {
	err := s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, s.d.rebind(`DELETE FROM sessions WHERE token_hash = ?`), hash)
		return err
	})
	if err != nil {
		return s.errf(err, "end a session")
	}
	return nil
}

func (s *sqlStore) CreateAPIToken(ctx context.Context, userID int64, name, hash string, expires time.Time) error {
	var exp any
	if !expires.IsZero() {
		exp = dbTime(expires)
	}
	err := s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, s.d.rebind(`INSERT INTO api_tokens (token_hash, user_id, name, created_at, expires_at) VALUES (?, ?, ?, ?, ?)`),
			hash, userID, clean(name), s.clock(), exp)
		return err
	})
	if err != nil {
		return s.errf(err, "create an API token")
	}
	return nil
}

func (s *sqlStore) UserByAPIToken(ctx context.Context, hash string) (User, error) {
	var exp sql.NullTime
	var uid int64
	err := s.db.QueryRowContext(ctx, s.d.rebind(`SELECT user_id, expires_at FROM api_tokens WHERE token_hash = ?`), hash).Scan(&uid, &exp)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && exp.Valid && exp.Time.Before(s.now())) {
		return User{}, fmt.Errorf("no such API token: %w", ErrNotFound)
	}
	if err != nil {
		return User{}, s.errf(err, "read an API token")
	}
	return s.UserByID(ctx, uid)
}

func (s *sqlStore) CreateSetupToken(ctx context.Context, hash string, expires time.Time) error {
	err := s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, s.d.rebind(`INSERT INTO setup_tokens (token_hash, created_at, expires_at) VALUES (?, ?, ?)`),
			hash, s.clock(), dbTime(expires))
		return err
	})
	if err != nil {
		return s.errf(err, "create a setup token")
	}
	return nil
}

// UseSetupToken spends a setup token once; a second use, an unknown or an
// expired token is ErrNotFound.
func (s *sqlStore) UseSetupToken(ctx context.Context, hash string) error {
	var n int64
	err := s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.d.rebind(`UPDATE setup_tokens SET used_at = ? WHERE token_hash = ? AND used_at IS NULL AND expires_at > ?`),
			s.clock(), hash, s.clock())
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return s.errf(err, "use a setup token")
	}
	if n == 0 {
		return fmt.Errorf("the setup token is unknown, used or expired: %w", ErrNotFound)
	}
	return nil
}

func (s *sqlStore) Audit(ctx context.Context, e AuditEntry) error {
	err := s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, s.d.rebind(`INSERT INTO audit_log (at, actor, action, object, detail, remote) VALUES (?, ?, ?, ?, ?, ?)`),
			s.clock(), clean(e.Actor), clean(e.Action), clean(e.Object), clean(e.Detail), clean(e.Remote))
		return err
	})
	if err != nil {
		return s.errf(err, "record an audit entry")
	}
	return nil
}

func (s *sqlStore) AuditLog(ctx context.Context, p Page) ([]AuditEntry, bool, error) {
	p = p.norm()
	rows, err := s.db.QueryContext(ctx, s.d.rebind(`SELECT seq, at, actor, action, object, detail, remote FROM audit_log ORDER BY seq DESC LIMIT ? OFFSET ?`),
		p.Limit+1, p.Offset)
	if err != nil {
		return nil, false, s.errf(err, "read the audit log")
	}
	defer rows.Close()
	out := []AuditEntry{}
	for rows.Next() {
		var e AuditEntry
		if err := rows.Scan(&e.Seq, &e.At, &e.Actor, &e.Action, &e.Object, &e.Detail, &e.Remote); err != nil {
			return nil, false, s.errf(err, "read the audit log")
		}
		e.At = e.At.UTC()
		out = append(out, e)
	}
	more := len(out) > p.Limit
	if more {
		out = out[:p.Limit]
	}
	return out, more, rows.Err()
}
