package targets

import (
	_ "embed"
	"fmt"
	"math/big"
	"net/netip"
	"sync"

	"github.com/llmfence/llmfence/internal/datafile"
)

//go:embed reserved_ranges.yaml
var reservedYAML []byte

// Reserved is one range of the scope guard.
type Reserved struct {
	Prefix string `yaml:"prefix"`
	Name   string `yaml:"name"`
	// Source is the registry record or RFC that reserves the range.
	Source string `yaml:"source"`
	// Why it is left out of scans.
	Why string `yaml:"why"`

	prefix netip.Prefix
}

// Range is the parsed prefix.
func (r Reserved) Range() netip.Prefix { return r.prefix }

// ReservedTable is the embedded scope-guard table.
type ReservedTable struct {
	Version int        `yaml:"version"`
	Ranges  []Reserved `yaml:"ranges"`
}

var loadReserved = sync.OnceValues(func() (*ReservedTable, error) {
	return decodeReserved(reservedYAML)
})

func decodeReserved(data []byte) (*ReservedTable, error) {
	return datafile.Decode("internal/targets/reserved_ranges.yaml", data, (*ReservedTable).check)
}

func (t *ReservedTable) check() error {
	if len(t.Ranges) == 0 {
		return fmt.Errorf("no ranges")
	}
	for i := range t.Ranges {
		r := &t.Ranges[i]
		p, err := netip.ParsePrefix(r.Prefix)
		if err != nil {
			return fmt.Errorf("entry %d: %w", i+1, err)
		}
		if p != p.Masked() {
			return fmt.Errorf("entry %d: %s has host bits set", i+1, r.Prefix)
		}
		if r.Name == "" || r.Source == "" || r.Why == "" {
			return fmt.Errorf("%s needs a name, a source and a reason", r.Prefix)
		}
		for _, loop := range []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.IPv6Loopback()} {
			if p.Contains(loop) {
				return fmt.Errorf("%s would block loopback, where the lab lives", r.Prefix)
			}
		}
		for _, q := range t.Ranges[:i] {
			if q.prefix.Overlaps(p) {
				return fmt.Errorf("%s overlaps %s", r.Prefix, q.Prefix)
			}
		}
		r.prefix = p
	}
	return nil
}

// ReservedRanges returns the embedded scope-guard table
// (reserved_ranges.yaml), checked. The slice is a new copy.
func ReservedRanges() ([]Reserved, error) {
	t, err := loadReserved()
	if err != nil {
		return nil, err
	}
	return append([]Reserved(nil), t.Ranges...), nil
}

// ReservedFor returns the reserved range that contains a, if any.
func ReservedFor(a netip.Addr, table []Reserved) (Reserved, bool) {
	a = a.Unmap()
	for _, r := range table {
		if r.prefix.Contains(a) {
			return r, true
		}
	}
	return Reserved{}, false
}

// BlockedHit is a reserved range that removed addresses from a target set.
type BlockedHit struct {
	Range Reserved
	// Addresses is how many addresses of the targets it removed (counted
	// once per spec batch; a range given twice in one batch counts once).
	Addresses *big.Int
}

// interval of a prefix in the 128-bit space.
func prefixInterval(p netip.Prefix) interval {
	lo := fromAddr(p.Addr())
	host := p.Addr().BitLen() - p.Bits()
	return interval{lo, lo.or(lowOnes(host))}
}

// dropBlocked removes the blocked ranges from ivs (sorted, merged),
// recording what each removed while the set is being counted.
func (s *Set) dropBlocked(ivs []interval) []interval {
	if len(s.blocked) == 0 || len(ivs) == 0 {
		return ivs
	}
	out := subtractIntervals(ivs, s.blockedAll)
	if !s.counting || len(out) == len(ivs) && bigSum(out).Cmp(bigSum(ivs)) == 0 {
		return out
	}
	for i, r := range s.blocked {
		iv := prefixInterval(r.prefix)
		left := subtractIntervals(ivs, []interval{iv})
		removed := new(big.Int).Sub(bigSum(ivs), bigSum(left))
		if removed.Sign() == 0 {
			continue
		}
		if s.hits[i] == nil {
			s.hits[i] = new(big.Int)
		}
		s.hits[i].Add(s.hits[i], removed)
	}
	return out
}

// Blocked returns the reserved ranges that removed addresses from the
// targets, in table order.
func (s *Set) Blocked() []BlockedHit {
	var out []BlockedHit
	for i, r := range s.blocked {
		if n := s.hits[i]; n != nil {
			out = append(out, BlockedHit{Range: r, Addresses: new(big.Int).Set(n)})
		}
	}
	return out
}
