package jobs

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/riverqueue/river"

	"github.com/llmfence/llmfence/internal/inspect"
	"github.com/llmfence/llmfence/internal/risk"
	"github.com/llmfence/llmfence/internal/store"
)

// MaxPathFiles bounds the results kept per watched path.
const MaxPathFiles = 100000

// InspectTickArgs claims watched paths that are due.
type InspectTickArgs struct{}

func (InspectTickArgs) Kind() string { return "inspect_tick" }
func (InspectTickArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueDefault, MaxAttempts: 3, UniqueOpts: river.UniqueOpts{ByPeriod: 30 * time.Second}}
}

// InspectPathArgs inspects one watched path (`llmfence inspect` on the
// serve host).
type InspectPathArgs struct {
	ID       int64  `json:"id"`
	Path     string `json:"path"`
	PathKind string `json:"kind"`
}

func (InspectPathArgs) Kind() string { return "inspect_path" }
func (InspectPathArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueDefault, MaxAttempts: 3, UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

type inspectTickWorker struct {
	river.WorkerDefaults[InspectTickArgs]
	e *Engine
}

func (w *inspectTickWorker) Work(ctx context.Context, _ *river.Job[InspectTickArgs]) error {
	due, err := w.e.st.DuePaths(ctx, time.Now())
	if err != nil {
		return err
	}
	for _, p := range due {
		if err := w.e.Insert(ctx, InspectPathArgs{ID: p.ID, Path: p.Path, PathKind: p.Kind}, nil); err != nil {
			return err
		}
	}
	return nil
}

type inspectPathWorker struct {
	river.WorkerDefaults[InspectPathArgs]
	e *Engine
}

func (w *inspectPathWorker) Timeout(*river.Job[InspectPathArgs]) time.Duration { return time.Hour }

func (w *inspectPathWorker) Work(ctx context.Context, job *river.Job[InspectPathArgs]) error {
	return w.e.InspectPath(ctx, job.Args.ID, job.Args.Path, job.Args.PathKind)
}

// InspectPath inspects a path now and replaces its stored results.
func (e *Engine) InspectPath(ctx context.Context, id int64, path, kind string) error {
	in, err := inspect.New(inspect.Options{Workers: 2, Logger: e.log})
	if err != nil {
		return err
	}
	var results []store.PathResult
	emit := func(r *inspect.Result) error {
		if len(results) >= MaxPathFiles {
			return fmt.Errorf("more than %d files under %s", MaxPathFiles, path)
		}
		doc, _ := json.Marshal(r)
		results = append(results, store.PathResult{File: r.Path, Format: r.Format, Size: r.Size, SHA256: r.SHA256,
			Verdict: string(r.Verdict), Severity: string(r.MaxSeverity()), Doc: string(doc)})
		return nil
	}
	var sum inspect.Summary
	if kind == "ollama-store" {
		judge, jerr := e.modelJudge()
		if jerr != nil {
			return fmt.Errorf("inspect %s: %w", path, jerr)
		}
		sum, err = in.InspectOllamaStore(ctx, path, judge, emit)
	} else {
		sum, err = in.Inspect(ctx, []string{path}, emit)
	}
	status := fmt.Sprintf("%d files, %d with findings at or above high, %d not inspected", sum.Files, sum.Failed, sum.Errors)
	if err != nil {
		// Keep the previous results: an incomplete inspection replaces
		// nothing.
		return fmt.Errorf("inspect %s: %w", path, err)
	}
	return e.st.SavePathResults(context.WithoutCancel(ctx), id, results, status, sum.Files, sum.Failed)
}

// modelJudge rates the models of an Ollama store as the engine's scans
// rate services: the scans' judge (Config.Annotator) when it rates models
// too, as risk.Judge does, else the embedded data's.
func (e *Engine) modelJudge() (inspect.ModelJudge, error) {
	if e.cfg.Annotator != nil {
		ann, err := e.cfg.Annotator()
		if err != nil {
			return nil, err
		}
		if j, ok := ann.(inspect.ModelJudge); ok {
			return j, nil
		}
	}
	return risk.NewJudge()
}
