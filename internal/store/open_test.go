package store

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseDSN(t *testing.T) {
	home, err := os.UserHomeDir()
	if err != nil {
		t.Skip("no home directory")
	}
	t.Setenv(EnvDB, "/data/env.db")
	for _, tc := range []struct {
		dsn      string
		kind     Kind
		target   string
		badInput bool
	}{
		{"", KindSQLite, "/data/env.db", false},
		{"  ", KindSQLite, "/data/env.db", false},
		{"/var/lib/llmfence.db", KindSQLite, "/var/lib/llmfence.db", false},
		{"scans.db", KindSQLite, "scans.db", false},
		{"sqlite:/tmp/a.db", KindSQLite, "/tmp/a.db", false},
		{"SQLite:rel/a.db", KindSQLite, "rel/a.db", false},
		{"sqlite:///tmp/a.db", KindSQLite, "/tmp/a.db", false},
		{"file:/tmp/b.db", KindSQLite, "/tmp/b.db", false},
		{"file:///tmp/b.db", KindSQLite, "/tmp/b.db", false},
		{"sqlite::memory:", KindSQLite, ":memory:", false},
		{"~/x/llmfence.db", KindSQLite, filepath.Join(home, "x", "llmfence.db"), false},
		{"/tmp/odd#name.db", KindSQLite, "/tmp/odd#name.db", false},
		{"postgres://u:p@db:5432/llmfence", KindPostgres, "postgres://u:p@db:5432/llmfence", false},
		{"PostgreSQL://db/llmfence", KindPostgres, "PostgreSQL://db/llmfence", false},
		{"sqlite:", "", "", true},
		{"mysql://u:p@db/llmfence", "", "", true},
		{"MariaDB://db/x", "", "", true},
		{"redis:localhost", "", "", true},
		{"sqlserver://db", "", "", true},
		{"./odd:name.db", KindSQLite, "./odd:name.db", false},
		{"sqlite:odd:name.db", KindSQLite, "odd:name.db", false},
		{`C:\data\llmfence.db`, KindSQLite, `C:\data\llmfence.db`, false},
		{"/tmp/a.db?mode=ro", "", "", true},
	} {
		kind, target, err := ParseDSN(tc.dsn)
		if tc.badInput {
			if !errors.Is(err, ErrBadInput) {
				t.Errorf("ParseDSN(%q) error = %v, want ErrBadInput", tc.dsn, err)
			}
			continue
		}
		if err != nil || kind != tc.kind || target != tc.target {
			t.Errorf("ParseDSN(%q) = %q, %q, %v; want %q, %q", tc.dsn, kind, target, err, tc.kind, tc.target)
		}
	}
}

// Open creates a database only where it was asked to: never for
// AccessExisting, and with AccessCreateFile in a directory that does not
// exist only at the default location. The message of a refused DSN does
// not repeat its password.
func TestOpenAccess(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	xdg := filepath.Join(dir, "xdg")
	t.Setenv("XDG_DATA_HOME", xdg)
	t.Setenv(EnvDB, "")
	for _, tc := range []struct {
		name    string
		dsn     string
		opts    Options
		err     error  // nil: opens
		msg     string // in the error
		created string // a path that must (opens) or must not (refused) exist afterwards
	}{
		{"mysql", "mysql://ann:hunter2@db/x", Options{}, ErrBadInput, `"mysql" stores are not supported`, filepath.Join(dir, "mysql:")},
		{"missing dir", filepath.Join(dir, "typo", "x.db"), Options{Access: AccessCreateFile}, ErrNoStore, "does not exist", filepath.Join(dir, "typo")},
		{"missing dir, read", filepath.Join(dir, "typo", "x.db"), Options{Access: AccessExisting}, ErrNoStore, "no store at", filepath.Join(dir, "typo")},
		{"missing file, read", filepath.Join(dir, "none.db"), Options{Access: AccessExisting}, ErrNoStore, "no store at", filepath.Join(dir, "none.db")},
		{"default, read", "", Options{Access: AccessExisting}, ErrNoStore, "no store at", xdg},
		{"mysql, existing", "mysql://db/x", Options{Access: AccessExisting}, ErrBadInput, "not supported", filepath.Join(dir, "mysql:")},
		{"new file", filepath.Join(dir, "new.db"), Options{Access: AccessCreateFile}, nil, "", filepath.Join(dir, "new.db")},
		{"existing, read", filepath.Join(dir, "new.db"), Options{Access: AccessExisting}, nil, "", filepath.Join(dir, "new.db")},
		{"create dir", filepath.Join(dir, "made", "x.db"), Options{Access: AccessCreate}, nil, "", filepath.Join(dir, "made", "x.db")},
		{"default", "", Options{Access: AccessCreateFile}, nil, "", filepath.Join(xdg, "llmfence", "llmfence.db")},
	} {
		tc.opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
		st, err := OpenWith(ctx, tc.dsn, tc.opts)
		if tc.err == nil {
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
				continue
			}
			st.Close()
			if _, err := os.Stat(tc.created); err != nil {
				t.Errorf("%s: %v", tc.name, err)
			}
			continue
		}
		if err == nil {
			st.Close()
			t.Errorf("%s: opened, want %v", tc.name, tc.err)
			continue
		}
		if !errors.Is(err, tc.err) || !strings.Contains(err.Error(), tc.msg) || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%s: %v, want %v with %q", tc.name, err, tc.err, tc.msg)
		}
		if _, err := os.Stat(tc.created); err == nil {
			t.Errorf("%s: %s was created", tc.name, tc.created)
		}
	}
	// $LLMFENCE_DB is a path the user named: its directory must exist.
	t.Setenv(EnvDB, filepath.Join(dir, "envtypo", "x.db"))
	if st, err := OpenWith(ctx, "", Options{Access: AccessCreateFile}); !errors.Is(err, ErrNoStore) {
		if err == nil {
			st.Close()
		}
		t.Errorf("$LLMFENCE_DB in a missing directory: %v", err)
	}
}

func TestDefaultPath(t *testing.T) {
	home := func() (string, error) { return "/home/ann", nil }
	noHomeDir := func() (string, error) { return "", errors.New("no $HOME") }
	for _, tc := range []struct {
		name string
		env  map[string]string
		goos string
		home func() (string, error)
		want string
		err  bool
	}{
		{"override", map[string]string{EnvDB: "/x.db", "XDG_DATA_HOME": "/xdg"}, "linux", home, "/x.db", false},
		{"xdg", map[string]string{"XDG_DATA_HOME": "/xdg"}, "linux", home, "/xdg/llmfence/llmfence.db", false},
		{"relative xdg ignored", map[string]string{"XDG_DATA_HOME": "rel"}, "linux", home, "/home/ann/.local/share/llmfence/llmfence.db", false},
		{"linux home", nil, "linux", home, "/home/ann/.local/share/llmfence/llmfence.db", false},
		{"freebsd home", nil, "freebsd", home, "/home/ann/.local/share/llmfence/llmfence.db", false},
		{"macos", map[string]string{"XDG_DATA_HOME": "/xdg"}, "darwin", home, "/home/ann/Library/Application Support/llmfence/llmfence.db", false},
		{"windows", map[string]string{"LocalAppData": "/appdata"}, "windows", home, "/appdata/llmfence/llmfence.db", false},
		{"no home", nil, "linux", noHomeDir, "", true},
	} {
		got, err := defaultPath(func(k string) string { return tc.env[k] }, tc.goos, tc.home)
		if tc.err {
			if err == nil {
				t.Errorf("%s: got %q, want an error", tc.name, got)
			}
			continue
		}
		if err != nil || got != filepath.FromSlash(tc.want) {
			t.Errorf("%s: got %q, %v; want %q", tc.name, got, err, tc.want)
		}
	}
}

func TestRebind(t *testing.T) {
	q := "SELECT a FROM t WHERE x = ? AND y IN (?, ?)"
	if got := sqliteDialect.rebind(q); got != q {
		t.Errorf("sqlite rebind changed the query: %q", got)
	}
	if got, want := postgresDialect.rebind(q), "SELECT a FROM t WHERE x = $1 AND y IN ($2, $3)"; got != want {
		t.Errorf("postgres rebind = %q, want %q", got, want)
	}
}

func TestScrubAndRedact(t *testing.T) {
	if got := redactDSN("postgres://ann:s3cr%2Ft@db:5432/x"); got != "postgres://ann:xxxxx@db:5432/x" {
		t.Errorf("redactDSN = %q", got)
	}
	if got := scrub("auth failed for s3cr/t and s3cr%2Ft", "postgres://ann:s3cr%2Ft@db/x"); got != "auth failed for xxxxx and xxxxx" {
		t.Errorf("scrub = %q", got)
	}
}
