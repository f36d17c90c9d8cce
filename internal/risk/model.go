package risk

import (
	"sort"

	"github.com/llmfence/llmfence/internal/service"
)

// Concern names a problem a model has on its own, wherever it is found:
// on a scanned server or in a model store read from disk. A caller with
// its own finding IDs (inspect's INS-) maps a Concern to one of them; it
// never needs to know the IDs of this package's catalogue.
type Concern string

const (
	// ConcernHarmfulSystemPrompt: the model's system prompt is classified
	// into a harmful category (scan's harmful-system-prompt finding).
	ConcernHarmfulSystemPrompt Concern = "harmful-system-prompt"
	// ConcernGuardrailsRemoved: the model's lineage or system prompt says
	// its safety training was removed (scan's guardrails-removed finding).
	ConcernGuardrailsRemoved Concern = "guardrails-removed"
)

// modelConcerns are the catalogue entries whose checks judge one model
// alone, and the concern each one is.
var modelConcerns = map[string]Concern{
	"LLMF-005": ConcernHarmfulSystemPrompt,
	"LLMF-006": ConcernGuardrailsRemoved,
}

// ModelFinding is one finding RateModel makes: the finding as a scan
// reports it for the same model (ID, severity, title, detail), and what
// concern it is.
type ModelFinding struct {
	Concern Concern
	service.Finding
}

// RateModel classifies m's system prompt and lineage, as Annotate does for
// each model of a service (filling m's SystemPromptCategories,
// GuardrailsRemoved and GuardrailEvidence), and returns the findings that
// concern the model alone, rated as a scan rates the same model on a
// server whose authentication is unknown: the same model gets the same
// rating wherever it is found. Findings come highest severity first, then
// by ID and detail.
func (j *Judge) RateModel(m *service.Model) []ModelFinding {
	j.classifyModel(m)
	return j.engine.rateModel(*m)
}

// rateModel runs the model-alone checks on m as the one model of a
// service whose authentication is unknown.
func (e *Engine) rateModel(m service.Model) []ModelFinding {
	svc := &service.Service{Auth: service.AuthUnknown, Models: []service.Model{m}}
	var hits []hit
	for _, en := range e.Catalogue() {
		if _, ok := modelConcerns[en.ID]; ok {
			hits = append(hits, e.entryHits(en, svc)...)
		}
	}
	sort.SliceStable(hits, func(i, j int) bool { return hitLess(hits[i], hits[j]) })
	out := make([]ModelFinding, 0, len(hits))
	for _, h := range hits {
		out = append(out, ModelFinding{
			Concern: modelConcerns[h.entry.ID],
			Finding: service.Finding{ID: h.entry.ID, Severity: h.severity, Title: h.entry.Title, Detail: h.detail, DetailMsg: h.msg},
		})
	}
	return out
}

// entryHits runs the check of catalogue entry en on svc and settles each
// hit's severity: the check's own, else the variant's, else the entry's.
func (e *Engine) entryHits(en Entry, svc *service.Service) []hit {
	hits := checks[en.ID](e, svc)
	for i := range hits {
		h := &hits[i]
		h.entry = en
		if h.severity == "" {
			h.severity = en.Severity
			if s, ok := en.Variants[h.variant]; ok && h.variant != "" {
				h.severity = s
			}
		}
	}
	return hits
}

// hitLess orders hits as findings are listed: highest severity first, then
// by ID, then by detail.
func hitLess(a, b hit) bool {
	if ra, rb := a.severity.Rank(), b.severity.Rank(); ra != rb {
		return ra > rb
	}
	if a.entry.ID != b.entry.ID {
		return a.entry.ID < b.entry.ID
	}
	return a.detail < b.detail
}
