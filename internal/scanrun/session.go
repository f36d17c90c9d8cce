package scanrun

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/llmfence/llmfence/internal/scan"
	"github.com/llmfence/llmfence/internal/service"
	"github.com/llmfence/llmfence/internal/store"
	"github.com/llmfence/llmfence/internal/targets"
	"github.com/llmfence/llmfence/internal/version"
)

// Session runs scans into one store.
type Session struct {
	Store   store.Store
	Options Options
	Logger  *slog.Logger
	// Args is the command line recorded with the run (the store masks
	// credentials in it).
	Args []string
	// Started, if set, is called once the run is recorded and the target
	// set counted, before the first packet.
	Started func(run store.Run, pairs uint64)
	// Guarded, if set, is told which reserved ranges the scope guard left
	// out of the targets (called only when it left some out).
	Guarded func([]targets.BlockedHit)
	// Progress, if set, receives scan progress snapshots.
	Progress func(scan.Stats)
	// OnService, if set, sees every service as it is found, before it is
	// saved. An error stops the scan (the run fails).
	OnService func(*service.Service) error
	// Resolver resolves host names in targets; nil means net.DefaultResolver.
	Resolver targets.Resolver
	// Prober and Annotator replace the default fingerprinter and judge.
	Prober    scan.Prober
	Annotator scan.Annotator
	// Dial replaces the TCP dialer (tests).
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// Summary is what a run did.
type Summary struct {
	// Run is the run as recorded when it ended (zero if it was never
	// created: the request was refused before).
	Run   store.Run
	Stats scan.Stats
	// Saved is how many services were saved to the store.
	Saved int
	// Worst is the highest risk of any service found.
	Worst service.Severity
	// FailOnTripped is true when Options.FailOn is set and Worst reaches it.
	FailOnTripped bool
}

// InterruptedError says a run stopped before the end because it was
// cancelled (a signal, or another process marked the run interrupted). It
// unwraps to context.Canceled. Everything found before is saved.
type InterruptedError struct {
	RunID string
	Saved int
	// Cause is why: the context's cause ("interrupt signal received",
	// "terminated signal received") or ErrMarkedInterrupted.
	Cause error
}

// ErrMarkedInterrupted: another process marked the run interrupted (its
// heartbeat was judged stale), so this one stopped.
var ErrMarkedInterrupted = errors.New("the run was marked interrupted by another process")

func (e *InterruptedError) Error() string {
	why := "interrupted"
	switch {
	case errors.Is(e.Cause, ErrMarkedInterrupted):
		why = "stopped: " + ErrMarkedInterrupted.Error()
	case e.Cause != nil && e.Cause.Error() == "interrupt signal received":
		why = "interrupted (Ctrl-C)"
	case e.Cause != nil && e.Cause.Error() == "terminated signal received":
		why = "interrupted (SIGTERM)"
	}
	return fmt.Sprintf("scan %s; run %s kept as interrupted with the %d services found so far (llmfence runs, llmfence hosts)", why, e.RunID, e.Saved)
}

func (e *InterruptedError) Unwrap() error { return context.Canceled }

func (s *Session) log() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}

// Prepare validates the options and builds the target set: every target
// is checked (and host names resolved, unless Options.NoDNS) before
// anything is sent, and the reserved ranges are left out unless
// Options.AllowReserved. A set with no pair left (an empty file, exclusions
// or reserved ranges that remove everything) is a *UsageError. The caller
// closes the set.
func (s *Session) Prepare(ctx context.Context, t Targets) (*targets.Set, error) {
	if err := s.Options.Validate(); err != nil {
		return nil, err
	}
	if t.Empty() {
		return nil, &UsageError{Err: errors.New("no targets: give addresses, CIDRs, ranges, host names or URLs, or -iL FILE")}
	}
	ports, _ := targets.ParsePorts(s.Options.Ports)
	var res targets.Resolver = s.Resolver
	switch {
	case s.Options.NoDNS:
		res = noDNS{}
	case res == nil:
		res = net.DefaultResolver
	}
	var blocked []targets.Reserved
	if !s.Options.AllowReserved {
		var err error
		if blocked, err = targets.ReservedRanges(); err != nil {
			return nil, err
		}
	}
	set, err := targets.NewSet(ctx, targets.Options{Ports: ports, Seed: s.Options.Seed, Resolver: res, Stdin: t.Stdin,
		Logger: s.Logger, Blocked: blocked}, t.Include, t.InputLists, t.Exclude, t.ExcludeFiles)
	if err != nil {
		if ctx.Err() != nil {
			return nil, err
		}
		if errors.Is(err, errNoDNS) {
			return nil, &UsageError{Flag: "--no-dns", Err: err}
		}
		var pe *fs.PathError
		if errors.As(err, &pe) {
			switch {
			case slices.Contains(t.InputLists, pe.Path):
				return nil, &UsageError{Flag: "-iL", Err: err}
			case slices.Contains(t.ExcludeFiles, pe.Path):
				return nil, &UsageError{Flag: "--exclude-file", Err: err}
			}
		}
		return nil, &UsageError{Err: err}
	}
	if set.Count() == 0 {
		set.Close()
		return nil, &UsageError{Err: emptyReason(t, set)}
	}
	return set, nil
}

// emptyReason says why a target set came out empty.
func emptyReason(t Targets, set *targets.Set) error {
	if hits := set.Blocked(); len(hits) > 0 {
		names := make([]string, len(hits))
		for i, h := range hits {
			names[i] = h.Range.Prefix + " (" + h.Range.Name + ")"
		}
		return fmt.Errorf("nothing to scan: every target is in a reserved range: %s; --allow-reserved scans them", strings.Join(names, ", "))
	}
	if len(t.Exclude) > 0 || len(t.ExcludeFiles) > 0 {
		return errors.New("nothing to scan: the exclusions remove every target")
	}
	return errors.New("nothing to scan: the targets given list no address (an empty file or an empty argument?)")
}

// errNoDNS is what a host name meets under Options.NoDNS.
var errNoDNS = errors.New("host names are not resolved with --no-dns; give addresses")

// noDNS is the resolver of Options.NoDNS: it refuses every name.
type noDNS struct{}

func (noDNS) LookupNetIP(context.Context, string, string) ([]netip.Addr, error) { return nil, errNoDNS }

// Run scans t as a new run: Prepare, record the run, scan, save, end the
// run. Errors before the run is recorded are *UsageError (the request) or
// store errors; once recorded, the run is always ended, and an interrupted
// scan returns *InterruptedError with everything found so far saved.
func (s *Session) Run(ctx context.Context, t Targets) (Summary, error) {
	set, err := s.Prepare(ctx, t)
	if err != nil {
		return Summary{}, err
	}
	defer set.Close()
	if hits := set.Blocked(); len(hits) > 0 && s.Guarded != nil {
		s.Guarded(hits)
	}
	scope, err := ScopeKey(t, s.Options.Ports)
	if err != nil {
		return Summary{}, err
	}
	// Runs left "running" by killed scanners are ended first, so the
	// store tells the truth before this run joins it.
	if _, err := s.Store.MarkStaleRuns(ctx, store.StalePolicy{}); err != nil {
		s.log().Warn("could not check for abandoned runs", "err", err)
	}
	host, _ := os.Hostname()
	// Inline targets are kept as the run's definition, so the inventory
	// can tell what a completed run covered (Coverage).
	spec, _ := EncodeSpec(Spec{Targets: t, Options: s.Options})
	run, err := s.Store.CreateRun(ctx, store.Run{
		Spec:        spec,
		Targets:     t.Describe(),
		Ports:       s.Options.Ports,
		Args:        s.Args,
		ToolVersion: version.String(),
		OwnerHost:   host,
		OwnerPID:    os.Getpid(),
		ScopeKey:    scope,
	})
	if err != nil {
		return Summary{}, err
	}
	if s.Started != nil {
		s.Started(run, set.Count())
	}
	beat := func(ctx context.Context, st scan.Stats) error {
		return s.Store.Heartbeat(ctx, run.ID, store.RunStats{AddressesProbed: int64(st.Done), OpenPorts: int64(st.Open)})
	}
	sum, scanErr := s.scanInto(ctx, run.ID, Walker{Set: set}, beat)
	sum.Run = run
	endErr := s.end(ctx, run.ID, sum, scanErr)
	if r, err := s.Store.GetRun(context.WithoutCancel(ctx), run.ID); err == nil {
		sum.Run = r
	}
	switch {
	case scanErr != nil:
		return sum, scanErr
	case endErr != nil:
		return sum, endErr
	}
	return sum, nil
}

// end records how the run ended, with a context that survives the
// caller's cancellation.
func (s *Session) end(ctx context.Context, runID string, sum Summary, scanErr error) error {
	endCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	rs := store.RunStats{AddressesProbed: int64(sum.Stats.Done), OpenPorts: int64(sum.Stats.Open)}
	var ie *InterruptedError
	var err error
	switch {
	case scanErr == nil:
		err = s.Store.FinishRun(endCtx, runID, rs)
	case errors.As(scanErr, &ie) && errors.Is(ie.Cause, ErrMarkedInterrupted):
		return nil // already ended by whoever marked it
	case errors.As(scanErr, &ie):
		err = s.Store.EndRun(endCtx, runID, store.StatusInterrupted, ie.Error(), rs)
	default:
		err = s.Store.EndRun(endCtx, runID, store.StatusFailed, scanErr.Error(), rs)
	}
	if err != nil {
		return fmt.Errorf("recording the end of run %s: %w", runID, err)
	}
	return nil
}

// Walker adapts a target set (or one shard of it) to the scanner.
type Walker struct {
	Set *targets.Set
	// Shard and Shards select one shard; Shards 0 means the whole set.
	Shard, Shards uint64
	// Count is the number of pairs in the shard (the set's count when
	// Shards is 0).
	Pairs uint64
	// Pace, if set, is called before each pair is handed out and may
	// block (a run-wide rate limit).
	Pace func(ctx context.Context) error
}

// Count is the number of pairs the walker yields.
func (w Walker) Count() uint64 {
	if w.Shards == 0 {
		return w.Set.Count()
	}
	return w.Pairs
}

// Walk yields the pairs.
func (w Walker) Walk(ctx context.Context, fn func(scan.Target) error) error {
	yield := func(t targets.Target) error {
		if w.Pace != nil {
			if err := w.Pace(ctx); err != nil {
				return err
			}
		}
		return fn(scan.Target{Addr: netip.AddrPortFrom(t.Addr, t.Port), Hostname: t.Hostname, TLS: t.TLS})
	}
	if w.Shards == 0 {
		return w.Set.Walk(ctx, yield)
	}
	return w.Set.WalkShard(ctx, w.Shard, w.Shards, yield)
}

// Scan scans w into the existing run runID without creating or ending the
// run: a shard of a sharded run. Results are saved as Run saves them; an
// interrupted scan returns *InterruptedError after saving what was found.
// heartbeat, if set, replaces the run heartbeat (shards report their own
// progress).
func (s *Session) Scan(ctx context.Context, runID string, w scan.Walker, heartbeat func(context.Context, scan.Stats) error) (Summary, error) {
	if err := s.Options.Validate(); err != nil {
		return Summary{}, err
	}
	return s.scanInto(ctx, runID, w, heartbeat)
}
