package risk

import (
	"strings"

	"github.com/llmfence/llmfence/internal/locale"
	"github.com/llmfence/llmfence/internal/service"
)

// The functions below say a judged service in the reader's language, for
// every renderer (scan reports, the audit, the dashboard, notices). In
// English they return the recorded texts unchanged, so a report says
// exactly what the JSON says; in another language they render the
// recorded messages (Finding.DetailMsg, Service.RemediationMsgs) and the
// catalogue's texts, falling back to the recorded English for anything
// without a message. The printer's catalogue must hold Messages() and
// vulndb.Messages().

// Title is a finding's title.
func Title(p *locale.Printer, f service.Finding) string {
	if p.Lang() == locale.English || !p.Has(TitleID(f.ID)) {
		return f.Title
	}
	return p.T(TitleID(f.ID))
}

// Detail is what on the service triggered a finding.
func Detail(p *locale.Printer, f service.Finding) string {
	if p.Lang() == locale.English || f.DetailMsg == nil || !p.Has(f.DetailMsg.ID) {
		return f.Detail
	}
	return p.Message(f.DetailMsg.ID, f.DetailMsg.Args)
}

// Why says why a catalogue entry matters ("" for an unknown ID).
func Why(p *locale.Printer, id string) string {
	if !p.Catalogue().Has(locale.English, WhyID(id)) {
		return ""
	}
	return p.T(WhyID(id))
}

// Remediation is a service's remediation, one step per line, the most
// useful first. A line whose message has no ID (a caller wrote it without
// one) is said as recorded; when the recorded lines and messages do not
// pair up (a caller rewrote the text alone), every line is.
func Remediation(p *locale.Printer, svc *service.Service) []string {
	var lines []string
	for _, l := range strings.Split(svc.Remediation, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	if p.Lang() == locale.English || len(svc.RemediationMsgs) != len(lines) {
		return lines
	}
	out := make([]string, len(lines))
	for i, m := range svc.RemediationMsgs {
		out[i] = lines[i]
		if m.ID != "" && p.Has(m.ID) {
			out[i] = p.Message(m.ID, m.Args)
		}
	}
	return out
}

// Severity is a severity or risk level as a person reads it: "high", or
// 重要 in Japanese (JVN's names for the CVSS levels).
func Severity(p *locale.Printer, s service.Severity) string {
	if s == "" {
		s = service.SeverityNone
	}
	if p.Lang() == locale.English || !p.Has(SeverityID(s)) {
		return string(s)
	}
	return p.T(SeverityID(s))
}
