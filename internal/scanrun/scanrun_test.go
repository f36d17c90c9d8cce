package scanrun

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/netip"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/llmfence/llmfence/internal/lab"
	"github.com/llmfence/llmfence/internal/service"
	"github.com/llmfence/llmfence/internal/store"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func startFleet(t *testing.T, prefix string, live int) {
	t.Helper()
	personas, err := lab.Generate(lab.Config{Seed: 5, Prefix: netip.MustParsePrefix(prefix), Live: live})
	if err != nil {
		t.Fatal(err)
	}
	fleet, err := lab.Start(context.Background(), personas)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fleet.Close)
}

func openStore(t *testing.T) store.Store {
	t.Helper()
	st, err := store.OpenWith(context.Background(), filepath.Join(t.TempDir(), "s.db"), store.Options{Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func fastOptions() Options {
	o := DefaultOptions()
	o.Rate = 0
	o.Timeout = 2 * time.Second
	o.TargetBudget = 5 * time.Second
	o.Seed = 7
	o.SaveBatch = 3
	return o
}

func TestRunSavesEverythingItReports(t *testing.T) {
	startFleet(t, "127.93.0.0/26", 12)
	st := openStore(t)
	var reported atomic.Int64
	sess := &Session{Store: st, Options: fastOptions(), Logger: quiet(), Args: []string{"llmfence", "scan"},
		OnService: func(*service.Service) error { reported.Add(1); return nil }}
	sess.Options.FailOn = service.SeverityLow
	sum, err := sess.Run(context.Background(), Targets{Include: []string{"127.93.0.0/26"}})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Run.Status != store.StatusFinished || sum.Saved != int(reported.Load()) || sum.Saved == 0 {
		t.Fatalf("status %s, saved %d, reported %d", sum.Run.Status, sum.Saved, reported.Load())
	}
	svcs, err := st.Services(context.Background(), sum.Run.ID)
	if err != nil || len(svcs) != sum.Saved {
		t.Fatalf("store holds %d services, run saved %d (%v)", len(svcs), sum.Saved, err)
	}
	worst := service.SeverityNone
	for _, s := range svcs {
		if s.Risk.Rank() > worst.Rank() {
			worst = s.Risk
		}
	}
	if sum.Worst != worst || !sum.FailOnTripped {
		t.Errorf("worst %s (store says %s), fail-on tripped %v", sum.Worst, worst, sum.FailOnTripped)
	}
	if sum.Run.ScopeKey == "" || sum.Run.OwnerPID == 0 {
		t.Errorf("run lacks scope or owner: %+v", sum.Run)
	}
}

// TestInterruptKeepsEveryReportedService: cancelling mid-scan (Ctrl-C)
// saves every service already reported, in the last partial batch too,
// and ends the run as interrupted with a message for a person.
func TestInterruptKeepsEveryReportedService(t *testing.T) {
	startFleet(t, "127.94.0.0/26", 30)
	st := openStore(t)
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	var reported atomic.Int64
	sess := &Session{Store: st, Options: fastOptions(), Logger: quiet()}
	sess.Options.SaveBatch = 100 // everything is in the unsaved batch when the signal comes
	sess.Options.Rate = 40       // slow enough to interrupt half-way
	sess.OnService = func(*service.Service) error {
		if reported.Add(1) == 5 {
			cancel(errors.New("interrupt signal received"))
		}
		return nil
	}
	sum, err := sess.Run(ctx, Targets{Include: []string{"127.94.0.0/26"}})
	var ie *InterruptedError
	if !errors.As(err, &ie) || !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want an InterruptedError that is context.Canceled", err)
	}
	if got := err.Error(); got == context.Canceled.Error() || ie.Saved != int(reported.Load()) {
		t.Errorf("message %q, saved %d of %d reported", got, ie.Saved, reported.Load())
	}
	r, _ := st.GetRun(context.Background(), sum.Run.ID)
	svcs, _ := st.Services(context.Background(), sum.Run.ID)
	if r.Status != store.StatusInterrupted || len(svcs) != int(reported.Load()) {
		t.Errorf("run %s with %d services stored, %d reported", r.Status, len(svcs), reported.Load())
	}
}

// flakyStore refuses SaveServices a few times, as a database that went
// away and came back.
type flakyStore struct {
	store.Store
	mu    sync.Mutex
	fails int
}

func (f *flakyStore) SaveServices(ctx context.Context, runID string, svcs []service.Service) error {
	f.mu.Lock()
	if f.fails > 0 {
		f.fails--
		f.mu.Unlock()
		return errors.New("connection refused")
	}
	f.mu.Unlock()
	return f.Store.SaveServices(ctx, runID, svcs)
}

func TestStoreOutageIsRetried(t *testing.T) {
	startFleet(t, "127.95.0.0/27", 10)
	st := &flakyStore{Store: openStore(t), fails: 3}
	var reported atomic.Int64
	sess := &Session{Store: st, Options: fastOptions(), Logger: quiet(),
		OnService: func(*service.Service) error { reported.Add(1); return nil }}
	sum, err := sess.Run(context.Background(), Targets{Include: []string{"127.95.0.0/27"}})
	if err != nil {
		t.Fatal(err)
	}
	svcs, _ := st.Services(context.Background(), sum.Run.ID)
	if len(svcs) != int(reported.Load()) || st.fails != 0 {
		t.Errorf("%d stored of %d reported after an outage (fails left %d)", len(svcs), reported.Load(), st.fails)
	}
}

// TestMarkedInterruptedStops: when another process ends the run (it judged
// the heartbeat stale), the owner notices at its next heartbeat and stops
// without overwriting that verdict.
func TestMarkedInterruptedStops(t *testing.T) {
	startFleet(t, "127.96.0.0/26", 20)
	st := openStore(t)
	sess := &Session{Store: st, Options: fastOptions(), Logger: quiet()}
	sess.Options.Rate = 20
	sess.Options.Heartbeat = 50 * time.Millisecond
	var once sync.Once
	var pairs uint64
	sess.Started = func(run store.Run, n uint64) {
		pairs = n
		once.Do(func() {
			go func() {
				time.Sleep(300 * time.Millisecond)
				st.EndRun(context.Background(), run.ID, store.StatusInterrupted, "marked by a test", store.RunStats{})
			}()
		})
	}
	sum, err := sess.Run(context.Background(), Targets{Include: []string{"127.96.0.0/26"}})
	var ie *InterruptedError
	if !errors.As(err, &ie) || !errors.Is(ie.Cause, ErrMarkedInterrupted) {
		t.Fatalf("err = %v, want interrupted because marked", err)
	}
	// At 20 connections a second the scan needs about 48 s; it stopped.
	if sum.Stats.Done >= pairs {
		t.Errorf("the scan went on to the end (%d of %d pairs)", sum.Stats.Done, pairs)
	}
	if sum.Run.Error != "marked by a test" {
		t.Errorf("the marker's reason was overwritten: %q", sum.Run.Error)
	}
}

func TestValidate(t *testing.T) {
	for _, mod := range []func(*Options){
		func(o *Options) { o.Ports = "0" },
		func(o *Options) { o.Rate = -1 },
		func(o *Options) { o.Concurrency = 0 },
		func(o *Options) { o.Timeout = 0 },
		func(o *Options) { o.FailOn = "bogus" },
	} {
		o := DefaultOptions()
		mod(&o)
		var ue *UsageError
		if err := o.Validate(); !errors.As(err, &ue) || ue.Flag == "" {
			t.Errorf("Validate(%+v) = %v, want a UsageError naming the flag", o, err)
		}
	}
	sess := &Session{Store: openStore(t), Options: DefaultOptions()}
	if _, err := sess.Run(context.Background(), Targets{}); err == nil {
		t.Error("no targets accepted")
	}
}

func TestScopeKey(t *testing.T) {
	a, _ := ScopeKey(Targets{Include: []string{"10.0.0.0/24", "db.example"}, Exclude: []string{"10.0.0.5"}}, "11434,8000")
	b, _ := ScopeKey(Targets{Include: []string{"DB.example", "10.0.0.0/24"}, Exclude: []string{"10.0.0.5"}}, "8000,11434")
	c, _ := ScopeKey(Targets{Include: []string{"10.0.0.0/24"}}, "8000,11434")
	if a != b || a == c {
		t.Errorf("scope keys: %s %s %s", a, b, c)
	}
}
