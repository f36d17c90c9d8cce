package store

import (
	"context"
	"errors"
	"time"
)

// The guard's tables (migrations 0002 to 0004): API keys, the audit log of
// the requests the gateway answered, and captured prompts and responses
// (capture.go). They live in the same database as the scan
// history; the interfaces are separate so scan code never sees them.

// ErrExists: a key with that name (or ID) already exists.
var ErrExists = errors.New("already exists")

// ErrRevoked: the key was revoked; revoked keys cannot be changed.
var ErrRevoked = errors.New("revoked")

// KeyLimits are the limits stored with an API key. 0 means "use the default
// tier", a negative number "no limit". The field set matches
// limits.Limits, so a value converts with limits.Limits(k).
type KeyLimits struct {
	RPM        int   `json:"rpm,omitempty"`
	TPM        int   `json:"tpm,omitempty"`
	Concurrent int   `json:"concurrent,omitempty"`
	Daily      int64 `json:"daily_tokens,omitempty"`
	Monthly    int64 `json:"monthly_tokens,omitempty"`
}

// APIKey is one stored API key. The key itself is never stored; Hash is
// what the key package derives from it.
type APIKey struct {
	// ID is the short, non-secret lookup part of the key. It is unique and
	// stays the same when the key is rotated.
	ID string `json:"id"`
	// Name is unique among keys that are not revoked.
	Name      string    `json:"name"`
	Hash      []byte    `json:"-"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at,omitzero"` // zero: never
	RevokedAt time.Time `json:"revoked_at,omitzero"` // zero: active
	RotatedAt time.Time `json:"rotated_at,omitzero"` // zero: never rotated
	// LastUsedAt is when the key last authenticated, to the precision the
	// gateway records it (it does not write on every request).
	LastUsedAt time.Time `json:"last_used_at,omitzero"`
	Admin      bool      `json:"admin"`
	AllowCloud bool      `json:"allow_cloud"`
	Models     []string  `json:"models"`
	Limits     KeyLimits `json:"limits"`
}

// KeyStore keeps the guard's API keys. Implementations are safe for
// concurrent use.
type KeyStore interface {
	// CreateKey stores a new key and returns it as stored (CreatedAt set
	// by the store when zero). It fails with ErrExists when the ID is taken
	// or a key that is not revoked has the name, and with ErrBadInput when
	// ID, Name or Hash is empty.
	CreateKey(ctx context.Context, k APIKey) (APIKey, error)
	// GetKeyByID returns the key with that ID, revoked or not; ErrNotFound
	// if there is none.
	GetKeyByID(ctx context.Context, id string) (APIKey, error)
	// GetKeyByName returns the active key of that name or, when none is
	// active, the most recently created revoked one; ErrNotFound if none.
	GetKeyByName(ctx context.Context, name string) (APIKey, error)
	// ListKeys returns every key, revoked ones included, by name then
	// creation time.
	ListKeys(ctx context.Context) ([]APIKey, error)
	// RevokeKey revokes the active key of that name at the store's clock
	// and returns it; ErrNotFound when no active key has the name.
	RevokeKey(ctx context.Context, name string) (APIKey, error)
	// RotateKey replaces the hash of the active key of that name, keeping
	// its ID and settings, and returns it; ErrNotFound when no active key
	// has the name.
	RotateKey(ctx context.Context, name string, hash []byte) (APIKey, error)
	// TouchKey records that the key was used at time at (a later time
	// only: last_used_at never moves back). Unknown IDs are ignored.
	TouchKey(ctx context.Context, id string, at time.Time) error
}

// UsageRecord is one request the guard answered: the audit record.
type UsageRecord struct {
	Time             time.Time `json:"time"`
	KeyID            string    `json:"key_id,omitempty"`
	KeyName          string    `json:"key_name,omitempty"`
	ClientIP         string    `json:"client_ip,omitempty"`
	Method           string    `json:"method"`
	Route            string    `json:"route"` // the normalised path
	Model            string    `json:"model,omitempty"`
	Status           int       `json:"status"` // HTTP status sent to the client
	PromptTokens     int64     `json:"prompt_tokens"`
	CompletionTokens int64     `json:"completion_tokens"`
	LatencyMS        int64     `json:"latency_ms"`
	BytesIn          int64     `json:"bytes_in"`
	BytesOut         int64     `json:"bytes_out"`
	// Truncated: the guard ended the response early (budget reached).
	Truncated bool `json:"truncated,omitempty"`
	// ClientGone: the client disconnected before the response ended.
	ClientGone bool   `json:"client_gone,omitempty"`
	Error      string `json:"error,omitempty"`
	// ClientCert is the subject of the client's mutual-TLS certificate.
	ClientCert string `json:"client_cert,omitempty"`
	// Requests is how many requests the record stands for: 1 (0 is taken
	// as 1) for a request the gateway forwarded, more for an aggregate of
	// refused requests (same client, key, status and reason), whose Time
	// is the first of them. Records read back for one request leave it 0.
	Requests int64 `json:"requests,omitempty"`
}

// Count is Requests with 0 read as 1.
func (r UsageRecord) Count() int64 { return max(r.Requests, 1) }

// Failed reports whether the record counts as an error: a status of 400
// or more, no status at all, or an error message.
func (r UsageRecord) Failed() bool { return r.Status >= 400 || r.Status == 0 || r.Error != "" }

// UsageFilter narrows usage queries. The zero value matches everything.
type UsageFilter struct {
	// Since keeps records at or after this time; zero means no bound.
	Since time.Time
	// Until keeps records before this time; zero means no bound.
	Until time.Time
	// Key keeps records of one key, given by name or by ID.
	Key string
	// Limit caps QueryUsage (newest records first); <= 0 means no cap.
	// SummarizeUsage ignores it.
	Limit int
}

// UsageSummary totals the usage of one key (one key ID) over a filter.
type UsageSummary struct {
	KeyID            string    `json:"key_id"`
	KeyName          string    `json:"key_name"`
	Requests         int64     `json:"requests"`
	PromptTokens     int64     `json:"prompt_tokens"`
	CompletionTokens int64     `json:"completion_tokens"`
	Errors           int64     `json:"errors"`
	First            time.Time `json:"first"`
	Last             time.Time `json:"last"`
}

// SpoolPosition is how far a guard's local audit spool has been copied
// into the store: the next byte to copy, as a segment number and an offset
// in that segment.
type SpoolPosition struct {
	Segment int64 `json:"segment"`
	Offset  int64 `json:"offset"`
}

// UsageStore keeps the guard's audit log. Implementations are safe for
// concurrent use.
type UsageStore interface {
	// AppendUsage stores a batch of records in one transaction. When it
	// returns nil every record is committed; on error none is.
	AppendUsage(ctx context.Context, recs []UsageRecord) error
	// AppendSpooled is AppendUsage for records copied from the audit spool
	// spoolID: in the same transaction it records next as the spool's
	// position, so a copy interrupted at any point is neither lost nor
	// repeated when it is resumed from SpoolPosition.
	AppendSpooled(ctx context.Context, spoolID string, recs []UsageRecord, next SpoolPosition) error
	// SpoolPosition returns the position recorded for spoolID (zero when
	// none is).
	SpoolPosition(ctx context.Context, spoolID string) (SpoolPosition, error)
	// PruneUsage deletes the records older than before (a record at
	// exactly before is kept) and returns how many it deleted.
	PruneUsage(ctx context.Context, before time.Time) (int64, error)
	// QueryUsage returns matching records, newest first.
	QueryUsage(ctx context.Context, f UsageFilter) ([]UsageRecord, error)
	// SummarizeUsage totals matching records per key ID, ordered by key
	// name then ID. Records without a key (refused before authentication)
	// are summarised under an empty ID and name.
	SummarizeUsage(ctx context.Context, f UsageFilter) ([]UsageSummary, error)
}

// GuardStore is a Store that also keeps the guard's keys, usage and
// captures. Every store Open returns is one; OpenGuard saves the type
// assertion.
type GuardStore interface {
	Store
	KeyStore
	UsageStore
	CaptureStore
}

// OpenGuard is Open for the guard and the keys / usage commands.
func OpenGuard(ctx context.Context, dsn string) (GuardStore, error) {
	return OpenGuardWith(ctx, dsn, Options{})
}

// OpenGuardWith is OpenGuard with options.
func OpenGuardWith(ctx context.Context, dsn string, opts Options) (GuardStore, error) {
	s, err := OpenWith(ctx, dsn, opts)
	if err != nil {
		return nil, err
	}
	g, ok := s.(GuardStore)
	if !ok { // cannot happen with the built-in back ends
		s.Close()
		return nil, errors.New("this store does not keep API keys and usage")
	}
	return g, nil
}
