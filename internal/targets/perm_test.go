package targets

import (
	"math/rand/v2"
	"slices"
	"testing"
)

func trialPrime(n uint64) bool {
	if n < 2 {
		return false
	}
	for d := uint64(2); d*d <= n; d++ {
		if n%d == 0 {
			return false
		}
	}
	return true
}

func TestIsPrimeMatchesTrialDivision(t *testing.T) {
	for n := uint64(0); n < 20000; n++ {
		if got, want := isPrime(n), trialPrime(n); got != want {
			t.Fatalf("isPrime(%d) = %v, want %v", n, got, want)
		}
	}
	// Large known primes and composites, including strong pseudoprimes to
	// small bases.
	tests := []struct {
		n    uint64
		want bool
	}{
		{1<<61 - 1, true},
		{1<<48 + 21, true},
		{1<<48 + 1, false},
		{3215031751, false},          // strong pseudoprime to bases 2, 3, 5, 7
		{3825123056546413051, false}, // strong pseudoprime to bases 2..23
		{18446744073709551557, true}, // largest prime below 2^64
	}
	for _, tt := range tests {
		if got := isPrime(tt.n); got != tt.want {
			t.Errorf("isPrime(%d) = %v, want %v", tt.n, got, tt.want)
		}
	}
}

func TestSafePrimeAbove(t *testing.T) {
	for _, n := range []uint64{1, 2, 3, 4, 5, 6, 10, 11, 22, 23, 100, 1 << 20, 1 << 32, maxPairs} {
		p := safePrimeAbove(n)
		if p <= n || !isPrime(p) || !isPrime((p-1)/2) {
			t.Errorf("safePrimeAbove(%d) = %d: not a safe prime above n", n, p)
		}
		// No smaller safe prime above n.
		if n < 1<<20 {
			for c := n + 1; c < p; c++ {
				if isPrime(c) && isPrime((c-1)/2) && c >= 5 {
					t.Errorf("safePrimeAbove(%d) = %d, but %d is a smaller one", n, p, c)
				}
			}
		}
	}
}

// TestCycleVisitsEachIndexOnce checks exhaustively that the permutation is a
// bijection on 0..n-1 for small n, including 1, 2, primes, primes minus one,
// safe primes and one below them (where p-1 == n exactly).
func TestCycleVisitsEachIndexOnce(t *testing.T) {
	var sizes []uint64
	for n := uint64(1); n <= 130; n++ {
		sizes = append(sizes, n)
	}
	sizes = append(sizes, 1000, 1009, 1008, 4093, 4094, 65536, 65537, 100003)
	for _, n := range sizes {
		for seed := uint64(1); seed <= 3; seed++ {
			c := newCycle(n, rand.New(rand.NewPCG(seed, n)))
			seen := make([]bool, n)
			var count uint64
			for {
				i, ok := c.next()
				if !ok {
					break
				}
				if i >= n {
					t.Fatalf("n=%d seed=%d: index %d out of range", n, seed, i)
				}
				if seen[i] {
					t.Fatalf("n=%d seed=%d: index %d visited twice", n, seed, i)
				}
				seen[i] = true
				count++
			}
			if count != n {
				t.Fatalf("n=%d seed=%d: visited %d indices, want %d", n, seed, count, n)
			}
		}
	}
}

func TestCycleGeneratorIsPrimitiveRoot(t *testing.T) {
	for _, n := range []uint64{1, 2, 7, 100, 1 << 40} {
		for seed := uint64(0); seed < 20; seed++ {
			c := newCycle(n, rand.New(rand.NewPCG(seed, 7)))
			q := (c.p - 1) / 2
			if powMod(c.g, 2, c.p) == 1 || powMod(c.g, q, c.p) == 1 {
				t.Fatalf("n=%d: g=%d does not generate the group mod %d", n, c.g, c.p)
			}
			if c.first < 1 || c.first >= c.p {
				t.Fatalf("n=%d: start %d outside 1..p-1", n, c.first)
			}
		}
	}
}

func firstIndices(n, seed uint64, k int) []uint64 {
	c := newCycle(n, rand.New(rand.NewPCG(seed, 0)))
	var out []uint64
	for len(out) < k {
		i, ok := c.next()
		if !ok {
			break
		}
		out = append(out, i)
	}
	return out
}

func TestCycleSeeded(t *testing.T) {
	a := firstIndices(1<<30, 42, 50)
	b := firstIndices(1<<30, 42, 50)
	if !slices.Equal(a, b) {
		t.Fatal("same seed gave different orders")
	}
	c := firstIndices(1<<30, 43, 50)
	if slices.Equal(a, c) {
		t.Fatal("different seeds gave the same order")
	}
	// The order is not the identity or a plain stride.
	if slices.IsSorted(a) {
		t.Fatalf("order looks sequential: %v", a[:10])
	}
}

func TestCycleLargestSize(t *testing.T) {
	c := newCycle(maxPairs, rand.New(rand.NewPCG(1, 2)))
	if c.p <= maxPairs {
		t.Fatalf("p = %d, want > 2^48", c.p)
	}
	for k := 0; k < 1000; k++ {
		i, ok := c.next()
		if !ok || i >= maxPairs {
			t.Fatalf("next() = %d, %v", i, ok)
		}
	}
}
