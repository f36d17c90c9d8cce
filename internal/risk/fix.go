package risk

import (
	"strings"

	"github.com/llmfence/llmfence/internal/locale"
	"github.com/llmfence/llmfence/internal/service"
)

// FixMessage is how to fix one finding of a judged service, as a message:
// the remediation step the judge recorded for that finding when the
// service has one (Service.RemediationMsgs), else the catalogue's fix for
// the service's product, filled with the service's port. ok is false for
// an unknown finding, and for a fix that needs what only the judge knew
// (the fixed version and CVEs of a known-vulnerability finding) when the
// service's remediation does not carry it.
func (e *Engine) FixMessage(f service.Finding, svc *service.Service) (service.Message, bool) {
	prefix := FixID(f.ID, "")
	for _, m := range svc.RemediationMsgs {
		if strings.HasPrefix(m.ID, prefix) {
			return m, true
		}
	}
	en, ok := e.byID[f.ID]
	if !ok {
		return service.Message{}, false
	}
	id := FixID(en.ID, fixKey(en, svc.Product, ""))
	all := FixArgs(svc)
	args := map[string]string{}
	for _, p := range e.en.Catalogue().Placeholders(id) {
		v, ok := all[p]
		if !ok {
			return service.Message{}, false
		}
		args[p] = v
		if m, ok := all[p+"_msg"]; ok {
			args[p+"_msg"] = m
		}
	}
	return service.Message{ID: id, Args: args}, true
}

// Fix says how to fix one finding of a judged service in the printer's
// language ("" when FixMessage has nothing). The printer's catalogue must
// hold Messages().
func (e *Engine) Fix(p *locale.Printer, f service.Finding, svc *service.Service) string {
	m, ok := e.FixMessage(f, svc)
	if !ok {
		return ""
	}
	if p == nil {
		p = e.en
	}
	return p.Message(m.ID, m.Args)
}
