package scanrun

import (
	"context"
	"math"
	"time"

	"github.com/llmfence/llmfence/internal/targets"
)

// Plan is what a scan would cover and how long its connect sweep would
// take, worked out without sending a packet or touching the store (the
// dry run of `llmfence scan --list`, and the basis of its confirmation).
type Plan struct {
	// Pairs is the number of (address, port) pairs the scan would try.
	Pairs uint64 `json:"pairs"`
	// Ranges are the address ranges with their ports, at most
	// Options.MaxRanges of them; MoreRanges counts the rest.
	Ranges     []targets.AddrRange `json:"ranges"`
	MoreRanges int                 `json:"more_ranges,omitempty"`
	// Blocked are the reserved ranges the scope guard left out.
	Blocked []targets.BlockedHit `json:"blocked,omitempty"`
	// Seed is the seed of the visiting order.
	Seed uint64 `json:"seed"`
	// Fastest is the sweep's duration when every pair answers at once:
	// Pairs at Options.Rate (0 when the rate is unlimited).
	Fastest time.Duration `json:"fastest"`
	// Slowest is its duration when nothing answers and every connect waits
	// out Options.Timeout, Options.Retries+1 times, Options.Concurrency at
	// a time (and no faster than Fastest). Fingerprinting the services
	// found adds at most Options.TargetBudget each, Options.Fingerprints at
	// a time, alongside the sweep.
	Slowest time.Duration `json:"slowest"`
}

// PlanRanges is how many ranges Plan lists.
const PlanRanges = 1000

// Plan validates the request and works out what it would scan: Prepare,
// then the set's ranges, the ranges the scope guard removed, and the
// duration bounds. Nothing is sent and the store is not used (host names
// are resolved unless Options.NoDNS).
func (s *Session) Plan(ctx context.Context, t Targets) (Plan, error) {
	set, err := s.Prepare(ctx, t)
	if err != nil {
		return Plan{}, err
	}
	defer set.Close()
	p := Plan{Pairs: set.Count(), Blocked: set.Blocked(), Seed: set.Seed()}
	err = set.Ranges(ctx, func(r targets.AddrRange) error {
		if len(p.Ranges) >= PlanRanges {
			p.MoreRanges++
			return nil
		}
		p.Ranges = append(p.Ranges, r)
		return nil
	})
	if err != nil {
		return Plan{}, err
	}
	p.Fastest, p.Slowest = Estimate(p.Pairs, s.Options)
	return p, nil
}

// Estimate bounds the connect sweep of pairs under o; see Plan.
func Estimate(pairs uint64, o Options) (fastest, slowest time.Duration) {
	dur := func(sec float64) time.Duration {
		if sec >= float64(math.MaxInt64/int64(time.Second)) {
			return time.Duration(math.MaxInt64)
		}
		return time.Duration(sec * float64(time.Second)).Round(time.Second)
	}
	if o.Rate > 0 {
		fastest = dur(float64(pairs) / o.Rate)
	}
	conc := max(o.Concurrency, 1)
	waves := math.Ceil(float64(pairs) / float64(conc))
	slowest = dur(waves * o.Timeout.Seconds() * float64(o.Retries+1))
	return fastest, max(fastest, slowest)
}
