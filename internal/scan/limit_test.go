package scan

import (
	"sync/atomic"
	"testing"
)

// TestHillClimbFindsThePeak drives the controller with modelled paths: the
// limit must settle near the best point, grow to the cap when throughput
// keeps rising with concurrency, and hold when the limit does not bind.
func TestHillClimbFindsThePeak(t *testing.T) {
	for _, tc := range []struct {
		name       string
		throughput func(limit int) float64
		saturated  bool
		lo, hi     int
		wantMin    int
		wantMax    int
	}{
		{
			// CPU-bound: connects/s by number in flight as measured on
			// loopback on the 2-core development machine.
			name:       "cpu-bound peak",
			throughput: measuredLoopback,
			saturated:  true, lo: 16, hi: 4096, wantMin: 40, wantMax: 160,
		},
		{
			// Latency-bound: every connect waits 3 s, throughput = limit / 3.
			name:       "timeouts",
			throughput: func(l int) float64 { return float64(l) / 3 },
			saturated:  true, lo: 64, hi: 4096, wantMin: 4096, wantMax: 4096,
		},
		{
			name:       "limit not binding",
			throughput: func(l int) float64 { return 2000 },
			saturated:  false, lo: 64, hi: 4096, wantMin: 64, wantMax: 64,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var h hillClimb
			limit := tc.lo
			for i := 0; i < 200; i++ {
				limit = h.next(limit, tc.lo, tc.hi, tc.throughput(limit), tc.saturated)
				if limit < tc.lo || limit > tc.hi {
					t.Fatalf("step %d: limit %d outside [%d, %d]", i, limit, tc.lo, tc.hi)
				}
			}
			if limit < tc.wantMin || limit > tc.wantMax {
				t.Errorf("settled at %d, want within [%d, %d]", limit, tc.wantMin, tc.wantMax)
			}
		})
	}
}

// TestAdaptiveLimitWorkers: raising the limit starts workers, lowering it
// makes the surplus leave, and nothing starts after close.
func TestAdaptiveLimitWorkers(t *testing.T) {
	var started atomic.Int64
	l := newAdaptiveLimit(4, 64, func() { started.Add(1) })
	l.set(4)
	if started.Load() != 4 {
		t.Fatalf("started %d workers, want the minimum 4", started.Load())
	}
	l.set(10)
	if started.Load() != 10 {
		t.Fatalf("started %d workers after raising the limit to 10", started.Load())
	}
	l.set(6)
	left := 0
	for i := 0; i < 10; i++ {
		if l.leave() {
			left++
		}
	}
	if left != 4 {
		t.Errorf("%d workers left after lowering the limit from 10 to 6, want 4", left)
	}
	l.close()
	l.set(20)
	if started.Load() != 10 {
		t.Errorf("workers started after close")
	}
}

// measuredLoopback interpolates connects/s against connects in flight,
// measured sweeping closed loopback ports (see docs/benchmarks.md).
func measuredLoopback(limit int) float64 {
	pts := [][2]float64{{8, 32200}, {16, 35600}, {32, 42600}, {64, 45300}, {128, 40300}, {256, 33100}, {1024, 21500}, {4096, 25100}}
	x := float64(limit)
	if x <= pts[0][0] {
		return pts[0][1]
	}
	for i := 1; i < len(pts); i++ {
		if x <= pts[i][0] {
			a, b := pts[i-1], pts[i]
			return a[1] + (b[1]-a[1])*(x-a[0])/(b[0]-a[0])
		}
	}
	return pts[len(pts)-1][1]
}
