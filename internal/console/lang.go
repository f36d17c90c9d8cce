package console

import (
	"embed"
	"encoding/json"
	"fmt"
	"html"
	"html/template"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/llmfence/llmfence/internal/datascan"
	"github.com/llmfence/llmfence/internal/jobs"
	"github.com/llmfence/llmfence/internal/locale"
	"github.com/llmfence/llmfence/internal/probe"
	probereport "github.com/llmfence/llmfence/internal/probe/report"
	"github.com/llmfence/llmfence/internal/risk"
	"github.com/llmfence/llmfence/internal/service"
	"github.com/llmfence/llmfence/internal/store"
	"github.com/llmfence/llmfence/internal/vulndb"
)

// The dashboard's words in every language (internal/locale message files).
//
//go:embed messages.en.yaml messages.ja.yaml
var messageFiles embed.FS

// Messages is the source of the dashboard's own words. The catalogue a
// Server uses needs risk.Messages() and vulndb.Messages() too (Catalogue).
func Messages() locale.Source {
	return func(b *locale.Builder) error { return b.LoadFS(messageFiles, "messages.*.yaml") }
}

// Catalogue builds a catalogue of everything the dashboard says: its own
// words, the findings catalogue and the vulnerability titles, plus extra
// sources.
func Catalogue(extra ...locale.Source) (*locale.Catalogue, error) {
	return locale.NewCatalogue(append([]locale.Source{Messages(), risk.Messages(), vulndb.Messages(), probereport.Messages(), datascan.Messages()}, extra...)...)
}

// readerLang is the language of a page: the signed-in user's setting,
// else the browser's Accept-Language, else English. u is nil before
// sign-in.
func readerLang(r *http.Request, u *store.User) locale.Lang {
	if u != nil && u.Lang != "" {
		if l, err := locale.ParseLang(u.Lang); err == nil {
			return l
		}
	}
	if l, ok := locale.FromAcceptLanguage(r.Header.Get("Accept-Language")); ok {
		return l
	}
	return locale.English
}

// parseUserLang reads a language setting: "" (follow the browser), en, ja.
func parseUserLang(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", nil
	}
	l, err := locale.ParseLang(s)
	if err != nil || string(l) != strings.ToLower(s) {
		return "", errText(http.StatusBadRequest, "console.error.lang", "lang", s)
	}
	return string(l), nil
}

// The methods below are what page templates say things with, in the
// view's language ({{$.T "console.nav.overview"}}). Data from the store
// goes through them unchanged in English.

// T says a message.
func (v view) T(id string, kv ...string) string { return v.p.T(id, kv...) }

// Markup says a message whose arguments are HTML written in a template
// (never data): the message's own text is escaped, the arguments are not.
func (v view) Markup(id string, kv ...string) template.HTML {
	slots := make([]string, len(kv))
	args := make([]string, len(kv))
	for i := range kv {
		args[i] = kv[i]
		if i%2 == 1 {
			slots[i] = "\x00" + strconv.Itoa(i) + "\x00"
			args[i] = slots[i]
		}
	}
	out := html.EscapeString(v.p.T(id, args...))
	for i := 1; i < len(kv); i += 2 {
		out = strings.ReplaceAll(out, html.EscapeString(slots[i]), kv[i])
	}
	return template.HTML(out)
}

// On reports whether the page is the navigation entry at path.
func (v view) On(path string) bool {
	if path == "/" {
		return v.Path == "/"
	}
	return v.Path == path || strings.HasPrefix(v.Path, path+"/")
}

// Time is a moment in UTC to the minute: 2025-03-04 10:05 UTC, or
// 2025年3月4日 10:05 UTC.
func (v view) Time(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	t = t.UTC()
	if v.p.Lang() == locale.Japanese {
		return v.p.Date(t) + " " + t.Format("15:04") + " UTC"
	}
	return t.Format("2006-01-02 15:04 UTC")
}

// PTime is Time of an optional moment.
func (v view) PTime(t *time.Time) string {
	if t == nil {
		return "—"
	}
	return v.Time(*t)
}

// Day is a YYYY-MM-DD day in the reader's convention.
func (v view) Day(s string) string { return v.p.DateString(s) }

// Word says one value of a fixed vocabulary (a state, a status, a role,
// an event kind...): console.word.GROUP.VALUE, or the value itself when
// there is no such message.
func (v view) Word(group string, value any) string {
	s := fmt.Sprint(value)
	if s == "" {
		return ""
	}
	id := "console.word." + group + "." + wordKey(s)
	if v.p.Has(id) {
		return v.p.T(id)
	}
	return s
}

func wordKey(s string) string {
	return strings.NewReplacer(" ", "_", "-", "_", ".", "_").Replace(strings.ToLower(s))
}

// ProbeReason is the reason a probe verdict's summary record gives, in
// the reader's language: said from its reason_msgs (internal/probe/report),
// else the English the record keeps.
func (v view) ProbeReason(raw json.RawMessage) string {
	var s probe.Summary
	_ = json.Unmarshal(raw, &s)
	return probereport.Reason(v.p, s)
}

// DatascanKind is a datascan finding kind: in Japanese as datascan's own
// table and report name it (datascan.kind.KIND.label), in English (where
// datascan's label is the kind's ID) by the dashboard's word for it.
func (v view) DatascanKind(kind string) string {
	if id := "datascan.kind." + kind + ".label"; v.p.Lang() != locale.English && v.p.Has(id) {
		return v.p.T(id)
	}
	return v.Word("dskind", kind)
}

func num(x any) float64 { f, _ := x.(float64); return f }

// AuditAction says an audit trail action ("finding acknowledge").
func (v view) AuditAction(a string) string { return v.Word("audit", a) }

// Severity says a severity or risk level (JVN's names in Japanese).
func (v view) Severity(s any) string { return risk.Severity(v.p, service.Severity(fmt.Sprint(s))) }

// Categories says system-prompt categories.
func (v view) Categories(cs []string) string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c
		if v.p.Has(risk.CategoryID(c)) {
			out[i] = v.p.T(risk.CategoryID(c))
		}
	}
	return strings.Join(out, v.p.T("console.list_sep"))
}

// FindingTitle is an inventory finding's title.
func (v view) FindingTitle(f store.InvFinding) string {
	return risk.Title(v.p, service.Finding{ID: f.FindingID, Title: f.Title})
}

// FindingDetail is what on the service triggered an inventory finding.
func (v view) FindingDetail(f store.InvFinding) string {
	return risk.Detail(v.p, service.Finding{ID: f.FindingID, Detail: f.Detail, DetailMsg: f.DetailMsg})
}

// statusCounts reads the counts of a watched path's last status
// ("3 files, 1 with findings at or above high, 0 not inspected").
var statusCounts = regexp.MustCompile(`^(\d+) files, (\d+) with findings at or above high, (\d+) not inspected$`)

// PathStatus says the result of a watched path's last inspection.
func (v view) PathStatus(p store.WatchedPath) string {
	if p.LastStatus == "" {
		return "—"
	}
	if m := statusCounts.FindStringSubmatch(p.LastStatus); m != nil {
		return v.p.T("console.results.status", "files", m[1], "failed", m[2], "errors", m[3])
	}
	return p.LastStatus
}

// Change says one change between two runs (diff page); after is the
// service in the later run.
func (v view) Change(c store.Change, after service.Service) string {
	p := v.p
	if p.Lang() == locale.English {
		return c.Text
	}
	or := func(s, none string) string {
		if s == "" {
			return p.T(none)
		}
		return s
	}
	switch c.Kind {
	case store.ChangeProduct, store.ChangeVersion:
		return p.T("console.change."+string(c.Kind), "from", or(c.From, "console.change.unknown"), "to", or(c.To, "console.change.unknown"))
	case store.ChangeAuth:
		return p.T("console.change.auth", "from", v.Word("auth", or(c.From, "console.change.unknown")), "to", v.Word("auth", or(c.To, "console.change.unknown")))
	case store.ChangeRisk:
		return p.T("console.change.risk", "from", v.Severity(c.From), "to", v.Severity(c.To))
	case store.ChangeTLS, store.ChangeManagement:
		return p.T("console.change."+string(c.Kind), "from", v.Word("change", c.From), "to", v.Word("change", c.To))
	case store.ChangeCORS:
		return p.T("console.change.cors", "from", or(c.From, "console.change.none"), "to", or(c.To, "console.change.none"))
	case store.ChangeModelAdded, store.ChangeModelRemoved, store.ChangeSystemPromptRemoved:
		return p.T("console.change."+string(c.Kind), "model", c.Subject)
	case store.ChangeModelDigest:
		return p.T("console.change.model_digest", "model", c.Subject, "from", short(c.From), "to", short(c.To))
	case store.ChangeSystemPromptNew, store.ChangeSystemPromptChanged:
		for _, m := range after.Models {
			if m.Name == c.Subject {
				id := "console.change." + string(c.Kind)
				if len(m.SystemPromptCategories) > 0 {
					return p.T(id+"_categories", "model", c.Subject, "count", strconv.Itoa(len([]rune(m.SystemPrompt))),
						"categories", v.Categories(m.SystemPromptCategories))
				}
				return p.T(id, "model", c.Subject, "count", strconv.Itoa(len([]rune(m.SystemPrompt))))
			}
		}
	case store.ChangeFindingAdded, store.ChangeFindingRemoved:
		sev := c.To
		if c.Kind == store.ChangeFindingRemoved {
			sev = c.From
		}
		return p.T("console.change."+string(c.Kind), "id", c.Subject, "severity", v.Severity(sev),
			"title", risk.Title(p, service.Finding{ID: c.Subject, Title: c.Text}))
	}
	return c.Text
}

// short shortens a digest as the English text does.
func short(d string) string {
	d = strings.TrimPrefix(d, "sha256:")
	if len(d) > 12 {
		d = d[:12]
	}
	return d
}

// The English summaries of the events whose arguments are only in the
// text (older stores recorded no detail for them).
var (
	reWas       = regexp.MustCompile(`\(was ([a-z]+)\)$`)
	reNotSeen   = regexp.MustCompile(`\(not seen for ([0-9hms.]+)\)$`)
	reAccepted  = regexp.MustCompile(`\(asked by (.+)\) until (\d{4}-\d{2}-\d{2})$`)
	reRejected  = regexp.MustCompile(`^acceptance asked by (.+) turned down by `)
	reReopened  = regexp.MustCompile(`^acceptance expired; \S+ (\S+) on `)
	reOfFinding = regexp.MustCompile(`([A-Z]+-\d+) on `)
	reTags      = regexp.MustCompile(`^tags set to (.*)$`)
	reSnoozed   = regexp.MustCompile(`^alerts snoozed until (\S+)$`)
)

// Event says one timeline event. English keeps the recorded summary;
// another language is written from the event's kind and recorded
// arguments, and falls back to the summary when they are missing.
func (v view) Event(e store.Event) string {
	p := v.p
	if p.Lang() == locale.English {
		return e.Summary
	}
	d := map[string]any{}
	if len(e.Detail) > 0 {
		_ = json.Unmarshal(e.Detail, &d)
	}
	str := func(k string) string {
		if s, ok := d[k].(string); ok {
			return s
		}
		return ""
	}
	addr := net.JoinHostPort(e.Host, strconv.Itoa(e.Port))
	sev := v.Severity(e.Severity)
	title := func() string {
		return risk.Title(p, service.Finding{ID: str("finding"), Title: str("title")})
	}
	say := func(id string, kv ...string) string { return p.T("console.event."+id, kv...) }
	switch e.Kind {
	case store.EvServiceNew:
		if _, ok := d["auth"]; ok {
			return say("service_new", "product", strings.TrimSpace(str("product")+" "+str("version")), "addr", addr,
				"auth", v.Word("auth", str("auth")))
		}
	case store.EvServiceBack:
		if m := reWas.FindStringSubmatch(e.Summary); m != nil {
			return say("service_back", "addr", addr, "state", v.Word("state", m[1]))
		}
	case store.EvServiceNotObserved:
		return say("service_not_observed", "addr", addr, "run", e.RunID)
	case store.EvServiceState:
		if str("to") != "" {
			age := ""
			if m := reNotSeen.FindStringSubmatch(e.Summary); m != nil {
				if dur, err := time.ParseDuration(m[1]); err == nil {
					age = p.Duration(dur)
				}
			}
			return say("service_state", "from", v.Word("state", str("from")), "to", v.Word("state", str("to")), "age", age)
		}
	case store.EvServiceVersion:
		if str("to") != "" {
			return say("service_version", "from", strings.TrimSpace(str("from")), "to", strings.TrimSpace(str("to")))
		}
	case store.EvAuthDropped:
		return say("auth_dropped", "addr", addr, "from", v.Word("auth", str("from")))
	case store.EvAuthAdded:
		return say("auth_added", "addr", addr)
	case store.EvModelAdded:
		if str("model") != "" {
			return say("model_added", "model", str("model"))
		}
	case store.EvModelRemoved:
		if str("model") != "" {
			return say("model_removed", "model", str("model"))
		}
	case store.EvPromptChanged:
		if str("model") != "" {
			return say("prompt_changed", "model", str("model"))
		}
	case store.EvFindingOpened:
		if str("finding") != "" {
			return say("finding_opened", "severity", sev, "id", str("finding"), "addr", addr, "title", title())
		}
	case store.EvFindingReopened:
		if str("finding") != "" {
			return say("finding_reopened", "severity", sev, "id", str("finding"), "addr", addr, "title", title())
		}
		if m := reReopened.FindStringSubmatch(e.Summary); m != nil {
			return say("acceptance_expired", "severity", sev, "id", m[1], "addr", addr)
		}
	case store.EvFindingResolved:
		return say("finding_resolved", "id", strconv.FormatInt(e.FindingID, 10), "addr", addr, "run", e.RunID)
	case store.EvFindingAck:
		if note := str("note"); note != "" {
			return say("acknowledged_note", "actor", e.Actor, "note", note)
		}
		return say("acknowledged", "actor", e.Actor)
	case store.EvAcceptRequested:
		if until, err := time.Parse(time.RFC3339, str("until")); err == nil {
			return say("accept_requested", "actor", e.Actor, "until", p.Date(until), "reason", str("reason"))
		}
	case store.EvAccepted:
		if m := reAccepted.FindStringSubmatch(e.Summary); m != nil {
			return say("accepted", "actor", e.Actor, "requester", m[1], "until", p.DateString(m[2]))
		}
	case store.EvAcceptRejected:
		if m := reRejected.FindStringSubmatch(e.Summary); m != nil {
			return say("accept_rejected", "actor", e.Actor, "requester", m[1])
		}
	case store.EvAcceptExpiring:
		if m := reOfFinding.FindStringSubmatch(e.Summary); m != nil {
			return say("accept_expiring", "id", m[1], "addr", addr)
		}
	case store.EvSLABreach:
		if m := reOfFinding.FindStringSubmatch(e.Summary); m != nil {
			return say("sla_breach", "severity", sev, "id", m[1], "addr", addr)
		}
	case store.EvServiceSnoozed:
		if e.Summary == "snooze cleared" {
			return say("snooze_cleared")
		}
		if m := reSnoozed.FindStringSubmatch(e.Summary); m != nil {
			if t, err := time.Parse(time.RFC3339, m[1]); err == nil {
				return say("snoozed", "until", v.Time(t))
			}
		}
	case jobs.EvDatascanFindings:
		if str("path") != "" {
			return say("datascan_findings", "id", strconv.FormatFloat(num(d["datascan"]), 'f', 0, 64), "path", str("path"),
				"total", strconv.FormatFloat(num(d["total"]), 'f', 0, 64), "severity", sev)
		}
	case jobs.EvProbeVerdict:
		if str("probe") != "" {
			return say("probe_verdict", "id", str("probe"), "model", str("model"), "addr", addr, "suite", v.Word("suite", str("suite")),
				"verdict", v.Word("pverdict", str("verdict")), "severity", sev)
		}
	case store.EvTagged:
		if m := reTags.FindStringSubmatch(e.Summary); m != nil {
			return say("tagged", "tags", m[1])
		}
	}
	return e.Summary
}
