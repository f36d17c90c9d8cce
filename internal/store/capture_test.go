package store

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestSQLiteCaptures(t *testing.T) { testCaptureStore(t, sqliteBackend()) }

func TestPostgresCaptures(t *testing.T) { testCaptureStore(t, postgresBackend(postgresDSN(t))) }

// captureFixture: alice (3 captures), bob (2), one without a key or time.
func captureFixture() []Capture {
	return []Capture{
		{Time: t0.Add(123456789 * time.Nanosecond), KeyID: "aliceid0", KeyName: "alice", ClientIP: "192.0.2.7",
			Route: "/api/chat", Model: "llama3.2:3b", Status: 200,
			Prompt:     "mail [REDACTED:email] about card [REDACTED:card]",
			Response:   "Done. ありがとう",
			Redactions: map[string]int{"email": 1, "payment_card": 1}, PromptTruncated: true, ResponseTruncated: true,
			RedactorVersion: 3},
		{Time: t0.Add(90 * time.Minute), KeyID: "aliceid0", KeyName: "alice", Route: "/v1/chat/completions",
			Model: "qwen2.5:7b", Status: 200, Prompt: "hi", Response: "hello", RedactorVersion: 1},
		{Time: t0.Add(3 * time.Hour), KeyID: "aliceid0", KeyName: "alice", Route: "/api/generate", Status: 429,
			Prompt: "again", RedactorVersion: 1},
		{Time: t0.Add(time.Hour + 30*time.Minute), KeyID: "bobid000", KeyName: "bob", Route: "/api/generate",
			Model: "llama3.2:3b", Status: 200, Prompt: "p", Response: "r", RedactorVersion: 1},
		{Time: t0.Add(-time.Hour), KeyID: "bobid000", KeyName: "bob", Route: "/api/chat", Status: 200,
			Prompt: "old", Response: "old", RedactorVersion: 1},
		{Route: "/api/chat", Status: 401, Prompt: "no key\x00 here", Response: "bad \xff utf-8"},
	}
}

// testCaptureStore is the behavioural suite of CaptureStore (and of the
// usage columns migration 0003 added) that every back end must pass.
func testCaptureStore(t *testing.T, be backend) {
	ctx := context.Background()

	t.Run("captures round-trip, newest first", func(t *testing.T) {
		clk := &fakeClock{t: t0.Add(10 * time.Hour)}
		s := openGuardT(t, be.newDSN(t), Options{Now: clk.Now})
		cs := captureFixture()
		if err := s.AppendCaptures(ctx, cs[:2]); err != nil {
			t.Fatal(err)
		}
		if err := s.AppendCaptures(ctx, cs[2:]); err != nil {
			t.Fatal(err)
		}
		if err := s.AppendCaptures(ctx, nil); err != nil {
			t.Fatalf("AppendCaptures(nil) = %v", err)
		}
		all, err := s.QueryCaptures(ctx, CaptureFilter{})
		if err != nil {
			t.Fatal(err)
		}
		var order []string
		for _, c := range all {
			order = append(order, c.Time.Format("15:04")+" "+c.Prompt)
		}
		// Equal times: the later insert first.
		want := []string{"02:15 no key here", "19:15 again", "17:45 p", "17:45 hi", "16:15 mail [REDACTED:email] about card [REDACTED:card]", "15:15 old"}
		if strings.Join(order, "|") != strings.Join(want, "|") {
			t.Errorf("order:\n%s\nwant\n%s", strings.Join(order, "\n"), strings.Join(want, "\n"))
		}
		// Every field of the fullest capture survives (time to the µs).
		full := cs[0]
		full.Time = t0.Add(123456 * time.Microsecond)
		if got := all[4]; mustJSON(t, got) != mustJSON(t, full) {
			t.Errorf("capture = %s\nwant %s", mustJSON(t, got), mustJSON(t, full))
		}
		// No time: the store's clock; NUL and invalid UTF-8 cleaned; no
		// redactions read back as none.
		if c := all[0]; !c.Time.Equal(t0.Add(10*time.Hour)) || c.Prompt != "no key here" ||
			c.Response != "bad \uFFFD utf-8" || c.Redactions != nil {
			t.Errorf("capture without time = %s", mustJSON(t, c))
		}
	})

	t.Run("capture filters", func(t *testing.T) {
		s := openGuardT(t, be.newDSN(t), Options{Now: func() time.Time { return t0.Add(10 * time.Hour) }})
		if err := s.AppendCaptures(ctx, captureFixture()); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			name string
			f    CaptureFilter
			want int
		}{
			{"all", CaptureFilter{}, 6},
			{"since", CaptureFilter{Since: t0.Add(2 * time.Hour)}, 2},
			{"since is inclusive", CaptureFilter{Since: t0.Add(3 * time.Hour)}, 2},
			{"until", CaptureFilter{Until: t0.Add(2 * time.Hour)}, 4},
			{"until is exclusive", CaptureFilter{Until: t0.Add(-time.Hour)}, 0},
			{"by name", CaptureFilter{Key: "alice"}, 3},
			{"by id", CaptureFilter{Key: "bobid000"}, 2},
			{"name, spaces", CaptureFilter{Key: " bob "}, 2},
			{"name and since", CaptureFilter{Key: "alice", Since: t0.Add(time.Hour)}, 2},
			{"limit", CaptureFilter{Limit: 2}, 2},
			{"unknown key", CaptureFilter{Key: "carol"}, 0},
		} {
			got, err := s.QueryCaptures(ctx, tc.f)
			if err != nil || len(got) != tc.want {
				t.Errorf("%s: %d captures, %v; want %d", tc.name, len(got), err, tc.want)
			}
		}
		got, _ := s.QueryCaptures(ctx, CaptureFilter{Key: "alice", Limit: 1})
		if len(got) != 1 || got[0].Prompt != "again" {
			t.Errorf("newest of alice = %s", mustJSON(t, got))
		}
	})

	t.Run("prune deletes only older captures", func(t *testing.T) {
		s := openGuardT(t, be.newDSN(t), Options{})
		cs := []Capture{
			{Time: t0.Add(-time.Microsecond), Route: "/a", Prompt: "older by 1µs"},
			{Time: t0, Route: "/a", Prompt: "at the boundary"},
			{Time: t0.Add(time.Microsecond), Route: "/a", Prompt: "newer"},
			{Time: t0.Add(-48 * time.Hour), Route: "/a", Prompt: "old"},
		}
		if err := s.AppendCaptures(ctx, cs); err != nil {
			t.Fatal(err)
		}
		n, err := s.PruneCaptures(ctx, t0)
		if err != nil || n != 2 {
			t.Fatalf("PruneCaptures = %d, %v; want 2", n, err)
		}
		left, _ := s.QueryCaptures(ctx, CaptureFilter{})
		if len(left) != 2 || left[0].Prompt != "newer" || left[1].Prompt != "at the boundary" {
			t.Errorf("left after prune: %s", mustJSON(t, left))
		}
		if n, err := s.PruneCaptures(ctx, t0); err != nil || n != 0 {
			t.Errorf("second PruneCaptures = %d, %v; want 0", n, err)
		}
		// A cut-off between microseconds: the capture at t0 is older.
		if n, err := s.PruneCaptures(ctx, t0.Add(500*time.Nanosecond)); err != nil || n != 1 {
			t.Errorf("PruneCaptures(t0+500ns) = %d, %v; want 1", n, err)
		}
	})

	t.Run("append captures is all or nothing", func(t *testing.T) {
		s := openGuardT(t, be.newDSN(t), Options{})
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if err := s.AppendCaptures(cctx, captureFixture()); err == nil {
			t.Fatal("AppendCaptures(cancelled) succeeded")
		}
		if got, err := s.QueryCaptures(ctx, CaptureFilter{}); err != nil || len(got) != 0 {
			t.Errorf("after a failed append: %d captures, %v", len(got), err)
		}
		if _, err := s.PruneCaptures(cctx, t0); err == nil {
			t.Error("PruneCaptures(cancelled) succeeded")
		}
	})

	t.Run("usage records keep the client certificate", func(t *testing.T) {
		s := openGuardT(t, be.newDSN(t), Options{})
		recs := []UsageRecord{
			{Time: t0, KeyID: "k1", KeyName: "alice", Method: "POST", Route: "/api/chat", Status: 200,
				ClientCert: "CN=build-agent-7,OU=ci,O=Example Corp"},
			{Time: t0.Add(time.Second), KeyID: "k1", KeyName: "alice", Method: "POST", Route: "/api/chat", Status: 200},
		}
		if err := s.AppendUsage(ctx, recs); err != nil {
			t.Fatal(err)
		}
		got, err := s.QueryUsage(ctx, UsageFilter{})
		if err != nil || len(got) != 2 {
			t.Fatalf("QueryUsage = %d, %v", len(got), err)
		}
		if got[1].ClientCert != recs[0].ClientCert || got[0].ClientCert != "" {
			t.Errorf("client certs = %q, %q", got[1].ClientCert, got[0].ClientCert)
		}
		if mustJSON(t, got[1]) != mustJSON(t, recs[0]) {
			t.Errorf("record = %s\nwant %s", mustJSON(t, got[1]), mustJSON(t, recs[0]))
		}
	})

	t.Run("a version-2 database is upgraded", func(t *testing.T) {
		dsn := be.newDSN(t)
		if kindOf(t, dsn) == KindSQLite {
			if err := os.MkdirAll(filepath.Dir(dsn), 0o700); err != nil {
				t.Fatal(err)
			}
		}
		ms, err := loadMigrations(migrationFiles, string(kindOf(t, dsn)))
		if err != nil {
			t.Fatal(err)
		}
		be.raw(t, dsn, ms[0].sql)
		be.raw(t, dsn, ms[1].sql)
		be.raw(t, dsn, schemaMigrationsDDL(t, dsn)+";\nINSERT INTO schema_migrations (version, name, applied_at) VALUES "+
			"(1, '0001_init', CURRENT_TIMESTAMP), (2, '0002_guard_keys_usage', CURRENT_TIMESTAMP)")
		be.raw(t, dsn, "INSERT INTO usage_records (at, key_id, key_name, method, route, status) "+
			"VALUES ('2026-11-23 16:15:00', 'k1', 'alice', 'POST', '/api/chat', 200)")
		s := openGuardT(t, dsn, Options{})
		if rows := migrationRows(t, s); !strings.Contains(rows, "3 0003_guard_captures") {
			t.Errorf("schema_migrations:\n%s", rows)
		}
		old, err := s.QueryUsage(ctx, UsageFilter{})
		if err != nil || len(old) != 1 || old[0].KeyName != "alice" || old[0].ClientCert != "" {
			t.Fatalf("usage record from version 2 = %s, %v", mustJSON(t, old), err)
		}
		if err := s.AppendCaptures(ctx, captureFixture()[:1]); err != nil {
			t.Fatalf("AppendCaptures on an upgraded database: %v", err)
		}
		if err := s.AppendUsage(ctx, []UsageRecord{{Time: t0, Route: "/x", ClientCert: "CN=x"}}); err != nil {
			t.Fatalf("AppendUsage on an upgraded database: %v", err)
		}
	})
}
