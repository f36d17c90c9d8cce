// Package service defines what llmfence knows about one network service that
// speaks an LLM API: the record a scan produces, the store keeps, reports
// render and later tools script against.
//
// The JSON field names are a public contract (`llmfence scan --format json`).
// Add fields; never rename or remove one.
package service

import (
	"net"
	"strconv"
	"strings"
	"time"
)

// Auth says whether the service demanded credentials for its model API.
type Auth string

const (
	AuthNone     Auth = "none"     // the model API answered without credentials
	AuthRequired Auth = "required" // it answered 401/403 (or a login wall)
	AuthUnknown  Auth = "unknown"  // could not tell
)

// Severity orders findings and risk ratings.
type Severity string

const (
	SeverityNone     Severity = "none"
	SeverityInfo     Severity = "info"
	SeverityLow      Severity = "low"
	SeverityMedium   Severity = "medium"
	SeverityHigh     Severity = "high"
	SeverityCritical Severity = "critical"
)

// Rank orders severities: none < info < low < medium < high < critical.
// Unknown strings rank as none.
func (s Severity) Rank() int {
	switch Severity(strings.ToLower(string(s))) {
	case SeverityInfo:
		return 1
	case SeverityLow:
		return 2
	case SeverityMedium:
		return 3
	case SeverityHigh:
		return 4
	case SeverityCritical:
		return 5
	}
	return 0
}

// ParseSeverity accepts a severity name in any case; ok is false for anything
// else.
func ParseSeverity(s string) (Severity, bool) {
	v := Severity(strings.ToLower(strings.TrimSpace(s)))
	switch v {
	case SeverityNone, SeverityInfo, SeverityLow, SeverityMedium, SeverityHigh, SeverityCritical:
		return v, true
	}
	return "", false
}

// System-prompt categories: the fixed set a classifier may assign.
const (
	CategoryGuardrailRemoval       = "guardrail_removal"
	CategoryFraudPhishing          = "fraud_phishing"
	CategoryMalwareIntrusion       = "malware_intrusion"
	CategoryHarassmentHate         = "harassment_hate"
	CategoryDisinformation         = "disinformation"
	CategoryPersonalDataHarvesting = "personal_data_harvesting"
	CategoryCSAM                   = "csam"
	CategoryViolentGore            = "violent_gore"
)

// Categories lists every system-prompt category in a stable order.
var Categories = []string{
	CategoryGuardrailRemoval,
	CategoryFraudPhishing,
	CategoryMalwareIntrusion,
	CategoryHarassmentHate,
	CategoryDisinformation,
	CategoryPersonalDataHarvesting,
	CategoryCSAM,
	CategoryViolentGore,
}

// SortCategories returns the known categories among cs, without duplicates,
// in the order of Categories. The result is never nil.
func SortCategories(cs []string) []string {
	out := []string{}
	for _, c := range Categories {
		for _, x := range cs {
			if x == c {
				out = append(out, c)
				break
			}
		}
	}
	return out
}

// Model is one model a service offers.
type Model struct {
	Name          string `json:"name"`
	Digest        string `json:"digest"`
	Family        string `json:"family"`
	ParameterSize string `json:"parameter_size"`
	Quantization  string `json:"quantization"`
	Size          int64  `json:"size,omitempty"`
	Format        string `json:"format,omitempty"`
	ParentModel   string `json:"parent_model,omitempty"`
	// Remote is true for models the server forwards to a cloud provider
	// (Ollama "*:cloud" / "*-cloud"), spending the owner's quota.
	Remote bool `json:"remote,omitempty"`

	SystemPrompt           string   `json:"system_prompt"`
	SystemPromptCategories []string `json:"system_prompt_categories"`
	GuardrailsRemoved      bool     `json:"guardrails_removed"`
	// GuardrailEvidence says why GuardrailsRemoved is true.
	GuardrailEvidence string `json:"guardrail_evidence,omitempty"`

	Template   string `json:"template,omitempty"`
	Parameters string `json:"parameters,omitempty"`
	License    string `json:"license,omitempty"`
}

// LoadedModel is a model resident in memory (Ollama /api/ps).
type LoadedModel struct {
	Name      string    `json:"name"`
	Digest    string    `json:"digest,omitempty"`
	Size      int64     `json:"size,omitempty"`
	SizeVRAM  int64     `json:"size_vram,omitempty"`
	ExpiresAt time.Time `json:"expires_at,omitzero"`
}

// Finding is one catalogue entry that applies to a service.
type Finding struct {
	ID       string   `json:"id"`
	Severity Severity `json:"severity"`
	Title    string   `json:"title"`
	// Detail says what on this service triggered the finding.
	Detail string `json:"detail,omitempty"`
	// DetailMsg is the message Detail was written from, so a report can
	// say it in the reader's language (internal/locale). Detail and Title
	// stay English in machine-readable output.
	DetailMsg *Message `json:"detail_msg,omitempty"`
}

// Message is a human-facing text as a message ID and its arguments
// (internal/locale), for readers of other languages than English.
type Message struct {
	ID   string            `json:"id"`
	Args map[string]string `json:"args,omitempty"`
}

// Service is everything one scan learned about one host:port.
type Service struct {
	Host     string `json:"host"`               // IP address as connected to
	Hostname string `json:"hostname,omitempty"` // the name the user gave, if any
	Port     int    `json:"port"`
	URL      string `json:"url"` // base URL the fingerprint used

	Product string `json:"product"` // fingerprint ID: "ollama", "vllm", ..., "openai-compatible", "http"
	Version string `json:"version"`
	Auth    Auth   `json:"auth"`
	TLS     bool   `json:"tls"`

	// Gateway names the authenticating front recognised before the model
	// server, when its answers show one: "llmfence-guard", "litellm",
	// "nginx", "caddy" (IDs from the fingerprint catalogue's gateways).
	// Empty when none was recognised. Auth is then "required": the
	// gateway, not the model server, refused the anonymous request. A
	// gateway that hides everything behind it leaves Product "http".
	Gateway string `json:"gateway,omitempty"`

	ServerHeader string `json:"server_header,omitempty"`
	// CORS is the Access-Control-Allow-Origin the service sent to a foreign
	// Origin, if any ("*" means any web page may call it).
	CORS string `json:"cors,omitempty"`
	// ManagementOpen is true when model-management routes (pull, push,
	// create, copy, delete, blobs) answered without credentials. It is
	// established with read-only requests only.
	ManagementOpen bool `json:"management_open"`
	// Evidence: short, human-readable notes on how the product was
	// recognised and what was read.
	Evidence []string `json:"evidence,omitempty"`

	Models []Model        `json:"models"`
	Loaded []LoadedModel  `json:"loaded,omitempty"`
	Extra  map[string]any `json:"extra,omitempty"`

	Findings    []Finding `json:"findings"`
	Risk        Severity  `json:"risk"`
	Remediation string    `json:"remediation,omitempty"`
	// RemediationMsgs are the messages of Remediation's lines, in order.
	RemediationMsgs []Message `json:"remediation_msgs,omitempty"`
	// VulnDataDate is the date (YYYY-MM-DD) of the vulnerability data the
	// known-vulnerability findings were judged with, so a reader knows how
	// old it is (`llmfence vulndb list`).
	VulnDataDate string `json:"vuln_data_date,omitempty"`

	ScannedAt time.Time `json:"scanned_at"`
	// Error records why fingerprinting stopped early, if it did.
	Error string `json:"error,omitempty"`
}

// Key identifies a service across runs.
func (s *Service) Key() string {
	return net.JoinHostPort(s.Host, strconv.Itoa(s.Port))
}
