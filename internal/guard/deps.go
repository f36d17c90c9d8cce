package guard

import (
	"context"
	"errors"

	"github.com/llmfence/llmfence/internal/guard/limits"
	"github.com/llmfence/llmfence/internal/guard/route"
	"github.com/llmfence/llmfence/internal/store"
)

// ErrInvalidKey is matched (errors.Is) by Authenticator errors that mean the
// presented key is unknown, malformed, expired or revoked: the gateway
// answers 401 and counts a failed attempt against the client IP. Any other
// Authenticator error (the key store is down) is answered with 503.
var ErrInvalidKey = errors.New("invalid API key")

// Principal is the authenticated identity behind one API key.
type Principal struct {
	ID         string   // non-secret key ID, used for limits and audit
	Name       string   // key name, for audit and metrics
	Admin      bool     // may use admin (model management) routes
	AllowCloud bool     // may use Ollama cloud models (*:cloud, *-cloud)
	Models     []string // model globs; empty allows no model
	// Limits are the key's own limits; nil means the default tier. In
	// Limits, 0 inherits the default tier and a negative value removes the
	// limit (see limits.Resolve).
	Limits *limits.Limits
}

// Authenticator checks a presented API key. It must refuse expired and
// revoked keys immediately (no long-lived caching).
type Authenticator interface {
	Authenticate(ctx context.Context, presented string) (*Principal, error)
}

// AuthenticatorFunc adapts a function to Authenticator.
type AuthenticatorFunc func(ctx context.Context, presented string) (*Principal, error)

// Authenticate implements Authenticator.
func (f AuthenticatorFunc) Authenticate(ctx context.Context, presented string) (*Principal, error) {
	return f(ctx, presented)
}

// Router classes a request by method and raw (escaped) path. *route.Table
// implements it.
type Router interface {
	Decide(method, rawPath string) route.Decision
}

// Reservation is an admitted request (see limits.Reservation). Settle it
// exactly once with Commit or Release.
type Reservation interface {
	// MaxTokens is the completion-token allowance (the prompt's
	// reservation is not part of it); capped reports whether a token limit
	// applies at all.
	MaxTokens() (n int64, capped bool)
	Commit(ctx context.Context, prompt, completion int64) error
	Release(ctx context.Context) error
}

// Limiter admits requests for a key. Errors matching limits.ErrLimited
// (a *limits.LimitError) are answered 429 with Retry-After (413 when the
// prompt alone exceeds a limit); other errors (limits.ErrUnavailable) 503.
type Limiter interface {
	Admit(ctx context.Context, key string, l limits.Limits, want limits.Want) (Reservation, error)
}

// LimiterFrom adapts a limits.Limiter (in-process or Redis) to Limiter.
func LimiterFrom(l limits.Limiter) Limiter { return limiterAdapter{l} }

type limiterAdapter struct{ l limits.Limiter }

func (a limiterAdapter) Admit(ctx context.Context, key string, l limits.Limits, want limits.Want) (Reservation, error) {
	r, err := a.l.Admit(ctx, key, l, want)
	if err != nil {
		return nil, err
	}
	return reservationAdapter{r}, nil
}

type reservationAdapter struct{ r *limits.Reservation }

func (a reservationAdapter) MaxTokens() (int64, bool) { return a.r.MaxTokens, a.r.Capped }
func (a reservationAdapter) Commit(ctx context.Context, p, c int64) error {
	return a.r.Commit(ctx, p, c)
}
func (a reservationAdapter) Release(ctx context.Context) error { return a.r.Release(ctx) }

// UsageSink stores audit records. AppendUsage must be all-or-nothing: when
// it returns nil every record is durably written. store.UsageStore
// implements it (and spool.Sink, which a spooled audit log needs, and
// PruneUsage, which the retention uses when present).
type UsageSink interface {
	AppendUsage(ctx context.Context, recs []store.UsageRecord) error
}
