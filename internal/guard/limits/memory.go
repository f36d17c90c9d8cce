package limits

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// sweepEvery is how often (by the limiter's clock) Memory drops keys that
// hold no state.
const sweepEvery = time.Minute

// Memory is an in-process Limiter: exact within one process, one mutex over
// all keys. Its memory is bounded: per key at most 61 buckets per window
// plus the requests in flight, and a key is dropped once its windows are
// empty, nothing is in flight and it has used nothing in the current day and
// month. Budgets of keys used this month therefore live until the month
// ends; keys are authenticated before they reach the limiter, so their
// number is that of issued keys, not of callers.
type Memory struct {
	opts Options
	log  *slog.Logger
	ids  idGen

	mu        sync.Mutex
	keys      map[string]*memKey
	lastSweep time.Time
}

type memRes struct {
	amount     int64
	deadlineMs int64
}

type memKey struct {
	rpm, tpm []bucket
	inflight map[string]memRes
	dayID    string
	monthID  string
	day      int64
	month    int64
}

var _ Limiter = (*Memory)(nil)

// NewMemory returns an in-process limiter. log may be nil.
func NewMemory(opts Options, log *slog.Logger) *Memory {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Memory{opts: opts, log: log, keys: map[string]*memKey{}}
}

// Admit implements Limiter.
func (m *Memory) Admit(ctx context.Context, key string, l Limits, want Want) (*Reservation, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("admitting request for key %q: %w", key, err)
	}
	id, err := m.ids.newID()
	if err != nil {
		return nil, err
	}
	now := m.opts.now()
	nowMs := now.UnixMilli()
	dayID, monthID, dayEnd, monthEnd := periods(now, m.opts.loc())

	m.mu.Lock()
	defer m.mu.Unlock()
	m.maybeSweep(now, dayID, monthID)
	k := m.keys[key]
	if k == nil {
		k = &memKey{inflight: map[string]memRes{}}
		m.keys[key] = k
	}
	k.refresh(nowMs, dayID, monthID, m.log, key)

	v := decide(k.snapshot(nowMs), l, want)
	if !v.ok {
		return nil, limitError(key, v.fails, now, dayEnd, monthEnd)
	}
	k.rpm = addBucket(k.rpm, bucketSec(nowMs), 1)
	res := &Reservation{MaxTokens: v.maxTokens, Capped: v.capped, id: id}
	if v.capped {
		res.Prompt = v.prompt
		res.amount = v.prompt + v.maxTokens
	}
	k.inflight[id] = memRes{amount: res.amount, deadlineMs: nowMs + m.opts.lease().Milliseconds()}
	amount := res.amount
	res.settle = func(ctx context.Context, tokens int64) error {
		return m.settle(key, id, amount, tokens)
	}
	return res, nil
}

func (m *Memory) settle(key, id string, amount, tokens int64) error {
	now := m.opts.now()
	nowMs := now.UnixMilli()
	dayID, monthID, _, _ := periods(now, m.opts.loc())

	m.mu.Lock()
	defer m.mu.Unlock()
	k := m.keys[key]
	if k == nil {
		k = &memKey{inflight: map[string]memRes{}}
		m.keys[key] = k
	}
	k.refresh(nowMs, dayID, monthID, m.log, key)
	if _, ok := k.inflight[id]; ok {
		delete(k.inflight, id)
	} else {
		// Reclaimed after its lease: amount was charged already.
		tokens = max(tokens-amount, 0)
	}
	k.charge(nowMs, tokens)
	return nil
}

// Usage implements Limiter.
func (m *Memory) Usage(ctx context.Context, key string) (Usage, error) {
	if err := ctx.Err(); err != nil {
		return Usage{}, fmt.Errorf("reading usage of key %q: %w", key, err)
	}
	now := m.opts.now()
	nowMs := now.UnixMilli()
	dayID, monthID, _, _ := periods(now, m.opts.loc())

	m.mu.Lock()
	defer m.mu.Unlock()
	k := m.keys[key]
	if k == nil {
		return Usage{}, nil
	}
	k.refresh(nowMs, dayID, monthID, m.log, key)
	s := k.snapshot(nowMs)
	return Usage{
		Requests: sumBuckets(s.rpm),
		Tokens:   sumBuckets(s.tpm),
		InFlight: s.inflight,
		Reserved: s.reserved,
		Daily:    s.day,
		Monthly:  s.month,
	}, nil
}

// Seed adds tokens used before this limiter started (read back from the
// audit log when the gateway starts, so a restart does not hand out fresh
// budgets) to key's current day, month and sliding minute: day and month
// are the tokens of the current calendar day and month in the limiter's
// location (see PeriodStarts), minute those of the last minute.
func (m *Memory) Seed(key string, day, month, minute int64) {
	now := m.opts.now()
	nowMs := now.UnixMilli()
	dayID, monthID, _, _ := periods(now, m.opts.loc())
	m.mu.Lock()
	defer m.mu.Unlock()
	k := m.keys[key]
	if k == nil {
		k = &memKey{inflight: map[string]memRes{}}
		m.keys[key] = k
	}
	k.refresh(nowMs, dayID, monthID, m.log, key)
	k.day += max(day, 0)
	k.month += max(month, 0)
	if minute > 0 {
		k.tpm = addBucket(k.tpm, bucketSec(nowMs), minute)
	}
}

// PeriodStarts returns when the calendar day and month holding now began
// in the limiter's location: the bounds of the usage to Seed.
func (m *Memory) PeriodStarts(now time.Time) (day, month time.Time) {
	t := now.In(m.opts.loc())
	y, mo, d := t.Date()
	return time.Date(y, mo, d, 0, 0, 0, 0, m.opts.loc()), time.Date(y, mo, 1, 0, 0, 0, 0, m.opts.loc())
}

// keyCount reports how many keys hold state (for tests).
func (m *Memory) keyCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.keys)
}

func (m *Memory) maybeSweep(now time.Time, dayID, monthID string) {
	if !m.lastSweep.IsZero() && now.Sub(m.lastSweep) < sweepEvery && now.After(m.lastSweep) {
		return
	}
	m.lastSweep = now
	nowMs := now.UnixMilli()
	for key, k := range m.keys {
		k.refresh(nowMs, dayID, monthID, m.log, key)
		if k.idle() {
			delete(m.keys, key)
		}
	}
}

// refresh drops expired buckets, reclaims reservations past their lease and
// starts new periods.
func (k *memKey) refresh(nowMs int64, dayID, monthID string, log *slog.Logger, key string) {
	if k.dayID != dayID {
		k.dayID, k.day = dayID, 0
	}
	if k.monthID != monthID {
		k.monthID, k.month = monthID, 0
	}
	for id, r := range k.inflight {
		if r.deadlineMs <= nowMs {
			delete(k.inflight, id)
			k.charge(nowMs, r.amount)
			log.Warn("reclaimed unsettled reservation after its lease", "key", key, "tokens_charged", r.amount)
		}
	}
	k.rpm = pruneBuckets(k.rpm, nowMs)
	k.tpm = pruneBuckets(k.tpm, nowMs)
}

func (k *memKey) charge(nowMs, tokens int64) {
	if tokens <= 0 {
		return
	}
	k.tpm = addBucket(k.tpm, bucketSec(nowMs), tokens)
	k.day += tokens
	k.month += tokens
}

func (k *memKey) snapshot(nowMs int64) state {
	s := state{nowMs: nowMs, rpm: k.rpm, tpm: k.tpm, day: k.day, month: k.month}
	for _, r := range k.inflight {
		s.inflight++
		s.reserved += r.amount
	}
	return s
}

func (k *memKey) idle() bool {
	return len(k.rpm) == 0 && len(k.tpm) == 0 && len(k.inflight) == 0 && k.day == 0 && k.month == 0
}

// addBucket adds n to the bucket for sec, keeping bs in ascending order.
func addBucket(bs []bucket, sec, n int64) []bucket {
	i := len(bs)
	for i > 0 && bs[i-1].sec > sec {
		i--
	}
	if i > 0 && bs[i-1].sec == sec {
		bs[i-1].n += n
		return bs
	}
	bs = append(bs, bucket{})
	copy(bs[i+1:], bs[i:])
	bs[i] = bucket{sec: sec, n: n}
	return bs
}

// pruneBuckets drops buckets that have left the window.
func pruneBuckets(bs []bucket, nowMs int64) []bucket {
	i := 0
	for i < len(bs) && !bucketLive(bs[i], nowMs) {
		i++
	}
	if i == 0 {
		return bs
	}
	if i == len(bs) {
		return nil
	}
	return append(bs[:0], bs[i:]...)
}
