package jobs

import (
	"context"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/llmfence/llmfence/internal/lab"
	"github.com/llmfence/llmfence/internal/scanrun"
	"github.com/llmfence/llmfence/internal/store"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func startFleet(t *testing.T, prefix string, live int) {
	t.Helper()
	personas, err := lab.Generate(lab.Config{Seed: 21, Prefix: netip.MustParsePrefix(prefix), Live: live, HostileFraction: 0.05})
	if err != nil {
		t.Fatal(err)
	}
	fleet, err := lab.Start(context.Background(), personas)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fleet.Close)
}

func testOptions() scanrun.Options {
	o := scanrun.DefaultOptions()
	o.Rate, o.Timeout, o.TargetBudget, o.Seed = 0, 2*time.Second, 4*time.Second, 99
	o.KeepHTTP = true
	return o
}

// keys lists a run's services as host:port product version.
func keys(t *testing.T, st store.Store, runID string) []string {
	t.Helper()
	svcs, err := st.Services(context.Background(), runID)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, s := range svcs {
		out = append(out, s.Key()+" "+s.Product+" "+s.Version+" "+string(s.Auth))
	}
	slices.Sort(out)
	return out
}

func waitRun(t *testing.T, st store.Store, id string, d time.Duration) store.Run {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		r, err := st.GetRun(context.Background(), id)
		if err == nil && r.Status != store.StatusRunning {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("run %s still %s after %v", id, r.Status, d)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestShardedEqualsSingleSQLite: a run split into shards and worked by
// the embedded engine finds exactly what one process finds.
func TestShardedEqualsSingleSQLite(t *testing.T) {
	startFleet(t, "127.98.0.0/25", 40)
	ctx := context.Background()
	dsn := filepath.Join(t.TempDir(), "s.db")
	st, err := store.OpenServer(ctx, dsn, store.Options{Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	single := &scanrun.Session{Store: st, Options: testOptions(), Logger: quiet()}
	sum, err := single.Run(ctx, scanrun.Targets{Include: []string{"127.98.0.0/25"}})
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.ScanWorkers, cfg.Serve, cfg.PollInterval, cfg.Logger = 3, true, 100*time.Millisecond, quiet()
	e, err := Open(ctx, st, dsn, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if err := e.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer e.Stop(10 * time.Second)
	o := testOptions()
	o.Rate = 400 // run-wide, shared by the shards
	start := time.Now()
	run, err := e.StartScan(ctx, ScanRequest{Targets: scanrun.Targets{Include: []string{"127.98.0.0/25"}}, Options: o, Shards: 5})
	if err != nil {
		t.Fatal(err)
	}
	r := waitRun(t, st, run.ID, 90*time.Second)
	elapsed := time.Since(start)
	if r.Status != store.StatusFinished {
		t.Fatalf("sharded run %s: %s %s", r.ID, r.Status, r.Error)
	}
	want, got := keys(t, st, sum.Run.ID), keys(t, st, run.ID)
	if !slices.Equal(want, got) {
		t.Errorf("sharded run found\n%v\none process found\n%v", got, want)
	}
	p, _ := st.RunProgress(ctx, run.ID)
	if p.Shards != 5 || p.ShardsDone != 5 || uint64(p.Done) != uint64(r.Stats.AddressesProbed) || p.Total != p.Done {
		t.Errorf("progress %+v, run %+v", p, r.Stats)
	}
	// 128 addresses × 15 ports at 400/s run-wide is at least 4.8 s
	// however many shards share it.
	if min := time.Duration(float64(p.Total)/400*float64(time.Second)) - time.Second; elapsed < min {
		t.Errorf("run took %v; a run-wide rate of 400/s allows no less than %v", elapsed, min)
	}
	// The finished run reaches the inventory.
	deadline := time.Now().Add(30 * time.Second)
	for {
		if left, _ := st.UnappliedRuns(ctx, 10); !slices.Contains(left, run.ID) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the finished run was not applied to the inventory")
		}
		time.Sleep(100 * time.Millisecond)
	}
	_ = os.Getpid
}
