package scan

import (
	"sync"
	"sync/atomic"
	"time"
)

// adaptiveLimit bounds the TCP connects in flight and moves that bound to
// where the path does the most work, as nmap's congestion control does.
//
// Why: the best number of connects in flight differs by orders of
// magnitude. Where ports answer at once (a LAN, loopback), connects are
// CPU-bound and a few dozen in flight is fastest: more only adds
// contention (measured here: 64 in flight sweep 45k pairs/s on loopback,
// 1,024 in flight 21k/s). Where most addresses never answer, every connect
// waits for its timeout and throughput grows with the number in flight, so
// thousands are needed to reach the --rate the user asked for.
//
// How: the limit is the number of connect workers. Every window the
// controller compares the connects completed with the previous window. If
// the limit was binding (the producer found every worker busy) it keeps moving the limit the way that last helped — up by a
// quarter, or down by a fifth — and turns around when throughput fell. When
// the limit was not binding (the rate limiter or the target walk is the
// bottleneck) it holds.
type adaptiveLimit struct {
	mu        sync.Mutex
	active    int // connect workers running
	limit     int
	min, max  int
	closed    bool
	saturated atomic.Bool // the producer found every worker busy this window
	spawn     func()      // starts one more worker
}

// newAdaptiveLimit returns a limit with no workers; start them with
// set(min).
func newAdaptiveLimit(min, max int, spawn func()) *adaptiveLimit {
	return &adaptiveLimit{min: min, max: max, spawn: spawn}
}

// set moves the limit, starting workers up to it. Workers above the limit
// leave on their own (see leave).
func (l *adaptiveLimit) set(n int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.limit = n
	for !l.closed && l.active < l.limit {
		l.active++
		l.spawn()
	}
}

// leave reports whether the calling worker should stop because the limit
// shrank below the number running; if so it is no longer counted.
func (l *adaptiveLimit) leave() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.active > l.limit {
		l.active--
		return true
	}
	return false
}

// close stops the limit from starting workers.
func (l *adaptiveLimit) close() {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
}

// current returns the limit in force.
func (l *adaptiveLimit) current() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.limit
}

// control adjusts the limit every window from the count of completed
// connects until stop is closed.
func (l *adaptiveLimit) control(stop <-chan struct{}, done *atomic.Uint64, window time.Duration) {
	t := time.NewTicker(window)
	defer t.Stop()
	var h hillClimb
	last := done.Load()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		n := done.Load()
		l.set(h.next(l.current(), l.min, l.max, float64(n-last), l.saturated.Swap(false)))
		last = n
	}
}

// hillClimb is the controller's memory: the last window's throughput and
// the direction it was moving the limit.
type hillClimb struct {
	lastRate float64
	dir      int // +1 growing, -1 shrinking, 0 not started
}

// next returns the limit for the coming window given the work done in the
// last one and whether the limit was binding.
func (h *hillClimb) next(limit, lo, hi int, rate float64, saturated bool) int {
	defer func() { h.lastRate = rate }()
	if !saturated {
		return limit
	}
	switch {
	case h.dir == 0:
		h.dir = +1
	case rate < h.lastRate*0.95:
		h.dir = -h.dir // the last move hurt: turn around
	case rate <= h.lastRate*1.02:
		return limit // flat: stay
	}
	if h.dir > 0 {
		limit += max(limit/4, 1)
	} else {
		limit -= max(limit/5, 1)
	}
	return min(max(limit, lo), hi)
}
