package risk

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/llmfence/llmfence/internal/goldentest"
	"github.com/llmfence/llmfence/internal/service"
	"github.com/llmfence/llmfence/internal/vulndb"
	"github.com/llmfence/llmfence/internal/vulndb/vulndbtest"
)

func engine(t *testing.T) *Engine {
	t.Helper()
	e, err := New()
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return e
}

func ids(fs []service.Finding) []string {
	out := make([]string, 0, len(fs))
	seen := map[string]bool{}
	for _, f := range fs {
		if !seen[f.ID] {
			out = append(out, f.ID)
		}
		seen[f.ID] = true
	}
	sort.Strings(out)
	return out
}

func find(fs []service.Finding, id string) []service.Finding {
	var out []service.Finding
	for _, f := range fs {
		if f.ID == id {
			out = append(out, f)
		}
	}
	return out
}

// TestCatalogueEntries gives every catalogue entry a minimal service that
// triggers it, with the exact set of findings expected (some entries imply
// another, e.g. a disclosed version), and look-alikes that must not.
func TestCatalogueEntries(t *testing.T) {
	e := engine(t)
	type tc struct {
		name    string
		svc     service.Service
		want    []string         // exact set of finding IDs
		sev     service.Severity // severity of the entry under test ("" = skip)
		entry   string
		details []string // substrings the entry's detail must contain
	}
	prompt := func(p string, cats ...string) []service.Model {
		return []service.Model{{Name: "m1", SystemPrompt: p, SystemPromptCategories: cats}}
	}
	tests := []tc{
		// LLMF-001
		{name: "001 open API", entry: "LLMF-001", want: []string{"LLMF-001"}, sev: service.SeverityHigh,
			svc:     service.Service{Product: "openai-compatible", Auth: service.AuthNone, Models: []service.Model{{Name: "a"}, {Name: "b"}}},
			details: []string{"2 models listed"}},
		{name: "001 look-alike: auth required", want: []string{"LLMF-009"},
			svc: service.Service{Product: "openai-compatible", Auth: service.AuthRequired, Host: "10.0.0.1"}},
		{name: "001 look-alike: auth unknown", want: []string{},
			svc: service.Service{Product: "openai-compatible", Auth: service.AuthUnknown}},
		{name: "001 look-alike: plain http server", want: []string{},
			svc: service.Service{Product: "http", Auth: service.AuthNone}},

		// LLMF-002
		{name: "002 management open", entry: "LLMF-002", want: []string{"LLMF-002"}, sev: service.SeverityCritical,
			svc: service.Service{Product: "openai-compatible", Auth: service.AuthUnknown, ManagementOpen: true}, details: []string{"pull"}},
		{name: "002 look-alike: management closed", want: []string{},
			svc: service.Service{Product: "openai-compatible", Auth: service.AuthUnknown}},

		// LLMF-003 (a known version always also discloses it: LLMF-011)
		{name: "003 vulnerable ollama", entry: "LLMF-003", want: []string{"LLMF-003", "LLMF-011"}, sev: service.SeverityCritical,
			svc: service.Service{Product: "ollama", Version: "0.15.0", Auth: service.AuthUnknown}, details: []string{"CVE-2026-7482", "fixed in 0.17.1"}},
		{name: "003 medium CVE keeps its severity", entry: "LLMF-003", want: []string{"LLMF-003", "LLMF-011"}, sev: service.SeverityMedium,
			svc: service.Service{Product: "ollama", Version: "0.1.28", Auth: service.AuthUnknown}, details: []string{"CVE-2024-28224"}},
		{name: "003 look-alike: fixed xinference", want: []string{"LLMF-011"},
			svc: service.Service{Product: "xinference", Version: "2.7.0", Auth: service.AuthUnknown}},
		{name: "003 no fix yet: every ollama version", entry: "LLMF-003", want: []string{"LLMF-003", "LLMF-011"}, sev: service.SeverityHigh,
			svc: service.Service{Product: "ollama", Version: "0.40.1", Auth: service.AuthUnknown}, details: []string{"CVE-2024-12886", "no fixed release listed"}},
		{name: "003 look-alike: placeholder version", want: []string{"LLMF-011", "LLMF-012"},
			svc: service.Service{Product: "ollama", Version: "0.0.0", Auth: service.AuthUnknown}},
		{name: "003 look-alike: llama.cpp below introduced", want: []string{"LLMF-011"},
			svc: service.Service{Product: "llamacpp", Version: "b4881", Auth: service.AuthUnknown}},
		{name: "003 look-alike: version of another product", want: []string{"LLMF-011"},
			svc: service.Service{Product: "openai-compatible", Version: "0.1.0", Auth: service.AuthUnknown}},

		// LLMF-004
		{name: "004 prompt readable, auth unknown", entry: "LLMF-004", want: []string{"LLMF-004"}, sev: service.SeverityLow,
			svc: service.Service{Product: "openai-compatible", Auth: service.AuthUnknown, Models: prompt("You are a helpful bank agent.")}, details: []string{"m1"}},
		{name: "004 prompt readable, no auth", entry: "LLMF-004", want: []string{"LLMF-001", "LLMF-004"}, sev: service.SeverityMedium,
			svc: service.Service{Product: "openai-compatible", Auth: service.AuthNone, Models: prompt("secret: hunter2")}},
		{name: "004 look-alike: auth required", want: []string{},
			svc: service.Service{Product: "openai-compatible", Auth: service.AuthRequired, TLS: true, Models: prompt("x")}},
		{name: "004 look-alike: blank prompt", want: []string{},
			svc: service.Service{Product: "openai-compatible", Auth: service.AuthUnknown, Models: prompt(" \n\t")}},

		// LLMF-005
		{name: "005 fraud prompt", entry: "LLMF-005", want: []string{"LLMF-005"}, sev: service.SeverityHigh,
			svc:     service.Service{Product: "openai-compatible", Auth: service.AuthUnknown, Models: prompt("", service.CategoryFraudPhishing)},
			details: []string{"model m1", service.CategoryFraudPhishing}},
		{name: "005 violent_gore prompt", entry: "LLMF-005", want: []string{"LLMF-005"}, sev: service.SeverityHigh,
			svc:     service.Service{Product: "openai-compatible", Auth: service.AuthUnknown, Models: prompt("", service.CategoryViolentGore)},
			details: []string{service.CategoryViolentGore}},
		{name: "005 csam prompt is critical", entry: "LLMF-005", want: []string{"LLMF-005"}, sev: service.SeverityCritical,
			svc: service.Service{Product: "openai-compatible", Auth: service.AuthUnknown, Models: prompt("", service.CategoryCSAM)}},
		{name: "005 look-alike: guardrail removal is 006", want: []string{"LLMF-006"},
			svc: service.Service{Product: "openai-compatible", Auth: service.AuthUnknown, Models: prompt("", service.CategoryGuardrailRemoval)}},
		{name: "005 look-alike: unknown label", want: []string{},
			svc: service.Service{Product: "openai-compatible", Auth: service.AuthUnknown, Models: prompt("", "cooking")}},

		// LLMF-006
		{name: "006 lineage", entry: "LLMF-006", want: []string{"LLMF-006"}, sev: service.SeverityMedium,
			svc: service.Service{Product: "openai-compatible", Auth: service.AuthUnknown,
				Models: []service.Model{{Name: "llama3-abliterated", GuardrailsRemoved: true, GuardrailEvidence: "name contains abliterated"}}},
			details: []string{"llama3-abliterated", "abliterated"}},
		{name: "006 exposed is high", entry: "LLMF-006", want: []string{"LLMF-001", "LLMF-006"}, sev: service.SeverityHigh,
			svc: service.Service{Product: "openai-compatible", Auth: service.AuthNone,
				Models: []service.Model{{Name: "x", GuardrailsRemoved: true}}}},
		{name: "006 look-alike: stock model", want: []string{},
			svc: service.Service{Product: "openai-compatible", Auth: service.AuthUnknown, Models: []service.Model{{Name: "llama3"}}}},

		// LLMF-007 (only unauthenticated, so LLMF-001 comes with it)
		{name: "007 cloud models open", entry: "LLMF-007", want: []string{"LLMF-001", "LLMF-007"}, sev: service.SeverityHigh,
			svc: service.Service{Product: "openai-compatible", Auth: service.AuthNone,
				Models: []service.Model{{Name: "gpt-oss:120b-cloud", Remote: true}, {Name: "llama3"}}},
			details: []string{"gpt-oss:120b-cloud"}},
		{name: "007 look-alike: cloud model behind auth", want: []string{},
			svc: service.Service{Product: "openai-compatible", Auth: service.AuthRequired, TLS: true,
				Models: []service.Model{{Name: "gpt-oss:120b-cloud", Remote: true}}}},
		{name: "007 look-alike: local models only", want: []string{"LLMF-001"},
			svc: service.Service{Product: "openai-compatible", Auth: service.AuthNone, Models: []service.Model{{Name: "llama3"}}}},

		// LLMF-008
		{name: "008 CORS *", entry: "LLMF-008", want: []string{"LLMF-008"}, sev: service.SeverityMedium,
			svc: service.Service{Product: "openai-compatible", Auth: service.AuthUnknown, CORS: "*"}},
		{name: "008 CORS reflects probe", entry: "LLMF-008", want: []string{"LLMF-008"}, sev: service.SeverityMedium,
			svc: service.Service{Product: "openai-compatible", Auth: service.AuthUnknown, CORS: ProbeOrigin + "/"}, details: []string{"reflected"}},
		{name: "008 look-alike: fixed allow-list", want: []string{},
			svc: service.Service{Product: "openai-compatible", Auth: service.AuthUnknown, CORS: "https://app.example.com"}},
		{name: "008 look-alike: probe domain as a prefix", want: []string{},
			svc: service.Service{Product: "openai-compatible", Auth: service.AuthUnknown, CORS: "https://cors-check.llmfence.invalid.example.com"}},
		{name: "008 look-alike: null", want: []string{},
			svc: service.Service{Product: "openai-compatible", Auth: service.AuthUnknown, CORS: "null"}},
		{name: "008 look-alike: not an LLM API", want: []string{},
			svc: service.Service{Product: "http", Auth: service.AuthUnknown, CORS: "*"}},

		// LLMF-009
		{name: "009 creds over http", entry: "LLMF-009", want: []string{"LLMF-009"}, sev: service.SeverityLow,
			svc: service.Service{Product: "openai-compatible", Auth: service.AuthRequired, Host: "192.0.2.10"}},
		{name: "009 look-alike: TLS", want: []string{},
			svc: service.Service{Product: "openai-compatible", Auth: service.AuthRequired, Host: "192.0.2.10", TLS: true}},
		{name: "009 look-alike: loopback", want: []string{},
			svc: service.Service{Product: "openai-compatible", Auth: service.AuthRequired, Host: "127.0.0.1"}},
		{name: "009 look-alike: ipv6 loopback", want: []string{},
			svc: service.Service{Product: "openai-compatible", Auth: service.AuthRequired, Host: "::1"}},

		// LLMF-010
		{name: "010 loaded models", entry: "LLMF-010", want: []string{"LLMF-010"}, sev: service.SeverityInfo,
			svc: service.Service{Product: "openai-compatible", Auth: service.AuthUnknown,
				Loaded: []service.LoadedModel{{Name: "llama3:8b", SizeVRAM: 6 << 30}}},
			details: []string{"llama3:8b", "6.0 GiB VRAM"}},
		{name: "010 look-alike: behind auth", want: []string{},
			svc: service.Service{Product: "openai-compatible", Auth: service.AuthRequired, TLS: true,
				Loaded: []service.LoadedModel{{Name: "llama3:8b"}}}},

		// LLMF-011
		{name: "011 version disclosed", entry: "LLMF-011", want: []string{"LLMF-011"}, sev: service.SeverityInfo,
			svc: service.Service{Product: "openai-compatible", Version: "1.2.3", Auth: service.AuthUnknown}, details: []string{"1.2.3"}},
		{name: "011 look-alike: not an LLM API", want: []string{},
			svc: service.Service{Product: "http", Version: "nginx/1.25"}},

		// LLMF-012
		{name: "012 version unknown", entry: "LLMF-012", want: []string{"LLMF-012"}, sev: service.SeverityInfo,
			svc: service.Service{Product: "ollama", Auth: service.AuthUnknown}, details: []string{"not checked"}},
		{name: "012 look-alike: no CVEs for product", want: []string{},
			svc: service.Service{Product: "openai-compatible", Auth: service.AuthUnknown}},
	}
	covered := map[string]bool{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svc := tt.svc
			e.Evaluate(&svc)
			got := ids(svc.Findings)
			want := append([]string{}, tt.want...)
			sort.Strings(want)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("findings %v, want %v (%+v)", got, want, svc.Findings)
			}
			if tt.entry == "" {
				return
			}
			covered[tt.entry] = true
			fs := find(svc.Findings, tt.entry)
			if tt.sev != "" {
				ok := false
				for _, f := range fs {
					ok = ok || f.Severity == tt.sev
				}
				if !ok {
					t.Errorf("%s severity: got %+v, want one with %s", tt.entry, fs, tt.sev)
				}
			}
			for _, d := range tt.details {
				ok := false
				for _, f := range fs {
					ok = ok || strings.Contains(f.Detail, d)
				}
				if !ok {
					t.Errorf("%s detail: %+v lacks %q", tt.entry, fs, d)
				}
			}
			en, _ := e.Entry(tt.entry)
			for _, f := range fs {
				if f.Title != en.Title {
					t.Errorf("title %q, want catalogue title %q", f.Title, en.Title)
				}
			}
		})
	}
	for _, en := range e.Catalogue() {
		if !covered[en.ID] && !CallerRaised(en.ID) { // caller-raised: raised_test.go
			t.Errorf("catalogue entry %s has no triggering test case", en.ID)
		}
	}
}

// TestCVEEntries checks every known vulnerability alone through Evaluate:
// a version inside each affected range is claimed with the vulnerability's
// severity and fix, a version just outside is not, and an unknown version
// never is. (Range semantics themselves are tested in internal/vulndb.)
func TestCVEEntries(t *testing.T) {
	e := engine(t)
	for _, c := range e.CVEs() {
		t.Run(c.ID+"/"+c.Product, func(t *testing.T) {
			for _, v := range []string{"0.0.0", "", "latest"} {
				if c.Check(v).Affected {
					t.Errorf("claims the unknown version %q", v)
				}
			}
			inside, outside, fixed := vulndbtest.Probe(c)
			if inside == "" {
				if c.Verified && c.RangesText() != "" && !strings.Contains(c.RangesText(), "not comparable") {
					t.Fatalf("no comparable version inside %s", c.RangesText())
				}
				return // GIT-only ranges: nothing a reported version can match
			}
			svc := service.Service{Product: c.Product, Version: inside, Auth: service.AuthUnknown}
			e.Evaluate(&svc)
			var hit *service.Finding
			for i, f := range svc.Findings {
				if f.ID == "LLMF-003" && strings.HasPrefix(f.Detail, c.ID+":") {
					hit = &svc.Findings[i]
				}
			}
			if !c.Verified {
				if hit != nil {
					t.Errorf("unverified entry claimed %s", inside)
				}
				return
			}
			if hit == nil {
				t.Fatalf("Evaluate on %s %s: no LLMF-003 finding for %s in %+v", c.Product, inside, c.ID, svc.Findings)
			}
			if hit.Severity != c.Severity {
				t.Errorf("finding severity %s, want the vulnerability's %s", hit.Severity, c.Severity)
			}
			if fixed != "" && !strings.Contains(hit.Detail, "fixed in "+fixed) {
				t.Errorf("detail %q does not name the fix %s", hit.Detail, fixed)
			}
			if fixed == "" && !strings.Contains(hit.Detail, "no fixed release listed") {
				t.Errorf("detail %q should say no fix is listed", hit.Detail)
			}
			if outside != "" {
				svc := service.Service{Product: c.Product, Version: outside, Auth: service.AuthUnknown}
				e.Evaluate(&svc)
				for _, f := range svc.Findings {
					if f.ID == "LLMF-003" && strings.HasPrefix(f.Detail, c.ID+":") {
						t.Errorf("%s claimed at %s, outside %s", c.ID, outside, c.RangesText())
					}
				}
			}
			if svc.VulnDataDate != e.VulnDataDate() || svc.VulnDataDate == "" {
				t.Errorf("vuln_data_date %q, want %q", svc.VulnDataDate, e.VulnDataDate())
			}
		})
	}
}

func TestOllamaCVEsByVersion(t *testing.T) {
	e := engine(t)
	// Ollama vulnerabilities without any fix (introduced 0, no bound):
	// claimed on every comparable version.
	open := []string{"CVE-2024-12055", "CVE-2024-12886", "CVE-2025-0312", "CVE-2025-0315", "CVE-2025-0317", "CVE-2025-1975"}
	with := func(ids ...string) []string {
		out := append(append([]string(nil), open...), ids...)
		sort.Strings(out)
		return out
	}
	tests := []struct {
		product, version string
		want             []string
	}{
		{"ollama", "0.1.28", with("CVE-2024-28224", "CVE-2024-37032", "CVE-2024-39719", "CVE-2024-39720", "CVE-2024-39721", "CVE-2024-39722", "CVE-2024-45436", "CVE-2025-63389", "CVE-2026-7482")},
		{"ollama", "0.1.34", with("CVE-2024-39719", "CVE-2024-39720", "CVE-2024-39722", "CVE-2024-45436", "CVE-2025-63389", "CVE-2026-7482")},
		{"ollama", "0.3.14", with("CVE-2024-39719", "CVE-2025-63389", "CVE-2026-7482")},
		{"ollama", "v0.4.0", with("CVE-2025-63389", "CVE-2026-7482")},
		{"ollama", "0.12.3", with("CVE-2025-63389", "CVE-2026-7482")},
		{"ollama", "0.12.4", with("CVE-2026-7482")},
		{"ollama", "0.17.1", with()},
		{"ollama", "0.34.1", with()},
		{"ollama", "0.34.2", with("CVE-2026-103663")},
		{"ollama", "0.34.9", with("CVE-2026-103663")},
		{"ollama", "0.35.0-rc1", with("CVE-2026-103663")},
		{"ollama", "0.35.0", with()},
		{"ollama", "0.0.0", nil},
		{"vllm", "0.8.4", []string{"CVE-2025-32444", "CVE-2025-47277", "CVE-2025-48956", "CVE-2026-22778", "CVE-2026-34756"}},
		{"vllm", "0.8.5", []string{"CVE-2025-48956", "CVE-2026-22778", "CVE-2026-34756"}},
		{"vllm", "0.10.1.1", []string{"CVE-2026-22778", "CVE-2026-34756"}},
		{"vllm", "0.10.2", []string{"CVE-2025-62164", "CVE-2026-22778", "CVE-2026-34756"}},
		{"vllm", "0.19.0", nil},
		{"llama.cpp", "b5000", []string{"CVE-2026-43629"}},
		{"llamacpp", "b9058", []string{"CVE-2026-43629", "CVE-2026-43631", "CVE-2026-107183"}},
		{"llama.cpp", "9060 (abc1234)", []string{"CVE-2026-107183", "CVE-2026-43631"}},
		{"llama.cpp", "b11393", nil},
		{"localai", "v2.17.0", []string{"CVE-2024-6868", "CVE-2024-6983", "CVE-2026-59707"}},
		{"localai", "4.3.1", []string{"CVE-2026-59707"}},
		{"localai", "4.3.2", nil},
		{"litellm", "1.82.7", []string{"CVE-2026-42208", "CVE-2026-42271", "CVE-2026-49468", "PYSEC-2026-2"}},
		{"litellm", "1.83.7", []string{"CVE-2026-49468"}},
		{"litellm", "1.84.0", nil},
		{"sglang", "0.5.9", []string{"CVE-2026-3059", "CVE-2026-3060"}},
		{"sglang", "0.5.10", nil},
		{"text-generation-webui", "2.5", []string{"CVE-2025-12488", "CVE-2026-35050"}},
		{"text-generation-webui", "2.6", []string{"CVE-2026-35050"}},
	}
	for _, tt := range tests {
		svc := service.Service{Product: tt.product, Version: tt.version, Auth: service.AuthUnknown}
		e.Evaluate(&svc)
		var got []string
		for _, f := range find(svc.Findings, "LLMF-003") {
			got = append(got, strings.SplitN(f.Detail, ":", 2)[0])
		}
		sort.Strings(got)
		want := append([]string(nil), tt.want...)
		sort.Strings(want)
		if !reflect.DeepEqual(got, want) && !(len(got) == 0 && len(want) == 0) {
			t.Errorf("%s %s: CVEs %v, want %v", tt.product, tt.version, got, want)
		}
	}
}

func TestEvaluateOrderingRiskAndRemediation(t *testing.T) {
	e := engine(t)
	svc := service.Service{Product: "http", Auth: service.AuthRequired, TLS: true}
	e.Evaluate(&svc)
	if svc.Risk != service.SeverityNone || len(svc.Findings) != 0 || svc.Remediation != "" {
		t.Errorf("quiet service: risk %q findings %v remediation %q", svc.Risk, svc.Findings, svc.Remediation)
	}
	if svc.Findings == nil {
		t.Errorf("findings should be an empty list, not nil (JSON contract)")
	}

	open := openOllama()
	e.Evaluate(&open)
	for i := 1; i < len(open.Findings); i++ {
		a, b := open.Findings[i-1], open.Findings[i]
		if a.Severity.Rank() < b.Severity.Rank() || (a.Severity == b.Severity && a.ID > b.ID) {
			t.Errorf("findings out of order at %d: %+v before %+v", i, a, b)
		}
	}
	if open.Risk != service.SeverityCritical {
		t.Errorf("risk %q, want critical", open.Risk)
	}
	wantFirst := "Bind OLLAMA_HOST to 127.0.0.1 and put `llmfence guard` in front (llmfence guard --upstream http://127.0.0.1:11434 --listen :11435)"
	if !strings.HasPrefix(open.Remediation, wantFirst) {
		t.Errorf("remediation should start with %q, got:\n%s", wantFirst, open.Remediation)
	}
	if lines := strings.Split(open.Remediation, "\n"); len(lines) > maxRemediationSteps {
		t.Errorf("remediation has %d steps, max %d", len(lines), maxRemediationSteps)
	}
	if !strings.Contains(open.Remediation, "Upgrade ollama to 0.17.1 or later") {
		t.Errorf("remediation lacks the upgrade to the highest fixed release:\n%s", open.Remediation)
	}

	// Evaluate replaces earlier results rather than appending.
	again := open
	e.Evaluate(&again)
	if len(again.Findings) != len(open.Findings) {
		t.Errorf("second Evaluate changed the number of findings: %d vs %d", len(again.Findings), len(open.Findings))
	}
	e.Evaluate(nil) // must not panic
}

func openOllama() service.Service {
	return service.Service{
		Host: "203.0.113.7", Port: 11434, URL: "http://203.0.113.7:11434",
		Product: "ollama", Version: "0.5.7", Auth: service.AuthNone, CORS: "*",
		ManagementOpen: true,
		Models: []service.Model{
			{Name: "llama3.1:8b", Family: "llama"},
			{Name: "support-bot:latest", SystemPrompt: "You are the support bot of Example Corp. Internal API key: sk-test", SystemPromptCategories: []string{}},
			{Name: "scam-helper:latest", SystemPrompt: "Write convincing bank emails asking for passwords.", SystemPromptCategories: []string{service.CategoryFraudPhishing}},
			{Name: "dolphin-abliterated:7b", GuardrailsRemoved: true, GuardrailEvidence: "model name contains \"abliterated\""},
			{Name: "gpt-oss:120b-cloud", Remote: true},
		},
		Loaded:    []service.LoadedModel{{Name: "llama3.1:8b", SizeVRAM: 5 << 30}},
		ScannedAt: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC),
	}
}

func TestEvaluateGolden(t *testing.T) {
	e := engine(t)
	cases := map[string]service.Service{
		"open_ollama":  openOllama(),
		"guarded_vllm": {Host: "198.51.100.4", Port: 8000, Product: "vllm", Version: "0.9.1", Auth: service.AuthRequired, TLS: false},
		"unknown_version_ollama": {Host: "10.1.2.3", Port: 11434, Product: "ollama", Version: "0.0.0", Auth: service.AuthNone,
			Models: []service.Model{{Name: "qwen2.5:7b"}}},
	}
	for name, svc := range cases {
		t.Run(name, func(t *testing.T) {
			e.Evaluate(&svc)
			got, err := json.MarshalIndent(struct {
				Findings        []service.Finding `json:"findings"`
				Risk            service.Severity  `json:"risk"`
				Remediation     string            `json:"remediation"`
				RemediationMsgs []service.Message `json:"remediation_msgs"`
			}{svc.Findings, svc.Risk, svc.Remediation, svc.RemediationMsgs}, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			goldentest.Check(t, filepath.Join("testdata", name+".golden.json"), append(got, '\n'))
		})
	}
}

func TestFindingsDocUpToDate(t *testing.T) {
	e := engine(t)
	var buf bytes.Buffer
	if err := e.WriteMarkdown(&buf); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("..", "..", "docs", "findings.md")
	goldentest.Check(t, path, buf.Bytes())
	for _, en := range e.Catalogue() {
		if !bytes.Contains(buf.Bytes(), []byte("### "+en.ID+" "+en.Slug)) {
			t.Errorf("doc lacks a section for %s", en.ID)
		}
	}
	for _, c := range e.CVEs() {
		if !bytes.Contains(buf.Bytes(), []byte("["+c.ID+"]")) {
			t.Errorf("doc lacks CVE %s", c.ID)
		}
	}
}

func TestLoadRejectsBadData(t *testing.T) {
	cat := string(catalogueYAML)
	db, err := vulndb.Embedded()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, cat, wantErr string
	}{
		{"catalogue without version", strings.Replace(cat, "version: 1", "version: 0", 1), "catalogue.yaml: missing version"},
		{"entry without check", strings.Replace(cat, "id: LLMF-012", "id: LLMF-099", 1), "no check implements it"},
		{"check without entry", strings.Replace(cat, "id: LLMF-012", "id: LLMF-099", 1), "no entry for check LLMF-012"},
		{"duplicate id", strings.Replace(cat, "id: LLMF-012", "id: LLMF-011", 1), "duplicate id"},
		{"bad severity", strings.Replace(cat, "severity: critical\n    rank: 5", "severity: severe\n    rank: 5", 1), `severity "severe"`},
		{"unknown field", strings.Replace(cat, "slug: version-unknown", "slug: version-unknown\n    sevrity: high", 1), "sevrity"},
		{"not yaml", "{", "catalogue.yaml"},
	}
	for _, tt := range tests {
		if tt.cat == cat {
			t.Fatalf("%s: the replacement did not change the data", tt.name)
		}
		_, err := Load([]byte(tt.cat), db)
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("%s: error %v, want it to contain %q", tt.name, err, tt.wantErr)
		}
	}
	if _, err := Load(catalogueYAML, nil); err == nil {
		t.Errorf("Load without vulnerability data succeeded")
	}
}

func TestCatalogueAndCVEsAccessors(t *testing.T) {
	e := engine(t)
	cat := e.Catalogue()
	if len(cat) < 12 {
		t.Fatalf("catalogue has %d entries", len(cat))
	}
	cat[0].Title = "changed"
	if e.Catalogue()[0].Title == "changed" {
		t.Errorf("Catalogue returns the engine's own slice")
	}
	required := []string{"CVE-2024-37032", "CVE-2024-39719", "CVE-2024-39720", "CVE-2024-39721", "CVE-2024-39722",
		"CVE-2024-12886", "CVE-2025-0312", "CVE-2025-0315", "CVE-2025-0317", "CVE-2024-28224", "CVE-2025-63389"}
	have := map[string]bool{}
	for _, c := range e.CVEs() {
		if c.Product == "ollama" {
			have[c.ID] = true
		}
	}
	for _, id := range required {
		if !have[id] {
			t.Errorf("CVE table lacks %s for ollama", id)
		}
	}
	if e.CatalogueVersion() < 1 || e.VulnDataDate() == "" {
		t.Errorf("catalogue version %d, data date %q", e.CatalogueVersion(), e.VulnDataDate())
	}
}

func TestFixForProduct(t *testing.T) {
	e := engine(t)
	en, _ := e.Entry("LLMF-001")
	if got := en.FixFor("Ollama"); !strings.Contains(got, "OLLAMA_HOST") {
		t.Errorf("ollama fix: %q", got)
	}
	if got := en.FixFor("llamacpp"); !strings.Contains(got, "llama-server") {
		t.Errorf("llama.cpp fix by normalised name: %q", got)
	}
	if got := en.FixFor("something-else"); got != en.Fix["default"] {
		t.Errorf("fallback: %q", got)
	}
}
