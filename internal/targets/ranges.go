package targets

import (
	"context"
	"net/netip"
	"slices"
)

// AddrRange is a run of consecutive addresses crossed with ports: one
// block of the walk.
type AddrRange struct {
	First, Last netip.Addr
	Ports       []uint16
}

// String is the range as a spec: an address, a CIDR when the range is
// exactly one, or first-last.
func (r AddrRange) String() string {
	if r.First == r.Last {
		return r.First.String()
	}
	for bits := 0; bits <= r.First.BitLen(); bits++ {
		p := netip.PrefixFrom(r.First, bits)
		if p.Masked().Addr() != r.First {
			continue
		}
		if iv := prefixInterval(p); iv.hi.cmp(fromAddr(r.Last)) == 0 {
			return p.String()
		}
	}
	return r.First.String() + "-" + r.Last.String()
}

// Ranges calls fn with every address range of the set and the ports it is
// crossed with, batch by batch, in address order within a batch. It sends
// nothing; host names in inputs larger than one batch are resolved again,
// as Walk does.
func (s *Set) Ranges(ctx context.Context, fn func(AddrRange) error) error {
	each := func(b *batch) error {
		for _, blk := range b.blocks {
			for _, iv := range blk.ivs {
				if err := ctx.Err(); err != nil {
					return err
				}
				if err := fn(AddrRange{First: iv.lo.addr(), Last: iv.hi.addr(), Ports: slices.Clone(blk.ports)}); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if s.only != nil {
		return each(s.only)
	}
	return s.batchesOf(ctx, each)
}
