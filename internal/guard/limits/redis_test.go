package limits

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

var redisPrefixSeq atomic.Int64

// redisFactory gives every limiter its own key prefix on one server, so
// limiters never share state unless a test does so on purpose.
func redisFactory(addr string) factory {
	return func(t *testing.T, opts Options) Limiter {
		rdb := newRedisClient(t, addr)
		prefix := fmt.Sprintf("test%d:", redisPrefixSeq.Add(1))
		return NewRedis(rdb, RedisOptions{Options: opts, Prefix: prefix})
	}
}

func TestRedisSuite(t *testing.T) {
	addr := startRedis(t)
	runSuite(t, redisFactory(addr))
}

// TestRedisTwoReplicas runs two independent limiters (separate clients, as
// two gateway replicas would) against one real redis-server and hammers one
// key from both at once.
func TestRedisTwoReplicas(t *testing.T) {
	addr := startRedis(t)
	replicas := func(opts Options) []Limiter {
		ro := RedisOptions{Options: opts, Prefix: fmt.Sprintf("replicas%d:", redisPrefixSeq.Add(1))}
		return []Limiter{NewRedis(newRedisClient(t, addr), ro), NewRedis(newRedisClient(t, addr), ro)}
	}
	t.Run("frozen clock", func(t *testing.T) {
		clock := newFakeClock(time.Date(2026, 11, 5, 10, 0, 0, 0, time.UTC))
		lims := replicas(Options{Now: clock.Now})
		hammerRPM(t, lims, "rpm", 50, true)
		hammerConcurrent(t, lims, "conc", 4)
		hammerBudget(t, lims, "budget", Limits{Daily: 8000, TPM: 6000})
	})
	t.Run("server clock", func(t *testing.T) {
		// Windows follow Redis TIME. The test may cross a window boundary,
		// so only the upper bound is asserted for RPM.
		lims := replicas(Options{})
		hammerRPM(t, lims, "rpm", 50, false)
		hammerConcurrent(t, lims, "conc", 4)
		hammerBudget(t, lims, "budget", Limits{Daily: 8000})
	})
}

func TestRedisKeysExpire(t *testing.T) {
	addr := startRedis(t)
	rdb := newRedisClient(t, addr)
	ctx := context.Background()
	lim := NewRedis(rdb, RedisOptions{Prefix: "ttl:"})
	r, err := lim.Admit(ctx, "alice", Limits{RPM: 10, TPM: 1000, Daily: 5000, Monthly: 9000}, Want{Completion: 100})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Commit(ctx, 10, 20); err != nil {
		t.Fatal(err)
	}
	if _, err := lim.Admit(ctx, "alice", Limits{RPM: 10}, Want{Completion: 0}); err != nil { // left in flight
		t.Fatal(err)
	}
	keys, err := rdb.Keys(ctx, "ttl:*").Result()
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]bool{}
	for _, k := range keys {
		if !strings.HasPrefix(k, "ttl:{alice}:") {
			t.Errorf("key %q does not carry the key's hash tag", k)
		}
		kind, _, _ := strings.Cut(strings.TrimPrefix(k, "ttl:{alice}:"), ":")
		kinds[kind] = true
		ttl, err := rdb.PTTL(ctx, k).Result()
		if err != nil {
			t.Fatal(err)
		}
		if ttl <= 0 {
			t.Errorf("key %q has no TTL (%v)", k, ttl)
		}
	}
	for _, kind := range []string{"rpm", "tpm", "inflight", "d", "m"} {
		if !kinds[kind] {
			t.Errorf("no %q key written; keys: %v", kind, keys)
		}
	}
}

func TestRedisScriptCacheFlushed(t *testing.T) {
	addr := startRedis(t)
	rdb := newRedisClient(t, addr)
	ctx := context.Background()
	lim := NewRedis(rdb, RedisOptions{Prefix: "flush:"})
	for i := 0; i < 3; i++ {
		if err := rdb.ScriptFlush(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		r, err := lim.Admit(ctx, "k", Limits{RPM: 5}, Want{Completion: 0})
		if err != nil {
			t.Fatalf("admit %d after SCRIPT FLUSH: %v", i, err)
		}
		if err := rdb.ScriptFlush(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		if err := r.Release(ctx); err != nil {
			t.Fatalf("release after SCRIPT FLUSH: %v", err)
		}
	}
	u, err := lim.Usage(ctx, "k")
	if err != nil || u.Requests != 3 || u.InFlight != 0 {
		t.Fatalf("usage = %+v, %v; want 3 requests, none in flight", u, err)
	}
}

func TestRedisUnreachable(t *testing.T) {
	port, err := freePort() // nothing listens there any more
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", port), MaxRetries: -1, DialTimeout: time.Second})
	t.Cleanup(func() { _ = rdb.Close() })
	ctx := context.Background()

	closed := NewRedis(rdb, RedisOptions{})
	_, err = closed.Admit(ctx, "k", Limits{RPM: 5}, Want{Completion: 100})
	if !errors.Is(err, ErrUnavailable) || errors.Is(err, ErrLimited) {
		t.Fatalf("fail-closed Admit: err = %v, want ErrUnavailable", err)
	}
	if !strings.Contains(err.Error(), "failing closed") {
		t.Errorf("error %q does not say the gateway is failing closed", err)
	}
	if _, err := closed.Usage(ctx, "k"); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Usage: err = %v, want ErrUnavailable", err)
	}

	open := NewRedis(rdb, RedisOptions{FailOpen: true})
	r, err := open.Admit(ctx, "k", Limits{RPM: 5, Daily: 10}, Want{Completion: 100})
	if err != nil {
		t.Fatalf("fail-open Admit: %v", err)
	}
	if r.Capped || r.MaxTokens != 100 {
		t.Errorf("fail-open reservation max=%d capped=%t, want 100 uncapped", r.MaxTokens, r.Capped)
	}
	if err := r.Commit(ctx, 1, 2); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Commit while Redis is down: err = %v, want ErrUnavailable", err)
	}

	// A cancelled request is not "unavailable" and never fails open.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := open.Admit(cctx, "k", Limits{}, Want{Completion: 0}); !errors.Is(err, context.Canceled) {
		t.Errorf("Admit with cancelled context: err = %v, want context.Canceled", err)
	}
}

// TestRedisFailOpenChargesWhenBack: a reservation made while Redis was
// down is billed at Commit once Redis answers again.
func TestRedisFailOpenChargesWhenBack(t *testing.T) {
	addr := startRedis(t)
	rdb := newRedisClient(t, addr)
	ctx := context.Background()
	lim := NewRedis(rdb, RedisOptions{Prefix: "open:", FailOpen: true})
	r, err := lim.unavailable(ctx, "k", Want{Completion: 50}, errors.New("simulated outage"))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Commit(ctx, 5, 20); err != nil {
		t.Fatal(err)
	}
	u, err := lim.Usage(ctx, "k")
	if err != nil || u.Daily != 25 || u.InFlight != 0 {
		t.Fatalf("usage = %+v, %v; want daily=25, nothing in flight", u, err)
	}
}
