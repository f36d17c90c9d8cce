package risk

import (
	"net"
	"sort"
	"strconv"
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
	msg      *service.Message // the message detail was written from

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

// hitSaying is a hit whose detail is the message id with its arguments.
func (e *Engine) hitSaying(id string, kv ...string) hit {
	d, m := e.say(id, kv...)
	return hit{detail: d, msg: m}
}

func checkUnauthenticatedAPI(e *Engine, svc *service.Service) []hit {
	if !unauthenticated(svc) || !isLLMAPI(svc) {
		return nil
	}
	if n := len(svc.Models); n > 0 {
		return []hit{e.hitSaying("risk.detail.unauthenticated_api_models", "product", svc.Product, "count", strconv.Itoa(n))}
	}
	return []hit{e.hitSaying("risk.detail.unauthenticated_api", "product", svc.Product)}
}

func checkManagementOpen(e *Engine, svc *service.Service) []hit {
	if !svc.ManagementOpen {
		return nil
	}
	return []hit{e.hitSaying("risk.detail.management_open")}
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
		var h hit
		if m.fixed != "" {
			h = e.hitSaying("risk.detail.cve_fixed", "cve", m.v.ID, "title", m.v.Title, "title_msg", vulndb.TitleID(m.v.ID), "version", svc.Version, "fixed", m.fixed)
		} else {
			h = e.hitSaying("risk.detail.cve_unfixed", "cve", m.v.ID, "title", m.v.Title, "title_msg", vulndb.TitleID(m.v.ID), "version", svc.Version)
		}
		h.severity = m.v.Severity
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

func checkSystemPromptReadable(e *Engine, svc *service.Service) []hit {
	if svc.Auth == service.AuthRequired {
		return nil
	}
	var list []string
	for _, m := range svc.Models {
		if strings.TrimSpace(m.SystemPrompt) != "" {
			list = append(list, m.Name)
		}
	}
	if len(list) == 0 {
		return nil
	}
	shown, more := names(list)
	h := e.hitSaying("risk.detail.prompt_readable", "count", strconv.Itoa(len(list)), "names", shown, "more", more)
	if !unauthenticated(svc) {
		h.variant = "auth_unknown"
	}
	return []hit{h}
}

func checkHarmfulSystemPrompt(e *Engine, svc *service.Service) []hit {
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
			h := e.hitSaying("risk.detail.harmful_prompt", "model", m.Name, "category", cat, "category_msg", CategoryID(cat))
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

func checkGuardrailsRemoved(e *Engine, svc *service.Service) []hit {
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
		var h hit
		switch why := strings.TrimSpace(m.GuardrailEvidence); {
		case why != "":
			h = e.hitSaying("risk.detail.guardrails_evidence", "model", m.Name, "evidence", why)
		case fromPrompt:
			h = e.hitSaying("risk.detail.guardrails_prompt", "model", m.Name)
		default:
			h = e.hitSaying("risk.detail.guardrails_lineage", "model", m.Name)
		}
		if unauthenticated(svc) {
			h.variant = "exposed"
		}
		hits = append(hits, h)
	}
	return hits
}

func checkCloudPassthrough(e *Engine, svc *service.Service) []hit {
	if !unauthenticated(svc) {
		return nil
	}
	var list []string
	for _, m := range svc.Models {
		if m.Remote {
			list = append(list, m.Name)
		}
	}
	if len(list) == 0 {
		return nil
	}
	shown, more := names(list)
	return []hit{e.hitSaying("risk.detail.cloud_models", "count", strconv.Itoa(len(list)), "names", shown, "more", more)}
}

func checkCORS(e *Engine, svc *service.Service) []hit {
	if !isLLMAPI(svc) {
		return nil
	}
	acao := strings.TrimSpace(svc.CORS)
	switch {
	case acao == "*":
		return []hit{e.hitSaying("risk.detail.cors_any")}
	case strings.HasSuffix(strings.ToLower(strings.TrimSuffix(acao, "/")), probeDomain):
		return []hit{e.hitSaying("risk.detail.cors_reflected")}
	}
	return nil
}

func checkCredentialsWithoutTLS(e *Engine, svc *service.Service) []hit {
	if svc.Auth != service.AuthRequired || svc.TLS || isLoopback(svc) {
		return nil
	}
	if svc.Gateway == "" {
		return []hit{e.hitSaying("risk.detail.plain_http")}
	}
	if scheme, _ := svc.Extra["gateway_auth"].(string); scheme == "basic" {
		h := e.hitSaying("risk.detail.plain_http_gateway_basic", "gateway", svc.Gateway)
		h.variant = "basic"
		return []hit{h}
	}
	return []hit{e.hitSaying("risk.detail.plain_http_gateway", "gateway", svc.Gateway)}
}

func checkLoadedModels(e *Engine, svc *service.Service) []hit {
	if len(svc.Loaded) == 0 || svc.Auth == service.AuthRequired {
		return nil
	}
	list := make([]string, 0, len(svc.Loaded))
	var vram int64
	for _, l := range svc.Loaded {
		list = append(list, l.Name)
		vram += l.SizeVRAM
	}
	sort.Strings(list)
	shown, more := names(list)
	if vram > 0 {
		return []hit{e.hitSaying("risk.detail.loaded_vram", "count", strconv.Itoa(len(list)), "names", shown, "more", more,
			"vram", strconv.FormatFloat(float64(vram)/(1<<30), 'f', 1, 64))}
	}
	return []hit{e.hitSaying("risk.detail.loaded", "count", strconv.Itoa(len(list)), "names", shown, "more", more)}
}

func checkVersionDisclosed(e *Engine, svc *service.Service) []hit {
	v := strings.TrimSpace(svc.Version)
	if v == "" || !isLLMAPI(svc) {
		return nil
	}
	return []hit{e.hitSaying("risk.detail.version_disclosed", "product", svc.Product, "version", v)}
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
	if v := strings.TrimSpace(svc.Version); v != "" {
		return []hit{e.hitSaying("risk.detail.version_not_comparable", "version", strconv.Quote(v), "count", strconv.Itoa(n), "product", svc.Product)}
	}
	return []hit{e.hitSaying("risk.detail.version_none", "count", strconv.Itoa(n), "product", svc.Product)}
}
