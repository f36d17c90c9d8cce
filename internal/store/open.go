package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// EnvDB names the environment variable that overrides DefaultPath.
const EnvDB = "LLMFENCE_DB"

// Open opens (creating and migrating as needed) the store a DSN names:
//
//	""                                   DefaultPath()
//	"postgres://…", "postgresql://…"      PostgreSQL
//	"sqlite:PATH", "file:PATH", "PATH"    SQLite database file PATH
//
// A leading "~/" in a SQLite path means the home directory.
func Open(ctx context.Context, dsn string) (Store, error) {
	return OpenWith(ctx, dsn, Options{})
}

// OpenWith is Open with options.
func OpenWith(ctx context.Context, dsn string, opts Options) (Store, error) {
	kind, target, err := ParseDSN(dsn)
	if err != nil {
		return nil, err
	}
	switch kind {
	case KindPostgres:
		return openPostgres(ctx, target, opts)
	default:
		return openSQLite(ctx, target, opts)
	}
}

// Kind is a store back end.
type Kind string

const (
	KindSQLite   Kind = "sqlite"
	KindPostgres Kind = "postgres"
)

// ParseDSN says which back end a DSN selects and returns what that back end
// opens: a file path for SQLite (DefaultPath for ""), the DSN itself for
// PostgreSQL.
func ParseDSN(dsn string) (Kind, string, error) {
	d := strings.TrimSpace(dsn)
	lower := strings.ToLower(d)
	switch {
	case strings.HasPrefix(lower, "postgres://"), strings.HasPrefix(lower, "postgresql://"):
		return KindPostgres, d, nil
	case d == "":
		p, err := DefaultPath()
		return KindSQLite, p, err
	}
	path := d
	for _, prefix := range []string{"sqlite://", "sqlite:", "file://", "file:"} {
		if strings.HasPrefix(lower, prefix) {
			path = d[len(prefix):]
			break
		}
	}
	if path == "" {
		return "", "", fmt.Errorf("database %q names no file: %w", dsn, ErrBadInput)
	}
	if strings.Contains(path, "?") {
		return "", "", fmt.Errorf("database path %q: '?' is not allowed in a file name: %w", path, ErrBadInput)
	}
	if path == "~" || strings.HasPrefix(path, "~/") {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", "", fmt.Errorf("database path %q: cannot find the home directory: %w", path, err)
		}
		path = filepath.Join(home, strings.TrimPrefix(path[1:], "/"))
	}
	return KindSQLite, path, nil
}

// DefaultPath is where llmfence keeps its database when --db is not given:
// $LLMFENCE_DB if set; otherwise the per-user data directory:
// $XDG_DATA_HOME/llmfence/llmfence.db or ~/.local/share/llmfence/llmfence.db
// on Unix, ~/Library/Application Support/llmfence/llmfence.db on macOS and
// %LocalAppData%\llmfence\llmfence.db on Windows.
func DefaultPath() (string, error) {
	return defaultPath(os.Getenv, runtime.GOOS, os.UserHomeDir)
}

func defaultPath(getenv func(string) string, goos string, home func() (string, error)) (string, error) {
	if p := getenv(EnvDB); p != "" {
		return p, nil
	}
	const dir, file = "llmfence", "llmfence.db"
	switch goos {
	case "windows":
		if d := getenv("LocalAppData"); d != "" {
			return filepath.Join(d, dir, file), nil
		}
	case "darwin", "ios":
		h, err := home()
		if err != nil || h == "" {
			return "", noHome(err)
		}
		return filepath.Join(h, "Library", "Application Support", dir, file), nil
	}
	if d := getenv("XDG_DATA_HOME"); d != "" && filepath.IsAbs(d) {
		return filepath.Join(d, dir, file), nil
	}
	h, err := home()
	if err != nil || h == "" {
		return "", noHome(err)
	}
	return filepath.Join(h, ".local", "share", dir, file), nil
}

func noHome(err error) error {
	if err == nil {
		err = errors.New("$HOME is not set")
	}
	return fmt.Errorf("cannot choose a database location (set %s or use --db): %w", EnvDB, err)
}
