package store

import (
	"fmt"
	"slices"
	"strings"

	"github.com/llmfence/llmfence/internal/service"
)

// Diff is what changed between two runs, keyed by host:port.
type Diff struct {
	From Run `json:"from"` // the earlier ("a") run; zero for DiffServices
	To   Run `json:"to"`   // the later ("b") run
	// Appeared: services in To but not in From.
	Appeared []service.Service `json:"appeared"`
	// Disappeared: services in From but not in To.
	Disappeared []service.Service `json:"disappeared"`
	// Changed: services in both whose record differs in a way Change names.
	Changed []ServiceChange `json:"changed"`
}

// Empty reports whether nothing appeared, disappeared or changed.
func (d Diff) Empty() bool {
	return len(d.Appeared) == 0 && len(d.Disappeared) == 0 && len(d.Changed) == 0
}

// ServiceChange is one service present in both runs that changed.
type ServiceChange struct {
	Key     string          `json:"key"` // host:port
	Before  service.Service `json:"before"`
	After   service.Service `json:"after"`
	Changes []Change        `json:"changes"`
}

// ChangeKind names one kind of change. A service's changes are listed in
// this order: product, version, auth, TLS, management API, CORS, risk; then
// per model, by name: added or removed, digest, system prompt; then findings
// added, then findings resolved, each by ID. A digest that was or became
// unknown ("") is not a change.
type ChangeKind string

const (
	ChangeProduct             ChangeKind = "product"
	ChangeVersion             ChangeKind = "version"
	ChangeAuth                ChangeKind = "auth"
	ChangeTLS                 ChangeKind = "tls"
	ChangeManagement          ChangeKind = "management_open"
	ChangeCORS                ChangeKind = "cors"
	ChangeRisk                ChangeKind = "risk"
	ChangeModelAdded          ChangeKind = "model_added"
	ChangeModelRemoved        ChangeKind = "model_removed"
	ChangeModelDigest         ChangeKind = "model_digest"
	ChangeSystemPromptNew     ChangeKind = "system_prompt_new"
	ChangeSystemPromptChanged ChangeKind = "system_prompt_changed"
	ChangeSystemPromptRemoved ChangeKind = "system_prompt_removed"
	ChangeFindingAdded        ChangeKind = "finding_added"
	ChangeFindingRemoved      ChangeKind = "finding_removed"
)

// Change is one difference in one service, with a human-readable Text.
type Change struct {
	Kind ChangeKind `json:"kind"`
	// Subject is the model name (model and system-prompt changes) or the
	// finding ID (finding changes); empty otherwise.
	Subject string `json:"subject,omitempty"`
	From    string `json:"from,omitempty"`
	To      string `json:"to,omitempty"`
	Text    string `json:"text"`
}

func (c Change) String() string { return c.Text }

// DiffServices compares two service lists (before a, after b) by host:port.
// The result is deterministic: services ordered by address then port,
// changes in ChangeKind order, models by name, findings by ID.
func DiffServices(a, b []service.Service) Diff {
	before := indexServices(a)
	after := indexServices(b)
	d := Diff{Appeared: []service.Service{}, Disappeared: []service.Service{}, Changed: []ServiceChange{}}
	for k, sb := range after {
		sa, ok := before[k]
		if !ok {
			d.Appeared = append(d.Appeared, sb)
			continue
		}
		if ch := compareService(sa, sb); len(ch) > 0 {
			d.Changed = append(d.Changed, ServiceChange{Key: k, Before: sa, After: sb, Changes: ch})
		}
	}
	for k, sa := range before {
		if _, ok := after[k]; !ok {
			d.Disappeared = append(d.Disappeared, sa)
		}
	}
	sortServices(d.Appeared)
	sortServices(d.Disappeared)
	slices.SortFunc(d.Changed, func(x, y ServiceChange) int {
		return compareAddrPort(x.After.Host, x.After.Port, y.After.Host, y.After.Port)
	})
	return d
}

// indexServices keys services by host:port; a later duplicate wins, as it
// does in the store.
func indexServices(svcs []service.Service) map[string]service.Service {
	m := make(map[string]service.Service, len(svcs))
	for _, s := range svcs {
		m[s.Key()] = s
	}
	return m
}

func compareService(a, b service.Service) []Change {
	var out []Change
	field := func(kind ChangeKind, label, from, to string) {
		if from != to {
			out = append(out, Change{Kind: kind, From: from, To: to,
				Text: fmt.Sprintf("%s %s → %s", label, orNone(from, "unknown"), orNone(to, "unknown"))})
		}
	}
	field(ChangeProduct, "product", a.Product, b.Product)
	field(ChangeVersion, "version", a.Version, b.Version)
	field(ChangeAuth, "auth", string(a.Auth), string(b.Auth))
	if a.TLS != b.TLS {
		out = append(out, Change{Kind: ChangeTLS, From: onOff(a.TLS), To: onOff(b.TLS),
			Text: fmt.Sprintf("TLS %s → %s", onOff(a.TLS), onOff(b.TLS))})
	}
	if a.ManagementOpen != b.ManagementOpen {
		from, to := openClosed(a.ManagementOpen), openClosed(b.ManagementOpen)
		out = append(out, Change{Kind: ChangeManagement, From: from, To: to,
			Text: fmt.Sprintf("model management API %s → %s", from, to)})
	}
	if a.CORS != b.CORS {
		out = append(out, Change{Kind: ChangeCORS, From: a.CORS, To: b.CORS,
			Text: fmt.Sprintf("CORS allowed origin %s → %s", orNone(a.CORS, "none"), orNone(b.CORS, "none"))})
	}
	field(ChangeRisk, "risk", string(a.Risk), string(b.Risk))
	out = append(out, compareModels(a.Models, b.Models)...)
	out = append(out, compareFindings(a.Findings, b.Findings)...)
	return out
}

func compareModels(a, b []service.Model) []Change {
	ma, mb := indexModels(a), indexModels(b)
	names := make([]string, 0, len(ma)+len(mb))
	for n := range ma {
		names = append(names, n)
	}
	for n := range mb {
		if _, ok := ma[n]; !ok {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	var out []Change
	for _, n := range names {
		x, inA := ma[n]
		y, inB := mb[n]
		switch {
		case !inA:
			out = append(out, Change{Kind: ChangeModelAdded, Subject: n, Text: "model added: " + n})
			if y.SystemPrompt != "" {
				out = append(out, promptChange(ChangeSystemPromptNew, n, y))
			}
			continue
		case !inB:
			out = append(out, Change{Kind: ChangeModelRemoved, Subject: n, Text: "model removed: " + n})
			continue
		}
		if x.Digest != y.Digest && x.Digest != "" && y.Digest != "" {
			out = append(out, Change{Kind: ChangeModelDigest, Subject: n, From: x.Digest, To: y.Digest,
				Text: fmt.Sprintf("model %s digest %s → %s", n, shortDigest(x.Digest), shortDigest(y.Digest))})
		}
		switch {
		case x.SystemPrompt == "" && y.SystemPrompt != "":
			out = append(out, promptChange(ChangeSystemPromptNew, n, y))
		case x.SystemPrompt != "" && y.SystemPrompt == "":
			out = append(out, Change{Kind: ChangeSystemPromptRemoved, Subject: n,
				Text: fmt.Sprintf("model %s: system prompt removed", n)})
		case x.SystemPrompt != y.SystemPrompt:
			out = append(out, promptChange(ChangeSystemPromptChanged, n, y))
		}
	}
	return out
}

func promptChange(kind ChangeKind, model string, m service.Model) Change {
	verb := "new system prompt"
	if kind == ChangeSystemPromptChanged {
		verb = "system prompt changed"
	}
	text := fmt.Sprintf("model %s: %s (%d chars)", model, verb, len([]rune(m.SystemPrompt)))
	if len(m.SystemPromptCategories) > 0 {
		cats := slices.Clone(m.SystemPromptCategories)
		slices.Sort(cats)
		text += ", categories: " + strings.Join(cats, ", ")
	}
	return Change{Kind: kind, Subject: model, Text: text}
}

func indexModels(ms []service.Model) map[string]service.Model {
	out := make(map[string]service.Model, len(ms))
	for _, m := range ms {
		out[m.Name] = m
	}
	return out
}

func compareFindings(a, b []service.Finding) []Change {
	fa, fb := indexFindings(a), indexFindings(b)
	var removed, added []Change
	for id, f := range fa {
		if _, ok := fb[id]; !ok {
			removed = append(removed, Change{Kind: ChangeFindingRemoved, Subject: id, From: string(f.Severity),
				Text: fmt.Sprintf("finding resolved: %s (%s) %s", id, f.Severity, f.Title)})
		}
	}
	for id, f := range fb {
		if _, ok := fa[id]; !ok {
			added = append(added, Change{Kind: ChangeFindingAdded, Subject: id, To: string(f.Severity),
				Text: fmt.Sprintf("new finding: %s (%s) %s", id, f.Severity, f.Title)})
		}
	}
	bySubject := func(x, y Change) int { return strings.Compare(x.Subject, y.Subject) }
	slices.SortFunc(added, bySubject)
	slices.SortFunc(removed, bySubject)
	return append(added, removed...)
}

func indexFindings(fs []service.Finding) map[string]service.Finding {
	out := make(map[string]service.Finding, len(fs))
	for _, f := range fs {
		out[f.ID] = f
	}
	return out
}

func orNone(s, none string) string {
	if s == "" {
		return none
	}
	return s
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

func openClosed(b bool) string {
	if b {
		return "open"
	}
	return "closed"
}

// shortDigest trims "sha256:" and keeps 12 hex digits, as `ollama list`.
func shortDigest(d string) string {
	d = strings.TrimPrefix(d, "sha256:")
	if len(d) > 12 {
		return d[:12]
	}
	return d
}
