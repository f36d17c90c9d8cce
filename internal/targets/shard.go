package targets

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
)

// # Shards
//
// A walk can be split into n shards, as ZMap splits its scans: the cyclic
// group walk visits x·g^k for k = 0, 1, …, p-2, and shard i of n takes the
// exponents k ≡ i (mod n): it starts at x·g^i and steps by g^n. The shards
// together visit every index exactly once, each in the same pseudo-random
// order the whole walk would use, and each needs only the seed, i and n:
// workers on different machines agree on the split without talking to each
// other. Every batch of a large input is split the same way.

// ErrBadShard: a shard number outside 0..n-1, or n < 1.
var ErrBadShard = errors.New("invalid shard")

// shardCycle walks the exponents k ≡ shard (mod shards) of a cycle.
type shardCycle struct {
	n, p     uint64
	cur      uint64
	step     uint64 // g^shards mod p
	left     uint64 // group elements still to visit in this shard
	started  bool
	firstElt uint64
}

func newShardCycle(c *cycle, shard, shards uint64) *shardCycle {
	order := c.p - 1 // elements in the group
	sc := &shardCycle{n: c.n, p: c.p, step: powMod(c.g, shards, c.p)}
	if shard < order {
		sc.left = (order - shard + shards - 1) / shards
	}
	sc.firstElt = mulMod(c.first, powMod(c.g, shard, c.p), c.p)
	return sc
}

// next returns the next index of the shard, false when it is exhausted.
func (sc *shardCycle) next() (uint64, bool) {
	for sc.left > 0 {
		if !sc.started {
			sc.started = true
			sc.cur = sc.firstElt
		} else {
			sc.cur = mulMod(sc.cur, sc.step, sc.p)
		}
		sc.left--
		if idx := sc.cur - 1; idx < sc.n {
			return idx, true
		}
	}
	return 0, false
}

// WalkShard is Walk restricted to shard `shard` of `shards` (0-based): the
// shards of one Set (same seed and input) partition the pairs Walk visits,
// every pair in exactly one shard. WalkShard(ctx, 0, 1, fn) is Walk.
func (s *Set) WalkShard(ctx context.Context, shard, shards uint64, fn func(Target) error) error {
	if shards < 1 || shard >= shards {
		return fmt.Errorf("shard %d of %d: %w", shard, shards, ErrBadShard)
	}
	if s.closed {
		return errors.New("target set is closed")
	}
	walk := func(b *batch, idx uint64) error {
		if b.total == 0 {
			return nil
		}
		c := newCycle(b.total, rand.New(rand.NewPCG(s.seed, idx)))
		sc := newShardCycle(c, shard, shards)
		done := ctx.Done()
		for {
			i, ok := sc.next()
			if !ok {
				return nil
			}
			select {
			case <-done:
				return ctx.Err()
			default:
			}
			if err := fn(b.target(i)); err != nil {
				return err
			}
		}
	}
	if s.only != nil {
		return walk(s.only, 0)
	}
	idx := uint64(0)
	return s.batchesOf(ctx, func(b *batch) error {
		err := walk(b, idx)
		idx++
		return err
	})
}

// ShardCount counts the pairs shard `shard` of `shards` visits, by walking
// the shard's group elements without producing targets (p/shards steps per
// batch; cheap next to scanning them).
func (s *Set) ShardCount(ctx context.Context, shard, shards uint64) (uint64, error) {
	if shards == 1 {
		return s.count, nil
	}
	var n uint64
	err := s.WalkShard(ctx, shard, shards, func(Target) error { n++; return nil })
	return n, err
}
