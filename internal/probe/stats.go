package probe

import (
	"math"
	"sort"
)

// z95 is the normal quantile of a two-sided 95 % interval.
const z95 = 1.959963984540054

// Wilson is the Wilson score interval of k successes in n trials (95 %).
// It is [0, 1] for n = 0.
func Wilson(k, n int) (lo, hi float64) {
	if n <= 0 {
		return 0, 1
	}
	p := float64(k) / float64(n)
	nf := float64(n)
	z2 := z95 * z95
	den := 1 + z2/nf
	mid := (p + z2/(2*nf)) / den
	half := z95 * math.Sqrt(p*(1-p)/nf+z2/(4*nf*nf)) / den
	return math.Max(0, mid-half), math.Min(1, mid+half)
}

// Newcombe is the 95 % interval of the difference of two proportions
// k1/n1 - k2/n2 (Newcombe's method 10, from two Wilson intervals).
func Newcombe(k1, n1, k2, n2 int) (lo, hi float64) {
	p1, p2 := ratio(k1, n1), ratio(k2, n2)
	l1, u1 := Wilson(k1, n1)
	l2, u2 := Wilson(k2, n2)
	d := p1 - p2
	lo = d - math.Sqrt((p1-l1)*(p1-l1)+(u2-p2)*(u2-p2))
	hi = d + math.Sqrt((u1-p1)*(u1-p1)+(p2-l2)*(p2-l2))
	return math.Max(-1, lo), math.Min(1, hi)
}

func ratio(k, n int) float64 {
	if n <= 0 {
		return 0
	}
	return float64(k) / float64(n)
}

// MannWhitney tests whether the values of x tend to be larger than those
// of y (one-sided). It returns the p-value, exact by enumeration of the
// rank sums for small samples (n·m ≤ 2000 and no more than 60 values) and
// from the normal approximation with tie correction otherwise, and Cliff's
// delta, the effect size P(x > y) - P(x < y) in [-1, 1].
func MannWhitney(x, y []float64) (p, delta float64) {
	n, m := len(x), len(y)
	if n == 0 || m == 0 {
		return 1, 0
	}
	// U counts pairs with x > y, ties as one half.
	var u float64
	gt, lt := 0, 0
	for _, a := range x {
		for _, b := range y {
			switch {
			case a > b:
				u++
				gt++
			case a == b:
				u += 0.5
			default:
				lt++
			}
		}
	}
	delta = float64(gt-lt) / float64(n*m)
	if n*m <= 2000 && n+m <= 60 {
		return exactMW(x, y, u), delta
	}
	// Normal approximation with tie correction.
	all := append(append([]float64(nil), x...), y...)
	sort.Float64s(all)
	var tie float64
	for i := 0; i < len(all); {
		j := i
		for j < len(all) && all[j] == all[i] {
			j++
		}
		t := float64(j - i)
		tie += t*t*t - t
		i = j
	}
	N := float64(n + m)
	mu := float64(n*m) / 2
	sigma := math.Sqrt(float64(n*m) / 12 * ((N + 1) - tie/(N*(N-1))))
	if sigma == 0 {
		return 1, delta
	}
	z := (u - mu - 0.5) / sigma
	return 0.5 * math.Erfc(z/math.Sqrt2), delta
}

// exactMW is P(U >= u) under the null, from the exact distribution of the
// rank sum of x over all ways to choose len(x) ranks from the pooled,
// mid-ranked sample.
func exactMW(x, y []float64, u float64) float64 {
	n, m := len(x), len(y)
	type pv struct {
		v float64
		x bool
	}
	all := make([]pv, 0, n+m)
	for _, a := range x {
		all = append(all, pv{a, true})
	}
	for _, b := range y {
		all = append(all, pv{b, false})
	}
	sort.Slice(all, func(i, j int) bool { return all[i].v < all[j].v })
	// Twice the mid-ranks, so they stay integers.
	ranks := make([]int, len(all))
	for i := 0; i < len(all); {
		j := i
		for j < len(all) && all[j].v == all[i].v {
			j++
		}
		for k := i; k < j; k++ {
			ranks[k] = i + 1 + j // 2 * ((i+1 + j) / 2)
		}
		i = j
	}
	// U = R1 - n(n+1)/2, with R1 the rank sum of x: compare doubled sums.
	target := int(math.Round(2*u)) + n*(n+1)
	maxSum := 0
	for _, r := range ranks {
		maxSum += r
	}
	// ways[k][s]: number of k-subsets with doubled rank sum s.
	ways := make([][]float64, n+1)
	for k := range ways {
		ways[k] = make([]float64, maxSum+1)
	}
	ways[0][0] = 1
	for _, r := range ranks {
		for k := n; k >= 1; k-- {
			prev, cur := ways[k-1], ways[k]
			for s := maxSum; s >= r; s-- {
				cur[s] += prev[s-r]
			}
		}
	}
	var total, tail float64
	for s, w := range ways[n] {
		total += w
		if s >= target {
			tail += w
		}
	}
	if total == 0 {
		return 1
	}
	return tail / total
}

// FisherGreater is the one-sided p-value of Fisher's exact test that the
// success rate k1/n1 is larger than k2/n2.
func FisherGreater(k1, n1, k2, n2 int) float64 {
	if n1 <= 0 || n2 <= 0 {
		return 1
	}
	K := k1 + k2
	N := n1 + n2
	p := 0.0
	for k := k1; k <= min(K, n1); k++ {
		p += math.Exp(logChoose(n1, k) + logChoose(n2, K-k) - logChoose(N, K))
	}
	return math.Min(1, p)
}

func logChoose(n, k int) float64 {
	if k < 0 || k > n {
		return math.Inf(-1)
	}
	a, _ := math.Lgamma(float64(n + 1))
	b, _ := math.Lgamma(float64(k + 1))
	c, _ := math.Lgamma(float64(n - k + 1))
	return a - b - c
}

func mean(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	var s float64
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}

// round3 keeps three decimals, so reports do not show float noise.
func round3(x float64) float64 { return math.Round(x*1000) / 1000 }
