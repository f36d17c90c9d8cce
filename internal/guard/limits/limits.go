// Package limits provides per-key request and token limits for the
// llmfence guard: requests per minute, tokens per minute, concurrent
// requests, and daily and monthly token budgets.
//
// Two implementations share one interface ([Limiter]): [Memory], exact within
// one process, and [Redis], exact across any number of gateway replicas that
// share one Redis server (every check and every reservation happens inside a
// single Lua script, so replicas cannot together admit more than a limit).
//
// # Admission and reservations
//
// [Limiter.Admit] admits a request only when the key is under its
// requests-per-minute and concurrency limits and has more than zero tokens
// left in its per-minute window and in its daily and monthly budgets. It
// returns a [Reservation] whose MaxTokens is the smallest of those remainders
// (and of what the client asked for). The limiter RESERVES those tokens at
// once, so two concurrent streams can never both be handed the whole
// remaining budget. When the request ends the proxy calls
// [Reservation.Commit] with the tokens the upstream reported (the unused part
// of the reservation returns to the budget) or [Reservation.Release] when
// nothing was used. Either call frees the concurrency slot; the first of them
// settles the reservation and later calls do nothing.
//
// The reservation covers the prompt as well as the completion: Want.Prompt
// is the caller's upper estimate of the prompt's tokens (the upstream
// counts them only afterwards), reserved with the completion allowance, and
// a request whose prompt alone would leave no completion token is refused
// (with LimitError.Exceeds when the prompt is larger than the limit itself,
// so no wait helps). Commit charges the counts actually used, which
// reconciles the estimate. Parallel requests can therefore only overrun a
// budget by as much as their prompts exceed their estimates.
//
// A reservation that is neither committed nor released within the lease
// (Options.Lease, 15 minutes by default; e.g. a replica crashed mid-stream)
// is reclaimed on the key's next use: its full amount is charged, as the
// tokens may have been relayed, and its concurrency slot is freed. A later
// Commit for it charges only what exceeds the amount already charged.
//
// # Windows
//
// Requests and tokens per minute use a sliding window of 60 seconds kept in
// one-second buckets. An event counts from the moment it happens until the
// end of the 60th second after the second it happened in, i.e. for 60 to 61
// seconds: the rounding always errs on the side of refusing, so no 60-second
// span ever holds more than the limit. A request counts toward RPM when it is
// admitted; its tokens count toward TPM from admission (as a reservation)
// until 60 seconds after it was committed. Memory per key is bounded: at most
// 61 buckets per window plus the requests in flight.
//
// Daily and monthly budgets are calendar periods in UTC by default
// (Options.Location) and reset at the start of the next day or month.
// [Memory] forgets them when the process ends: the gateway reads the
// current day's and month's usage back from its audit log at start and
// hands it to [Memory.Seed]. [Redis] keeps them in Redis.
//
// # Limits and tiers
//
// In a [Limits] value passed to Admit, zero or a negative number means "no
// limit" for that dimension. [Resolve] merges a key's own limits with the
// default tier: there zero means "inherit the default" and [Unlimited]
// means "explicitly no limit".
package limits

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Window is the length of the sliding window behind RPM and TPM.
const Window = time.Minute

// DefaultLease is how long a reservation may stay unsettled before it is
// reclaimed (charged in full, its concurrency slot freed).
const DefaultLease = 15 * time.Minute

// Unlimited, in a key's own Limits, overrides a default-tier limit with "no
// limit". The limiter itself treats every value <= 0 as "no limit".
const Unlimited = -1

// Limits are the limits of one API key. Zero or negative means no limit.
type Limits struct {
	RPM        int   `json:"rpm,omitempty" yaml:"rpm,omitempty"`               // admitted requests per sliding minute
	TPM        int   `json:"tpm,omitempty" yaml:"tpm,omitempty"`               // tokens (prompt+completion) per sliding minute
	Concurrent int   `json:"concurrent,omitempty" yaml:"concurrent,omitempty"` // requests in flight at once
	Daily      int64 `json:"daily_tokens,omitempty" yaml:"daily_tokens,omitempty"`
	Monthly    int64 `json:"monthly_tokens,omitempty" yaml:"monthly_tokens,omitempty"`
}

// Resolve returns the limits that apply to a key: its own limits where set,
// the default tier elsewhere. A nil own means the key has no limits of its
// own. In own, 0 inherits the default and Unlimited (any negative number)
// removes the limit.
func Resolve(own *Limits, def Limits) Limits {
	if own == nil {
		return def
	}
	pick := func(o, d int64) int64 {
		if o == 0 {
			return d
		}
		return o
	}
	return Limits{
		RPM:        int(pick(int64(own.RPM), int64(def.RPM))),
		TPM:        int(pick(int64(own.TPM), int64(def.TPM))),
		Concurrent: int(pick(int64(own.Concurrent), int64(def.Concurrent))),
		Daily:      pick(own.Daily, def.Daily),
		Monthly:    pick(own.Monthly, def.Monthly),
	}
}

// capsTokens reports whether any token limit applies.
func (l Limits) capsTokens() bool { return l.TPM > 0 || l.Daily > 0 || l.Monthly > 0 }

// Reason names the limit that refused a request.
type Reason string

// The limits a request can be refused for.
const (
	ReasonRPM        Reason = "rpm"
	ReasonTPM        Reason = "tpm"
	ReasonConcurrent Reason = "concurrent"
	ReasonDaily      Reason = "daily"
	ReasonMonthly    Reason = "monthly"
)

func (r Reason) describe() string {
	switch r {
	case ReasonRPM:
		return "requests-per-minute limit"
	case ReasonTPM:
		return "tokens-per-minute limit"
	case ReasonConcurrent:
		return "concurrent-request limit"
	case ReasonDaily:
		return "daily token budget"
	case ReasonMonthly:
		return "monthly token budget"
	}
	return string(r) + " limit"
}

// ErrLimited is matched (errors.Is) by every *LimitError.
var ErrLimited = errors.New("rate limit reached")

// ErrUnavailable is matched when the shared limit store cannot be reached and
// the limiter fails closed.
var ErrUnavailable = errors.New("limit store unavailable")

// LimitError says which limit refused a request and when retrying can help.
// When several limits are exhausted it names the one that frees up last.
type LimitError struct {
	Key        string
	Reason     Reason
	Limit      int64         // the configured limit that was hit
	RetryAfter time.Duration // > 0; for a Retry-After header round up to seconds
	// Exceeds: the request's prompt alone is more than the limit, so
	// retrying cannot help (RetryAfter is then meaningless).
	Exceeds bool
}

func (e *LimitError) Error() string {
	if e.Exceeds {
		return fmt.Sprintf("the prompt needs more tokens than the %s of %d of key %q allows",
			e.Reason.describe(), e.Limit, e.Key)
	}
	return fmt.Sprintf("%s of %d reached for key %q; retry in %s",
		e.Reason.describe(), e.Limit, e.Key, e.RetryAfter.Round(time.Second))
}

// Is makes errors.Is(err, ErrLimited) true.
func (e *LimitError) Is(target error) bool { return target == ErrLimited }

// RetryAfterSeconds is RetryAfter rounded up to whole seconds (at least 1),
// ready for an HTTP Retry-After header.
func (e *LimitError) RetryAfterSeconds() int64 {
	s := int64((e.RetryAfter + time.Second - 1) / time.Second)
	if s < 1 {
		s = 1
	}
	return s
}

// Usage is a key's current consumption.
type Usage struct {
	Requests int64 `json:"requests"` // admitted in the current sliding minute
	Tokens   int64 `json:"tokens"`   // committed in the current sliding minute
	InFlight int64 `json:"in_flight"`
	Reserved int64 `json:"reserved"` // tokens held by requests in flight
	Daily    int64 `json:"daily_tokens"`
	Monthly  int64 `json:"monthly_tokens"`
}

// Want is what one request asks the limiter to reserve.
type Want struct {
	// Prompt is an upper estimate of the prompt's tokens, reserved along
	// with the completion (0 when the route has no prompt).
	Prompt int64
	// Completion is the completion tokens the client asked for; <= 0
	// means "as many as allowed". When a token limit applies the whole
	// allowance is reserved until the reservation is settled, so a proxy
	// should pass a sensible default rather than 0 when the client did
	// not say.
	Completion int64
}

// Limiter admits requests against per-key limits.
type Limiter interface {
	// Admit admits one request for key under l, or returns an error
	// matching ErrLimited (a *LimitError) or ErrUnavailable.
	Admit(ctx context.Context, key string, l Limits, want Want) (*Reservation, error)
	// Usage reports the key's current consumption.
	Usage(ctx context.Context, key string) (Usage, error)
}

// Reservation is an admitted request. Settle it exactly once with Commit or
// Release; further calls are no-ops. Settle it with a context that survives
// the client's disconnect (context.WithoutCancel) so the bill is written.
type Reservation struct {
	// MaxTokens is the most completion tokens the request may produce.
	// When Capped, it is >= 1 and the proxy must clamp num_predict /
	// max_tokens to it and end the stream when it is reached.
	MaxTokens int64
	// Prompt is the prompt estimate reserved with it (0 when not Capped).
	Prompt int64
	// Capped reports whether a token limit applies to this request. When
	// false, MaxTokens is just what the client asked for (0: unspecified).
	Capped bool

	id     string
	amount int64 // tokens reserved (0 when not Capped)
	settle func(ctx context.Context, tokens int64) error

	mu      sync.Mutex
	settled bool
}

// Commit charges the tokens actually used (negative counts are taken as 0)
// and frees the concurrency slot. Pass what was relayed to the client, which
// may be less than MaxTokens.
func (r *Reservation) Commit(ctx context.Context, prompt, completion int64) error {
	return r.finish(ctx, max(prompt, 0)+max(completion, 0))
}

// Release frees the reservation without charging tokens.
func (r *Reservation) Release(ctx context.Context) error { return r.finish(ctx, 0) }

func (r *Reservation) finish(ctx context.Context, tokens int64) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.settled || r.settle == nil {
		return nil
	}
	if err := r.settle(ctx, tokens); err != nil {
		return err
	}
	r.settled = true
	return nil
}

// Options are shared by both implementations.
type Options struct {
	// Now is the clock; nil means time.Now. The Redis limiter uses the
	// Redis server's clock for windows when Now is nil (recommended for
	// replicas); setting it is meant for tests.
	Now func() time.Time
	// Location sets where days and months begin; nil means UTC.
	Location *time.Location
	// Lease bounds how long a reservation may stay unsettled; 0 means
	// DefaultLease.
	Lease time.Duration
}

func (o Options) now() time.Time {
	if o.Now != nil {
		return o.Now()
	}
	return time.Now()
}

func (o Options) loc() *time.Location {
	if o.Location != nil {
		return o.Location
	}
	return time.UTC
}

func (o Options) lease() time.Duration {
	if o.Lease > 0 {
		return o.Lease
	}
	return DefaultLease
}

// periods returns the day and month identifiers of t and when each period
// ends.
func periods(t time.Time, loc *time.Location) (day, month string, dayEnd, monthEnd time.Time) {
	t = t.In(loc)
	y, m, d := t.Date()
	day = fmt.Sprintf("%04d%02d%02d", y, int(m), d)
	month = fmt.Sprintf("%04d%02d", y, int(m))
	dayEnd = time.Date(y, m, d+1, 0, 0, 0, 0, loc)
	monthEnd = time.Date(y, m+1, 1, 0, 0, 0, 0, loc)
	return
}

// idGen makes reservation IDs: a prefix drawn once per limiter and a
// counter, so IDs are unique across replicas (96 random bits) without a
// random read per request.
type idGen struct {
	once   sync.Once
	prefix string
	err    error
	n      atomic.Uint64
}

func (g *idGen) newID() (string, error) {
	g.once.Do(func() {
		var b [12]byte
		if _, err := rand.Read(b[:]); err != nil {
			g.err = fmt.Errorf("generating reservation ids: %w", err)
			return
		}
		g.prefix = hex.EncodeToString(b[:])
	})
	if g.err != nil {
		return "", g.err
	}
	var buf [24 + 1 + 16]byte
	b := append(buf[:0], g.prefix...)
	b = append(b, '-')
	b = strconv.AppendUint(b, g.n.Add(1), 36)
	return string(b), nil
}

// verdict is the outcome of one admission decision, shared by both
// implementations (the Redis Lua script mirrors decide).
type verdict struct {
	ok        bool
	maxTokens int64
	prompt    int64 // reserved with maxTokens when capped
	capped    bool
	// failures, with retry-after in milliseconds for the window limits
	// (daily/monthly retry is the period end, filled by the caller).
	fails []failure
}

type failure struct {
	reason  Reason
	limit   int64
	retryMs int64 // -1: the prompt alone exceeds the limit
}

// bucket is one second of a sliding window. sec is the second the events
// are rounded up to; they count while sec*1000+windowMs > now (ms).
type bucket struct {
	sec int64
	n   int64
}

const windowMs = int64(Window / time.Millisecond)

// retryShortlyMs is the retry hint when a limit is held only by requests in
// flight, whose end cannot be predicted.
const retryShortlyMs = 1000

func bucketSec(nowMs int64) int64 { return nowMs/1000 + 1 }

func bucketLive(b bucket, nowMs int64) bool { return b.sec*1000+windowMs > nowMs }

func sumBuckets(bs []bucket) int64 {
	var s int64
	for _, b := range bs {
		s += b.n
	}
	return s
}

// state is a snapshot of one key: live buckets in ascending order, requests
// in flight and tokens they reserve, and the current period counters.
type state struct {
	nowMs    int64
	rpm, tpm []bucket
	inflight int64
	reserved int64
	day      int64
	month    int64
}

func decide(s state, l Limits, want Want) verdict {
	var v verdict
	prompt := max(want.Prompt, 0)
	if l.Concurrent > 0 && s.inflight >= int64(l.Concurrent) {
		v.fails = append(v.fails, failure{ReasonConcurrent, int64(l.Concurrent), retryShortlyMs})
	}
	if l.RPM > 0 {
		limit := int64(l.RPM)
		count := sumBuckets(s.rpm)
		if count >= limit {
			retry := int64(retryShortlyMs)
			var freed int64
			for _, b := range s.rpm {
				freed += b.n
				if count-freed < limit {
					retry = b.sec*1000 + windowMs - s.nowMs
					break
				}
			}
			v.fails = append(v.fails, failure{ReasonRPM, limit, retry})
		}
	}
	// remaining is the smallest token room left after the prompt's
	// reservation; -1: no token limit.
	remaining := int64(-1)
	minRem := func(r int64) {
		if remaining < 0 || r < remaining {
			remaining = r
		}
	}
	if l.TPM > 0 {
		limit := int64(l.TPM)
		used := sumBuckets(s.tpm)
		rem := limit - used - s.reserved - prompt
		switch {
		case prompt >= limit:
			v.fails = append(v.fails, failure{ReasonTPM, limit, -1})
		case rem <= 0:
			retry := int64(retryShortlyMs)
			var freed int64
			for _, b := range s.tpm {
				freed += b.n
				if limit-(used-freed)-s.reserved-prompt > 0 {
					retry = b.sec*1000 + windowMs - s.nowMs
					break
				}
			}
			v.fails = append(v.fails, failure{ReasonTPM, limit, retry})
		}
		minRem(rem)
	}
	if l.Daily > 0 {
		rem := l.Daily - s.day - s.reserved - prompt
		switch {
		case prompt >= l.Daily:
			v.fails = append(v.fails, failure{ReasonDaily, l.Daily, -1})
		case rem <= 0:
			v.fails = append(v.fails, failure{reason: ReasonDaily, limit: l.Daily})
		}
		minRem(rem)
	}
	if l.Monthly > 0 {
		rem := l.Monthly - s.month - s.reserved - prompt
		switch {
		case prompt >= l.Monthly:
			v.fails = append(v.fails, failure{ReasonMonthly, l.Monthly, -1})
		case rem <= 0:
			v.fails = append(v.fails, failure{reason: ReasonMonthly, limit: l.Monthly})
		}
		minRem(rem)
	}
	if len(v.fails) > 0 {
		return v
	}
	v.ok = true
	if remaining >= 0 {
		v.capped = true
		v.maxTokens = remaining
		if want.Completion > 0 && want.Completion < remaining {
			v.maxTokens = want.Completion
		}
		v.prompt = prompt
	} else if want.Completion > 0 {
		v.maxTokens = want.Completion
	}
	return v
}

// limitError turns failures into the error for the limit that frees up
// last. retryMs of daily/monthly failures is computed here from the period
// ends.
func limitError(key string, fails []failure, now, dayEnd, monthEnd time.Time) *LimitError {
	var worst *LimitError
	for _, f := range fails {
		if f.retryMs < 0 {
			// Retrying cannot help: this one decides.
			return &LimitError{Key: key, Reason: f.reason, Limit: f.limit, RetryAfter: time.Second, Exceeds: true}
		}
		var d time.Duration
		switch f.reason {
		case ReasonDaily:
			d = dayEnd.Sub(now)
		case ReasonMonthly:
			d = monthEnd.Sub(now)
		default:
			d = time.Duration(f.retryMs) * time.Millisecond
		}
		if d <= 0 {
			d = time.Second
		}
		if worst == nil || d > worst.RetryAfter {
			worst = &LimitError{Key: key, Reason: f.reason, Limit: f.limit, RetryAfter: d}
		}
	}
	return worst
}

// parseReason maps a reason string from the Redis script.
func parseReason(s string) (Reason, bool) {
	switch r := Reason(strings.ToLower(s)); r {
	case ReasonRPM, ReasonTPM, ReasonConcurrent, ReasonDaily, ReasonMonthly:
		return r, true
	}
	return "", false
}
