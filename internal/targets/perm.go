package targets

import (
	"math/bits"
	"math/rand/v2"
)

// maxPairs is the largest index space the walk accepts: 2^48, which covers
// every IPv4 address on every port.
const maxPairs = 1 << 48

// cycle enumerates 0..n-1 in a pseudo-random order by walking the
// multiplicative group of integers modulo a prime p > n: x, x·g, x·g², ...
// with g a generator of the group visits every element of 1..p-1 exactly
// once before coming back to x. Element e stands for index e-1; the p-1-n
// elements that map past n are skipped. State is four integers whatever n is.
type cycle struct {
	n, p, g uint64
	first   uint64
	cur     uint64
	started bool
}

// newCycle picks p as the smallest safe prime (p = 2q+1, q prime) above n, so
// that the group order p-1 = 2q has only the prime factors 2 and q and a
// generator is cheap to test for. The generator and the starting element are
// drawn from rng. n must be in 1..maxPairs.
func newCycle(n uint64, rng *rand.Rand) *cycle {
	p := safePrimeAbove(n)
	q := (p - 1) / 2
	var g uint64
	for {
		g = 2 + rng.Uint64N(p-3) // 2..p-2; 1 and p-1 never generate
		if powMod(g, 2, p) != 1 && powMod(g, q, p) != 1 {
			break
		}
	}
	first := 1 + rng.Uint64N(p-1)
	return &cycle{n: n, p: p, g: g, first: first}
}

// next returns the next index and false once every index has been returned.
func (c *cycle) next() (uint64, bool) {
	for {
		if !c.started {
			c.started = true
			c.cur = c.first
		} else {
			c.cur = mulMod(c.cur, c.g, c.p)
			if c.cur == c.first {
				return 0, false
			}
		}
		if idx := c.cur - 1; idx < c.n {
			return idx, true
		}
	}
}

// safePrimeAbove returns the smallest safe prime p with p > n (p >= 5).
func safePrimeAbove(n uint64) uint64 {
	q := n / 2
	if 2*q+1 <= n {
		q++
	}
	if q < 2 {
		q = 2
	}
	for ; ; q++ {
		if isPrime(q) && isPrime(2*q+1) {
			return 2*q + 1
		}
	}
}

func mulMod(a, b, m uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	return bits.Rem64(hi, lo, m)
}

func powMod(b, e, m uint64) uint64 {
	r := uint64(1) % m
	b %= m
	for e > 0 {
		if e&1 == 1 {
			r = mulMod(r, b, m)
		}
		b = mulMod(b, b, m)
		e >>= 1
	}
	return r
}

var smallPrimes = [...]uint64{2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37}

// isPrime is a deterministic Miller–Rabin test, exact for every uint64
// (the first twelve primes as bases suffice below 3.3·10^24).
func isPrime(n uint64) bool {
	if n < 2 {
		return false
	}
	for _, p := range smallPrimes {
		if n%p == 0 {
			return n == p
		}
	}
	d := n - 1
	s := 0
	for d%2 == 0 {
		d /= 2
		s++
	}
next:
	for _, a := range smallPrimes {
		x := powMod(a, d, n)
		if x == 1 || x == n-1 {
			continue
		}
		for i := 1; i < s; i++ {
			x = mulMod(x, x, n)
			if x == n-1 {
				continue next
			}
		}
		return false
	}
	return true
}
