package keys

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/llmfence/llmfence/internal/store"
)

// Limits are a key's own limits. 0 means "use the default tier", a
// negative number "no limit". The field set matches limits.Limits, so a
// value converts with limits.Limits(k.Limits).
type Limits struct {
	RPM        int   `json:"rpm,omitempty"`
	TPM        int   `json:"tpm,omitempty"`
	Concurrent int   `json:"concurrent,omitempty"`
	Daily      int64 `json:"daily_tokens,omitempty"`
	Monthly    int64 `json:"monthly_tokens,omitempty"`
}

// Key is an API key as the gateway and the CLI see it. It never carries the
// secret; its hash is kept unexported so it cannot leak through JSON or
// logs.
type Key struct {
	ID         string    `json:"id"`
	Name       string    `json:"name"`
	Created    time.Time `json:"created"`
	Expires    time.Time `json:"expires,omitzero"`   // zero: never
	Revoked    time.Time `json:"revoked,omitzero"`   // zero: not revoked
	Rotated    time.Time `json:"rotated,omitzero"`   // zero: never rotated
	LastUsed   time.Time `json:"last_used,omitzero"` // zero: never used (see Options.TouchEvery)
	Admin      bool      `json:"admin"`
	AllowCloud bool      `json:"allow_cloud"`
	Models     []string  `json:"models"`
	Limits     Limits    `json:"limits"`

	hash []byte
}

// Status says whether the key works at time now: "active", "revoked" or
// "expired".
func (k *Key) Status(now time.Time) string {
	switch {
	case !k.Revoked.IsZero():
		return "revoked"
	case !k.Expires.IsZero() && !now.Before(k.Expires):
		return "expired"
	}
	return "active"
}

func fromStore(a store.APIKey) Key {
	return Key{
		ID: a.ID, Name: a.Name, Created: a.CreatedAt, Expires: a.ExpiresAt, Revoked: a.RevokedAt,
		Rotated: a.RotatedAt, LastUsed: a.LastUsedAt, Admin: a.Admin, AllowCloud: a.AllowCloud,
		Models: slices.Clone(a.Models), Limits: Limits(a.Limits), hash: slices.Clone(a.Hash),
	}
}

// Spec describes a key to create.
type Spec struct {
	Name string
	// Models are the model globs the key may use (see route.ModelAllowed);
	// none means no model.
	Models     []string
	Limits     Limits
	Expires    time.Time // zero: never
	Admin      bool
	AllowCloud bool
}

// Options tune a Manager. The zero value gives the documented defaults.
type Options struct {
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// CacheTTL is how long Authenticate trusts what it read from the
	// store. With a positive TTL the Manager keeps the whole key table in
	// memory and re-reads it every CacheTTL (in the background from half
	// of it on), so an unknown key ID costs exactly what a known one does
	// (a map lookup, a hash and a constant-time compare) and floods of
	// made-up IDs never reach the store. 0 means DefaultCacheTTL; negative
	// means read the store by ID on every call.
	CacheTTL time.Duration
	// TouchEvery is how often at most a key's last-used time is written.
	// 0 means DefaultTouchEvery; negative means never.
	TouchEvery time.Duration
	// Logger receives failures to record last use; nil means
	// slog.Default().
	Logger *slog.Logger
}

// Defaults for Options.
const (
	DefaultCacheTTL   = 2 * time.Second
	DefaultTouchEvery = time.Minute
	// maxCache bounds the last-use throttle; it is emptied when full.
	maxCache = 10000
)

// Manager creates, rotates, revokes and authenticates keys over a
// store.KeyStore. It is safe for concurrent use.
type Manager struct {
	st         store.KeyStore
	now        func() time.Time
	ttl        time.Duration
	touchEvery time.Duration
	log        *slog.Logger
	rand       io.Reader
	// compare is crypto/subtle.ConstantTimeCompare; a field so tests can
	// watch that every refusal after lookup goes through it.
	compare func(a, b []byte) int

	mu      sync.Mutex
	touched map[string]time.Time

	idx        atomic.Pointer[keyIndex]
	refreshMu  sync.Mutex
	refreshing atomic.Bool
}

// keyIndex is the key table as read at one moment.
type keyIndex struct {
	keys    map[string]store.APIKey
	fetched time.Time
}

// dummyHash is compared against when a presented ID is unknown, so an
// unknown ID and a wrong secret take the same comparison path.
var dummyHash = make([]byte, 32)

// NewManager returns a Manager over st.
func NewManager(st store.KeyStore, opts Options) *Manager {
	m := &Manager{
		st: st, now: opts.Now, ttl: opts.CacheTTL, touchEvery: opts.TouchEvery, log: opts.Logger,
		rand: rand.Reader, compare: subtle.ConstantTimeCompare,
		touched: map[string]time.Time{},
	}
	if m.now == nil {
		m.now = time.Now
	}
	if m.ttl == 0 {
		m.ttl = DefaultCacheTTL
	}
	if m.touchEvery == 0 {
		m.touchEvery = DefaultTouchEvery
	}
	if m.log == nil {
		m.log = slog.Default()
	}
	return m
}

var validName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}$`)

// ValidateName checks a key name: 1 to 64 letters, digits and . _ @ + -,
// starting with a letter or digit.
func ValidateName(name string) error {
	if !validName.MatchString(name) {
		return fmt.Errorf("key name %q: use 1 to 64 letters, digits and . _ @ + -, starting with a letter or digit: %w", name, store.ErrBadInput)
	}
	return nil
}

// Create makes a new key and returns the key string — shown this once, it
// is not stored — with its record. It fails with store.ErrExists when an
// active key has the name.
func (m *Manager) Create(ctx context.Context, s Spec) (string, Key, error) {
	if err := ValidateName(s.Name); err != nil {
		return "", Key{}, err
	}
	models := make([]string, 0, len(s.Models))
	for _, g := range s.Models {
		if g = strings.TrimSpace(g); g != "" {
			models = append(models, g)
		}
	}
	if !s.Expires.IsZero() && !s.Expires.After(m.now()) {
		return "", Key{}, fmt.Errorf("key %q would expire at %s, which is not in the future: %w", s.Name, s.Expires.Format(time.RFC3339), store.ErrBadInput)
	}
	// A revoked key of that name does not block the name.
	if k, err := m.st.GetKeyByName(ctx, s.Name); err == nil && k.RevokedAt.IsZero() {
		return "", Key{}, fmt.Errorf("an API key named %q already exists (rotate or revoke it): %w", s.Name, store.ErrExists)
	} else if err != nil && !errors.Is(err, store.ErrNotFound) {
		return "", Key{}, err
	}
	// An ID collision (1 in 62^8 per existing key) is retried with a new ID.
	var err error
	for range 3 {
		var (
			plain, id string
			hash      []byte
			rec       store.APIKey
		)
		plain, id, hash, err = generate(m.rand)
		if err != nil {
			return "", Key{}, err
		}
		rec, err = m.st.CreateKey(ctx, store.APIKey{
			ID: id, Name: s.Name, Hash: hash, CreatedAt: m.now(), ExpiresAt: s.Expires,
			Admin: s.Admin, AllowCloud: s.AllowCloud, Models: models, Limits: store.KeyLimits(s.Limits),
		})
		if err == nil {
			return plain, fromStore(rec), nil
		}
		if !errors.Is(err, store.ErrExists) {
			return "", Key{}, err
		}
		if k, gerr := m.st.GetKeyByName(ctx, s.Name); gerr == nil && k.RevokedAt.IsZero() {
			return "", Key{}, err // the name was taken meanwhile
		}
	}
	return "", Key{}, err
}

// Rotate gives the active key of that name a new secret, keeping its ID and
// settings, and returns the new key string (shown this once). The old key
// stops working at once through this Manager, and within CacheTTL
// elsewhere.
func (m *Manager) Rotate(ctx context.Context, name string) (string, Key, error) {
	cur, err := m.st.GetKeyByName(ctx, name)
	if err != nil {
		return "", Key{}, err
	}
	if !cur.RevokedAt.IsZero() {
		return "", Key{}, fmt.Errorf("API key %q is revoked; create a new one instead: %w", name, store.ErrRevoked)
	}
	plain, _, hash, err := newSecret(m.rand, cur.ID)
	if err != nil {
		return "", Key{}, err
	}
	rec, err := m.st.RotateKey(ctx, name, hash)
	if err != nil {
		return "", Key{}, err
	}
	if rec.ID != cur.ID { // the key was revoked and recreated meanwhile
		return "", Key{}, fmt.Errorf("rotate API key %q: it changed while rotating; try again: %w", name, store.ErrExists)
	}
	m.forget(rec.ID)
	return plain, fromStore(rec), nil
}

// Revoke revokes the active key of that name. It is refused at once through
// this Manager, and within CacheTTL elsewhere.
func (m *Manager) Revoke(ctx context.Context, name string) (Key, error) {
	rec, err := m.st.RevokeKey(ctx, name)
	if err != nil {
		return Key{}, err
	}
	m.forget(rec.ID)
	return fromStore(rec), nil
}

// List returns every key, revoked ones included.
func (m *Manager) List(ctx context.Context) ([]Key, error) {
	recs, err := m.st.ListKeys(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Key, len(recs))
	for i, r := range recs {
		out[i] = fromStore(r)
	}
	return out, nil
}

// Get returns the active key of that name, or the latest revoked one.
func (m *Manager) Get(ctx context.Context, name string) (Key, error) {
	rec, err := m.st.GetKeyByName(ctx, name)
	if err != nil {
		return Key{}, err
	}
	return fromStore(rec), nil
}

// forget drops the key table read so far: the next lookup reads it again,
// so a change made through this Manager applies at once.
func (m *Manager) forget(string) { m.idx.Store(nil) }

// Authenticate checks a presented key and returns its record. Refusals
// match ErrUnauthenticated (and one of ErrNoKey, ErrMalformed,
// ErrUnknownKey, ErrRevoked, ErrExpired); any other error means the store
// could not be read. Revoked and expired are only reported to a caller who
// holds the right secret.
func (m *Manager) Authenticate(ctx context.Context, presented string) (*Key, error) {
	if presented == "" {
		return nil, ErrNoKey
	}
	id, err := Parse(presented)
	if err != nil {
		return nil, err
	}
	rec, found, err := m.lookup(ctx, id)
	if err != nil {
		return nil, err
	}
	stored := dummyHash
	if found {
		stored = rec.Hash
	}
	if m.compare(Hash(presented), stored) != 1 || !found {
		return nil, ErrUnknownKey
	}
	now := m.now()
	k := fromStore(rec)
	switch k.Status(now) {
	case "revoked":
		return nil, ErrRevoked
	case "expired":
		return nil, ErrExpired
	}
	m.touch(ctx, id, now)
	return &k, nil
}

// lookup reads a key by ID: from the in-memory key table (CacheTTL > 0)
// or the store.
func (m *Manager) lookup(ctx context.Context, id string) (store.APIKey, bool, error) {
	if m.ttl <= 0 {
		rec, err := m.st.GetKeyByID(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			return store.APIKey{}, false, nil
		}
		if err != nil {
			return store.APIKey{}, false, fmt.Errorf("check API key %s: %w", id, err)
		}
		return rec, true, nil
	}
	now := m.now()
	ix := m.idx.Load()
	switch age := now.Sub(ixTime(ix)); {
	case ix == nil || age >= m.ttl || age < 0:
		var err error
		if ix, err = m.refresh(ctx, ix); err != nil {
			return store.APIKey{}, false, err
		}
	case age >= m.ttl/2 && m.refreshing.CompareAndSwap(false, true):
		// Fresh enough to answer from, old enough to re-read now, off
		// this request.
		go func() {
			defer m.refreshing.Store(false)
			if _, err := m.refresh(context.WithoutCancel(ctx), ix); err != nil {
				m.log.Warn("re-reading API keys failed; retried on the next request", "err", err)
			}
		}()
	}
	rec, ok := ix.keys[id]
	return rec, ok, nil
}

func ixTime(ix *keyIndex) time.Time {
	if ix == nil {
		return time.Time{}
	}
	return ix.fetched
}

// refresh reads the key table, once for every caller that found seen
// stale at the same time.
func (m *Manager) refresh(ctx context.Context, seen *keyIndex) (*keyIndex, error) {
	m.refreshMu.Lock()
	defer m.refreshMu.Unlock()
	if cur := m.idx.Load(); cur != nil && cur != seen {
		if age := m.now().Sub(cur.fetched); age >= 0 && age < m.ttl {
			return cur, nil // someone else just read it
		}
	}
	fetched := m.now() // before the read: errs towards re-reading sooner
	list, err := m.st.ListKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading API keys: %w", err)
	}
	ix := &keyIndex{keys: make(map[string]store.APIKey, len(list)), fetched: fetched}
	for _, k := range list {
		ix.keys[k.ID] = k
	}
	m.idx.Store(ix)
	return ix, nil
}

// touch records the key's use when the last record is TouchEvery old.
// Failing to record it does not refuse the request.
func (m *Manager) touch(ctx context.Context, id string, now time.Time) {
	if m.touchEvery < 0 {
		return
	}
	m.mu.Lock()
	last, ok := m.touched[id]
	due := !ok || now.Sub(last) >= m.touchEvery || now.Before(last)
	if due {
		if len(m.touched) >= maxCache {
			clear(m.touched)
		}
		m.touched[id] = now
	}
	m.mu.Unlock()
	if !due {
		return
	}
	if err := m.st.TouchKey(ctx, id, now); err != nil {
		m.log.Warn("could not record API key use", "key_id", id, "err", err)
	}
}
