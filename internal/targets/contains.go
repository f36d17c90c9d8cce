package targets

import (
	"context"
	"net/netip"
	"slices"
	"sort"
)

// Contains reports, for each pair, whether Walk would visit it: whether the
// set covers it. It reads the input once (batch by batch, as Walk does), so
// it costs one pass over the input plus a binary search per pair and
// batch. The inventory uses it to decide which known services a completed
// scan should have seen.
func (s *Set) Contains(ctx context.Context, pairs []netip.AddrPort) ([]bool, error) {
	out := make([]bool, len(pairs))
	if len(pairs) == 0 {
		return out, nil
	}
	check := func(b *batch) {
		for i, ap := range pairs {
			if !out[i] && b.contains(fromAddr(ap.Addr().Unmap()), ap.Port()) {
				out[i] = true
			}
		}
	}
	if s.only != nil {
		check(s.only)
		return out, nil
	}
	err := s.batchesOf(ctx, func(b *batch) error {
		check(b)
		return ctx.Err()
	})
	return out, err
}

func (b *batch) contains(x u128, port uint16) bool {
	for i := range b.blocks {
		blk := &b.blocks[i]
		if !slices.Contains(blk.ports, port) {
			continue
		}
		k := sort.Search(len(blk.ivs), func(k int) bool { return blk.ivs[k].hi.cmp(x) >= 0 })
		if k < len(blk.ivs) && blk.ivs[k].lo.cmp(x) <= 0 {
			return true
		}
	}
	return false
}
