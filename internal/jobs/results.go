package jobs

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/riverqueue/river"

	"github.com/llmfence/llmfence/internal/datascan"
	"github.com/llmfence/llmfence/internal/probe"
	"github.com/llmfence/llmfence/internal/service"
	"github.com/llmfence/llmfence/internal/store"
	"github.com/llmfence/llmfence/internal/version"
)

// Events raised by finished datascan and probe jobs (and so alerts, see
// package alerting).
const (
	EvDatascanFindings = "datascan.findings"
	EvProbeVerdict     = "probe.verdict"
)

// MaxDatascanSummaries bounds the corpus-wide summaries kept per datascan.
const MaxDatascanSummaries = 500

// DatascanArgs scans one path on the serve host (`llmfence datascan`).
type DatascanArgs struct {
	ID   int64  `json:"id"`
	Path string `json:"path"`
}

func (DatascanArgs) Kind() string { return "datascan" }
func (DatascanArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueDefault, MaxAttempts: 2}
}

type datascanWorker struct {
	river.WorkerDefaults[DatascanArgs]
	e *Engine
}

func (w *datascanWorker) Timeout(*river.Job[DatascanArgs]) time.Duration { return 6 * time.Hour }

func (w *datascanWorker) Work(ctx context.Context, job *river.Job[DatascanArgs]) error {
	return w.e.Datascan(ctx, job.Args.ID, job.Args.Path)
}

// QueueDatascan records a datascan of path and enqueues its job in the
// same transaction.
func (e *Engine) QueueDatascan(ctx context.Context, path, by string) (store.DatascanRun, error) {
	return e.st.QueueDatascan(ctx, path, by, func(ctx context.Context, tx *sql.Tx, id int64) error {
		return e.InsertTx(ctx, tx, DatascanArgs{ID: id, Path: path}, nil)
	})
}

// dsSink keeps what a datascan finds, bounded: every finding is counted,
// the most severe store.MaxDatascanFindings are kept.
type dsSink struct {
	kept      []store.DatascanFinding
	seq       int
	summaries []datascan.Summary
	files     int
	fileErrs  int
}

func (k *dsSink) trim() {
	sort.SliceStable(k.kept, func(i, j int) bool { return k.kept[i].Severity.Rank() > k.kept[j].Severity.Rank() })
	if len(k.kept) > store.MaxDatascanFindings {
		k.kept = k.kept[:store.MaxDatascanFindings]
	}
}

func (k *dsSink) Finding(f datascan.Finding) error {
	doc, err := json.Marshal(f)
	if err != nil {
		return err
	}
	detail := f.Trigger
	if detail == "" {
		detail = f.Category
	}
	k.kept = append(k.kept, store.DatascanFinding{Seq: k.seq, Severity: f.Severity, Kind: f.Kind, File: f.File, Record: f.Record,
		Field: f.Field, Detail: detail, Evidence: f.Evidence, Doc: doc})
	k.seq++
	if len(k.kept) >= 2*store.MaxDatascanFindings {
		k.trim()
	}
	return nil
}

func (k *dsSink) Summary(s datascan.Summary) error {
	if len(k.summaries) < MaxDatascanSummaries {
		k.summaries = append(k.summaries, s)
	}
	return nil
}

func (k *dsSink) File(fi datascan.FileInfo) error {
	k.files++
	if fi.Error != "" {
		k.fileErrs++
	}
	return nil
}

// Datascan scans a path now with package datascan and stores the outcome;
// findings raise an EvDatascanFindings event (and so alerts) in the
// transaction that stores them.
func (e *Engine) Datascan(ctx context.Context, id int64, path string) error {
	if err := e.st.StartDatascan(ctx, id); err != nil {
		return err
	}
	sc, err := datascan.New(datascan.Options{Workers: 2, Logger: e.log})
	if err != nil {
		return err
	}
	var sink dsSink
	stats, err := sc.Scan(ctx, []string{path}, &sink)
	endCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err != nil {
		if ctx.Err() != nil {
			// Interrupted (shutdown): leave the run to the job's retry.
			return fmt.Errorf("datascan %s: %w", path, err)
		}
		return e.st.FinishDatascan(endCtx, id, store.DatascanResult{}, fmt.Errorf("datascan %s: %w", path, err), nil)
	}
	sink.trim()
	sums, _ := json.Marshal(sink.summaries)
	if len(sink.summaries) == 0 {
		sums = []byte("[]")
	}
	total := 0
	for _, n := range stats.Findings {
		total += n
	}
	worst := stats.Max
	if worst == "" {
		worst = service.SeverityNone
	}
	res := store.DatascanResult{Files: stats.Files, FileErrors: stats.Errors, Records: stats.Records, Bytes: stats.Bytes,
		Findings: total, Worst: worst, Counts: stats.Findings, Summaries: sums, Warnings: stats.Warnings, Kept: sink.kept}
	if res.Files == 0 {
		res.Files = sink.files
	}
	return e.st.FinishDatascan(endCtx, id, res, nil, func(ctx context.Context, tx *sql.Tx) error {
		if total == 0 {
			return nil
		}
		kinds := make([]string, 0, len(stats.Findings))
		for k, n := range stats.Findings {
			kinds = append(kinds, fmt.Sprintf("%s %d", k, n))
		}
		slices.Sort(kinds)
		detail, _ := json.Marshal(map[string]any{"datascan": id, "path": path, "total": total, "counts": stats.Findings})
		return e.raise(ctx, tx, store.Event{Kind: EvDatascanFindings, Severity: string(worst), Detail: detail,
			Summary: fmt.Sprintf("datascan %d of %s: %d findings, worst %s (%s)", id, path, total, worst, strings.Join(kinds, ", "))})
	})
}

// raise records an event and queues its alerts in tx.
func (e *Engine) raise(ctx context.Context, tx *sql.Tx, ev store.Event) error {
	ev, err := e.st.RecordEvent(ctx, tx, ev)
	if err != nil {
		return err
	}
	if hook := e.alertHook(); hook != nil {
		return hook(ctx, tx, []store.Event{ev})
	}
	return nil
}

// ProbeArgs probes one model on one target (`llmfence probe`): the one
// URL the user typed, nothing else.
type ProbeArgs struct {
	Target      string   `json:"target"`
	Model       string   `json:"model"`
	Suites      []string `json:"suites,omitempty"`
	MaxRequests int      `json:"max_requests,omitempty"`
	// TimeoutSeconds caps the run's wall time (the run keeps what it has).
	TimeoutSeconds int    `json:"timeout_seconds,omitempty"`
	RequestedBy    string `json:"requested_by,omitempty"`
}

func (ProbeArgs) Kind() string { return "probe" }

// InsertOpts: one attempt. A probe sends prompts to someone's server; it
// is not sent again behind the user's back.
func (ProbeArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueDefault, MaxAttempts: 1}
}

// DefaultProbeTimeout is a probe job's wall time when none is given.
const DefaultProbeTimeout = 30 * time.Minute

type probeWorker struct {
	river.WorkerDefaults[ProbeArgs]
	e *Engine
}

func (w *probeWorker) Timeout(job *river.Job[ProbeArgs]) time.Duration {
	return probeTimeout(job.Args) + 5*time.Minute
}

func probeTimeout(a ProbeArgs) time.Duration {
	if a.TimeoutSeconds > 0 {
		return time.Duration(a.TimeoutSeconds) * time.Second
	}
	return DefaultProbeTimeout
}

func (w *probeWorker) Work(ctx context.Context, job *river.Job[ProbeArgs]) error {
	_, err := w.e.Probe(ctx, job.Args)
	return err
}

// Probe runs package probe against the job's one target and model,
// records the run in the probe store (like `llmfence probe`) and raises an
// EvProbeVerdict event for a verdict rated above none.
func (e *Engine) Probe(ctx context.Context, a ProbeArgs) (store.ProbeRun, error) {
	target, err := probe.ParseTarget(a.Target)
	if err != nil {
		return store.ProbeRun{}, fmt.Errorf("probe target %q: %w", a.Target, err)
	}
	host, port := probe.TargetHostPort(target)
	args := []string{"llmfence", "serve", "probe", target, "--model", a.Model}
	if a.RequestedBy != "" {
		args = append(args, "--requested-by", a.RequestedBy)
	}
	run, err := e.st.CreateProbeRun(ctx, store.ProbeRun{Target: target, Host: host, Port: port, Model: a.Model, Suites: a.Suites,
		Args: args, ToolVersion: version.String()})
	if err != nil {
		return run, err
	}
	journal := ""
	if e.cfg.ProbeDir != "" {
		journal = filepath.Join(e.cfg.ProbeDir, "probe-"+run.ID+".jsonl")
		if err := e.st.SetProbeJournal(ctx, run.ID, journal); err != nil {
			return run, err
		}
	}
	opts := probe.Options{Config: probe.Config{Target: target, Model: a.Model, Suites: a.Suites, MaxRequests: a.MaxRequests,
		Seed: probe.DefaultSeed, RareTokens: probe.DefaultRareTokens},
		UserAgent: version.UserAgent(""), Timeout: probeTimeout(a), Journal: journal, Logger: e.log, Tool: version.String()}
	res, perr := probe.Run(ctx, opts)
	endCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if res == nil {
		status := store.StatusFailed
		if ctx.Err() != nil {
			status = store.StatusInterrupted
		}
		_ = e.st.FinishProbeRun(endCtx, run.ID, status, errText(perr), 0, false, nil)
		got, _ := e.st.GetProbeRun(endCtx, run.ID)
		return got, nil // recorded; a retry would probe again
	}
	var vs []store.ProbeVerdict
	answered := 0
	for _, at := range res.Attempts {
		if at.Error == "" {
			answered++
		}
	}
	for _, s := range res.Summaries {
		doc, _ := json.Marshal(s)
		vs = append(vs, store.ProbeVerdict{Suite: s.Suite, Verdict: s.Verdict, Severity: s.Severity, Summary: doc})
	}
	status, reason := store.StatusFinished, ""
	switch {
	case ctx.Err() != nil:
		status, reason = store.StatusInterrupted, "interrupted"
	case perr != nil && !errors.Is(perr, probe.ErrBudget):
		status, reason = store.StatusFailed, perr.Error()
	case !res.Complete:
		reason = "some requests were not answered"
	}
	if err := e.st.FinishProbeRun(endCtx, run.ID, status, reason, answered, res.Complete, vs); err != nil {
		return run, err
	}
	got, err := e.st.GetProbeRun(endCtx, run.ID)
	if err != nil {
		return got, err
	}
	if got.Worst.Rank() > service.SeverityNone.Rank() {
		worst := res.Worst()
		detail, _ := json.Marshal(map[string]any{"probe": run.ID, "model": a.Model, "suite": worst.Suite, "verdict": worst.Verdict})
		err = e.st.WithTx(endCtx, func(tx *sql.Tx) error {
			return e.raise(endCtx, tx, store.Event{Kind: EvProbeVerdict, Severity: string(got.Worst), Host: host, Port: port, Detail: detail,
				Actor: a.RequestedBy, Summary: fmt.Sprintf("probe %s of %s on %s: %s %s (%s)", run.ID, a.Model, target, worst.Suite, worst.Verdict, got.Worst)})
		})
	}
	return got, err
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
