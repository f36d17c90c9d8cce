package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
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
// A leading "~/" in a SQLite path means the home directory. Any other
// scheme ("mysql://…", "redis:…") is refused with ErrBadInput rather than
// taken for a file name (a file whose name has a colon can be given as
// "./name:x.db" or "sqlite:name:x.db"). A new database file is created
// with its directories unless Options.Access says otherwise (the
// commands' rules: a store only in an existing directory, or only an
// existing store).
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
		if err := checkCreate(target, isDefaultDSN(dsn), opts); err != nil {
			return nil, err
		}
		return openSQLite(ctx, target, opts)
	}
}

// isDefaultDSN reports whether dsn leaves the choice to DefaultPath with
// no $LLMFENCE_DB: the one location whose directory Open creates
// unasked.
func isDefaultDSN(dsn string) bool {
	return strings.TrimSpace(dsn) == "" && os.Getenv(EnvDB) == ""
}

// checkCreate applies Options.Access to a SQLite path before anything is
// created.
func checkCreate(path string, isDefault bool, opts Options) error {
	if path == ":memory:" || opts.Access == AccessCreate {
		return nil
	}
	dir := filepath.Dir(path)
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		if opts.Access == AccessExisting {
			return noStore(path)
		}
		if !isDefault {
			return &noStoreError{fmt.Sprintf("store %s: directory %s does not exist (check the path; a store is created only in an existing directory)", path, dir)}
		}
	}
	if opts.Access == AccessExisting {
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			return noStore(path)
		}
	}
	return nil
}

// noStoreError is ErrNoStore with the whole message in the user's terms.
type noStoreError struct{ msg string }

func (e *noStoreError) Error() string        { return e.msg }
func (e *noStoreError) Is(target error) bool { return target == ErrNoStore }

func noStore(path string) error {
	return &noStoreError{fmt.Sprintf("no store at %s (nothing recorded there yet, or a mistyped --db)", path)}
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
	known := false
	for _, prefix := range []string{"sqlite://", "sqlite:", "file://", "file:"} {
		if strings.HasPrefix(lower, prefix) {
			path = d[len(prefix):]
			known = true
			break
		}
	}
	if !known {
		if scheme, ok := urlScheme(d); ok {
			return "", "", fmt.Errorf("database %q: %q stores are not supported; want a SQLite file path, sqlite:PATH or postgres://user@host/db: %w",
				redactDSN(dsn), scheme, ErrBadInput)
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

// urlScheme returns the scheme of s when s starts like a URL or DSN
// ("mysql://…", "redis:host"): two or more letters, digits, '+', '-' or
// '.' before a colon, the first a letter. A one-letter prefix is a Windows
// drive ("C:\\x.db"), not a scheme.
func urlScheme(s string) (string, bool) {
	i := strings.IndexByte(s, ':')
	if i < 2 {
		return "", false
	}
	for k, c := range s[:i] {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case k > 0 && (c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.'):
		default:
			return "", false
		}
	}
	return strings.ToLower(s[:i]), true
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
