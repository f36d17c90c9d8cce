package targets

import (
	"math/rand/v2"
	"testing"
)

// TestIntervalAlgebra checks subtractIntervals and unionIntervals against
// a bitmap over random merged lists, short against long and long against
// short (the binary search in subtract skips whole runs of b).
func TestIntervalAlgebra(t *testing.T) {
	const space = 300
	rng := rand.New(rand.NewPCG(1, 2))
	random := func(n int) ([]interval, [space]bool) {
		var ivs []interval
		var bits [space]bool
		for i := 0; i < n; i++ {
			lo := rng.IntN(space)
			hi := min(space-1, lo+rng.IntN(12))
			ivs = append(ivs, interval{u128{0, uint64(lo)}, u128{0, uint64(hi)}})
			for x := lo; x <= hi; x++ {
				bits[x] = true
			}
		}
		return mergeIntervals(ivs), bits
	}
	toBits := func(ivs []interval) (b [space]bool, sorted bool) {
		sorted = true
		for i, iv := range ivs {
			if i > 0 && iv.lo.cmp(ivs[i-1].hi.inc()) <= 0 {
				sorted = false // overlapping, touching or out of order
			}
			for x := iv.lo.lo; x <= iv.hi.lo; x++ {
				b[x] = true
			}
		}
		return b, sorted
	}
	for trial := 0; trial < 2000; trial++ {
		a, ab := random(rng.IntN(40))
		b, bb := random(rng.IntN(40))
		sub, ok := toBits(subtractIntervals(a, b))
		if !ok {
			t.Fatalf("trial %d: a − b not sorted and merged", trial)
		}
		uni, ok := toBits(unionIntervals(a, b))
		if !ok {
			t.Fatalf("trial %d: a ∪ b not sorted and merged", trial)
		}
		for x := 0; x < space; x++ {
			if sub[x] != (ab[x] && !bb[x]) {
				t.Fatalf("trial %d: %d in a − b = %v, want %v", trial, x, sub[x], ab[x] && !bb[x])
			}
			if uni[x] != (ab[x] || bb[x]) {
				t.Fatalf("trial %d: %d in a ∪ b = %v, want %v", trial, x, uni[x], ab[x] || bb[x])
			}
		}
	}
}
