package targets

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"
)

// TestShardsPartitionTheWalk: for several sizes and shard counts, the
// shards of a set visit exactly the pairs Walk visits, each once.
func TestShardsPartitionTheWalk(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		specs  []string
		ports  []uint16
		shards []uint64
		batch  int
	}{
		{[]string{"10.0.0.0/24"}, []uint16{11434, 8000}, []uint64{1, 2, 3, 7, 64}, 0},
		{[]string{"10.1.0.1"}, []uint16{80}, []uint64{1, 2, 5}, 0},
		{[]string{"10.2.0.0/28", "10.3.0.0/29", "10.4.0.7:443"}, []uint16{11434}, []uint64{2, 3, 1000}, 1},
	} {
		set, err := NewSet(ctx, Options{Ports: tc.ports, Seed: 9, BatchSize: tc.batch}, tc.specs, nil, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		var full []string
		set.Walk(ctx, func(tg Target) error { full = append(full, key(tg)); return nil })
		for _, n := range tc.shards {
			seen := map[string]int{}
			var sum uint64
			for i := uint64(0); i < n; i++ {
				c, err := set.ShardCount(ctx, i, n)
				if err != nil {
					t.Fatal(err)
				}
				sum += c
				if err := set.WalkShard(ctx, i, n, func(tg Target) error { seen[key(tg)]++; return nil }); err != nil {
					t.Fatal(err)
				}
			}
			if sum != set.Count() || len(seen) != len(full) {
				t.Errorf("%v in %d shards: %d pairs counted, %d distinct seen, want %d", tc.specs, n, sum, len(seen), len(full))
			}
			for _, k := range full {
				if seen[k] != 1 {
					t.Errorf("%v in %d shards: %s visited %d times", tc.specs, n, k, seen[k])
				}
			}
		}
	}
}

// TestShardOrderFollowsTheGroup: shard i of n visits the i-th, (i+n)-th,
// … elements of the whole walk's group sequence, in that order.
func TestShardOrderFollowsTheGroup(t *testing.T) {
	for _, total := range []uint64{1, 2, 10, 1000, 65537} {
		c := newCycle(total, rand.New(rand.NewPCG(3, 0)))
		// Group sequence including elements that map past n.
		var seq []uint64
		x := c.first
		for k := uint64(0); k < c.p-1; k++ {
			seq = append(seq, x)
			x = mulMod(x, c.g, c.p)
		}
		for _, n := range []uint64{1, 3, 16} {
			for i := uint64(0); i < n; i++ {
				var want []uint64
				for k := i; k < uint64(len(seq)); k += n {
					if seq[k]-1 < total {
						want = append(want, seq[k]-1)
					}
				}
				sc := newShardCycle(newCycle(total, rand.New(rand.NewPCG(3, 0))), i, n)
				var got []uint64
				for {
					v, ok := sc.next()
					if !ok {
						break
					}
					got = append(got, v)
				}
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Fatalf("total %d shard %d/%d: order differs from the group walk", total, i, n)
				}
			}
		}
	}
}

func TestWalkShardBadArgs(t *testing.T) {
	set, err := NewSet(context.Background(), Options{Ports: []uint16{1}}, []string{"10.0.0.1"}, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range [][2]uint64{{0, 0}, {3, 3}, {5, 2}} {
		if err := set.WalkShard(context.Background(), c[0], c[1], func(Target) error { return nil }); err == nil {
			t.Errorf("WalkShard(%d, %d) accepted", c[0], c[1])
		}
	}
}

func key(t Target) string { return netip.AddrPortFrom(t.Addr, t.Port).String() }

func TestContains(t *testing.T) {
	ctx := context.Background()
	for _, batch := range []int{0, 1} {
		set, err := NewSet(ctx, Options{Ports: []uint16{11434, 8000}, Seed: 1, BatchSize: batch},
			[]string{"10.0.0.0/30", "10.9.0.1:443", "::1"}, nil, []string{"10.0.0.2", "10.0.0.3:8000"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		pairs := []string{"10.0.0.1:11434", "10.0.0.2:11434", "10.0.0.3:11434", "10.0.0.3:8000", "10.9.0.1:443",
			"10.9.0.1:11434", "[::1]:8000", "10.0.0.4:11434"}
		want := []bool{true, false, true, false, true, false, true, false}
		var aps []netip.AddrPort
		for _, p := range pairs {
			aps = append(aps, netip.MustParseAddrPort(p))
		}
		got, err := set.Contains(ctx, aps)
		if err != nil {
			t.Fatal(err)
		}
		for i := range pairs {
			if got[i] != want[i] {
				t.Errorf("batch %d: Contains(%s) = %v, want %v", batch, pairs[i], got[i], want[i])
			}
		}
	}
}
