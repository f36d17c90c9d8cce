package targets

import (
	"encoding/binary"
	"math/big"
	"math/bits"
	"net/netip"
	"slices"
	"sort"
)

// u128 is an address in the single 128-bit space the package works in: IPv6
// addresses as they are, IPv4 addresses in their IPv4-mapped form
// (::ffff:a.b.c.d), so one sorted interval list can hold both families.
type u128 struct{ hi, lo uint64 }

func fromAddr(a netip.Addr) u128 {
	b := a.As16()
	return u128{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])}
}

// addr converts back; IPv4-mapped addresses come back as plain IPv4.
func (x u128) addr() netip.Addr {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], x.hi)
	binary.BigEndian.PutUint64(b[8:], x.lo)
	return netip.AddrFrom16(b).Unmap()
}

func (x u128) cmp(y u128) int {
	switch {
	case x.hi < y.hi:
		return -1
	case x.hi > y.hi:
		return 1
	case x.lo < y.lo:
		return -1
	case x.lo > y.lo:
		return 1
	}
	return 0
}

func (x u128) add64(n uint64) u128 {
	lo, c := bits.Add64(x.lo, n, 0)
	return u128{x.hi + c, lo}
}

func (x u128) sub(y u128) u128 {
	lo, b := bits.Sub64(x.lo, y.lo, 0)
	hi, _ := bits.Sub64(x.hi, y.hi, b)
	return u128{hi, lo}
}

func (x u128) or(y u128) u128 { return u128{x.hi | y.hi, x.lo | y.lo} }

func (x u128) inc() u128 { return x.add64(1) }

func (x u128) dec() u128 { return x.sub(u128{0, 1}) }

func (x u128) isMax() bool { return x.hi == ^uint64(0) && x.lo == ^uint64(0) }

func (x u128) big() *big.Int {
	v := new(big.Int).SetUint64(x.hi)
	v.Lsh(v, 64)
	return v.Or(v, new(big.Int).SetUint64(x.lo))
}

// lowOnes has the n low bits set (0 <= n <= 128).
func lowOnes(n int) u128 {
	switch {
	case n <= 0:
		return u128{}
	case n < 64:
		return u128{0, 1<<uint(n) - 1}
	case n < 128:
		return u128{1<<uint(n-64) - 1, ^uint64(0)}
	}
	return u128{^uint64(0), ^uint64(0)}
}

// interval is an inclusive range of addresses, lo <= hi.
type interval struct{ lo, hi u128 }

// size returns the number of addresses in iv if it is at most maxPairs;
// ok is false when it is larger.
func (iv interval) size() (n uint64, ok bool) {
	d := iv.hi.sub(iv.lo)
	if d.hi != 0 || d.lo >= maxPairs {
		return 0, false
	}
	return d.lo + 1, true
}

// bigSize is the exact number of addresses in iv.
func (iv interval) bigSize() *big.Int {
	v := iv.hi.sub(iv.lo).big()
	return v.Add(v, big.NewInt(1))
}

// mergeIntervals sorts ivs and joins overlapping and adjacent intervals, in
// place. The result shares ivs' backing array.
func mergeIntervals(ivs []interval) []interval {
	if len(ivs) < 2 {
		return ivs
	}
	slices.SortFunc(ivs, func(a, b interval) int { return a.lo.cmp(b.lo) })
	out := ivs[:1]
	for _, iv := range ivs[1:] {
		last := &out[len(out)-1]
		if last.hi.isMax() || iv.lo.cmp(last.hi.inc()) <= 0 {
			if iv.hi.cmp(last.hi) > 0 {
				last.hi = iv.hi
			}
			continue
		}
		out = append(out, iv)
	}
	return out
}

// subtractIntervals returns a minus b; both must be sorted and merged. The
// result is a new slice (nil when empty).
func subtractIntervals(a, b []interval) []interval {
	if len(b) == 0 {
		return slices.Clone(a)
	}
	var out []interval
	j := 0
	for _, cur := range a {
		// Skip the b intervals wholly below cur by binary search, so a
		// short a against a long b (a batch against every range seen
		// before it) costs |a|·log|b|, not |b|.
		j += sort.Search(len(b)-j, func(k int) bool { return b[j+k].hi.cmp(cur.lo) >= 0 })
		keep := true
		for k := j; k < len(b) && b[k].lo.cmp(cur.hi) <= 0; k++ {
			if b[k].lo.cmp(cur.lo) > 0 {
				out = append(out, interval{cur.lo, b[k].lo.dec()})
			}
			if b[k].hi.cmp(cur.hi) >= 0 {
				keep = false
				break
			}
			cur.lo = b[k].hi.inc()
		}
		if keep {
			out = append(out, cur)
		}
	}
	return out
}

// unionIntervals returns the union of a and b, both sorted and merged, as a
// new sorted, merged slice.
func unionIntervals(a, b []interval) []interval {
	out := make([]interval, 0, len(a)+len(b))
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		var next interval
		if j >= len(b) || (i < len(a) && a[i].lo.cmp(b[j].lo) <= 0) {
			next, i = a[i], i+1
		} else {
			next, j = b[j], j+1
		}
		if n := len(out); n > 0 {
			last := &out[n-1]
			if last.hi.isMax() || next.lo.cmp(last.hi.inc()) <= 0 {
				if next.hi.cmp(last.hi) > 0 {
					last.hi = next.hi
				}
				continue
			}
		}
		out = append(out, next)
	}
	return out
}
