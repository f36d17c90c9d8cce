package guard

import (
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/llmfence/llmfence/internal/guard/keys"
)

// Failed authentication is counted in buckets, each with its own
// exponential back-off:
//
//   - a presented API key's ID (lf_<id>_...): wrong secrets for one real
//     key, from anywhere;
//   - a client network (IPv4 /32, IPv6 /64) for credentials that name no
//     key ID (garbage, a JWT that does not verify);
//   - a client network for requests that present no credential at all
//     (keyless floods).
//
// The back-off never refuses a valid credential: a request that presents
// one is authenticated first (the key table is in memory, so that is
// cheap) and admitted whatever its address's buckets say, so a stranger
// behind the same NAT cannot lock out a key holder. A blocked bucket turns
// its failures' 401 into 429 with Retry-After, and keyless requests from a
// blocked network are refused before anything else is done for them.
// Successful authentication does not reset a bucket (a client holding one
// valid key must not keep guessing others at full speed); failures are
// forgotten after a quiet period.

type bucketKind uint8

const (
	bucketKeyless bucketKind = iota + 1 // no credential presented
	bucketBadCred                       // a credential naming no key ID
	bucketKeyID                         // a wrong secret for this key ID
)

// bucket names one back-off counter.
type bucket struct {
	kind bucketKind
	net  netip.Prefix
	id   string
}

// networkOf is the network a client address is counted under: the address
// itself for IPv4, its /64 for IPv6 (one subscriber's usual allocation).
func networkOf(a netip.Addr) netip.Prefix {
	a = a.Unmap()
	bits := 32
	if a.Is6() {
		bits = 64
	}
	p, _ := a.Prefix(bits)
	return p
}

func keylessBucket(ip netip.Addr) bucket { return bucket{kind: bucketKeyless, net: networkOf(ip)} }

// credentialBucket is where a failed credential is counted.
func credentialBucket(presented string, ip netip.Addr) bucket {
	if strings.HasPrefix(presented, keys.Prefix) {
		if id, err := keys.Parse(presented); err == nil {
			return bucket{kind: bucketKeyID, id: id}
		}
	}
	return bucket{kind: bucketBadCred, net: networkOf(ip)}
}

// authThrottle keeps the buckets. Memory is bounded: at most maxEntries
// buckets are tracked, and the stalest are dropped first.
type authThrottle struct {
	mu         sync.Mutex
	now        func() time.Time
	maxEntries int
	buckets    map[bucket]*failState
}

type failState struct {
	failures int
	last     time.Time // last failure
	until    time.Time // blocked until
}

func newAuthThrottle(now func() time.Time, maxEntries int) *authThrottle {
	return &authThrottle{now: now, maxEntries: maxEntries, buckets: make(map[bucket]*failState)}
}

// blocked reports whether b is blocked, and for how long.
func (t *authThrottle) blocked(b bucket, cfg AuthBackoff) (time.Duration, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	st, ok := t.buckets[b]
	if !ok {
		return 0, false
	}
	now := t.now()
	if cfg.Forget > 0 && now.Sub(st.last) > cfg.Forget && !now.Before(st.until) {
		delete(t.buckets, b)
		return 0, false
	}
	if now.Before(st.until) {
		return st.until.Sub(now), true
	}
	return 0, false
}

// fail records a failure in b and returns the block it causes (0: none).
func (t *authThrottle) fail(b bucket, cfg AuthBackoff) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	st, ok := t.buckets[b]
	if !ok || (cfg.Forget > 0 && now.Sub(st.last) > cfg.Forget && !now.Before(st.until)) {
		if !ok && len(t.buckets) >= t.maxEntries {
			t.evict(now, cfg)
		}
		st = &failState{}
		t.buckets[b] = st
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

// evict drops forgotten buckets, or, if none, the one idle longest.
func (t *authThrottle) evict(now time.Time, cfg AuthBackoff) {
	var oldest bucket
	var oldestT time.Time
	found := false
	for b, st := range t.buckets {
		if cfg.Forget > 0 && now.Sub(st.last) > cfg.Forget && !now.Before(st.until) {
			delete(t.buckets, b)
			continue
		}
		if !found || st.last.Before(oldestT) {
			oldest, oldestT, found = b, st.last, true
		}
	}
	if len(t.buckets) >= t.maxEntries && found {
		delete(t.buckets, oldest)
	}
}

// size reports the buckets tracked (tests).
func (t *authThrottle) size() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.buckets)
}
