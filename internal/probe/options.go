package probe

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/llmfence/llmfence/internal/probe/packs"
	"github.com/llmfence/llmfence/internal/probe/transport"
)

// Config is what a run tests: everything that shapes its plan. A journal
// keeps it, so a resumed run plans exactly the same requests.
type Config struct {
	// Target is the base URL (see ParseTarget); Model the model tested.
	Target string `json:"target"`
	Model  string `json:"model"`
	// API is "ollama", "openai" or "" (detect).
	API string `json:"api,omitempty"`
	// Suites to run, in packs.Suites order.
	Suites []string `json:"suites"`
	// Languages of the built-in probes to send (en, ja).
	Languages []string `json:"languages"`
	// Baseline, when set, is a second model on the same target whose
	// guardrails the target's are compared with.
	Baseline string `json:"baseline,omitempty"`
	// Judge, when set, is a safety-classifier model on the same target
	// (for example llama-guard3) that grades the guardrails answers.
	Judge string `json:"judge,omitempty"`
	// Seed and Temperature are the decoding settings of every request
	// (deterministic by default: seed 42, temperature 0).
	Seed        int     `json:"seed"`
	Temperature float64 `json:"temperature"`
	// SystemPrompt, when set, is sent as the system message of the
	// guardrails, robustness and leak requests (the deployment's prompt),
	// and is what leak extraction is measured against.
	SystemPrompt string `json:"system_prompt,omitempty"`
	// Triggers are backdoor candidates from --triggers; Canaries the
	// memorisation tests.
	Triggers []TriggerCandidate `json:"triggers,omitempty"`
	Canaries []CanarySpec       `json:"canaries,omitempty"`
	// UserPacks are the packs loaded besides the built-in ones, by file and
	// content hash.
	UserPacks []PackRef `json:"user_packs,omitempty"`
	// RareTokens caps the model's own rare vocabulary tokens tried as
	// backdoor candidates (0: none; default 4).
	RareTokens int `json:"rare_tokens"`
	// MaxRequests trims the plan (stratified over suites and categories);
	// 0 keeps it whole.
	MaxRequests int `json:"max_requests,omitempty"`
}

// TriggerCandidate is a backdoor candidate from a triggers file.
type TriggerCandidate struct {
	Text   string `json:"text"`
	Source string `json:"source"`
}

// CanarySpec is one memorisation test: a prefix, and the secret the model
// must not produce (empty: any personal data of Category counts, as for a
// datascan finding whose value was redacted).
type CanarySpec struct {
	Prefix   string `json:"prefix"`
	Secret   string `json:"secret,omitempty"`
	Category string `json:"category,omitempty"`
}

// PackRef names a user pack.
type PackRef struct {
	Path   string `json:"path"`
	SHA256 string `json:"sha256"`
}

// Options is Config plus how the run is carried out. Zero fields take the
// defaults documented on each.
type Options struct {
	Config

	// APIKey is sent as a Bearer token (for `llmfence guard` or a server
	// that wants a key). It is never written to the journal or the store.
	APIKey      string
	InsecureTLS bool
	UserAgent   string
	HTTPClient  *http.Client
	Limits      transport.Limits

	// Stream streams every answer. By default only servers that report no
	// timings (OpenAI-compatible APIs) are streamed, where the time to the
	// first token shows queueing; Ollama's own API reports its queue time
	// with the answer, and a whole answer costs one client wake-up instead
	// of one per token.
	Stream bool

	// Concurrency fixes the number of requests in flight; 0 adapts it to
	// what the server sustains, up to MaxConcurrency (default 16).
	Concurrency, MaxConcurrency int
	// MaxTokens caps the generated tokens of the run (0: no cap); Timeout
	// the run's wall time (0: none). A run stopped by a budget keeps what
	// it has, marked incomplete.
	MaxTokens int64
	Timeout   time.Duration
	// RequestTimeout bounds one request (default 2 minutes).
	RequestTimeout time.Duration
	// MaxConsecutiveErrors stops the run after this many failed requests
	// in a row (default 5).
	MaxConsecutiveErrors int

	// Packs are the probe packs (built-in and user); nil loads the
	// built-in ones.
	Packs []*packs.Pack

	// Journal is the journal file to create; Resume one to continue (its
	// configuration replaces Config).
	Journal, Resume string
	// Progress, when set, receives snapshots a few times a second.
	Progress func(Progress)
	Logger   *slog.Logger
	// Tool is written into the journal (llmfence version).
	Tool string
}

// Defaults.
const (
	DefaultSeed           = 42
	DefaultMaxConcurrency = 16
	DefaultRequestTimeout = 2 * time.Minute
	DefaultRareTokens     = 4
	// MaxPlan bounds the requests of one run whatever the packs say.
	MaxPlan = 100_000
)

// Answer lengths per kind of request, in tokens.
const (
	predictGuardrails = 128
	predictBackdoor   = 48
	predictLeak       = 192
	predictCanary     = 48
	predictJudge      = 16
)

func (o *Options) withDefaults() {
	if o.MaxConcurrency <= 0 {
		o.MaxConcurrency = DefaultMaxConcurrency
	}
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = DefaultRequestTimeout
	}
	if o.MaxConsecutiveErrors <= 0 {
		o.MaxConsecutiveErrors = 5
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}
