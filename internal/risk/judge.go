package risk

import (
	"github.com/llmfence/llmfence/internal/classify"
	"github.com/llmfence/llmfence/internal/service"
	"github.com/llmfence/llmfence/internal/vulndb"
)

// Judge is the whole verdict on a service: every model's system prompt and
// lineage classified, then the catalogue and CVE table applied. Everything
// that rates a service (scan, and model stores read by inspect) goes through
// it, so the same model gets the same verdict wherever it is found.
type Judge struct {
	classifier *classify.Classifier
	engine     *Engine
	memo       verdictMemo // prompts shared by many hosts are classified once
}

// NewJudge loads the embedded classifier rules, catalogue and vulnerability
// data.
func NewJudge() (*Judge, error) {
	db, err := vulndb.Embedded()
	if err != nil {
		return nil, err
	}
	return NewJudgeWith(db)
}

// NewJudgeWith is NewJudge with the given vulnerability data (the embedded
// data refreshed by `llmfence vulndb import`, see vulndb.Open).
func NewJudgeWith(db *vulndb.DB) (*Judge, error) {
	c, err := classify.New()
	if err != nil {
		return nil, err
	}
	e, err := NewWith(db)
	if err != nil {
		return nil, err
	}
	return &Judge{classifier: c, engine: e}, nil
}

// VulnData returns the vulnerability data the judge uses.
func (j *Judge) VulnData() *vulndb.DB { return j.engine.db }

// Annotate fills each model's system-prompt categories and guardrail
// verdict, then the service's findings, risk and remediation.
func (j *Judge) Annotate(svc *service.Service) {
	for i := range svc.Models {
		j.classifyModel(&svc.Models[i])
	}
	j.engine.Evaluate(svc)
}

// classifyModel fills m's system-prompt categories and guardrail verdict.
func (j *Judge) classifyModel(m *service.Model) {
	m.SystemPromptCategories, m.GuardrailsRemoved, m.GuardrailEvidence = j.memo.model(m.Name, m.ParentModel, m.Family, m.SystemPrompt, j.classifier.Model)
}
