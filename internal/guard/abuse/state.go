package abuse

import (
	"container/list"
	"fmt"
	"hash/maphash"
	"math"
	"net/netip"
	"sync"
	"time"
)

const numShards = 16

// shard is an LRU of key states under one lock.
type shard struct {
	mu   sync.Mutex
	cap  int
	keys map[string]*list.Element
	lru  *list.List // of *keyState, most recent first
}

func (s *shard) init(capacity int) {
	s.cap = capacity
	s.keys = map[string]*list.Element{}
	s.lru = list.New()
}

func (d *Detector) shard(key string) *shard {
	return &d.shards[maphash.String(d.seed, key)%numShards]
}

// get returns the key's state, creating it (and evicting the least recently
// used key) as needed. s.mu must be held.
func (s *shard) get(id string, d *Detector) *keyState {
	if e, ok := s.keys[id]; ok {
		s.lru.MoveToFront(e)
		return e.Value.(*keyState)
	}
	if s.lru.Len() >= s.cap {
		old := s.lru.Back()
		s.lru.Remove(old)
		delete(s.keys, old.Value.(*keyState).id)
	}
	k := &keyState{id: id, name: id}
	k.spam.init(d.cfg.BulkSpam.MaxPrompts)
	k.nets.init()
	s.keys[id] = s.lru.PushFront(k)
	return k
}

// len reports the number of keys held (for tests).
func (s *shard) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lru.Len()
}

// keyState is everything remembered about one key.
type keyState struct {
	id, name string
	rate     rateState
	nets     netSet
	spam     spamRing
	// notified: per kind, when the last notification went out and how many
	// were suppressed since.
	notified [5]struct {
		at         time.Time
		suppressed int
	}
}

func kindIndex(kind string) int {
	switch kind {
	case KindRateJump:
		return 0
	case KindNewNetwork:
		return 1
	case KindPromptAbuse:
		return 2
	case KindBulkSpam:
		return 3
	default:
		return 4
	}
}

// notify reports whether a notification for kind may go out now, and how
// many were suppressed before it.
func (k *keyState) notify(kind string, now time.Time, cooldown time.Duration) (int, bool) {
	n := &k.notified[kindIndex(kind)]
	if !n.at.IsZero() && now.Sub(n.at) < cooldown && now.Sub(n.at) >= 0 {
		n.suppressed++
		return 0, false
	}
	sup := n.suppressed
	n.at, n.suppressed = now, 0
	return sup, true
}

// rateState keeps whole-minute counters and their bias-corrected EWMAs.
type rateState struct {
	started  bool
	first    time.Time
	minute   int64 // current minute (Unix minutes)
	curTok   int64
	curReq   int64
	ewmaTok  float64
	ewmaReq  float64
	weight   float64 // 1-(1-alpha)^n: bias correction for n folded minutes
	requests int64
}

func alphaOf(r *RateJumpRule) float64 {
	return 1 - math.Exp2(-float64(time.Minute)/float64(r.HalfLife))
}

// roll advances to the minute of t, folding finished minutes (idle ones as
// zero) into the baselines. A flagged minute is folded capped at
// Factor×baseline.
func (s *rateState) roll(t time.Time, r *RateJumpRule) {
	m := t.Unix() / 60
	if !s.started {
		s.started, s.first, s.minute = true, t, m
		return
	}
	if m <= s.minute {
		return
	}
	a := alphaOf(r)
	fold := func(tok, req float64) {
		if s.weight > 0 {
			bt, br := s.ewmaTok/s.weight, s.ewmaReq/s.weight
			tok = math.Min(tok, r.Factor*math.Max(bt, float64(r.MinTokensPerMinute)))
			req = math.Min(req, r.Factor*math.Max(br, float64(r.MinRequestsPerMinute)))
		}
		s.ewmaTok = (1-a)*s.ewmaTok + a*tok
		s.ewmaReq = (1-a)*s.ewmaReq + a*req
		s.weight = (1-a)*s.weight + a
	}
	fold(float64(s.curTok), float64(s.curReq))
	// Idle minutes: fold zeros in closed form, bounded.
	if gap := m - s.minute - 1; gap > 0 {
		f := math.Pow(1-a, float64(min(gap, 1<<20)))
		s.ewmaTok *= f
		s.ewmaReq *= f
		s.weight = s.weight*f + (1 - f)
	}
	s.minute, s.curTok, s.curReq = m, 0, 0
}

func (s *rateState) warm(t time.Time, r *RateJumpRule) bool {
	return s.weight > 0 && t.Sub(s.first) >= time.Duration(r.WarmupMinutes)*time.Minute &&
		s.requests >= int64(r.WarmupRequests)
}

// check reports whether the current minute is a jump.
func (s *rateState) check(t time.Time, r *RateJumpRule) (string, bool) {
	if !s.warm(t, r) {
		return "", false
	}
	bt, br := s.ewmaTok/s.weight, s.ewmaReq/s.weight
	if s.curTok >= r.MinTokensPerMinute && float64(s.curTok) > r.Factor*bt {
		return fmt.Sprintf("%d tokens this minute, baseline %.0f/min (more than %g×)", s.curTok, bt, r.Factor), true
	}
	if s.curReq >= r.MinRequestsPerMinute && float64(s.curReq) > r.Factor*br {
		return fmt.Sprintf("%d requests this minute, baseline %.1f/min (more than %g×)", s.curReq, br, r.Factor), true
	}
	return "", false
}

// request counts one request at t and checks the current minute.
func (s *rateState) request(t time.Time, r *RateJumpRule) (string, bool) {
	s.roll(t, r)
	s.curReq++
	s.requests++
	return s.check(t, r)
}

// tokens adds billed tokens. A completion whose time falls in an earlier
// minute than the current one (a long stream) is counted in the current
// minute.
func (s *rateState) tokens(t time.Time, n int64, r *RateJumpRule) (string, bool) {
	s.roll(t, r)
	s.curTok += n
	if s.curTok < 0 { // overflow
		s.curTok = math.MaxInt64
	}
	return s.check(t, r)
}

// netSet is an LRU of client networks.
type netSet struct {
	m   map[netip.Prefix]*list.Element
	lru *list.List // of netip.Prefix
}

func (n *netSet) init() {
	n.m = map[netip.Prefix]*list.Element{}
	n.lru = list.New()
}

// see records p and reports whether it is new for a key that already had
// another network.
func (n *netSet) see(p netip.Prefix, capacity int) (netip.Prefix, bool) {
	if e, ok := n.m[p]; ok {
		n.lru.MoveToFront(e)
		return p, false
	}
	first := n.lru.Len() == 0
	if n.lru.Len() >= capacity {
		old := n.lru.Back()
		n.lru.Remove(old)
		delete(n.m, old.Value.(netip.Prefix))
	}
	n.m[p] = n.lru.PushFront(p)
	return p, !first
}

// networkOf is the /24 (IPv4) or /48 (IPv6) holding a.
func networkOf(a netip.Addr) netip.Prefix {
	a = a.Unmap().WithZone("")
	bits := 48
	if a.Is4() {
		bits = 24
	}
	p, _ := a.Prefix(bits)
	return p
}

// spamRing holds recent prompt simhashes.
type spamRing struct {
	hashes []uint64
	times  []time.Time
	next   int
	n      int
}

func (r *spamRing) init(capacity int) {
	r.hashes = make([]uint64, capacity)
	r.times = make([]time.Time, capacity)
}

// add records h at t and reports how many near-duplicates (h included)
// fall in the window, and whether that reaches the threshold.
func (r *spamRing) add(h uint64, t time.Time, b *BulkSpamRule) (int, bool) {
	count := 1
	for i := 0; i < r.n; i++ {
		if age := t.Sub(r.times[i]); age >= 0 && age <= b.Window && hamming(h, r.hashes[i]) <= b.MaxDistance {
			count++
		}
	}
	r.hashes[r.next], r.times[r.next] = h, t
	r.next = (r.next + 1) % len(r.hashes)
	r.n = min(r.n+1, len(r.hashes))
	return count, count >= b.Threshold
}

// promptCacheSize bounds the cached prompt analyses.
const promptCacheSize = 4096

// promptCache remembers the analysis of recent request bodies (by hash):
// a bounded map, emptied when full, so memory stays bounded whatever the
// traffic and a repeated prompt is classified once.
type promptCache struct {
	mu  sync.Mutex
	max int
	m   map[uint64]promptFacts
}

func (c *promptCache) init(max int) { c.max, c.m = max, make(map[uint64]promptFacts, max) }

func (c *promptCache) get(k uint64) (promptFacts, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f, ok := c.m[k]
	return f, ok
}

func (c *promptCache) put(k uint64, f promptFacts) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= c.max {
		clear(c.m)
	}
	c.m[k] = f
}
