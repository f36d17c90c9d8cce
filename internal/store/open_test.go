package store

import (
	"errors"
	"os"
	"path/filepath"
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
