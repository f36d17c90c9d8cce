package risk

import (
	"fmt"
	"net"
	"sort"
	"strings"

	"github.com/llmfence/llmfence/internal/service"
	"github.com/llmfence/llmfence/internal/vulndb"
)

// ProbeOrigin is the foreign Origin internal/fingerprint sends to test CORS
// (service.CORSProbeOrigin, the one definition both read). A service that
// answers with it, or with any other origin under probeDomain, reflects
// whatever origin it is sent.
const ProbeOrigin = service.CORSProbeOrigin

// probeDomain is the reserved domain every llmfence probe origin lives in.
const probeDomain = service.ProbeDomain

// hit is one triggered catalogue entry before it becomes a Finding.
type hit struct {
	entry    Entry
	variant  string           // names a severity variant of the entry
	severity service.Severity // overrides entry and variant when set (CVEs)
	detail   string

	// fix placeholders and the fix key to use instead of the product's
	fixKey       string
	fixedVersion string
	cves         string
}

// check returns the hits of one catalogue entry on a service.
type check func(e *Engine, svc *service.Service) []hit

// checks maps every catalogue ID to its trigger. Load fails when an entry
// has no check or a check has no entry.
var checks = map[string]check{
	"LLMF-001": checkUnauthenticatedAPI,
	"LLMF-002": checkManagementOpen,
	"LLMF-003": checkKnownCVEs,
	"LLMF-004": checkSystemPromptReadable,
	"LLMF-005": checkHarmfulSystemPrompt,
	"LLMF-006": checkGuardrailsRemoved,
	"LLMF-007": checkCloudPassthrough,
	"LLMF-008": checkCORS,
	"LLMF-009": checkCredentialsWithoutTLS,
	"LLMF-010": checkLoadedModels,
	"LLMF-011": checkVersionDisclosed,
	"LLMF-012": checkVersionUnknown,
	// Raised by callers that read the machine itself (llmfence audit),
	// never by a service record; see raised.go.
	"LLMF-013": raisedByCaller,
	"LLMF-014": raisedByCaller,
	"LLMF-015": raisedByCaller,
	"LLMF-016": raisedByCaller,
	"LLMF-017": raisedByCaller,
}

// isLLMAPI is true when the fingerprint recognised an LLM API (not just an
// HTTP server).
func isLLMAPI(svc *service.Service) bool {
	p := strings.TrimSpace(svc.Product)
	return p != "" && p != "http"
}

func isLoopback(svc *service.Service) bool {
	if ip := net.ParseIP(svc.Host); ip != nil && ip.IsLoopback() {
		return true
	}
	return strings.EqualFold(svc.Hostname, "localhost")
}

func unauthenticated(svc *service.Service) bool { return svc.Auth == service.AuthNone }

// listNames joins up to five names and says how many more there are.
func listNames(names []string) string {
	const show = 5
	if len(names) <= show {
		return strings.Join(names, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(names[:show], ", "), len(names)-show)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, one)
	}
	return fmt.Sprintf("%d %s", n, many)
}

func checkUnauthenticatedAPI(_ *Engine, svc *service.Service) []hit {
	if !unauthenticated(svc) || !isLLMAPI(svc) {
		return nil
	}
	d := fmt.Sprintf("%s API answered without credentials", svc.Product)
	if n := len(svc.Models); n > 0 {
		d += "; " + plural(n, "model", "models") + " listed"
	}
	return []hit{{detail: d}}
}

func checkManagementOpen(_ *Engine, svc *service.Service) []hit {
	if !svc.ManagementOpen {
		return nil
	}
	return []hit{{detail: "model-management routes (pull, push, create, copy, delete) answered without credentials"}}
}

func checkKnownCVEs(e *Engine, svc *service.Service) []hit {
	if _, ok := parseVersion(svc.Version); !ok {
		return nil
	}
	type match struct {
		v     vulndb.Vuln
		fixed string
	}
	var matched []match
	for _, v := range e.cvesFor(svc.Product) {
		if r := v.Check(svc.Version); r.Affected {
			matched = append(matched, match{v, r.Fixed})
		}
	}
	if len(matched) == 0 {
		return nil
	}
	// One remediation for all of them: upgrade to the highest fixed
	// release; vulnerabilities without a fixed release get the "unpatched"
	// advice.
	var fixed, unfixed []string
	highest := ""
	for _, m := range matched {
		if m.fixed == "" {
			unfixed = append(unfixed, m.v.ID)
			continue
		}
		fixed = append(fixed, m.v.ID)
		if cmp, ok := CompareVersions(m.fixed, highest); highest == "" || (ok && cmp > 0) {
			highest = m.fixed
		}
	}
	hits := make([]hit, 0, len(matched))
	for _, m := range matched {
		h := hit{severity: m.v.Severity}
		if m.fixed != "" {
			h.detail = fmt.Sprintf("%s: %s (version %s; fixed in %s)", m.v.ID, m.v.Title, svc.Version, m.fixed)
		} else {
			h.detail = fmt.Sprintf("%s: %s (version %s; no fixed release listed)", m.v.ID, m.v.Title, svc.Version)
		}
		// Upgrading is the advice whenever any matched vulnerability has a
		// fix; the "unpatched" advice only when none has.
		if len(fixed) > 0 {
			h.fixedVersion, h.cves = highest, strings.Join(fixed, ", ")
		} else {
			h.fixKey, h.cves = "unpatched", strings.Join(unfixed, ", ")
		}
		hits = append(hits, h)
	}
	return hits
}

func checkSystemPromptReadable(_ *Engine, svc *service.Service) []hit {
	if svc.Auth == service.AuthRequired {
		return nil
	}
	var names []string
	for _, m := range svc.Models {
		if strings.TrimSpace(m.SystemPrompt) != "" {
			names = append(names, m.Name)
		}
	}
	if len(names) == 0 {
		return nil
	}
	h := hit{detail: fmt.Sprintf("system prompt readable for %s: %s", plural(len(names), "model", "models"), listNames(names))}
	if !unauthenticated(svc) {
		h.variant = "auth_unknown"
	}
	return []hit{h}
}

func checkHarmfulSystemPrompt(_ *Engine, svc *service.Service) []hit {
	var hits []hit
	for _, m := range svc.Models {
		seen := map[string]bool{}
		for _, cat := range m.SystemPromptCategories {
			cat = strings.ToLower(strings.TrimSpace(cat))
			// guardrail_removal is LLMF-006's; unknown labels are ignored.
			if cat == service.CategoryGuardrailRemoval || !knownCategory(cat) || seen[cat] {
				continue
			}
			seen[cat] = true
			h := hit{detail: fmt.Sprintf("model %s: system prompt classified as %s", m.Name, cat)}
			if cat == service.CategoryCSAM {
				h.variant = "csam"
			}
			hits = append(hits, h)
		}
	}
	return hits
}

func knownCategory(c string) bool {
	for _, k := range service.Categories {
		if c == k {
			return true
		}
	}
	return false
}

func checkGuardrailsRemoved(_ *Engine, svc *service.Service) []hit {
	var hits []hit
	for _, m := range svc.Models {
		fromPrompt := false
		for _, c := range m.SystemPromptCategories {
			if strings.EqualFold(strings.TrimSpace(c), service.CategoryGuardrailRemoval) {
				fromPrompt = true
			}
		}
		if !m.GuardrailsRemoved && !fromPrompt {
			continue
		}
		why := strings.TrimSpace(m.GuardrailEvidence)
		if why == "" && fromPrompt {
			why = "system prompt classified as " + service.CategoryGuardrailRemoval
		}
		if why == "" {
			why = "model lineage"
		}
		h := hit{detail: fmt.Sprintf("model %s: %s", m.Name, why)}
		if unauthenticated(svc) {
			h.variant = "exposed"
		}
		hits = append(hits, h)
	}
	return hits
}

func checkCloudPassthrough(_ *Engine, svc *service.Service) []hit {
	if !unauthenticated(svc) {
		return nil
	}
	var names []string
	for _, m := range svc.Models {
		if m.Remote {
			names = append(names, m.Name)
		}
	}
	if len(names) == 0 {
		return nil
	}
	return []hit{{detail: fmt.Sprintf("%s forwarded to a cloud provider: %s", plural(len(names), "model", "models"), listNames(names))}}
}

func checkCORS(_ *Engine, svc *service.Service) []hit {
	if !isLLMAPI(svc) {
		return nil
	}
	acao := strings.TrimSpace(svc.CORS)
	switch {
	case acao == "*":
		return []hit{{detail: "Access-Control-Allow-Origin: * sent to a foreign origin"}}
	case strings.HasSuffix(strings.ToLower(strings.TrimSuffix(acao, "/")), probeDomain):
		return []hit{{detail: "the foreign probe origin was reflected in Access-Control-Allow-Origin"}}
	}
	return nil
}

func checkCredentialsWithoutTLS(_ *Engine, svc *service.Service) []hit {
	if svc.Auth != service.AuthRequired || svc.TLS || isLoopback(svc) {
		return nil
	}
	h := hit{detail: "credentials are requested over plain HTTP"}
	if svc.Gateway != "" {
		h.detail = fmt.Sprintf("%s in front requests credentials over plain HTTP", svc.Gateway)
		if scheme, _ := svc.Extra["gateway_auth"].(string); scheme == "basic" {
			h.variant = "basic"
			h.detail += ": an HTTP basic password, readable on the wire, in every request"
		}
	}
	return []hit{h}
}

func checkLoadedModels(_ *Engine, svc *service.Service) []hit {
	if len(svc.Loaded) == 0 || svc.Auth == service.AuthRequired {
		return nil
	}
	names := make([]string, 0, len(svc.Loaded))
	var vram int64
	for _, l := range svc.Loaded {
		names = append(names, l.Name)
		vram += l.SizeVRAM
	}
	sort.Strings(names)
	d := fmt.Sprintf("%s in memory: %s", plural(len(names), "model", "models"), listNames(names))
	if vram > 0 {
		d += fmt.Sprintf("; %.1f GiB VRAM", float64(vram)/(1<<30))
	}
	return []hit{{detail: d}}
}

func checkVersionDisclosed(_ *Engine, svc *service.Service) []hit {
	v := strings.TrimSpace(svc.Version)
	if v == "" || !isLLMAPI(svc) {
		return nil
	}
	return []hit{{detail: fmt.Sprintf("%s %s", svc.Product, v)}}
}

func checkVersionUnknown(e *Engine, svc *service.Service) []hit {
	if _, ok := parseVersion(svc.Version); ok {
		return nil
	}
	n := 0
	for _, c := range e.cvesFor(svc.Product) {
		if c.Verified {
			n++
		}
	}
	if n == 0 {
		return nil
	}
	v := strings.TrimSpace(svc.Version)
	if v == "" {
		v = "none reported"
	} else {
		v = fmt.Sprintf("%q is not comparable", v)
	}
	return []hit{{detail: fmt.Sprintf("version %s; %s for %s not checked", v, plural(n, "published CVE", "published CVEs"), svc.Product)}}
}
