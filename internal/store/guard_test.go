package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestSQLiteGuard(t *testing.T) { testGuardStore(t, sqliteBackend()) }

func TestPostgresGuard(t *testing.T) { testGuardStore(t, postgresBackend(postgresDSN(t))) }

func openGuardT(t *testing.T, dsn string, opts Options) GuardStore {
	t.Helper()
	s := openT(t, dsn, opts)
	g, ok := s.(GuardStore)
	if !ok {
		t.Fatalf("store %T does not implement GuardStore", s)
	}
	return g
}

func hashOf(s string) []byte { h := bytes.Repeat([]byte(s), 32/len(s)+1); return h[:32] }

// testGuardStore is the behavioural suite of KeyStore and UsageStore that
// every back end must pass.
func testGuardStore(t *testing.T, be backend) {
	ctx := context.Background()

	t.Run("create, get and list keys", func(t *testing.T) {
		clk := &fakeClock{t: t0.Add(987654321 * time.Nanosecond)}
		s := openGuardT(t, be.newDSN(t), Options{Now: clk.Now})
		full := APIKey{
			ID: "AbCd1234", Name: "alice", Hash: hashOf("a"),
			ExpiresAt: t0.Add(720*time.Hour + 5*time.Nanosecond), Admin: true, AllowCloud: true,
			Models: []string{"llama3*", "qwen*"},
			Limits: KeyLimits{RPM: 60, TPM: 40000, Concurrent: 2, Daily: 2000000, Monthly: 50000000},
		}
		got, err := s.CreateKey(ctx, full)
		if err != nil {
			t.Fatal(err)
		}
		want := full
		want.CreatedAt = t0.Add(987654 * time.Microsecond)
		want.ExpiresAt = t0.Add(720 * time.Hour)
		if mustJSON(t, got) != mustJSON(t, want) {
			t.Errorf("CreateKey = %s\nwant %s", mustJSON(t, got), mustJSON(t, want))
		}
		plain, err := s.CreateKey(ctx, APIKey{ID: "zz000000", Name: "bob", Hash: hashOf("b")})
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			name string
			get  func() (APIKey, error)
			want APIKey
		}{
			{"by id", func() (APIKey, error) { return s.GetKeyByID(ctx, "AbCd1234") }, want},
			{"by name", func() (APIKey, error) { return s.GetKeyByName(ctx, "alice") }, want},
			{"defaults", func() (APIKey, error) { return s.GetKeyByName(ctx, "bob") }, plain},
		} {
			k, err := tc.get()
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
				continue
			}
			if mustJSON(t, k) != mustJSON(t, tc.want) || !bytes.Equal(k.Hash, tc.want.Hash) {
				t.Errorf("%s: got %s\nwant %s", tc.name, mustJSON(t, k), mustJSON(t, tc.want))
			}
		}
		if plain.Models == nil || len(plain.Models) != 0 || !plain.ExpiresAt.IsZero() || plain.Admin {
			t.Errorf("defaults: %s", mustJSON(t, plain))
		}
		list, err := s.ListKeys(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != 2 || list[0].Name != "alice" || list[1].Name != "bob" {
			t.Errorf("ListKeys = %s", mustJSON(t, list))
		}
		if _, err := s.GetKeyByID(ctx, "nope0000"); !errors.Is(err, ErrNotFound) {
			t.Errorf("GetKeyByID(unknown) = %v, want ErrNotFound", err)
		}
		if _, err := s.GetKeyByName(ctx, "carol"); !errors.Is(err, ErrNotFound) {
			t.Errorf("GetKeyByName(unknown) = %v, want ErrNotFound", err)
		}
	})

	t.Run("create refuses duplicates and empty fields", func(t *testing.T) {
		s := openGuardT(t, be.newDSN(t), Options{})
		if _, err := s.CreateKey(ctx, APIKey{ID: "id000001", Name: "alice", Hash: hashOf("a")}); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			name string
			k    APIKey
			want error
		}{
			{"same name", APIKey{ID: "id000002", Name: "alice", Hash: hashOf("b")}, ErrExists},
			{"same name, spaces", APIKey{ID: "id000002", Name: " alice ", Hash: hashOf("b")}, ErrExists},
			{"same id", APIKey{ID: "id000001", Name: "bob", Hash: hashOf("b")}, ErrExists},
			{"no id", APIKey{Name: "bob", Hash: hashOf("b")}, ErrBadInput},
			{"no name", APIKey{ID: "id000003", Hash: hashOf("b")}, ErrBadInput},
			{"no hash", APIKey{ID: "id000003", Name: "bob"}, ErrBadInput},
		} {
			if _, err := s.CreateKey(ctx, tc.k); !errors.Is(err, tc.want) {
				t.Errorf("%s: CreateKey = %v, want %v", tc.name, err, tc.want)
			}
		}
		if list, _ := s.ListKeys(ctx); len(list) != 1 {
			t.Errorf("refused creates left rows: %s", mustJSON(t, list))
		}
	})

	t.Run("concurrent creates of one name: exactly one wins", func(t *testing.T) {
		s := openGuardT(t, be.newDSN(t), Options{})
		const n = 8
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[i] = s.CreateKey(ctx, APIKey{ID: fmt.Sprintf("race%04d", i), Name: "shared", Hash: hashOf("r")})
			}()
		}
		wg.Wait()
		ok := 0
		for _, err := range errs {
			switch {
			case err == nil:
				ok++
			case !errors.Is(err, ErrExists):
				t.Errorf("unexpected error: %v", err)
			}
		}
		if ok != 1 {
			t.Errorf("%d creates succeeded, want 1", ok)
		}
	})

	t.Run("revoke", func(t *testing.T) {
		clk := &fakeClock{t: t0}
		s := openGuardT(t, be.newDSN(t), Options{Now: clk.Now})
		old, err := s.CreateKey(ctx, APIKey{ID: "old00000", Name: "alice", Hash: hashOf("a"), Models: []string{"*"}})
		if err != nil {
			t.Fatal(err)
		}
		clk.Set(t0.Add(time.Hour))
		rev, err := s.RevokeKey(ctx, "alice")
		if err != nil {
			t.Fatal(err)
		}
		if !rev.RevokedAt.Equal(t0.Add(time.Hour)) || rev.ID != old.ID {
			t.Errorf("RevokeKey = %s", mustJSON(t, rev))
		}
		if k, err := s.GetKeyByID(ctx, old.ID); err != nil || !k.RevokedAt.Equal(t0.Add(time.Hour)) {
			t.Errorf("GetKeyByID after revoke = %s, %v", mustJSON(t, k), err)
		}
		if k, err := s.GetKeyByName(ctx, "alice"); err != nil || k.ID != old.ID || k.RevokedAt.IsZero() {
			t.Errorf("GetKeyByName(revoked only) = %s, %v", mustJSON(t, k), err)
		}
		if _, err := s.RevokeKey(ctx, "alice"); !errors.Is(err, ErrNotFound) {
			t.Errorf("second RevokeKey = %v, want ErrNotFound", err)
		}
		if _, err := s.RotateKey(ctx, "alice", hashOf("n")); !errors.Is(err, ErrNotFound) {
			t.Errorf("RotateKey(revoked) = %v, want ErrNotFound", err)
		}
		if _, err := s.RevokeKey(ctx, "nobody"); !errors.Is(err, ErrNotFound) {
			t.Errorf("RevokeKey(unknown) = %v, want ErrNotFound", err)
		}
		// The name is free again; the revoked key stays listed.
		clk.Set(t0.Add(2 * time.Hour))
		nw, err := s.CreateKey(ctx, APIKey{ID: "new00000", Name: "alice", Hash: hashOf("b")})
		if err != nil {
			t.Fatalf("CreateKey after revoke: %v", err)
		}
		if k, err := s.GetKeyByName(ctx, "alice"); err != nil || k.ID != nw.ID {
			t.Errorf("GetKeyByName = %s, %v; want the new key", mustJSON(t, k), err)
		}
		list, err := s.ListKeys(ctx)
		if err != nil || len(list) != 2 || list[0].ID != old.ID || list[1].ID != nw.ID {
			t.Errorf("ListKeys = %s, %v", mustJSON(t, list), err)
		}
	})

	t.Run("rotate replaces the hash and keeps the rest", func(t *testing.T) {
		clk := &fakeClock{t: t0}
		s := openGuardT(t, be.newDSN(t), Options{Now: clk.Now})
		orig, err := s.CreateKey(ctx, APIKey{ID: "rot00000", Name: "svc", Hash: hashOf("a"), Admin: true,
			Models: []string{"qwen*"}, Limits: KeyLimits{RPM: 5, Daily: 100}, ExpiresAt: t0.Add(24 * time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		clk.Set(t0.Add(time.Minute))
		got, err := s.RotateKey(ctx, "svc", hashOf("z"))
		if err != nil {
			t.Fatal(err)
		}
		want := orig
		want.Hash = hashOf("z")
		want.RotatedAt = t0.Add(time.Minute)
		if mustJSON(t, got) != mustJSON(t, want) || !bytes.Equal(got.Hash, want.Hash) {
			t.Errorf("RotateKey = %s\nwant %s", mustJSON(t, got), mustJSON(t, want))
		}
		if k, _ := s.GetKeyByID(ctx, orig.ID); !bytes.Equal(k.Hash, hashOf("z")) {
			t.Errorf("stored hash not replaced")
		}
		if _, err := s.RotateKey(ctx, "svc", nil); !errors.Is(err, ErrBadInput) {
			t.Errorf("RotateKey(no hash) = %v, want ErrBadInput", err)
		}
	})

	t.Run("touch only moves forward", func(t *testing.T) {
		s := openGuardT(t, be.newDSN(t), Options{})
		if _, err := s.CreateKey(ctx, APIKey{ID: "tch00000", Name: "t", Hash: hashOf("a")}); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			at, want time.Time
		}{
			{t0.Add(time.Hour + time.Nanosecond), t0.Add(time.Hour)},
			{t0, t0.Add(time.Hour)}, // earlier: ignored
			{t0.Add(2 * time.Hour), t0.Add(2 * time.Hour)},
		} {
			if err := s.TouchKey(ctx, "tch00000", tc.at); err != nil {
				t.Fatal(err)
			}
			k, _ := s.GetKeyByID(ctx, "tch00000")
			if !k.LastUsedAt.Equal(tc.want) {
				t.Errorf("after TouchKey(%v): last used %v, want %v", tc.at, k.LastUsedAt, tc.want)
			}
		}
		if err := s.TouchKey(ctx, "unknown0", t0); err != nil {
			t.Errorf("TouchKey(unknown) = %v", err)
		}
	})

	t.Run("usage records round-trip and filter", func(t *testing.T) {
		clk := &fakeClock{t: t0.Add(10 * time.Hour)}
		s := openGuardT(t, be.newDSN(t), Options{Now: clk.Now})
		recs := usageFixture()
		// Two batches, as the gateway's writer would send them.
		if err := s.AppendUsage(ctx, recs[:3]); err != nil {
			t.Fatal(err)
		}
		if err := s.AppendUsage(ctx, recs[3:]); err != nil {
			t.Fatal(err)
		}
		if err := s.AppendUsage(ctx, nil); err != nil {
			t.Fatalf("AppendUsage(nil) = %v", err)
		}
		all, err := s.QueryUsage(ctx, UsageFilter{})
		if err != nil {
			t.Fatal(err)
		}
		if len(all) != len(recs) {
			t.Fatalf("QueryUsage = %d records, want %d", len(all), len(recs))
		}
		// Newest first; the record without a time got the store's clock;
		// NUL bytes were cleaned.
		if !all[0].Time.Equal(t0.Add(10*time.Hour)) || all[0].Error != "upstream said: bad" {
			t.Errorf("newest record = %s", mustJSON(t, all[0]))
		}
		// Every field of the fullest record survives (it is the fifth newest).
		if full := all[4]; mustJSON(t, full) != mustJSON(t, recs[0]) {
			t.Errorf("record = %s\nwant %s", mustJSON(t, full), mustJSON(t, recs[0]))
		}
		for _, tc := range []struct {
			name string
			f    UsageFilter
			want int
		}{
			{"since", UsageFilter{Since: t0.Add(2 * time.Hour)}, 2},
			{"since is inclusive", UsageFilter{Since: t0.Add(3 * time.Hour)}, 2},
			{"until", UsageFilter{Until: t0.Add(2 * time.Hour)}, 4},
			{"until is exclusive", UsageFilter{Until: t0}, 1},
			{"by name", UsageFilter{Key: "alice"}, 3},
			{"by id", UsageFilter{Key: "bobid000"}, 2},
			{"name and since", UsageFilter{Key: "alice", Since: t0.Add(time.Hour)}, 2},
			{"limit", UsageFilter{Limit: 2}, 2},
			{"unknown key", UsageFilter{Key: "carol"}, 0},
		} {
			got, err := s.QueryUsage(ctx, tc.f)
			if err != nil || len(got) != tc.want {
				t.Errorf("%s: %d records, %v; want %d", tc.name, len(got), err, tc.want)
			}
		}
	})

	t.Run("usage summary", func(t *testing.T) {
		clk := &fakeClock{t: t0.Add(10 * time.Hour)}
		s := openGuardT(t, be.newDSN(t), Options{Now: clk.Now})
		if err := s.AppendUsage(ctx, usageFixture()); err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		for _, f := range []UsageFilter{{}, {Since: t0.Add(time.Hour)}, {Key: "bob"}} {
			sum, err := s.SummarizeUsage(ctx, f)
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&b, "since=%s key=%q\n%s\n", f.Since.Format(time.RFC3339), f.Key, mustJSON(t, sum))
		}
		checkGolden(t, filepath.Join("testdata", "guard", "usage_summary.golden"), b.String())
	})

	t.Run("append is all or nothing", func(t *testing.T) {
		s := openGuardT(t, be.newDSN(t), Options{})
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if err := s.AppendUsage(cctx, usageFixture()); err == nil {
			t.Fatal("AppendUsage(cancelled) succeeded")
		}
		if got, err := s.QueryUsage(ctx, UsageFilter{}); err != nil || len(got) != 0 {
			t.Errorf("after a failed append: %d records, %v", len(got), err)
		}
		// Concurrent batches all land.
		var wg sync.WaitGroup
		for i := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				batch := make([]UsageRecord, 25)
				for j := range batch {
					batch[j] = UsageRecord{Time: t0.Add(time.Duration(i*25+j) * time.Second), KeyID: "k", KeyName: "k",
						Method: "POST", Route: "/api/chat", Status: 200, PromptTokens: 1, CompletionTokens: 2}
				}
				if err := s.AppendUsage(ctx, batch); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		sum, err := s.SummarizeUsage(ctx, UsageFilter{})
		if err != nil || len(sum) != 1 || sum[0].Requests != 100 || sum[0].PromptTokens != 100 || sum[0].CompletionTokens != 200 {
			t.Errorf("SummarizeUsage = %s, %v", mustJSON(t, sum), err)
		}
	})

	t.Run("aggregated records count as their requests", func(t *testing.T) {
		s := openGuardT(t, be.newDSN(t), Options{})
		recs := []UsageRecord{
			{Time: t0, ClientIP: "203.0.113.9", Method: "POST", Route: "/api/chat", Status: 401, Error: "no key", Requests: 500},
			{Time: t0, KeyID: "k1", KeyName: "k", Method: "POST", Route: "/api/chat", Status: 200, PromptTokens: 3},
			{Time: t0, KeyID: "k1", KeyName: "k", Method: "POST", Route: "/api/chat", Status: 429, Error: "rpm", Requests: 41},
		}
		if err := s.AppendUsage(ctx, recs); err != nil {
			t.Fatal(err)
		}
		sum, err := s.SummarizeUsage(ctx, UsageFilter{})
		if err != nil || len(sum) != 2 {
			t.Fatalf("SummarizeUsage = %s, %v", mustJSON(t, sum), err)
		}
		if sum[0].Requests != 500 || sum[0].Errors != 500 || sum[1].Requests != 42 || sum[1].Errors != 41 {
			t.Errorf("SummarizeUsage = %s; want 500 refused without a key, 42 requests (41 refused) for k", mustJSON(t, sum))
		}
		got, _ := s.QueryUsage(ctx, UsageFilter{Key: "k1"})
		var counts []int64
		for _, r := range got {
			counts = append(counts, r.Count())
		}
		if len(counts) != 2 || counts[0]+counts[1] != 42 {
			t.Errorf("QueryUsage counts %v", counts)
		}
	})

	t.Run("spooled batches move the spool position in the same transaction", func(t *testing.T) {
		s := openGuardT(t, be.newDSN(t), Options{})
		if p, err := s.SpoolPosition(ctx, "sp1"); err != nil || p != (SpoolPosition{}) {
			t.Fatalf("SpoolPosition of a new spool = %+v, %v", p, err)
		}
		batch := usageFixture()[:2]
		if err := s.AppendSpooled(ctx, "sp1", batch, SpoolPosition{Segment: 3, Offset: 4096}); err != nil {
			t.Fatal(err)
		}
		if err := s.AppendSpooled(ctx, "sp2", batch[:1], SpoolPosition{Segment: 1, Offset: 10}); err != nil {
			t.Fatal(err)
		}
		if err := s.AppendSpooled(ctx, "sp1", nil, SpoolPosition{Segment: 4, Offset: 0}); err != nil {
			t.Fatal(err)
		}
		if p, err := s.SpoolPosition(ctx, "sp1"); err != nil || p != (SpoolPosition{Segment: 4}) {
			t.Errorf("SpoolPosition(sp1) = %+v, %v", p, err)
		}
		if p, err := s.SpoolPosition(ctx, "sp2"); err != nil || p != (SpoolPosition{Segment: 1, Offset: 10}) {
			t.Errorf("SpoolPosition(sp2) = %+v, %v", p, err)
		}
		// A failed transaction moves neither.
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if err := s.AppendSpooled(cctx, "sp1", batch, SpoolPosition{Segment: 9}); err == nil {
			t.Fatal("AppendSpooled(cancelled) succeeded")
		}
		if p, _ := s.SpoolPosition(ctx, "sp1"); p != (SpoolPosition{Segment: 4}) {
			t.Errorf("after a failed append the position is %+v", p)
		}
		if got, _ := s.QueryUsage(ctx, UsageFilter{}); len(got) != 3 {
			t.Errorf("%d records, want 3", len(got))
		}
		if err := s.AppendSpooled(ctx, "", batch, SpoolPosition{}); !errors.Is(err, ErrBadInput) {
			t.Errorf("AppendSpooled without an ID = %v", err)
		}
	})

	t.Run("large batches go in with multi-row inserts", func(t *testing.T) {
		s := openGuardT(t, be.newDSN(t), Options{})
		full := usageFixture()[0]
		batch := make([]UsageRecord, 2*usageRowsPerInsert+7)
		for i := range batch {
			batch[i] = full
			batch[i].Time = t0.Add(time.Duration(i) * time.Second)
			batch[i].PromptTokens = int64(i)
		}
		batch[70].Requests = 9
		if err := s.AppendSpooled(ctx, "big", batch, SpoolPosition{Segment: 1, Offset: 99}); err != nil {
			t.Fatal(err)
		}
		got, err := s.QueryUsage(ctx, UsageFilter{})
		if err != nil || len(got) != len(batch) {
			t.Fatalf("%d records, %v; want %d", len(got), err, len(batch))
		}
		for i, r := range got {
			want := batch[len(batch)-1-i] // newest first
			if mustJSON(t, r) != mustJSON(t, want) {
				t.Fatalf("record %d = %s\nwant %s", i, mustJSON(t, r), mustJSON(t, want))
			}
		}
	})

	t.Run("usage retention", func(t *testing.T) {
		s := openGuardT(t, be.newDSN(t), Options{})
		if err := s.AppendUsage(ctx, usageFixture()[:5]); err != nil {
			t.Fatal(err)
		}
		// Fixture times: t0-1h, t0, t0+90m, t0+90m, t0+3h.
		n, err := s.PruneUsage(ctx, t0.Add(90*time.Minute))
		if err != nil || n != 2 {
			t.Fatalf("PruneUsage = %d, %v; want 2", n, err)
		}
		got, _ := s.QueryUsage(ctx, UsageFilter{})
		if len(got) != 3 {
			t.Errorf("%d records left, want 3 (the one at the cut is kept)", len(got))
		}
		if n, err := s.PruneUsage(ctx, t0.Add(90*time.Minute)); err != nil || n != 0 {
			t.Errorf("second PruneUsage = %d, %v", n, err)
		}
	})

	t.Run("a version-1 database is upgraded", func(t *testing.T) {
		dsn := be.newDSN(t)
		if kindOf(t, dsn) == KindSQLite {
			if err := os.MkdirAll(filepath.Dir(dsn), 0o700); err != nil {
				t.Fatal(err)
			}
		}
		v1, err := loadMigrations(migrationFiles, string(kindOf(t, dsn)))
		if err != nil {
			t.Fatal(err)
		}
		be.raw(t, dsn, v1[0].sql)
		be.raw(t, dsn, schemaMigrationsDDL(t, dsn)+";\nINSERT INTO schema_migrations (version, name, applied_at) VALUES (1, '0001_init', CURRENT_TIMESTAMP)")
		s := openGuardT(t, dsn, Options{})
		if _, err := s.CreateKey(ctx, APIKey{ID: "up000000", Name: "x", Hash: hashOf("a")}); err != nil {
			t.Fatalf("CreateKey on an upgraded database: %v", err)
		}
		if rows := migrationRows(t, s); !strings.Contains(rows, "2 0002_guard_keys_usage") {
			t.Errorf("schema_migrations:\n%s", rows)
		}
	})
}

func kindOf(t *testing.T, dsn string) Kind {
	k, _, err := ParseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func schemaMigrationsDDL(t *testing.T, dsn string) string {
	if kindOf(t, dsn) == KindPostgres {
		return postgresDialect.migrationsTable
	}
	return sqliteDialect.migrationsTable
}

// usageFixture: alice (3 requests, one refused), bob (2, one client gone),
// one request refused before any key was known.
func usageFixture() []UsageRecord {
	return []UsageRecord{
		{Time: t0, KeyID: "aliceid0", KeyName: "alice", ClientIP: "192.0.2.7", Method: "POST", Route: "/api/chat",
			Model: "llama3.2:3b", Status: 200, PromptTokens: 26, CompletionTokens: 298, LatencyMS: 4210,
			BytesIn: 312, BytesOut: 40211, Truncated: true, ClientGone: true, Error: "token budget reached"},
		{Time: t0.Add(90 * time.Minute), KeyID: "aliceid0", KeyName: "alice", Method: "POST", Route: "/v1/chat/completions",
			Model: "qwen2.5:7b", Status: 200, PromptTokens: 10, CompletionTokens: 20},
		{Time: t0.Add(3 * time.Hour), KeyID: "aliceid0", KeyName: "alice", Method: "POST", Route: "/api/pull",
			Status: 403, Error: "model management needs an admin key"},
		{Time: t0.Add(time.Hour + 30*time.Minute), KeyID: "bobid000", KeyName: "bob", Method: "POST", Route: "/api/generate",
			Model: "llama3.2:3b", Status: 200, PromptTokens: 5, CompletionTokens: 7, ClientGone: true},
		{Time: t0.Add(-time.Hour), KeyID: "bobid000", KeyName: "bob", Method: "GET", Route: "/api/tags", Status: 200},
		{KeyID: "", ClientIP: "203.0.113.9", Method: "POST", Route: "/api/chat", Status: 401, Error: "upstream said:\x00 bad"},
	}
}

func checkGolden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs:\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}
