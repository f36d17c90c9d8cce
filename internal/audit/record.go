package audit

import (
	"time"

	"github.com/llmfence/llmfence/internal/service"
)

// Record kinds of the JSON Lines output.
const (
	KindMachine = "machine"
	KindRuntime = "runtime"
	KindStore   = "store"
)

// RiskUnknown is the risk of a record the audit could not read completely
// and found nothing above info on: never "none" or "info", which would
// claim it is (nearly) safe.
const RiskUnknown service.Severity = "unknown"

// Exposure values of a runtime.
const (
	ExposureAll          = scopeAll      // a socket bound to 0.0.0.0 or ::
	ExposureNetwork      = scopeNetwork  // a socket bound to a network address
	ExposureLoopback     = scopeLoopback // every socket on loopback
	ExposureNotListening = "not-listening"
	ExposureNotRunning   = "not-running" // a service definition only
	ExposureUnknown      = "unknown"     // its sockets could not be read
)

// Result is one audit of one machine. Field names of the records are a
// public contract (`llmfence audit --format json`, and what `llmfence
// serve` ingests): add fields, never rename or remove one.
type Result struct {
	Machine  *MachineRecord
	Runtimes []*Runtime
	Stores   []*Store
}

// MachineRecord is the first JSON Lines record: which machine, when, by
// whom, and whether the audit saw everything.
type MachineRecord struct {
	Kind       string           `json:"kind"` // "machine"
	Host       string           `json:"host"`
	MachineID  string           `json:"machine_id,omitempty"`
	OS         string           `json:"os"`
	Kernel     string           `json:"kernel,omitempty"`
	Reader     string           `json:"reader"` // which OS reader ran ("linux")
	Privileged bool             `json:"privileged"`
	AuditedAt  time.Time        `json:"audited_at"`
	Llmfence   string           `json:"llmfence"`
	Runtimes   int              `json:"runtimes"`
	Stores     int              `json:"stores"`
	Risk       service.Severity `json:"risk"`
	// Complete is false when something could not be read; Notes say what.
	Complete bool     `json:"complete"`
	Notes    []string `json:"notes,omitempty"`
	// NoteMsgs pair with Notes: the message each was written from
	// (internal/locale), so a report says it in the reader's language.
	NoteMsgs []service.Message `json:"note_msgs,omitempty"`
}

// Runtime is one local LLM runtime: a running server (with its helper
// processes), or a service definition that would start one.
type Runtime struct {
	Kind    string `json:"kind"` // "runtime"
	Host    string `json:"host"`
	Product string `json:"product"`
	Version string `json:"version"`
	// VersionSource says where the version came from: "probe" (the
	// runtime's own answer on loopback) or "build info" (its executable).
	VersionSource string `json:"version_source,omitempty"`
	PID           int    `json:"pid"` // 0 for a service definition that is not running
	PIDs          []int  `json:"pids,omitempty"`
	User          string `json:"user"`
	UID           int    `json:"uid"`
	Running       bool   `json:"running"`
	Exe           string `json:"exe,omitempty"`
	// Cmdline is the command line with secret values replaced.
	Cmdline   []string   `json:"cmdline,omitempty"`
	Unit      string     `json:"unit,omitempty"`
	Container *Container `json:"container,omitempty"`
	NetNS     string     `json:"netns,omitempty"`
	StartedBy string     `json:"started_by,omitempty"`

	// Listen lists the listening addresses (addr:port) of its processes.
	Listen   []string `json:"listen"`
	Exposed  bool     `json:"exposed"`
	Exposure string   `json:"exposure"`
	// Settings maps each setting read (environment variable or flag) to
	// its value as read; secrets are replaced. SettingSources says where
	// each came from.
	Settings       map[string]string `json:"settings"`
	SettingSources map[string]string `json:"setting_sources,omitempty"`
	// SettingSourceMsgs are the messages SettingSources were written from.
	SettingSourceMsgs map[string]service.Message `json:"setting_source_msgs,omitempty"`
	Probe             *Probe                     `json:"probe,omitempty"`
	Stores            []string                   `json:"stores,omitempty"`

	Findings    []service.Finding `json:"findings"`
	Risk        service.Severity  `json:"risk"`
	Remediation string            `json:"remediation,omitempty"`
	// RemediationMsgs pair with Remediation's lines (internal/locale); an
	// empty ID marks a line said only in English.
	RemediationMsgs []service.Message `json:"remediation_msgs,omitempty"`
	Complete        bool              `json:"complete"`
	Notes           []string          `json:"notes,omitempty"`
	NoteMsgs        []service.Message `json:"note_msgs,omitempty"` // pair with Notes
}

// Container says which container a process runs in.
type Container struct {
	Engine string `json:"engine"` // docker, podman, containerd, cri-o, kubernetes, lxc
	ID     string `json:"id,omitempty"`
}

// Probe is what the runtime answered on its own loopback port.
type Probe struct {
	Addr    string       `json:"addr"`
	Product string       `json:"product,omitempty"`
	Version string       `json:"version,omitempty"`
	Auth    service.Auth `json:"auth,omitempty"`
	CORS    string       `json:"cors,omitempty"`
	Models  int          `json:"models"`
	Error   string       `json:"error,omitempty"`
}

// Store is one model store on disk.
type Store struct {
	Kind    string      `json:"kind"` // "store"
	Host    string      `json:"host"`
	Path    string      `json:"path"`
	Runtime string      `json:"runtime"`
	Models  int         `json:"models"`
	Bytes   int64       `json:"bytes"`
	Largest []ModelSize `json:"largest,omitempty"`
	// CloudModels are Ollama models whose manifests forward to a cloud
	// provider.
	CloudModels []string `json:"cloud_models,omitempty"`
	Owner       string   `json:"owner,omitempty"`
	UsedBy      []int    `json:"used_by,omitempty"`
	// WritableByOthers lists (the first few) paths other users can write.
	WritableByOthers []string        `json:"writable_by_others,omitempty"`
	Inspect          *InspectSummary `json:"inspect,omitempty"`

	Findings    []service.Finding `json:"findings"`
	Risk        service.Severity  `json:"risk"`
	Remediation string            `json:"remediation,omitempty"`
	// RemediationMsgs pair with Remediation's lines; an empty ID marks a
	// line that is only a command.
	RemediationMsgs []service.Message `json:"remediation_msgs,omitempty"`
	Complete        bool              `json:"complete"`
	Notes           []string          `json:"notes,omitempty"`
	NoteMsgs        []service.Message `json:"note_msgs,omitempty"` // pair with Notes
}

// InspectSummary is what `--inspect` found in a store.
type InspectSummary struct {
	Files    int            `json:"files"`
	Verdicts map[string]int `json:"verdicts"`
	Errors   int            `json:"errors"`
}
