package guard

import (
	"net/netip"
	"sync"
	"time"
)

// authThrottle counts failed authentications per client IP and blocks an IP
// with exponential back-off once it has used its free attempts. Successful
// authentication does not reset the count (a client holding one valid key
// must not be able to keep guessing others); failures are forgotten after a
// quiet period. Memory is bounded: at most maxEntries IPs are tracked, and
// the stalest entries are dropped first.
type authThrottle struct {
	mu         sync.Mutex
	now        func() time.Time
	maxEntries int
	ips        map[netip.Addr]*failState
}

type failState struct {
	failures int
	last     time.Time // last failure
	until    time.Time // blocked until
}

func newAuthThrottle(now func() time.Time, maxEntries int) *authThrottle {
	return &authThrottle{now: now, maxEntries: maxEntries, ips: make(map[netip.Addr]*failState)}
}

// blocked reports whether ip must wait, and how long.
func (t *authThrottle) blocked(ip netip.Addr, cfg AuthBackoff) (time.Duration, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	st, ok := t.ips[ip]
	if !ok {
		return 0, false
	}
	now := t.now()
	if cfg.Forget > 0 && now.Sub(st.last) > cfg.Forget && !now.Before(st.until) {
		delete(t.ips, ip)
		return 0, false
	}
	if now.Before(st.until) {
		return st.until.Sub(now), true
	}
	return 0, false
}

// fail records a failed attempt and returns the block it causes (0: none).
func (t *authThrottle) fail(ip netip.Addr, cfg AuthBackoff) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	st, ok := t.ips[ip]
	if !ok || (cfg.Forget > 0 && now.Sub(st.last) > cfg.Forget && !now.Before(st.until)) {
		if !ok && len(t.ips) >= t.maxEntries {
			t.evict(now, cfg)
		}
		st = &failState{}
		t.ips[ip] = st
	}
	st.failures++
	st.last = now
	over := st.failures - cfg.Free
	if over <= 0 {
		return 0
	}
	d := cfg.Base
	for i := 1; i < over && d < cfg.Max; i++ {
		d *= 2
	}
	d = min(d, cfg.Max)
	st.until = now.Add(d)
	return d
}

// evict drops forgotten entries, or, if none, the one idle longest.
func (t *authThrottle) evict(now time.Time, cfg AuthBackoff) {
	var oldest netip.Addr
	var oldestT time.Time
	for ip, st := range t.ips {
		if cfg.Forget > 0 && now.Sub(st.last) > cfg.Forget && !now.Before(st.until) {
			delete(t.ips, ip)
			continue
		}
		if oldestT.IsZero() || st.last.Before(oldestT) {
			oldest, oldestT = ip, st.last
		}
	}
	if len(t.ips) >= t.maxEntries && oldest.IsValid() {
		delete(t.ips, oldest)
	}
}
