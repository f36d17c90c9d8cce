package risk

import (
	"errors"
	"fmt"

	"github.com/llmfence/llmfence/internal/service"
)

// Raised is a finding a caller established itself for a catalogue entry
// that no service record can show: `llmfence audit` reads the machine (how
// a runtime listens, as which user, with which settings, what is on disk),
// not only what the server answers.
type Raised struct {
	ID      string // a catalogue ID for which CallerRaised is true
	Variant string // a severity variant of the entry ("" for its base severity)
	Detail  string // what on this machine triggered it
}

// Adjust changes one evaluation. Raise adds caller-raised findings; Omit
// leaves out the findings of the listed catalogue IDs (the audit omits what
// only a stranger on the network could do when a runtime listens on
// loopback alone). Both take part in the risk and remediation roll-up.
type Adjust struct {
	Raise []Raised
	Omit  []string
}

// callerRaised lists the entries whose check never fires on a service:
// only EvaluateWith raises them.
var callerRaised = map[string]bool{
	"LLMF-013": true, "LLMF-014": true, "LLMF-015": true, "LLMF-016": true, "LLMF-017": true,
}

// CallerRaised reports whether a catalogue entry is raised by callers
// through Adjust rather than by a check on the service record.
func CallerRaised(id string) bool { return callerRaised[id] }

func raisedByCaller(*Engine, *service.Service) []hit { return nil }

// EvaluateWith is Evaluate with caller-raised findings added and the
// omitted entries left out; findings, risk and remediation are rolled up
// together, so the most useful fix still comes first. It fails, changing
// nothing, when a raised ID or variant is not in the catalogue or is not
// caller-raised.
func (e *Engine) EvaluateWith(svc *service.Service, adj Adjust) error {
	if svc == nil {
		return nil
	}
	var errs []error
	raised := make([]hit, 0, len(adj.Raise))
	for _, r := range adj.Raise {
		en, ok := e.byID[r.ID]
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("raised finding %q is not in the findings catalogue", r.ID))
			continue
		case !callerRaised[r.ID]:
			errs = append(errs, fmt.Errorf("finding %s is decided by its check, not raised by callers", r.ID))
			continue
		}
		h := hit{entry: en, severity: en.Severity, variant: r.Variant, detail: r.Detail}
		if r.Variant != "" {
			s, ok := en.Variants[r.Variant]
			if !ok {
				errs = append(errs, fmt.Errorf("finding %s has no variant %q", r.ID, r.Variant))
				continue
			}
			h.severity = s
		}
		raised = append(raised, h)
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	omit := make(map[string]bool, len(adj.Omit))
	for _, id := range adj.Omit {
		omit[id] = true
	}
	hits := raised
	for _, h := range e.collect(svc) {
		if !omit[h.entry.ID] {
			hits = append(hits, h)
		}
	}
	e.apply(svc, hits)
	return nil
}

// AnnotateWith is Annotate with an Adjust applied to the rating.
func (j *Judge) AnnotateWith(svc *service.Service, adj Adjust) error {
	if svc == nil {
		return nil
	}
	for i := range svc.Models {
		m := &svc.Models[i]
		m.SystemPromptCategories = j.classifier.SystemPrompt(m.SystemPrompt)
		m.GuardrailsRemoved, m.GuardrailEvidence = j.classifier.GuardrailsRemoved(m.Name, m.ParentModel, m.Family, m.SystemPrompt)
	}
	return j.engine.EvaluateWith(svc, adj)
}

// Engine returns the catalogue and CVE engine the judge rates with.
func (j *Judge) Engine() *Engine { return j.engine }
