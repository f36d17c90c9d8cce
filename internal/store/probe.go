package store

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/llmfence/llmfence/internal/service"
)

// ProbeRun is one `llmfence probe` run: which model on which host:port
// (the same host and port `scan` records, so a probe run joins the host's
// history), how it ended and its verdicts.
type ProbeRun struct {
	ID         string    `json:"id"`
	StartedAt  time.Time `json:"started_at"`
	FinishedAt time.Time `json:"finished_at,omitzero"`
	Status     RunStatus `json:"status"`
	Error      string    `json:"error,omitempty"`
	// Target is the base URL probed; Host and Port its parts.
	Target      string   `json:"target"`
	Host        string   `json:"host"`
	Port        int      `json:"port"`
	API         string   `json:"api,omitempty"`
	Model       string   `json:"model"`
	ModelDigest string   `json:"model_digest,omitempty"`
	Baseline    string   `json:"baseline,omitempty"`
	Judge       string   `json:"judge,omitempty"`
	Suites      []string `json:"suites"`
	// Journal is the run's journal file, which --resume continues.
	Journal     string   `json:"journal,omitempty"`
	Args        []string `json:"args,omitempty"`
	ToolVersion string   `json:"tool_version,omitempty"`
	// Requests counts the answered requests; Complete says every planned
	// request was answered; Worst is the highest verdict severity.
	Requests int              `json:"requests"`
	Complete bool             `json:"complete"`
	Worst    service.Severity `json:"worst"`
	Verdicts []ProbeVerdict   `json:"verdicts,omitempty"`
}

// ProbeVerdict is one suite's verdict; Summary is the suite's whole summary
// record as JSON.
type ProbeVerdict struct {
	Suite    string           `json:"suite"`
	Verdict  string           `json:"verdict"`
	Severity service.Severity `json:"severity"`
	Summary  json.RawMessage  `json:"summary,omitempty"`
}

// ProbeRunFilter narrows ProbeRuns. The zero value returns every run.
type ProbeRunFilter struct {
	// Host keeps runs against this host (address or name); Port, when not
	// zero, this port too.
	Host string
	Port int
	// Model keeps runs of this model (exact name).
	Model string
	// Limit caps the result (newest first); <= 0 means no cap.
	Limit int
}

// ProbeStore keeps probe runs. Implementations are safe for concurrent
// use.
type ProbeStore interface {
	// CreateProbeRun records a new run with status "running"; it assigns
	// ID and StartedAt and ignores the fields a finished run has.
	CreateProbeRun(ctx context.Context, r ProbeRun) (ProbeRun, error)
	// SetProbeJournal records the journal file of a run (known once the
	// run has an ID to name it by).
	SetProbeJournal(ctx context.Context, id, journal string) error
	// FinishProbeRun ends a run: status is StatusFinished, StatusFailed or
	// StatusInterrupted, reason says why it did not finish, and the
	// verdicts replace any the run had (a resumed run finishes again).
	FinishProbeRun(ctx context.Context, id string, status RunStatus, reason string, requests int, complete bool, verdicts []ProbeVerdict) error
	// ReopenProbeRun marks a stopped run running again (--resume).
	ReopenProbeRun(ctx context.Context, id string) error
	// ProbeRuns lists runs, newest first, with their verdicts.
	ProbeRuns(ctx context.Context, f ProbeRunFilter) ([]ProbeRun, error)
	// GetProbeRun returns one run with its verdicts.
	GetProbeRun(ctx context.Context, id string) (ProbeRun, error)
}

// OpenProbe is Open for `llmfence probe`.
func OpenProbe(ctx context.Context, dsn string) (ProbeRunStore, error) {
	return OpenProbeWith(ctx, dsn, Options{})
}

// OpenProbeWith is OpenProbe with options.
func OpenProbeWith(ctx context.Context, dsn string, opts Options) (ProbeRunStore, error) {
	s, err := OpenWith(ctx, dsn, opts)
	if err != nil {
		return nil, err
	}
	p, ok := s.(ProbeRunStore)
	if !ok { // cannot happen with the built-in back ends
		s.Close()
		return nil, errors.New("this store does not keep probe runs")
	}
	return p, nil
}

// ProbeRunStore is a Store that also keeps probe runs. Every store Open
// returns is one.
type ProbeRunStore interface {
	Store
	ProbeStore
}
