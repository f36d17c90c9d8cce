package scanrun

import (
	"context"
	"errors"
	"net/netip"

	"github.com/llmfence/llmfence/internal/store"
	"github.com/llmfence/llmfence/internal/targets"
)

// ErrScopeUnknown: the run's scope cannot be rebuilt (its targets came
// from files or standard input), so nothing can be said about what it
// covered.
var ErrScopeUnknown = errors.New("the run's scope is not known (targets from files)")

// Coverage says which pairs a run's scope covers, rebuilding its target
// set from the definition stored with the run. It is the inventory's
// store.ApplyOptions.Coverage.
func Coverage(ctx context.Context, run store.Run, pairs []netip.AddrPort) ([]bool, error) {
	if run.Spec == "" {
		return nil, ErrScopeUnknown
	}
	spec, err := DecodeSpec(run.Spec)
	if err != nil {
		return nil, err
	}
	set, err := BuildSet(ctx, spec, nil)
	if err != nil {
		return nil, err
	}
	defer set.Close()
	return set.Contains(ctx, pairs)
}

// BuildSet rebuilds a spec's target set (same seed, same order).
func BuildSet(ctx context.Context, spec Spec, res targets.Resolver) (*targets.Set, error) {
	s := &Session{Options: spec.Options, Resolver: res}
	return s.Prepare(ctx, spec.Targets)
}
