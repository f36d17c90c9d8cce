package keys

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/iotest"
	"time"

	"github.com/llmfence/llmfence/internal/store"
)

var t0 = time.Date(2026, 11, 23, 16, 15, 0, 0, time.UTC)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// countingStore wraps a real store, counting reads by ID and optionally
// failing them.
type countingStore struct {
	store.KeyStore
	reads   atomic.Int64
	lists   atomic.Int64
	touches atomic.Int64
	fail    atomic.Bool
}

func (c *countingStore) ListKeys(ctx context.Context) ([]store.APIKey, error) {
	c.lists.Add(1)
	if c.fail.Load() {
		return nil, errors.New("database is locked")
	}
	return c.KeyStore.ListKeys(ctx)
}

func (c *countingStore) GetKeyByID(ctx context.Context, id string) (store.APIKey, error) {
	c.reads.Add(1)
	if c.fail.Load() {
		return store.APIKey{}, errors.New("database is locked")
	}
	return c.KeyStore.GetKeyByID(ctx, id)
}

func (c *countingStore) TouchKey(ctx context.Context, id string, at time.Time) error {
	c.touches.Add(1)
	return c.KeyStore.TouchKey(ctx, id, at)
}

func newStore(t *testing.T, clk *clock) *countingStore {
	t.Helper()
	st, err := store.OpenGuardWith(context.Background(), filepath.Join(t.TempDir(), "k.db"),
		store.Options{Now: clk.Now, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return &countingStore{KeyStore: st}
}

func newManager(st store.KeyStore, clk *clock, ttl time.Duration) *Manager {
	return NewManager(st, Options{Now: clk.Now, CacheTTL: ttl, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
}

var keyRE = regexp.MustCompile(`^lf_[0-9A-Za-z]{8}_[0-9A-Za-z]{43}$`)

func TestGenerateFormatAndEntropy(t *testing.T) {
	if SecretBits < 192 {
		t.Fatalf("secret carries %.1f bits, want at least 192", SecretBits)
	}
	const n = 2000
	seen := map[string]bool{}
	ids := map[string]bool{}
	counts := map[rune]int{}
	for range n {
		key, id, hash, err := Generate()
		if err != nil {
			t.Fatal(err)
		}
		if !keyRE.MatchString(key) || len(key) != Len {
			t.Fatalf("key %q does not match the format", key)
		}
		if got, err := Parse(key); err != nil || got != id || !strings.HasPrefix(key, Prefix+id+"_") {
			t.Fatalf("Parse(%q) = %q, %v; want ID %q", key, got, err, id)
		}
		if len(hash) != 32 || !bytes.Equal(hash, Hash(key)) {
			t.Fatalf("hash of %q is not its SHA-256", key)
		}
		if bytes.Contains(hash, []byte(key)) || bytes.Contains([]byte(key), hash) || string(hash) == key {
			t.Fatal("hash contains the key")
		}
		if seen[key] || ids[id] {
			t.Fatalf("duplicate key or ID after %d keys", len(seen))
		}
		seen[key], ids[id] = true, true
		for _, r := range key[len(Prefix)+IDLen+1:] {
			counts[r]++
		}
	}
	// Every base62 character appears, none far from the uniform share
	// (expected ≈ 1387 each; ±50% is more than 18 standard deviations).
	if len(counts) != 62 {
		t.Errorf("%d distinct secret characters, want 62", len(counts))
	}
	exp := float64(n*SecretLen) / 62
	for r, c := range counts {
		if float64(c) < exp*0.5 || float64(c) > exp*1.5 {
			t.Errorf("character %q appears %d times, expected about %.0f", r, c, exp)
		}
	}
}

func TestRandomBase62Rejection(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []byte
		n    int
		want string
	}{
		{"maps modulo 62", []byte{0, 9, 10, 35, 36, 61, 62, 123, 124, 247}, 10, "09AZaz0z0z"},
		{"skips 248 and above", []byte{248, 255, 1, 250, 2, 3}, 3, "123"},
	} {
		r := bytes.NewReader(append(tc.in, bytes.Repeat([]byte{255}, 64)...))
		got, err := randomBase62(io.MultiReader(r, bytes.NewReader(bytes.Repeat([]byte{0}, 64))), tc.n)
		if err != nil || got != tc.want {
			t.Errorf("%s: %q, %v; want %q", tc.name, got, err, tc.want)
		}
	}
	if _, _, _, err := generate(iotest.ErrReader(errors.New("entropy source broken"))); err == nil ||
		!strings.Contains(err.Error(), "entropy source broken") {
		t.Errorf("generate with a failing reader = %v", err)
	}
}

func TestParse(t *testing.T) {
	good := "lf_AbCd1234_" + strings.Repeat("x", SecretLen)
	for _, tc := range []struct {
		name, key, id string
	}{
		{"valid", good, "AbCd1234"},
		{"no prefix", "sk_AbCd1234_" + strings.Repeat("x", SecretLen), ""},
		{"upper-case prefix", "LF_AbCd1234_" + strings.Repeat("x", SecretLen), ""},
		{"short", good[:len(good)-1], ""},
		{"long", good + "x", ""},
		{"no separator", "lf_AbCd1234x" + strings.Repeat("x", SecretLen), ""},
		{"separator moved", "lf_AbCd123_4" + strings.Repeat("x", SecretLen), ""},
		{"bad character in secret", good[:len(good)-1] + "-", ""},
		{"bad character in id", "lf_AbCd-234_" + strings.Repeat("x", SecretLen), ""},
		{"non-ASCII", good[:len(good)-2] + "é", ""},
		{"empty", "", ""},
	} {
		id, err := Parse(tc.key)
		if tc.id != "" {
			if err != nil || id != tc.id {
				t.Errorf("%s: Parse = %q, %v; want %q", tc.name, id, err, tc.id)
			}
			continue
		}
		if !errors.Is(err, ErrMalformed) || !errors.Is(err, ErrUnauthenticated) {
			t.Errorf("%s: Parse = %q, %v; want ErrMalformed", tc.name, id, err)
		}
		if err != nil && tc.key != "" && strings.Contains(err.Error(), tc.key[len(tc.key)/2:]) {
			t.Errorf("%s: error repeats the key: %v", tc.name, err)
		}
	}
}

func TestFromRequest(t *testing.T) {
	for _, tc := range []struct {
		name    string
		headers map[string][]string
		want    string
	}{
		{"bearer", map[string][]string{"Authorization": {"Bearer lf_x"}}, "lf_x"},
		{"bearer any case, spaces", map[string][]string{"Authorization": {"  bEaReR   lf_x  "}}, "lf_x"},
		{"x-api-key", map[string][]string{"X-Api-Key": {" lf_y "}}, "lf_y"},
		{"bearer wins", map[string][]string{"Authorization": {"Bearer lf_x"}, "X-Api-Key": {"lf_y"}}, "lf_x"},
		{"basic falls back", map[string][]string{"Authorization": {"Basic dXNlcjpwYXNz"}, "X-Api-Key": {"lf_y"}}, "lf_y"},
		{"second authorization header", map[string][]string{"Authorization": {"Basic abc", "Bearer lf_z"}}, "lf_z"},
		{"empty bearer", map[string][]string{"Authorization": {"Bearer "}}, ""},
		{"bare token", map[string][]string{"Authorization": {"lf_x"}}, ""},
		{"none", nil, ""},
	} {
		r, _ := http.NewRequest("GET", "http://127.0.0.1/api/tags", nil)
		for k, vs := range tc.headers {
			for _, v := range vs {
				r.Header.Add(k, v)
			}
		}
		if got := FromRequest(r); got != tc.want {
			t.Errorf("%s: FromRequest = %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestAuthenticate(t *testing.T) {
	ctx := context.Background()
	clk := &clock{t: t0}
	st := newStore(t, clk)
	m := newManager(st, clk, -1)
	alice, ak, err := m.Create(ctx, Spec{Name: "alice", Models: []string{"llama3*", " qwen* ", ""},
		Limits: Limits{RPM: 60, TPM: 40000, Daily: 2000000}, Admin: true, Expires: t0.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(ak.Models, ",") != "llama3*,qwen*" || ak.Limits.RPM != 60 || !ak.Admin || ak.ID == "" {
		t.Errorf("created %+v", ak)
	}
	bob, _, err := m.Create(ctx, Spec{Name: "bob"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Revoke(ctx, "bob"); err != nil {
		t.Fatal(err)
	}
	otherSecret, _, _, _ := newSecret(bytes.NewReader(bytes.Repeat([]byte{7}, 100)), ak.ID)
	unknownID := "lf_zzzzzzzz_" + alice[len(Prefix)+IDLen+1:]
	flipped := alice[:len(alice)-1] + string(alice[len(alice)-1]^0x20) // case of the last letter, or a non-base62 char
	for _, tc := range []struct {
		name    string
		key     string
		advance time.Duration
		want    error // nil: accepted
	}{
		{"valid", alice, 0, nil},
		{"empty", "", 0, ErrNoKey},
		{"malformed", "hello", 0, ErrMalformed},
		{"unknown id", unknownID, 0, ErrUnknownKey},
		{"right id, other secret", otherSecret, 0, ErrUnknownKey},
		{"one character changed", flipped, 0, ErrUnauthenticated},
		{"revoked", bob, 0, ErrRevoked},
		{"one ns before expiry", alice, time.Hour - time.Nanosecond, nil},
		{"at expiry", alice, time.Nanosecond, ErrExpired},
	} {
		clk.Add(tc.advance)
		k, err := m.Authenticate(ctx, tc.key)
		if tc.want == nil {
			if err != nil || k == nil || k.ID != ak.ID || k.Name != "alice" || !k.Admin || k.Limits.TPM != 40000 {
				t.Errorf("%s: Authenticate = %+v, %v", tc.name, k, err)
			}
			continue
		}
		if !errors.Is(err, tc.want) || !errors.Is(err, ErrUnauthenticated) || k != nil {
			t.Errorf("%s: Authenticate = %+v, %v; want %v", tc.name, k, err, tc.want)
		}
	}
	// A store failure is not a refusal of the key.
	st.fail.Store(true)
	_, err = m.Authenticate(ctx, alice)
	if err == nil || errors.Is(err, ErrUnauthenticated) || !strings.Contains(err.Error(), "database is locked") {
		t.Errorf("with a failing store: %v", err)
	}
}

func TestConstantTimeComparePath(t *testing.T) {
	ctx := context.Background()
	clk := &clock{t: t0}
	m := newManager(newStore(t, clk), clk, -1)
	key, k, err := m.Create(ctx, Spec{Name: "svc", Models: []string{"*"}})
	if err != nil {
		t.Fatal(err)
	}
	type call struct{ presented, stored []byte }
	var calls []call
	real := m.compare
	m.compare = func(a, b []byte) int {
		calls = append(calls, call{a, b})
		return real(a, b)
	}
	wrong, _, _, _ := newSecret(bytes.NewReader(bytes.Repeat([]byte{1}, 100)), k.ID)
	unknown := "lf_00000000_" + key[len(Prefix)+IDLen+1:]
	for _, tc := range []struct {
		name       string
		key        string
		wantStored []byte
		ok         bool
	}{
		{"valid", key, Hash(key), true},
		{"wrong secret", wrong, Hash(key), false},
		{"unknown id", unknown, dummyHash, false},
	} {
		calls = nil
		_, err := m.Authenticate(ctx, tc.key)
		if (err == nil) != tc.ok {
			t.Errorf("%s: err = %v", tc.name, err)
		}
		if len(calls) != 1 {
			t.Errorf("%s: %d comparisons, want exactly 1", tc.name, len(calls))
			continue
		}
		if !bytes.Equal(calls[0].presented, Hash(tc.key)) || !bytes.Equal(calls[0].stored, tc.wantStored) {
			t.Errorf("%s: compared the wrong values", tc.name)
		}
	}
}

func TestRevokeAndRotateAreImmediate(t *testing.T) {
	ctx := context.Background()
	clk := &clock{t: t0}
	st := newStore(t, clk)
	gw := newManager(st, clk, time.Hour) // the gateway, caching generously
	cli := newManager(st, clk, -1)       // another process: the CLI

	key, k, err := gw.Create(ctx, Spec{Name: "alice", Models: []string{"qwen*"}, Limits: Limits{RPM: 7}, AllowCloud: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := gw.Authenticate(ctx, key); err != nil {
		t.Fatal(err)
	}
	// Rotate through the gateway's own manager: the old key is refused on
	// the next call, the new one works and keeps ID and settings.
	newKey, rk, err := gw.Rotate(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if newKey == key || rk.ID != k.ID || rk.Limits.RPM != 7 || !rk.AllowCloud || rk.Rotated.IsZero() {
		t.Errorf("Rotate = %+v", rk)
	}
	if _, err := gw.Authenticate(ctx, key); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("old key after rotate: %v, want ErrUnknownKey", err)
	}
	if got, err := gw.Authenticate(ctx, newKey); err != nil || got.ID != k.ID || got.Models[0] != "qwen*" {
		t.Errorf("new key after rotate: %+v, %v", got, err)
	}
	if _, err := cli.Authenticate(ctx, key); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("old key in another process: %v", err)
	}

	// Revoke through the gateway's manager: refused at once.
	if _, err := gw.Revoke(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := gw.Authenticate(ctx, newKey); !errors.Is(err, ErrRevoked) {
		t.Errorf("after Revoke: %v, want ErrRevoked", err)
	}
	if _, _, err := gw.Rotate(ctx, "alice"); !errors.Is(err, store.ErrRevoked) {
		t.Errorf("Rotate(revoked) = %v, want store.ErrRevoked", err)
	}
}

func TestCacheBoundsRevocationByAnotherProcess(t *testing.T) {
	ctx := context.Background()
	clk := &clock{t: t0}
	st := newStore(t, clk)
	gw := newManager(st, clk, 0) // default TTL
	cli := newManager(st, clk, -1)
	key, _, err := cli.Create(ctx, Spec{Name: "bob"})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := gw.Authenticate(ctx, key); err != nil {
			t.Fatal(err)
		}
	}
	if n := st.reads.Load() + st.lists.Load(); n != 1 {
		t.Errorf("%d store reads for 3 authentications within the TTL, want 1", n)
	}
	if _, err := cli.Revoke(ctx, "bob"); err != nil {
		t.Fatal(err)
	}
	clk.Add(DefaultCacheTTL)
	if _, err := gw.Authenticate(ctx, key); !errors.Is(err, ErrRevoked) {
		t.Errorf("revoked elsewhere, after CacheTTL: %v, want ErrRevoked", err)
	}
	// With the cache off, every call reads the store.
	off := newManager(st, clk, -1)
	before := st.reads.Load()
	for range 3 {
		off.Authenticate(ctx, key)
	}
	if n := st.reads.Load() - before; n != 3 {
		t.Errorf("cache off: %d reads for 3 calls, want 3", n)
	}
}

func TestTouchIsThrottled(t *testing.T) {
	ctx := context.Background()
	clk := &clock{t: t0}
	st := newStore(t, clk)
	m := newManager(st, clk, -1)
	key, _, err := m.Create(ctx, Spec{Name: "t"})
	if err != nil {
		t.Fatal(err)
	}
	for _, step := range []struct {
		advance  time.Duration
		touches  int64
		lastUsed time.Time
	}{
		{0, 1, t0},
		{30 * time.Second, 1, t0},
		{30 * time.Second, 2, t0.Add(time.Minute)},
		{time.Second, 2, t0.Add(time.Minute)},
	} {
		clk.Add(step.advance)
		if _, err := m.Authenticate(ctx, key); err != nil {
			t.Fatal(err)
		}
		got, _ := m.Get(ctx, "t")
		if st.touches.Load() != step.touches || !got.LastUsed.Equal(step.lastUsed) {
			t.Errorf("at %v: %d touches, last used %v; want %d, %v", clk.Now().Sub(t0), st.touches.Load(), got.LastUsed, step.touches, step.lastUsed)
		}
	}
}

func TestCreateValidation(t *testing.T) {
	ctx := context.Background()
	clk := &clock{t: t0}
	m := newManager(newStore(t, clk), clk, -1)
	if _, _, err := m.Create(ctx, Spec{Name: "alice"}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		spec Spec
		want error
	}{
		{"duplicate", Spec{Name: "alice"}, store.ErrExists},
		{"empty name", Spec{Name: ""}, store.ErrBadInput},
		{"spaces in name", Spec{Name: "a b"}, store.ErrBadInput},
		{"leading dash", Spec{Name: "-x"}, store.ErrBadInput},
		{"too long", Spec{Name: strings.Repeat("n", 65)}, store.ErrBadInput},
		{"expiry in the past", Spec{Name: "old", Expires: t0.Add(-time.Second)}, store.ErrBadInput},
		{"expiry now", Spec{Name: "old", Expires: t0}, store.ErrBadInput},
	} {
		if _, _, err := m.Create(ctx, tc.spec); !errors.Is(err, tc.want) {
			t.Errorf("%s: Create = %v, want %v", tc.name, err, tc.want)
		}
	}
	// After revocation the name can be reused; the new key is a new ID.
	old, _ := m.Get(ctx, "alice")
	if _, err := m.Revoke(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	clk.Add(time.Second)
	_, nk, err := m.Create(ctx, Spec{Name: "alice"})
	if err != nil || nk.ID == old.ID {
		t.Errorf("re-create after revoke: %+v, %v", nk, err)
	}
	list, err := m.List(ctx)
	if err != nil || len(list) != 2 {
		t.Fatalf("List = %v, %v", list, err)
	}
	if list[0].Status(clk.Now()) != "revoked" || list[1].Status(clk.Now()) != "active" {
		t.Errorf("statuses: %s, %s", list[0].Status(clk.Now()), list[1].Status(clk.Now()))
	}
	// JSON never carries a hash or secret.
	b, _ := json.Marshal(list)
	if strings.Contains(strings.ToLower(string(b)), "hash") || bytes.Contains(b, []byte(Prefix)) {
		t.Errorf("JSON of keys: %s", b)
	}
}

// Unknown key IDs cost what known ones cost: both are answered from the
// key table in memory, so a flood of made-up IDs never reaches the store
// and the answer's timing does not tell whether an ID exists.
func TestUnknownIDsAnsweredFromMemory(t *testing.T) {
	ctx := context.Background()
	clk := &clock{t: t0}
	st := newStore(t, clk)
	cli := newManager(st, clk, -1)
	key, _, err := cli.Create(ctx, Spec{Name: "known"})
	if err != nil {
		t.Fatal(err)
	}
	gw := newManager(st, clk, 0)
	var cmp atomic.Int64
	gw.compare = func(a, b []byte) int { cmp.Add(1); return subtle.ConstantTimeCompare(a, b) }
	if _, err := gw.Authenticate(ctx, key); err != nil {
		t.Fatal(err)
	}
	before := st.reads.Load() + st.lists.Load()
	for i := range 500 {
		unknown := fmt.Sprintf("lf_%08d_%s", i, key[len(Prefix)+IDLen+1:])
		if _, err := gw.Authenticate(ctx, unknown); !errors.Is(err, ErrUnknownKey) {
			t.Fatalf("unknown ID: %v", err)
		}
		if _, err := gw.Authenticate(ctx, key); err != nil {
			t.Fatal(err)
		}
	}
	if n := st.reads.Load() + st.lists.Load() - before; n != 0 {
		t.Errorf("%d store reads for 1000 authentications within the TTL, want 0", n)
	}
	if cmp.Load() != 1001 {
		t.Errorf("%d hash comparisons for 1001 authentications: unknown IDs must take the same path", cmp.Load())
	}
	// A key created elsewhere is seen once the table is re-read.
	key2, _, err := cli.Create(ctx, Spec{Name: "later"})
	if err != nil {
		t.Fatal(err)
	}
	clk.Add(DefaultCacheTTL)
	if _, err := gw.Authenticate(ctx, key2); err != nil {
		t.Errorf("key created by another process, after CacheTTL: %v", err)
	}
	// A store that cannot be read is an error, not an unknown key.
	st.fail.Store(true)
	clk.Add(DefaultCacheTTL)
	if _, err := gw.Authenticate(ctx, key); err == nil || errors.Is(err, ErrUnauthenticated) {
		t.Errorf("store down: %v, want a store error", err)
	}
}
