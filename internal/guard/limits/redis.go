package limits

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

var (
	//go:embed lua/common.lua
	luaCommon string
	//go:embed lua/admit.lua
	luaAdmit string
	//go:embed lua/settle.lua
	luaSettle string
	//go:embed lua/usage.lua
	luaUsage string
)

// DefaultPrefix starts every Redis key the limiter writes.
const DefaultPrefix = "llmfence:limits:"

// Redis key lifetimes. Windows need a little more than one window; day and
// month counters outlive their period in any time zone; the in-flight set
// outlives the lease so reservations of a crashed replica are still
// reclaimed (charged) when the key is used within inflightGrace after their
// lease ran out.
const (
	dayTTL        = 50 * time.Hour
	monthTTL      = 33 * 24 * time.Hour
	inflightGrace = time.Hour
)

// RedisOptions configure a Redis limiter.
type RedisOptions struct {
	Options
	// Prefix starts every key; "" means DefaultPrefix. Replicas that must
	// share limits use the same prefix.
	Prefix string
	// FailOpen admits requests (unmetered, with a warning) when Redis
	// cannot be reached. The default is to fail closed with ErrUnavailable.
	FailOpen bool
	// Logger receives warnings; nil discards them.
	Logger *slog.Logger
}

// Redis is a Limiter whose state lives in Redis, shared by every replica
// using the same server and prefix. Each admission, settlement and usage
// read is one Lua script (EVALSHA, falling back to EVAL when the server does
// not have it cached), so checks and reservations are atomic across
// replicas. Windows use the Redis server's clock unless Options.Now is set;
// the day and month a token is charged to follow the replica's clock, which
// matters only within clock skew of midnight. All keys of one API key share
// a hash tag, so the limiter also works with Redis Cluster. Every key has a
// TTL, so Redis memory is bounded by the keys in use.
//
// go-redis may retry a script after a network error even though it ran;
// the effect is an extra admission counted (a stricter limit), never an
// extra request let through.
type Redis struct {
	ids    idGen
	rdb    redis.Scripter
	opts   RedisOptions
	log    *slog.Logger
	admit  *redis.Script
	settle *redis.Script
	usage  *redis.Script
}

var _ Limiter = (*Redis)(nil)

// NewRedis returns a limiter that keeps its counters in Redis. rdb may be a
// *redis.Client, *redis.Ring or *redis.ClusterClient; the caller owns it.
func NewRedis(rdb redis.Scripter, opts RedisOptions) *Redis {
	if opts.Prefix == "" {
		opts.Prefix = DefaultPrefix
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Redis{
		rdb:    rdb,
		opts:   opts,
		log:    log,
		admit:  redis.NewScript(luaCommon + "\n" + luaAdmit),
		settle: redis.NewScript(luaCommon + "\n" + luaSettle),
		usage:  redis.NewScript(luaCommon + "\n" + luaUsage),
	}
}

type redisKeys struct {
	rpm, tpm, inflight, day, month string
}

func (r *Redis) keys(key string, now time.Time) (redisKeys, time.Time, time.Time) {
	dayID, monthID, dayEnd, monthEnd := periods(now, r.opts.loc())
	base := r.opts.Prefix + "{" + key + "}:"
	return redisKeys{
		rpm:      base + "rpm",
		tpm:      base + "tpm",
		inflight: base + "inflight",
		day:      base + "d:" + dayID,
		month:    base + "m:" + monthID,
	}, dayEnd, monthEnd
}

// scriptNow is the time argument of the scripts: 0 asks for the server's
// clock.
func (r *Redis) scriptNow(now time.Time) int64 {
	if r.opts.Now == nil {
		return 0
	}
	return now.UnixMilli()
}

// Admit implements Limiter.
func (r *Redis) Admit(ctx context.Context, key string, l Limits, want Want) (*Reservation, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("admitting request for key %q: %w", key, err)
	}
	id, err := r.ids.newID()
	if err != nil {
		return nil, err
	}
	now := r.opts.now()
	ks, dayEnd, monthEnd := r.keys(key, now)
	lease := r.opts.lease()
	raw, err := r.admit.Run(ctx, r.rdb,
		[]string{ks.rpm, ks.tpm, ks.inflight, ks.day, ks.month},
		r.scriptNow(now), l.RPM, l.TPM, l.Concurrent, l.Daily, l.Monthly, max(want.Completion, 0), id,
		lease.Milliseconds(), int64(dayTTL/time.Second), int64(monthTTL/time.Second),
		(lease + inflightGrace).Milliseconds(), max(want.Prompt, 0),
	).Slice()
	if err != nil {
		return r.unavailable(ctx, key, want, fmt.Errorf("admitting request for key %q: %w", key, err))
	}
	if len(raw) == 0 {
		return nil, fmt.Errorf("%w: admitting request for key %q: empty script reply", ErrUnavailable, key)
	}
	if asInt(raw[0]) != 1 {
		fails, err := parseFails(raw[1:])
		if err != nil {
			return nil, fmt.Errorf("%w: admitting request for key %q: %w", ErrUnavailable, key, err)
		}
		return nil, limitError(key, fails, now, dayEnd, monthEnd)
	}
	if len(raw) < 4 {
		return nil, fmt.Errorf("%w: admitting request for key %q: short script reply", ErrUnavailable, key)
	}
	res := &Reservation{MaxTokens: asInt(raw[1]), Capped: asInt(raw[2]) == 1, id: id}
	if res.Capped {
		res.Prompt = asInt(raw[3])
		res.amount = res.Prompt + res.MaxTokens
	}
	res.settle = r.settler(key, id, res.amount)
	return res, nil
}

// unavailable handles a failed admission: fail closed, or open when asked.
func (r *Redis) unavailable(ctx context.Context, key string, want Want, err error) (*Reservation, error) {
	if ctx.Err() != nil {
		return nil, err
	}
	if !r.opts.FailOpen {
		return nil, fmt.Errorf("%w (failing closed): %w", ErrUnavailable, err)
	}
	r.log.Warn("limit store unavailable; admitting request unmetered (fail-open)", "key", key, "err", err)
	id, idErr := r.ids.newID()
	if idErr != nil {
		return nil, idErr
	}
	// Not recorded in Redis: Commit charges the tokens if Redis is back.
	return &Reservation{MaxTokens: max(want.Completion, 0), id: id, settle: r.settler(key, id, 0)}, nil
}

func (r *Redis) settler(key, id string, amount int64) func(context.Context, int64) error {
	member := id + ":" + strconv.FormatInt(amount, 10)
	return func(ctx context.Context, tokens int64) error {
		now := r.opts.now()
		ks, _, _ := r.keys(key, now)
		err := r.settle.Run(ctx, r.rdb,
			[]string{ks.tpm, ks.inflight, ks.day, ks.month},
			r.scriptNow(now), member, amount, tokens,
			int64(dayTTL/time.Second), int64(monthTTL/time.Second),
		).Err()
		if err != nil {
			return fmt.Errorf("%w: settling %d tokens for key %q: %w", ErrUnavailable, tokens, key, err)
		}
		return nil
	}
}

// Usage implements Limiter.
func (r *Redis) Usage(ctx context.Context, key string) (Usage, error) {
	now := r.opts.now()
	ks, _, _ := r.keys(key, now)
	raw, err := r.usage.Run(ctx, r.rdb,
		[]string{ks.rpm, ks.tpm, ks.inflight, ks.day, ks.month},
		r.scriptNow(now), int64(dayTTL/time.Second), int64(monthTTL/time.Second),
	).Int64Slice()
	if err != nil {
		return Usage{}, fmt.Errorf("%w: reading usage of key %q: %w", ErrUnavailable, key, err)
	}
	if len(raw) != 6 {
		return Usage{}, fmt.Errorf("%w: reading usage of key %q: reply has %d values, want 6", ErrUnavailable, key, len(raw))
	}
	return Usage{Requests: raw[0], Tokens: raw[1], InFlight: raw[2], Reserved: raw[3], Daily: raw[4], Monthly: raw[5]}, nil
}

func asInt(v any) int64 {
	switch x := v.(type) {
	case int64:
		return x
	case string:
		n, _ := strconv.ParseInt(x, 10, 64)
		return n
	}
	return 0
}

// parseFails decodes {reason, limit, retry_ms}... from the admit script.
func parseFails(raw []any) ([]failure, error) {
	if len(raw) == 0 || len(raw)%3 != 0 {
		return nil, errors.New("malformed refusal from limit script")
	}
	var out []failure
	for i := 0; i < len(raw); i += 3 {
		s, _ := raw[i].(string)
		reason, ok := parseReason(s)
		if !ok {
			return nil, fmt.Errorf("unknown limit %q in refusal from limit script", s)
		}
		out = append(out, failure{reason: reason, limit: asInt(raw[i+1]), retryMs: asInt(raw[i+2])})
	}
	return out, nil
}
