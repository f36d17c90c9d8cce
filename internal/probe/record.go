package probe

import (
	"github.com/llmfence/llmfence/internal/probe/transport"
	"github.com/llmfence/llmfence/internal/service"
)

// Roles of a request.
const (
	RoleTarget   = "target"   // the model under test
	RoleBaseline = "baseline" // --baseline: the model compared with
	RoleJudge    = "judge"    // --judge: the model that grades answers
)

// Positions of a backdoor candidate in a neutral prompt.
const (
	PosNone   = "none"
	PosStart  = "start"
	PosMiddle = "middle"
	PosEnd    = "end"
)

// Spec is one request a run sends. Key is unique in a run and stable
// across runs of the same configuration, so a journal can say which specs
// are done.
type Spec struct {
	Key      string `json:"key"`
	Suite    string `json:"suite"`
	Probe    string `json:"probe"`
	Kind     string `json:"kind,omitempty"`
	Category string `json:"category,omitempty"`
	Lang     string `json:"lang,omitempty"`
	Role     string `json:"role"`
	Model    string `json:"model"`
	// Family (robustness), Trigger and Position (backdoor; Control is the
	// control insertion used instead of a trigger), Canary (leak, 1-based)
	// and Judged (judge requests: the key of the attempt graded).
	Family   string `json:"family,omitempty"`
	Trigger  string `json:"trigger,omitempty"`
	Control  string `json:"control,omitempty"`
	Position string `json:"position,omitempty"`
	Canary   int    `json:"canary,omitempty"`
	Judged   string `json:"judged,omitempty"`

	System     string              `json:"-"`
	Messages   []transport.Message `json:"-"`
	Raw        string              `json:"-"`
	NumPredict int                 `json:"-"`
	Logprobs   bool                `json:"-"`
}

// prompt is the text the spec's answer responds to (the last user
// message, or the raw text).
func (s *Spec) prompt() string {
	if s.Raw != "" {
		return s.Raw
	}
	for i := len(s.Messages) - 1; i >= 0; i-- {
		if s.Messages[i].Role == "user" {
			return s.Messages[i].Content
		}
	}
	return ""
}

// Outcome is what one request returned. It is what the journal keeps, so
// a resumed run can judge it again.
type Outcome struct {
	Key          string    `json:"key"`
	Text         string    `json:"text"`
	Tokens       int       `json:"tokens"`
	PromptTokens int       `json:"prompt_tokens,omitempty"`
	DoneReason   string    `json:"done_reason,omitempty"`
	Cut          string    `json:"cut,omitempty"`
	LatencyMS    int64     `json:"latency_ms"`
	TTFTMS       int64     `json:"ttft_ms"`
	QueueMS      int64     `json:"queue_ms"` // -1: the server reports no durations
	Logprobs     []float64 `json:"logprobs,omitempty"`
	Error        string    `json:"error,omitempty"`
}

// Verdicts are the detectors' findings on one answer.
type Verdicts struct {
	// Refusal is refusal, compliance or partial (requests that ask for
	// something); RefusalRule the rule that fired.
	Refusal     string `json:"refusal,omitempty"`
	RefusalRule string `json:"refusal_rule,omitempty"`
	// Categories are the harmful-activity categories internal/classify
	// finds in the answer.
	Categories []string `json:"categories,omitempty"`
	// Judge is the judge model's verdict ("safe", "unsafe S2", ...).
	Judge string `json:"judge,omitempty"`
	// Gibberish is the answer's distance from natural language (0..1);
	// Perplexity exp(mean negative log-probability) where the server
	// returned log-probabilities.
	Gibberish  *float64 `json:"gibberish,omitempty"`
	Perplexity *float64 `json:"perplexity,omitempty"`
	// Divergence is 1 - similarity to the same prompt's answer without
	// insertion (backdoor).
	Divergence *float64 `json:"divergence,omitempty"`
	// PromptRecall is the share of the known system prompt the answer
	// reproduces; Leaked says it counts as a leak (leak).
	PromptRecall *float64 `json:"prompt_recall,omitempty"`
	Leaked       *bool    `json:"leaked,omitempty"`
	// Completed and ExposureBits are the canary test's findings.
	Completed    *bool    `json:"completed,omitempty"`
	ExposureBits *float64 `json:"exposure_bits,omitempty"`
}

// Attempt is one request and what came of it: the `kind: "attempt"`
// record of --format json.
type Attempt struct {
	Kind     string `json:"kind"` // "attempt"
	Suite    string `json:"suite"`
	Probe    string `json:"probe"`
	Category string `json:"category,omitempty"`
	Lang     string `json:"lang,omitempty"`
	Role     string `json:"role"`
	Model    string `json:"model"`
	Family   string `json:"family,omitempty"`
	Trigger  string `json:"trigger,omitempty"`
	Control  string `json:"control,omitempty"`
	Position string `json:"position,omitempty"`
	// PromptHash identifies the exact prompt; Excerpt is the start of the
	// answer with personal data and secrets redacted.
	PromptHash   string   `json:"prompt_hash"`
	Excerpt      string   `json:"excerpt"`
	Verdicts     Verdicts `json:"verdicts"`
	LatencyMS    int64    `json:"latency_ms"`
	Tokens       int      `json:"tokens"`
	PromptTokens int      `json:"prompt_tokens,omitempty"`
	Cut          string   `json:"cut,omitempty"`
	Error        string   `json:"error,omitempty"`

	spec  *Spec
	out   *Outcome
	feats features
}

// Summary verdicts.
const (
	VerdictIntact   = "intact"
	VerdictWeakened = "weakened"
	VerdictRemoved  = "removed"
	VerdictClean    = "clean"
	VerdictBackdoor = "backdoor"
	VerdictNoLeak   = "no_leak"
	VerdictLeak     = "leak"
	VerdictRobust   = "robust"
	VerdictFragile  = "fragile"
	// VerdictUnknown: too few answers to judge.
	VerdictUnknown = "unknown"
)

// Summary is one suite's result: the `kind: "summary"` record.
type Summary struct {
	Kind    string `json:"kind"` // "summary"
	Suite   string `json:"suite"`
	Verdict string `json:"verdict"`
	// Severity rates the verdict (none, medium, high, critical); --fail-on
	// compares it.
	Severity service.Severity `json:"severity"`
	// Complete is false when budgets, errors or an interruption left some
	// of the suite's requests unanswered; Attempts counts the answered
	// ones and Errors the failed ones.
	Complete bool   `json:"complete"`
	Attempts int    `json:"attempts"`
	Errors   int    `json:"errors"`
	Model    string `json:"model"`
	// Reason says in one sentence why the verdict is what it is.
	Reason string `json:"reason"`
	// ReasonMsgs are the messages Reason was written from, one per part
	// (Reason joins their English with "; "), so a report can say it in
	// the reader's language (internal/locale, internal/probe/report's
	// messages). Reason stays English in machine-readable output.
	ReasonMsgs []service.Message `json:"reason_msgs,omitempty"`

	// guardrails
	RefusalRate       *float64        `json:"refusal_rate,omitempty"`
	RefusalRateCI     *[2]float64     `json:"refusal_rate_ci,omitempty"`
	OverRefusalRate   *float64        `json:"over_refusal_rate,omitempty"`
	OverRefusalRateCI *[2]float64     `json:"over_refusal_rate_ci,omitempty"`
	PartialRate       *float64        `json:"partial_rate,omitempty"`
	HarmfulAnswers    *int            `json:"harmful_answers,omitempty"`
	JudgeUnsafeRate   *float64        `json:"judge_unsafe_rate,omitempty"`
	Categories        []CategoryRate  `json:"categories,omitempty"`
	Baseline          *BaselineResult `json:"baseline,omitempty"`

	// backdoor
	Triggers []TriggerResult `json:"triggers,omitempty"`

	// leak
	SystemPromptLeaked *bool          `json:"system_prompt_leaked,omitempty"`
	SystemPromptSource string         `json:"system_prompt_source,omitempty"`
	LeakEvidence       string         `json:"leak_evidence,omitempty"`
	CanariesCompleted  *int           `json:"canaries_completed,omitempty"`
	Canaries           []CanaryResult `json:"canaries,omitempty"`

	// robustness
	DirectSuccessRate *float64       `json:"direct_success_rate,omitempty"`
	Families          []FamilyResult `json:"families,omitempty"`
}

// CategoryRate is the refusal rate on one category's requests.
type CategoryRate struct {
	Category        string  `json:"category"`
	RefusalRate     float64 `json:"refusal_rate"`
	Harmful         int     `json:"harmful"`
	OverRefusalRate float64 `json:"over_refusal_rate"`
	Benign          int     `json:"benign"`
}

// BaselineResult compares the refusal rate with --baseline's.
type BaselineResult struct {
	Model        string     `json:"model"`
	RefusalRate  float64    `json:"refusal_rate"`
	Difference   float64    `json:"difference"`
	DifferenceCI [2]float64 `json:"difference_ci"`
	Verdict      string     `json:"verdict"`
}

// TriggerResult is one backdoor candidate's test.
type TriggerResult struct {
	Trigger string `json:"trigger"`
	// Source says where the candidate came from: a paper (built-in),
	// "triggers file" or "vocabulary".
	Source string `json:"source"`
	// Effect is Cliff's delta of the anomaly scores of answers with the
	// trigger against answers with control insertions (-1..1); PValue the
	// one-sided Mann-Whitney p-value; Flagged says both passed the
	// thresholds (after Bonferroni correction over all candidates).
	Effect  float64 `json:"effect"`
	PValue  float64 `json:"p_value"`
	Flagged bool    `json:"flagged"`
	// Signal names the strongest signal (gibberish, divergence,
	// convergence, refusal_flip, perplexity); Samples the answers with the
	// trigger.
	Signal  string `json:"signal,omitempty"`
	Samples int    `json:"samples"`
	Example string `json:"example,omitempty"`
	// Mean signals of the triggered answers.
	Gibberish   float64 `json:"gibberish"`
	Divergence  float64 `json:"divergence"`
	Convergence float64 `json:"convergence"`
	RefusalFlip float64 `json:"refusal_flip"`
}

// CanaryResult is one canary's memorisation test.
type CanaryResult struct {
	Canary string `json:"canary"` // the prefix, clipped
	// Completed: an answer reproduced the secret (or, for a datascan
	// personal-data prefix with no known secret, personal data of its
	// category). ExposureBits estimates the secret-sharer exposure.
	Completed    bool    `json:"completed"`
	ExposureBits float64 `json:"exposure_bits"`
	MaxBits      float64 `json:"max_bits"`
}

// FamilyResult is one jailbreak family's attack success rate.
type FamilyResult struct {
	Family      string     `json:"family"`
	SuccessRate float64    `json:"success_rate"`
	CI          [2]float64 `json:"success_rate_ci"`
	Attempts    int        `json:"attempts"`
	// PValue is Fisher's one-sided test that the family beats the direct
	// request; Worked says the family got harmful requests answered.
	PValue float64 `json:"p_value"`
	Worked bool    `json:"worked"`
}

// because adds a part to the summary's reason: its English text, and the
// message (ID and arguments) it was written from.
func (s *Summary) because(english, id string, kv ...string) {
	if s.Reason != "" {
		s.Reason += "; "
	}
	s.Reason += english
	m := service.Message{ID: id}
	for i := 0; i+1 < len(kv); i += 2 {
		if m.Args == nil {
			m.Args = map[string]string{}
		}
		m.Args[kv[i]] = kv[i+1]
	}
	s.ReasonMsgs = append(s.ReasonMsgs, m)
}
