// Package store keeps llmfence's scan history: every scan run, the services
// each run found (as the full service.Service JSON document plus indexed
// columns), their findings, and a per-host:port history with first-seen and
// last-seen times. It answers the `runs`, `hosts`, `findings` and `diff`
// questions.
//
// Two back ends implement the same Store interface: SQLite (pure Go, the
// default, one file per user) and PostgreSQL (for shared, multi-scanner
// deployments). Open picks one from a DSN. Both run the same numbered,
// embedded schema migrations at Open (see migrations/README.md), so later
// capabilities add tables by adding a migration file per dialect.
//
// The same database keeps the API keys and the audit log of `llmfence
// guard`, behind the separate KeyStore and UsageStore interfaces (see
// guard.go); every store Open returns implements them (GuardStore).
package store

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/llmfence/llmfence/internal/service"
)

// Store is llmfence's scan history. Implementations are safe for concurrent
// use by multiple goroutines.
type Store interface {
	// CreateRun records a new scan run with status "running". It assigns
	// ID and StartedAt and ignores any values r carries for ID, Status,
	// FinishedAt and Stats.
	CreateRun(ctx context.Context, r Run) (Run, error)
	// SaveServices stores a batch of services found by the run and updates
	// the host history, all in one transaction. It may be called many times
	// per run, from many goroutines. A service whose host:port the run
	// already holds replaces the earlier record.
	SaveServices(ctx context.Context, runID string, svcs []service.Service) error
	// FinishRun marks the run finished and records the probe counts of
	// stats. Services and ByRisk are always computed from the saved
	// services; the values in stats are ignored.
	FinishRun(ctx context.Context, runID string, stats RunStats) error
	// EndRun is FinishRun for runs that did not complete: status is
	// StatusFailed or StatusInterrupted and reason says why.
	EndRun(ctx context.Context, runID string, status RunStatus, reason string, stats RunStats) error
	// Runs lists runs newest first; limit <= 0 means all.
	Runs(ctx context.Context, limit int) ([]Run, error)
	// GetRun resolves a run reference (see ResolveRef) to its run.
	GetRun(ctx context.Context, ref string) (Run, error)
	// Services returns the services a run found, ordered by host then port.
	Services(ctx context.Context, runRef string) ([]service.Service, error)
	// Hosts returns the host:port history, ordered by address then port.
	Hosts(ctx context.Context, f HostFilter) ([]Host, error)
	// Findings returns findings of one run, most severe first.
	Findings(ctx context.Context, f FindingFilter) ([]FindingRow, error)
	// Diff compares the services of run a (before) and run b (after).
	Diff(ctx context.Context, a, b string) (Diff, error)
	// Heartbeat records that the run's owner is alive, with its progress
	// so far. It fails with ErrNotFound for an unknown run and
	// ErrRunEnded once the run has ended (another process marked it
	// interrupted: the owner should stop).
	Heartbeat(ctx context.Context, runID string, stats RunStats) error
	// MarkStaleRuns ends, as interrupted, every running run whose owner is
	// gone: its heartbeat is older than p.HeartbeatAge, or its owner
	// process on this host no longer exists. It returns the runs it ended.
	MarkStaleRuns(ctx context.Context, p StalePolicy) ([]string, error)
	// PruneRuns deletes old runs, their services and findings (the host
	// history and the inventory keep what they learnt). See PrunePolicy.
	PruneRuns(ctx context.Context, p PrunePolicy) (PruneResult, error)
	// Close releases the database.
	Close() error
}

// Run references accepted wherever a run ID is: a run ID ("42", also "#42"),
// RefLatest (the newest finished run) or RefPrevious (the newest finished
// run before it over the same scope: the same Run.ScopeKey, or for runs
// recorded without one the same targets and ports). Running, failed and
// interrupted runs are only reachable by ID, so a half-done scan never
// stands in for "latest".
const (
	RefLatest   = "latest"
	RefPrevious = "previous"
)

// RunStatus is the state of a scan run.
type RunStatus string

const (
	StatusRunning     RunStatus = "running"
	StatusFinished    RunStatus = "finished"
	StatusFailed      RunStatus = "failed"
	StatusInterrupted RunStatus = "interrupted"
)

// Run is one invocation of a scan.
type Run struct {
	// ID is short and typed by users (`llmfence diff 41 42`): the decimal
	// sequence number of the run in this database.
	ID         string    `json:"id"`
	StartedAt  time.Time `json:"started_at"`
	FinishedAt time.Time `json:"finished_at,omitzero"` // zero while running
	Status     RunStatus `json:"status"`
	// Error says why a failed or interrupted run ended.
	Error string `json:"error,omitempty"`
	// Targets are the targets as the user gave them (CIDRs, names, files).
	Targets []string `json:"targets"`
	// Ports is the port specification scanned, e.g. "11434,8000-8010".
	Ports string `json:"ports"`
	// Args is the full command line, for the record.
	Args []string `json:"args,omitempty"`
	// ToolVersion is the llmfence version that ran the scan.
	ToolVersion string   `json:"tool_version,omitempty"`
	Stats       RunStats `json:"stats"`

	// HeartbeatAt is the last sign of life of the process that owns a
	// running run (see Heartbeat and MarkStaleRuns).
	HeartbeatAt time.Time `json:"heartbeat_at,omitzero"`
	// OwnerHost and OwnerPID name the process running the scan (the host
	// name and process ID of `llmfence scan`, or of `llmfence serve` for a
	// sharded run).
	OwnerHost string `json:"owner_host,omitempty"`
	OwnerPID  int    `json:"owner_pid,omitempty"`
	// ScopeKey identifies what the run covered (targets, exclusions,
	// ports): runs with equal keys scanned the same scope.
	ScopeKey string `json:"scope_key,omitempty"`
	// Spec is the scan definition of a sharded run (JSON), read by
	// workers; empty for a one-process scan.
	Spec string `json:"-"`
	// Shards is how many shards a sharded run was split into (0: one
	// process).
	Shards int `json:"shards,omitempty"`
	// ScheduleID is the schedule that started the run, "" if none.
	ScheduleID string `json:"schedule_id,omitempty"`
}

// RunStats counts what a run did.
type RunStats struct {
	AddressesProbed int64 `json:"addresses_probed"`
	OpenPorts       int64 `json:"open_ports"`
	// Services and ByRisk are computed by the store from the saved services.
	Services int                      `json:"services"`
	ByRisk   map[service.Severity]int `json:"by_risk,omitempty"`
}

// Host is the history of one host:port across all runs. The descriptive
// fields come from the most recent run that saw it.
type Host struct {
	Host       string           `json:"host"`
	Port       int              `json:"port"`
	Hostname   string           `json:"hostname,omitempty"`
	Product    string           `json:"product"`
	Version    string           `json:"version"`
	Auth       service.Auth     `json:"auth"`
	Risk       service.Severity `json:"risk"`
	Models     int              `json:"models"`
	FirstSeen  time.Time        `json:"first_seen"`
	LastSeen   time.Time        `json:"last_seen"`
	FirstRun   string           `json:"first_run"`
	LastRun    string           `json:"last_run"`
	Findings   int              `json:"findings"`
	TopFinding string           `json:"top_finding,omitempty"`
	// Gateway names the authenticating front seen before the model
	// server at the latest observation (service.Service.Gateway).
	Gateway string `json:"gateway,omitempty"`
}

// Key is host:port, as service.Service.Key.
func (h Host) Key() string { return joinHostPort(h.Host, h.Port) }

// GatewayAny and GatewayNone are HostFilter.Gateway values: fenced by
// any gateway, by none.
const (
	GatewayAny  = "any"
	GatewayNone = "none"
)

// HostFilter narrows Hosts. The zero value returns every host.
type HostFilter struct {
	// Product keeps hosts whose product is exactly this (case-insensitive).
	Product string
	// MinRisk keeps hosts rated at least this.
	MinRisk service.Severity
	// Auth keeps hosts with this auth state.
	Auth service.Auth
	// Address keeps one IP address ("10.0.0.5") or a prefix ("10.0.0.0/24").
	Address string
	// Gateway keeps hosts fenced by this gateway (llmfence-guard,
	// litellm, nginx, caddy, basic-auth, case-insensitive), GatewayAny
	// by any, GatewayNone by none.
	Gateway string
	// SeenSince keeps hosts last seen at or after this time.
	SeenSince time.Time
	// Limit caps the result; <= 0 means no cap.
	Limit int
}

// FindingFilter narrows Findings. The zero value returns every finding of
// the latest finished run.
type FindingFilter struct {
	// Run is a run reference; "" means RefLatest.
	Run string
	// MinSeverity keeps findings at least this severe.
	MinSeverity service.Severity
	// ID keeps one finding ID (case-insensitive).
	ID string
	// Address keeps one IP address or prefix, as HostFilter.Address.
	Address string
}

// FindingRow is one finding on one service of one run.
type FindingRow struct {
	RunID    string           `json:"run_id"`
	Host     string           `json:"host"`
	Port     int              `json:"port"`
	Hostname string           `json:"hostname,omitempty"`
	Product  string           `json:"product"`
	ID       string           `json:"id"`
	Severity service.Severity `json:"severity"`
	Title    string           `json:"title"`
	Detail   string           `json:"detail,omitempty"`
}

// Options tune OpenWith. The zero value is what Open uses.
type Options struct {
	// Logger receives migration and connection messages; nil means
	// slog.Default().
	Logger *slog.Logger
	// Now is the clock for run start and finish times; nil means time.Now.
	Now func() time.Time
	// Access says what Open may create for a SQLite database; see Access.
	Access Access
}

// Access says what Open may create. Commands use AccessCreateFile when
// they record new things and AccessExisting when they read (runs, hosts,
// findings, diff, ...) or change existing records, so a mistyped --db is
// an error instead of a new, empty store.
type Access uint8

const (
	// AccessCreate creates the database file and any missing directories
	// (programs and tests that chose the path themselves).
	AccessCreate Access = iota
	// AccessCreateFile creates the database file when it is missing, in a
	// directory that must exist, except at the default location
	// (DefaultPath with $LLMFENCE_DB unset), whose directory is created.
	AccessCreateFile
	// AccessExisting opens only a database that exists; nothing is
	// created (pending migrations still run).
	AccessExisting
)

// Errors callers may test for with errors.Is.
var (
	// ErrNotFound: the run reference matches no run.
	ErrNotFound = errors.New("not found")
	// ErrSchemaTooNew: the database was written by a newer llmfence.
	ErrSchemaTooNew = errors.New("database schema is newer than this llmfence")
	// ErrBadInput: an argument (run reference, status, filter) is invalid.
	ErrBadInput = errors.New("invalid input")
	// ErrNoStore: the database file or its directory does not exist and
	// Options.Access did not allow creating it.
	ErrNoStore = errors.New("no store")
	// ErrRunEnded: the run has already ended (finished, failed or marked
	// interrupted) and takes no more results or heartbeats.
	ErrRunEnded = errors.New("run has ended")
)
