// Package schedule runs scans on cron schedules for llmfence serve.
//
// The next run time of every schedule is kept in the store, so a restart
// never loses one. A periodic tick (a River job, run by the leader) claims
// due schedules and, in the same transaction, enqueues one unique job per
// (schedule, slot): a slot starts at most once however many servers tick.
// A slot claimed later than the grace period is recorded as missed, and the
// missed run raises a "schedule.missed" event (and so an alert). Each
// scheduled run's scope is the schedule's targets, so the run is compared
// with the previous run of the same scope (store.PreviousRun).
package schedule

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/riverqueue/river"
	"github.com/robfig/cron/v3"

	"github.com/llmfence/llmfence/internal/jobs"
	"github.com/llmfence/llmfence/internal/scanrun"
	"github.com/llmfence/llmfence/internal/store"
)

// EvMissed is the event of a schedule that did not start on time.
const EvMissed = "schedule.missed"

var parser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// Next is the first time the cron expression fires after t.
func Next(expr string, after time.Time) (time.Time, error) {
	sch, err := parser.Parse(strings.TrimSpace(expr))
	if err != nil {
		return time.Time{}, fmt.Errorf("cron %q: %v (want minute hour day month weekday, e.g. \"0 3 * * *\", or @daily)", expr, err)
	}
	n := sch.Next(after.UTC())
	if n.IsZero() {
		return n, fmt.Errorf("cron %q never fires", expr)
	}
	return n, nil
}

// Body is a schedule as the API and dashboard give it.
type Body struct {
	Name    string   `json:"name"`
	Cron    string   `json:"cron"`
	Targets []string `json:"targets"`
	Exclude []string `json:"exclude,omitempty"`
	Ports   string   `json:"ports,omitempty"`
	Rate    *float64 `json:"rate,omitempty"`
	Enabled *bool    `json:"enabled,omitempty"`
}

// Manager keeps schedules and runs them through the job engine.
type Manager struct {
	st    store.ServerStore
	eng   *jobs.Engine
	Grace time.Duration
	Tick  time.Duration
	now   func() time.Time
}

// New returns a manager; Attach the engine once it exists.
func New(st store.ServerStore) *Manager {
	return &Manager{st: st, Grace: 5 * time.Minute, Tick: 30 * time.Second, now: time.Now}
}

// Attach connects the job engine.
func (m *Manager) Attach(e *jobs.Engine) { m.eng = e }

// Parse checks a schedule body: a name, a cron expression that fires, and
// targets that parse (host names are not resolved here).
func Parse(raw []byte, now time.Time) (store.Schedule, error) {
	var b Body
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil {
		return store.Schedule{}, fmt.Errorf("schedule: %v: %w", err, store.ErrBadInput)
	}
	b.Name = strings.TrimSpace(b.Name)
	if b.Name == "" {
		return store.Schedule{}, fmt.Errorf("schedule: give it a name: %w", store.ErrBadInput)
	}
	next, err := Next(b.Cron, now)
	if err != nil {
		return store.Schedule{}, fmt.Errorf("schedule %q: %w: %w", b.Name, err, store.ErrBadInput)
	}
	if len(b.Targets) == 0 {
		return store.Schedule{}, fmt.Errorf("schedule %q: give at least one target: %w", b.Name, store.ErrBadInput)
	}
	o := scanrun.DefaultOptions()
	o.Ports = b.Ports
	if b.Rate != nil {
		o.Rate = *b.Rate
	}
	if err := o.Validate(); err != nil {
		return store.Schedule{}, fmt.Errorf("schedule %q: %w: %w", b.Name, err, store.ErrBadInput)
	}
	s := store.Schedule{Name: b.Name, Cron: strings.TrimSpace(b.Cron), Targets: b.Targets, Exclude: b.Exclude, Ports: b.Ports,
		Rate: o.Rate, Enabled: b.Enabled == nil || *b.Enabled, NextRun: next}
	return s, nil
}

// Schedules lists schedules (console.ScheduleAdmin).
func (m *Manager) Schedules(ctx context.Context) (any, error) { return m.st.Schedules(ctx) }

// SaveSchedule creates or replaces a schedule (console.ScheduleAdmin).
func (m *Manager) SaveSchedule(ctx context.Context, body []byte, actor string) (any, error) {
	s, err := Parse(body, m.now())
	if err != nil {
		return nil, err
	}
	// Check the targets as a scan would, before anything is stored.
	sess := &scanrun.Session{Options: scanrun.DefaultOptions()}
	sess.Options.Ports = s.Ports
	set, err := sess.Prepare(ctx, scanrun.Targets{Include: s.Targets, Exclude: s.Exclude})
	if err != nil {
		return nil, fmt.Errorf("schedule %q: %w: %w", s.Name, err, store.ErrBadInput)
	}
	set.Close()
	s.CreatedBy = actor
	return m.st.SaveSchedule(ctx, s)
}

// DeleteSchedule removes a schedule (console.ScheduleAdmin).
func (m *Manager) DeleteSchedule(ctx context.Context, id int64) error {
	return m.st.DeleteSchedule(ctx, id)
}

// TickArgs is the periodic job that starts due schedules.
type TickArgs struct{}

func (TickArgs) Kind() string { return "schedule_tick" }
func (TickArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: jobs.QueueDefault, MaxAttempts: 3, UniqueOpts: river.UniqueOpts{ByPeriod: 10 * time.Second}}
}

// RunArgs starts one schedule's run for one slot.
type RunArgs struct {
	ScheduleID int64 `json:"schedule_id"`
	Slot       int64 `json:"slot"` // Unix seconds of the slot
}

func (RunArgs) Kind() string { return "schedule_run" }
func (RunArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: jobs.QueueDefault, MaxAttempts: 5, UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

type tickWorker struct {
	river.WorkerDefaults[TickArgs]
	m *Manager
}

func (w *tickWorker) Timeout(*river.Job[TickArgs]) time.Duration { return time.Minute }

func (w *tickWorker) Work(ctx context.Context, _ *river.Job[TickArgs]) error {
	_, err := w.m.RunDue(ctx)
	return err
}

type runWorker struct {
	river.WorkerDefaults[RunArgs]
	m *Manager
}

func (w *runWorker) Timeout(*river.Job[RunArgs]) time.Duration { return 2 * time.Minute }

func (w *runWorker) Work(ctx context.Context, job *river.Job[RunArgs]) error {
	s, err := w.m.st.GetSchedule(ctx, job.Args.ScheduleID)
	if errors.Is(err, store.ErrNotFound) {
		return nil // deleted since
	}
	if err != nil {
		return err
	}
	o := scanrun.DefaultOptions()
	o.Ports, o.Rate = s.Ports, s.Rate
	run, err := w.m.eng.StartScan(ctx, jobs.ScanRequest{Targets: scanrun.Targets{Include: s.Targets, Exclude: s.Exclude}, Options: o,
		Args:       []string{fmt.Sprintf("serve: schedule %q (%s), slot %s", s.Name, s.Cron, time.Unix(job.Args.Slot, 0).UTC().Format(time.RFC3339))},
		ScheduleID: fmt.Sprint(s.ID)})
	if err != nil {
		return err
	}
	return w.m.st.ScheduleRan(ctx, s.ID, run.ID)
}

// RunDue claims due schedules and enqueues their runs, recording a missed
// slot as an event. It returns how many it started.
func (m *Manager) RunDue(ctx context.Context) (int, error) {
	return m.st.ClaimDueSchedules(ctx, m.now(), m.Grace, Next, func(ctx context.Context, tx *sql.Tx, s store.Schedule, slot time.Time, late bool) error {
		if late {
			ev, err := m.st.RecordEvent(ctx, tx, store.Event{Kind: EvMissed, Severity: "medium",
				Summary: fmt.Sprintf("schedule %q did not start at %s (started %s late)", s.Name, slot.Format(time.RFC3339), m.now().Sub(slot).Round(time.Second))})
			if err != nil {
				return err
			}
			if hook := m.eng.AlertHook(); hook != nil {
				if err := hook(ctx, tx, []store.Event{ev}); err != nil {
					return err
				}
			}
		}
		return m.eng.InsertTx(ctx, tx, RunArgs{ScheduleID: s.ID, Slot: slot.Unix()}, nil)
	})
}

// Register adds the schedule workers (jobs.Hooks.Register).
func (m *Manager) Register(w *river.Workers) {
	river.AddWorker(w, &tickWorker{m: m})
	river.AddWorker(w, &runWorker{m: m})
}

// Periodic is the tick (jobs.Hooks.Periodic).
func (m *Manager) Periodic() []*river.PeriodicJob {
	return []*river.PeriodicJob{river.NewPeriodicJob(river.PeriodicInterval(m.Tick), func() (river.JobArgs, *river.InsertOpts) {
		return TickArgs{}, nil
	}, &river.PeriodicJobOpts{RunOnStart: true, ID: "schedule_tick"})}
}
