package store

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
)

func openPostgres(ctx context.Context, dsn string, opts Options) (Store, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		// pgconn redacts the password from its message; scrub anyway.
		msg := "invalid PostgreSQL address " + redactDSN(dsn) + ": " + parseReason(err)
		return nil, &userError{msg: scrub(msg, dsn), err: err}
	}
	where := pgWhere(cfg)
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = 10 * time.Second
	}
	db := stdlib.OpenDB(*cfg)
	db.SetMaxOpenConns(8)
	db.SetMaxIdleConns(4)
	db.SetConnMaxIdleTime(5 * time.Minute)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, pgConnectError(where, cfg, err)
	}
	s := newSQLStore(db, postgresDialect, where+"/"+cfg.Database, opts, false)
	if err := migrate(ctx, db, postgresDialect, s.where, s.clock(), s.log); err != nil {
		db.Close()
		return nil, &userError{msg: scrub(err.Error(), cfg.Password), err: err}
	}
	return s, nil
}

// userError prints a message written for the user (with no secrets) and
// unwraps to the underlying error for errors.Is / errors.As.
type userError struct {
	msg string
	err error
}

func (e *userError) Error() string { return e.msg }
func (e *userError) Unwrap() error { return e.err }

func pgWhere(cfg *pgx.ConnConfig) string {
	host := cfg.Host
	if strings.HasPrefix(host, "/") { // Unix socket directory
		return host + " port " + strconv.Itoa(int(cfg.Port))
	}
	return net.JoinHostPort(host, strconv.Itoa(int(cfg.Port)))
}

// pgConnectError explains a failed first connection in the user's terms.
func pgConnectError(where string, cfg *pgx.ConnConfig, err error) error {
	var msg string
	var pgErr *pgconn.PgError
	var opErr *net.OpError
	switch {
	case errors.As(err, &pgErr) && (pgErr.Code == "28P01" || pgErr.Code == "28000"):
		msg = fmt.Sprintf("cannot log in to PostgreSQL at %s as %q: %s", where, cfg.User, pgErr.Message)
	case errors.As(err, &pgErr) && pgErr.Code == "3D000":
		msg = fmt.Sprintf("PostgreSQL at %s has no database %q (create it first, e.g. createdb %s)", where, cfg.Database, cfg.Database)
	case errors.As(err, &pgErr):
		msg = fmt.Sprintf("PostgreSQL at %s refused the connection: %s (SQLSTATE %s)", where, pgErr.Message, pgErr.Code)
	case errors.As(err, &opErr):
		msg = fmt.Sprintf("cannot reach PostgreSQL at %s: %v", where, opErr.Err)
	case errors.Is(err, context.DeadlineExceeded):
		msg = fmt.Sprintf("cannot reach PostgreSQL at %s: timed out", where)
	case errors.Is(err, context.Canceled):
		msg = fmt.Sprintf("cannot reach PostgreSQL at %s: cancelled", where)
	default:
		msg = fmt.Sprintf("cannot reach PostgreSQL at %s: %v", where, err)
	}
	return &userError{msg: scrub(msg, cfg.Password), err: err}
}

// parseReason says why a DSN did not parse, without repeating the DSN.
func parseReason(err error) string {
	var pe *pgconn.ParseConfigError
	if errors.As(err, &pe) {
		msg := pe.Error() // "cannot parse `<redacted dsn>`: reason"
		if i := strings.Index(msg, "`: "); i >= 0 {
			return msg[i+3:]
		}
		return msg
	}
	return err.Error()
}

// dsnPassword finds the password in a URL DSN, even one url.Parse rejects.
var dsnPassword = regexp.MustCompile(`^[A-Za-z]+://[^:/@]*:([^@]*)@`)

// redactDSN replaces the password of a URL DSN with "xxxxx".
func redactDSN(dsn string) string {
	m := dsnPassword.FindStringSubmatchIndex(dsn)
	if m == nil {
		return dsn
	}
	return dsn[:m[2]] + "xxxxx" + dsn[m[3]:]
}

// scrub removes a secret from a message: the password itself, or the
// password of a DSN passed as secret; raw, URL-decoded and URL-encoded.
func scrub(msg, secret string) string {
	if m := dsnPassword.FindStringSubmatch(secret); m != nil {
		secret = m[1]
	}
	if len(secret) < 2 {
		return msg
	}
	forms := []string{secret, url.QueryEscape(secret), url.PathEscape(secret)}
	if dec, err := url.PathUnescape(secret); err == nil {
		forms = append(forms, dec)
	}
	for _, f := range forms {
		if len(f) >= 2 {
			msg = strings.ReplaceAll(msg, f, "xxxxx")
		}
	}
	return msg
}
