package disclose

import (
	"bufio"
	"cmp"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"github.com/llmfence/llmfence/internal/locale"
	"github.com/llmfence/llmfence/internal/risk"
	"github.com/llmfence/llmfence/internal/service"
)

// maxTargets is how many of the run's targets a notice names.
const maxTargets = 10

// Markdown writes the report as notices in p's language (English when p
// is nil), one per owner, separated by a rule. Each reads as a CSIRT's
// notice: a header (subject, recipient, date, reference), then summary,
// what was found, impact, what is asked, and whom to contact.
func (r Report) Markdown(w io.Writer, p *locale.Printer) error {
	if p == nil {
		c, err := Catalogue()
		if err != nil {
			return err
		}
		p = c.Printer(locale.English)
	}
	n := notice{r: r, p: p, w: bufio.NewWriter(w)}
	if len(r.Groups) == 0 {
		n.line("# " + p.T("disclose.title"))
		n.line("")
		n.header(nil)
		n.line(p.T("disclose.nothing"))
	}
	for i, g := range r.Groups {
		if i > 0 {
			n.line("")
			n.line("---")
			n.line("")
		}
		n.group(g)
	}
	return n.w.Flush()
}

// notice writes one Markdown document.
type notice struct {
	r Report
	p *locale.Printer
	w *bufio.Writer
}

func (n notice) line(s string) { n.w.WriteString(s + "\n") }

// t is p.T with the arguments escaped for Markdown: they come from
// scanned servers and owners files, the message texts are ours.
func (n notice) t(id string, kv ...string) string {
	for i := 1; i < len(kv); i += 2 {
		if !strings.HasSuffix(kv[i-1], "_msg") {
			kv[i] = md(kv[i])
		}
	}
	return n.p.T(id, kv...)
}

func (n notice) group(g Group) {
	p := n.p
	n.line("# " + p.T("disclose.title"))
	n.line("")
	n.header(&g)

	if g.Team == Unowned || g.ContactSource == "security.txt" {
		n.line(p.T("disclose.salutation_unowned"))
	} else {
		n.line(n.t("disclose.salutation", "team", g.Team))
	}
	n.line("")
	n.line(p.T("disclose.greeting"))
	n.line("")
	n.line("## " + p.T("disclose.h.summary"))
	n.line("")
	serious, open := 0, 0
	for _, e := range g.Services {
		if sev, _ := service.ParseSeverity(e.Risk); sev.Rank() >= service.SeverityHigh.Rank() {
			serious++
		}
		if e.Auth == string(service.AuthNone) {
			open++
		}
	}
	sum := []string{n.t("disclose.summary.intro", "date", p.DateTime(n.r.Scanned), "run", n.r.RunID, "targets", n.targets(),
		"count", strconv.Itoa(len(g.Services)))}
	if serious > 0 {
		sum = append(sum, p.T("disclose.summary.serious", "count", strconv.Itoa(serious)))
	}
	if open > 0 {
		sum = append(sum, p.T("disclose.summary.unauthenticated", "count", strconv.Itoa(open)))
	}
	gap := " "
	if p.Lang() == locale.Japanese {
		gap = "" // Japanese sentences follow each other without a space
	}
	n.line(strings.Join(sum, gap))
	n.line("")
	n.line(p.T("disclose.summary.redacted"))
	n.line("")

	n.line("## " + p.T("disclose.h.findings"))
	n.line("")
	for i, e := range g.Services {
		n.exposure(i+1, e)
	}

	n.line("## " + p.T("disclose.h.impact"))
	n.line("")
	for _, f := range distinctFindings(g) {
		why := risk.Why(p, f.ID)
		if why == "" {
			why = f.Why
		}
		if why == "" {
			continue
		}
		// Titles, why and fixes are the catalogue's own text: not escaped,
		// so its code spans stay code.
		n.line("- " + p.T("disclose.impact_item", "id", f.ID, "title", oneLine(risk.Title(p, service.Finding{ID: f.ID, Title: f.Title})), "why", oneLine(why)))
	}
	n.line("")

	n.line("## " + p.T("disclose.h.request"))
	n.line("")
	n.line(p.T("disclose.request.intro"))
	n.line("")
	for _, e := range g.Services {
		n.line("### " + md(addr(e)))
		n.line("")
		steps := risk.Remediation(p, &service.Service{Remediation: e.Remediation, RemediationMsgs: e.RemediationMsgs})
		if len(steps) == 0 {
			n.line(p.T("disclose.request.none"))
		}
		for j, s := range steps {
			n.line(strconv.Itoa(j+1) + ". " + oneLine(s))
		}
		n.line("")
	}

	n.line("## " + p.T("disclose.h.contact"))
	n.line("")
	if n.r.From != "" {
		n.line(n.t("disclose.contact.from", "from", n.r.From))
	} else {
		n.line(n.t("disclose.contact.sender", "run", n.r.RunID))
	}
	n.line("")
	n.line(p.T("disclose.closing"))
}

// header is the notice's header block: subject, recipient, date,
// reference (and the recipient's preferred languages, when its
// security.txt gives them). g is nil for an empty report.
func (n notice) header(g *Group) {
	p := n.p
	item := func(label, value string) { n.line("- **" + p.T(label) + "**" + p.T("disclose.colon") + value) }
	if g != nil {
		item("disclose.field.subject", p.T("disclose.subject", "count", strconv.Itoa(len(g.Services))))
		var to string
		switch {
		case g.Team == Unowned:
			to = p.T("disclose.unowned")
		case g.ContactSource == "security.txt" && len(g.Services) > 0:
			to = n.t("disclose.to.security_txt", "service", addr(g.Services[0]), "contact", g.Contact)
		case g.Contact != "":
			to = n.t("disclose.to.contact", "team", g.Team, "contact", g.Contact)
		default:
			to = n.t("disclose.to.unknown", "team", g.Team)
		}
		item("disclose.field.to", to)
		if g.SecurityTxt != nil && g.SecurityTxt.PreferredLanguages != "" {
			item("disclose.field.languages", md(g.SecurityTxt.PreferredLanguages))
		}
	}
	item("disclose.field.date", p.Date(n.r.Generated))
	item("disclose.field.reference", n.t("disclose.reference", "run", n.r.RunID, "scanned", p.DateTime(n.r.Scanned)))
	if n.r.From != "" {
		item("disclose.field.from", md(n.r.From))
	}
	n.line("")
}

// targets names the run's targets, at most maxTargets of them.
func (n notice) targets() string {
	t := n.r.Targets
	if len(t) <= maxTargets {
		return strings.Join(t, " ")
	}
	return strings.Join(t[:maxTargets], " ") + " " + n.p.T("disclose.more_targets", "count", strconv.Itoa(len(t)-maxTargets))
}

func addr(e Exposure) string { return e.Host + ":" + strconv.Itoa(e.Port) }

// exposure writes what was found on one service.
func (n notice) exposure(i int, e Exposure) {
	p := n.p
	head := fmt.Sprintf("### %d. %s", i, md(addr(e)))
	if prod := strings.TrimSpace(e.Product + " " + e.Version); prod != "" {
		head += " — " + md(prod)
	}
	n.line(head)
	n.line("")
	if e.Hostname != "" {
		n.line("- " + n.t("disclose.hostname", "name", e.Hostname))
	}
	n.line("- " + p.T("disclose.risk", "risk", risk.Severity(p, service.Severity(e.Risk))))
	auth := "disclose.auth.unknown"
	switch e.Auth {
	case string(service.AuthNone):
		auth = "disclose.auth.none"
	case string(service.AuthRequired):
		auth = "disclose.auth.required"
	}
	n.line("- " + p.T(auth))
	if len(e.Findings) > 0 {
		n.line("- " + p.T("disclose.findings"))
	}
	for _, f := range e.Findings {
		sf := service.Finding{ID: f.ID, Title: f.Title, Detail: f.Detail, DetailMsg: f.DetailMsg}
		item := p.T("disclose.finding", "id", md(f.ID), "title", oneLine(risk.Title(p, sf)),
			"severity", risk.Severity(p, service.Severity(f.Severity)))
		if d := risk.Detail(p, sf); d != "" {
			item += p.T("disclose.colon") + md(strings.ReplaceAll(d, redactedMark, p.T("disclose.redacted_quote")))
		}
		n.line("  - " + item)
	}
	var prompts []ModelView
	for _, m := range e.Models {
		if m.SystemPrompt != "" {
			prompts = append(prompts, m)
		}
	}
	if len(prompts) > 0 {
		n.line("- " + p.T("disclose.models"))
	}
	for _, m := range prompts {
		if len(m.promptCategories) == 0 {
			n.line("  - " + n.t("disclose.prompt_withheld", "model", m.Name, "count", strconv.Itoa(m.promptChars)))
			continue
		}
		cats := make([]string, len(m.promptCategories))
		for j, c := range m.promptCategories {
			cats[j] = c
			if p.Has(risk.CategoryID(c)) {
				cats[j] = p.T(risk.CategoryID(c))
			}
		}
		n.line("  - " + n.t("disclose.prompt_withheld_categories", "model", m.Name, "count", strconv.Itoa(m.promptChars),
			"categories", strings.Join(cats, p.T("disclose.list_sep"))))
	}
	n.line("")
}

// distinctFindings lists each finding ID of a group once, most severe
// first, for the impact section.
func distinctFindings(g Group) []FindingView {
	seen := map[string]FindingView{}
	for _, e := range g.Services {
		for _, f := range e.Findings {
			if prev, ok := seen[f.ID]; !ok || rank(f.Severity) > rank(prev.Severity) {
				seen[f.ID] = f
			}
		}
	}
	out := make([]FindingView, 0, len(seen))
	for _, f := range seen {
		out = append(out, f)
	}
	slices.SortFunc(out, func(a, b FindingView) int {
		return cmp.Or(cmp.Compare(rank(b.Severity), rank(a.Severity)), cmp.Compare(a.ID, b.ID))
	})
	return out
}

func rank(s string) int {
	v, _ := service.ParseSeverity(s)
	return v.Rank()
}

// oneLine folds text to one line (no control characters survive).
func oneLine(s string) string {
	return strings.Join(strings.FieldsFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }), " ")
}

// md escapes text from scanned servers for Markdown.
func md(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	return strings.NewReplacer("\\", "\\\\", "`", "\\`", "*", "\\*", "_", "\\_", "[", "\\[", "]", "\\]", "<", "&lt;", ">", "&gt;", "#", "\\#", "|", "\\|").Replace(s)
}
