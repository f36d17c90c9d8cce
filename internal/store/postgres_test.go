package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvTestPostgres names the PostgreSQL the tests use, e.g.
// postgres://llmfence@127.0.0.1:54329/llmfence_test?sslmode=disable.
const envTestPostgres = "LLMFENCE_TEST_POSTGRES"

// postgresDSN returns the test server's DSN, skipping the test when none is
// configured, or failing when running in CI (env CI set).
func postgresDSN(t *testing.T) string {
	t.Helper()
	dsn := os.Getenv(envTestPostgres)
	if dsn == "" {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is not set, and CI is: the PostgreSQL tests must run in CI", envTestPostgres)
		}
		t.Skipf("%s not set; skipping PostgreSQL tests", envTestPostgres)
	}
	return dsn
}

func pgExec(t *testing.T, dsn, query string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect to test PostgreSQL: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, query); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}

// withParam adds a connection parameter to a URL DSN.
func withParam(t *testing.T, dsn, key, value string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set(key, value)
	u.RawQuery = q.Encode()
	return u.String()
}

func postgresBackend(base string) backend {
	return backend{
		// Each database is a fresh schema, dropped after the test.
		newDSN: func(t *testing.T) string {
			t.Helper()
			b := make([]byte, 6)
			rand.Read(b)
			schema := "llmfence_test_" + hex.EncodeToString(b)
			pgExec(t, base, "CREATE SCHEMA "+schema)
			t.Cleanup(func() { pgExec(t, base, "DROP SCHEMA "+schema+" CASCADE") })
			return withParam(t, base, "search_path", schema)
		},
		raw: pgExec,
	}
}

func TestPostgres(t *testing.T) {
	testStore(t, postgresBackend(postgresDSN(t)))
}

func TestPostgresConnectErrors(t *testing.T) {
	ctx := context.Background()
	// A port on loopback with nothing listening: bind, note, close.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()

	const secret = "hunter2-s3cret"
	for _, tc := range []struct {
		name, dsn, want string
	}{
		{"nothing listening", "postgres://scanner:" + secret + "@" + closed + "/x?sslmode=disable&connect_timeout=5",
			"cannot reach PostgreSQL at " + closed + ": "},
		{"unparsable", "postgres://scanner:" + secret + "@127.0.0.1:notaport/x", "invalid PostgreSQL address"},
	} {
		_, err := Open(ctx, tc.dsn)
		if err == nil {
			t.Errorf("%s: Open succeeded", tc.name)
			continue
		}
		msg := err.Error()
		t.Logf("%s: %s", tc.name, msg)
		if !strings.HasPrefix(msg, tc.want) {
			t.Errorf("%s: error %q, want prefix %q", tc.name, msg, tc.want)
		}
		if strings.Contains(msg, secret) {
			t.Errorf("%s: error leaks the password: %q", tc.name, msg)
		}
	}

	t.Run("missing database", func(t *testing.T) {
		dsn := postgresDSN(t)
		u, _ := url.Parse(dsn)
		u.Path = "/llmfence_no_such_db"
		_, err := Open(ctx, u.String())
		t.Logf("missing database: %v", err)
		if err == nil || !strings.Contains(err.Error(), `has no database "llmfence_no_such_db"`) {
			t.Errorf("Open = %v", err)
		}
	})
}
