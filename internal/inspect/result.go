package inspect

import (
	"github.com/llmfence/llmfence/internal/service"
	"github.com/llmfence/llmfence/internal/verdict"
)

// Result is the verdict on one file: one JSON Lines object of
// `llmfence inspect --format json`. Field names are a public contract: add
// fields, never rename or remove one.
type Result struct {
	Path    string          `json:"path"`
	Format  string          `json:"format"`
	Size    int64           `json:"size"`
	SHA256  string          `json:"sha256"`
	Verdict verdict.Verdict `json:"verdict"`
	// Findings of the file and of every archive member inside it (Member
	// says which); never nil.
	Findings []verdict.Finding `json:"findings"`
	// Metadata is a format-specific summary (GGUF header summary,
	// safetensors tensor statistics, pickle imports, archive members, Ollama
	// model details).
	Metadata map[string]any `json:"metadata,omitempty"`
	// Model is what the file says about the model it holds, when known.
	Model *ModelInfo `json:"model,omitempty"`
	// Error says why the file could not be inspected (then Verdict is
	// "not-inspected" unless findings say worse; the exit status is 2).
	Error string `json:"error,omitempty"`
	// Executes is true when a finding means loading the file runs code
	// nobody vetted; such a file fails every --fail-on threshold.
	Executes bool `json:"executes,omitempty"`
}

// MaxSeverity is the most serious severity among the findings ("none" for
// no findings).
func (r *Result) MaxSeverity() service.Severity {
	out := service.SeverityNone
	for _, f := range r.Findings {
		if f.Severity.Rank() > out.Rank() {
			out = f.Severity
		}
	}
	return out
}

// Fails reports whether a finding is at or above the severity threshold
// (with threshold "none" any finding fails), or the file would run code
// when loaded (whatever the threshold).
func (r *Result) Fails(threshold service.Severity) bool {
	if r.Verdict == verdict.Malicious || verdict.Executes(r.Findings) {
		return true
	}
	t := max(threshold.Rank(), 1)
	for _, f := range r.Findings {
		if f.Severity.Rank() >= t {
			return true
		}
	}
	return false
}

// finish fills the verdict from the findings and makes Findings non-nil.
func (r *Result) finish() {
	if r.Findings == nil {
		r.Findings = []verdict.Finding{}
	}
	vs := make([]verdict.Verdict, 0, len(r.Findings))
	for _, f := range r.Findings {
		vs = append(vs, f.Verdict)
	}
	if r.Error != "" {
		vs = append(vs, verdict.NotInspected)
	}
	r.Verdict = verdict.Worst(vs...)
	r.Executes = verdict.Executes(r.Findings)
}

// Summary counts what one Inspect call saw.
type Summary struct {
	Files    int                     `json:"files"`
	Verdicts map[verdict.Verdict]int `json:"verdicts"`
	// Failed counts files with a finding at or above Options.FailOn.
	Failed int `json:"failed"`
	// Errors counts files that could not be inspected (read errors).
	Errors int `json:"errors"`
	// NotInspected counts files whose verdict is not-inspected.
	NotInspected int `json:"not_inspected"`
}

// Merge adds the counts of o to s (the summaries of two inspections, such
// as files and an Ollama store, into one).
func (s *Summary) Merge(o Summary) {
	s.Files += o.Files
	s.Failed += o.Failed
	s.Errors += o.Errors
	s.NotInspected += o.NotInspected
	for v, n := range o.Verdicts {
		if s.Verdicts == nil {
			s.Verdicts = map[verdict.Verdict]int{}
		}
		s.Verdicts[v] += n
	}
}

func (s *Summary) add(r *Result, failOn service.Severity) {
	if s.Verdicts == nil {
		s.Verdicts = map[verdict.Verdict]int{}
	}
	s.Files++
	s.Verdicts[r.Verdict]++
	if r.Fails(failOn) {
		s.Failed++
	}
	if r.Error != "" {
		s.Errors++
	}
	if r.Verdict == verdict.NotInspected {
		s.NotInspected++
	}
}
