package schedule

import (
	"context"
	"database/sql"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/riverqueue/river"

	"github.com/llmfence/llmfence/internal/jobs"
	"github.com/llmfence/llmfence/internal/store"
)

func TestParseRefusesBadSchedules(t *testing.T) {
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	for _, bad := range []string{
		`{"name":"x","cron":"61 * * * *","targets":["10.0.0.0/24"]}`,
		`{"name":"x","cron":"* * *","targets":["10.0.0.0/24"]}`,
		`{"name":"x","cron":"0 3 30 2 *","targets":["10.0.0.0/24"]}`, // 30 February never comes
		`{"name":"","cron":"@daily","targets":["10.0.0.0/24"]}`,
		`{"name":"x","cron":"@daily","targets":[]}`,
		`{"name":"x","cron":"@daily","targets":["10.0.0.0/24"],"rate":-1}`,
		`{"name":"x","cron":"@daily","targets":["10.0.0.0/24"],"ports":"0"}`,
		`{"name":"x","cron":"@daily","targets":["10.0.0.0/24"],"colour":"blue"}`,
		`not json`,
	} {
		if _, err := Parse([]byte(bad), now); !errors.Is(err, store.ErrBadInput) {
			t.Errorf("Parse(%s) = %v, want ErrBadInput", bad, err)
		}
	}
	s, err := Parse([]byte(`{"name":"nightly","cron":"0 3 * * *","targets":["10.0.0.0/24"]}`), now)
	if err != nil || !s.NextRun.Equal(time.Date(2026, 12, 2, 3, 0, 0, 0, time.UTC)) || s.Rate != 2000 {
		t.Errorf("Parse nightly: %+v %v", s, err)
	}
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// TestDueSchedulesStartOnceAndMissedOnesAlert: a due slot starts one run
// however often the tick runs; a slot claimed late is recorded as missed;
// the schedule and its next run survive a restart.
func TestDueSchedulesStartOnceAndMissedOnesAlert(t *testing.T) {
	ctx := context.Background()
	dsn := filepath.Join(t.TempDir(), "s.db")
	st, err := store.OpenServer(ctx, dsn, store.Options{Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	m := New(st)
	var alerted []store.Event
	cfg := jobs.DefaultConfig()
	cfg.Serve, cfg.ScanWorkers, cfg.PollInterval, cfg.Logger = true, 1, 50*time.Millisecond, quiet()
	cfg.Hooks.Register = m.Register
	cfg.Hooks.Alerts = func(_ context.Context, _ *jobs.Engine, _ *sql.Tx, evs []store.Event) error {
		alerted = append(alerted, evs...)
		return nil
	}
	eng, err := jobs.Open(ctx, st, dsn, cfg)
	if err != nil {
		t.Fatal(err)
	}
	m.Attach(eng)
	if _, err := m.SaveSchedule(ctx, []byte(`{"name":"nightly","cron":"0 3 * * *","targets":["127.106.0.1"],"ports":"11434","rate":0}`), "olga"); err != nil {
		t.Fatal(err)
	}
	if _, err := m.SaveSchedule(ctx, []byte(`{"name":"bad","cron":"@daily","targets":["no_such..name"]}`), "olga"); !errors.Is(err, store.ErrBadInput) {
		t.Errorf("a schedule with a bad target was saved: %v", err)
	}
	scheds, _ := st.Schedules(ctx)
	due := scheds[0].NextRun
	// The server was down at 03:00; it comes back at 03:20.
	m.now = func() time.Time { return due.Add(20 * time.Minute) }
	for i := 0; i < 3; i++ {
		if _, err := m.RunDue(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// The slot's job is unique: however many ticks, one run.
	if err := eng.Start(ctx); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	var runs []store.Run
	for time.Now().Before(deadline) {
		runs, _ = st.Runs(ctx, 0)
		if len(runs) > 0 && runs[0].Status != store.StatusRunning {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	eng.Stop(5 * time.Second)
	eng.Close()
	if len(runs) != 1 || runs[0].ScheduleID != "1" {
		t.Fatalf("runs after three ticks: %+v", runs)
	}
	missed := 0
	for _, e := range alerted {
		if e.Kind == EvMissed && strings.Contains(e.Summary, "nightly") {
			missed++
		}
	}
	if missed != 1 {
		t.Errorf("missed-run events: %d, want 1 (%+v)", missed, alerted)
	}
	st.Close()
	// A restart keeps the schedule and its next run (the next day).
	st2, err := store.OpenServer(ctx, dsn, store.Options{Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer st2.Close()
	scheds, _ = st2.Schedules(ctx)
	if len(scheds) != 1 || !scheds[0].NextRun.Equal(due.Add(24*time.Hour)) || scheds[0].Missed != 1 || scheds[0].LastRunID != runs[0].ID {
		t.Errorf("after restart: %+v", scheds)
	}
}

var _ = river.NewWorkers
