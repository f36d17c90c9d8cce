// Package disclose writes notification reports of a scan run, one per
// owner: what is exposed, the evidence (system prompts redacted: length and
// categories only), why it matters and how to fix it, in Markdown, CSV or
// JSON. Owners come from the owners file; a service without an owner
// there gets the contact its own /.well-known/security.txt (RFC 9116)
// gives, when asked — read only from hosts the run scanned.
package disclose

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/llmfence/llmfence/internal/owners"
	"github.com/llmfence/llmfence/internal/risk"
	"github.com/llmfence/llmfence/internal/service"
	"github.com/llmfence/llmfence/internal/store"
)

// Options tune a report.
type Options struct {
	Owners *owners.Map
	// SecurityTxt reads /.well-known/security.txt from each service
	// without an owner.
	SecurityTxt bool
	// Client fetches security.txt (default: 5 s timeout, no redirects,
	// no proxy).
	Client *http.Client
	// MinSeverity leaves out services rated lower (default low).
	MinSeverity service.Severity
	Now         func() time.Time
	UserAgent   string
}

// Report is a run's disclosure, grouped by owner.
type Report struct {
	RunID     string    `json:"run_id"`
	Scanned   time.Time `json:"scanned"`
	Generated time.Time `json:"generated"`
	Targets   []string  `json:"targets"`
	Groups    []Group   `json:"owners"`
}

// Group is what one owner is told.
type Group struct {
	Team          string       `json:"team"`
	Contact       string       `json:"contact,omitempty"`
	ContactSource string       `json:"contact_source,omitempty"` // owners file, security.txt
	SecurityTxt   *SecurityTxt `json:"security_txt,omitempty"`
	Services      []Exposure   `json:"services"`
}

// Exposure is one service and what is wrong with it.
type Exposure struct {
	Host        string        `json:"host"`
	Port        int           `json:"port"`
	Hostname    string        `json:"hostname,omitempty"`
	Product     string        `json:"product"`
	Version     string        `json:"version"`
	Auth        string        `json:"auth"`
	Risk        string        `json:"risk"`
	Findings    []FindingView `json:"findings"`
	Models      []ModelView   `json:"models,omitempty"`
	Remediation string        `json:"remediation,omitempty"`
}

// FindingView is a finding with its explanation.
type FindingView struct {
	ID       string `json:"id"`
	Severity string `json:"severity"`
	Title    string `json:"title"`
	Detail   string `json:"detail,omitempty"`
	Why      string `json:"why,omitempty"`
	Fix      string `json:"fix,omitempty"`
}

// ModelView is a model with its system prompt redacted.
type ModelView struct {
	Name         string `json:"name"`
	SystemPrompt string `json:"system_prompt,omitempty"`
}

// Unowned is the team of services no owner claims.
const Unowned = "(no owner)"

// Build assembles the report of run runRef.
func Build(ctx context.Context, st store.Store, runRef string, o Options) (Report, error) {
	run, err := st.GetRun(ctx, runRef)
	if err != nil {
		return Report{}, err
	}
	svcs, err := st.Services(ctx, run.ID)
	if err != nil {
		return Report{}, err
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.MinSeverity == "" {
		o.MinSeverity = service.SeverityLow
	}
	eng, err := risk.New()
	if err != nil {
		return Report{}, err
	}
	cat := map[string]risk.Entry{}
	for _, e := range eng.Catalogue() {
		cat[e.ID] = e
	}
	rep := Report{RunID: run.ID, Scanned: run.StartedAt, Generated: o.Now().UTC(), Targets: run.Targets}
	groups := map[string]*Group{}
	var order []string
	for _, sv := range svcs {
		if sv.Risk.Rank() < o.MinSeverity.Rank() {
			continue
		}
		team, contact, source := Unowned, "", ""
		if ow, ok := o.Owners.Lookup(sv.Host, sv.Port, sv.Hostname); ok {
			team, contact, source = ow.Team, ow.Contact, "owners file"
		}
		var stxt *SecurityTxt
		if source == "" && o.SecurityTxt {
			if t, err := FetchSecurityTxt(ctx, o.client(), sv, o.UserAgent, o.Now()); err == nil && len(t.Contact) > 0 {
				stxt = &t
				team, contact, source = "security.txt: "+sv.Host+":"+strconv.Itoa(sv.Port), t.Contact[0], "security.txt"
			}
		}
		g := groups[team]
		if g == nil {
			g = &Group{Team: team, Contact: contact, ContactSource: source, SecurityTxt: stxt}
			groups[team] = g
			order = append(order, team)
		}
		g.Services = append(g.Services, exposure(sv, cat))
	}
	slices.SortStableFunc(order, func(a, b string) int {
		switch {
		case a == Unowned:
			return 1
		case b == Unowned:
			return -1
		}
		return strings.Compare(a, b)
	})
	for _, t := range order {
		rep.Groups = append(rep.Groups, *groups[t])
	}
	return rep, nil
}

func (o Options) client() *http.Client {
	if o.Client != nil {
		return o.Client
	}
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{Proxy: nil},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func exposure(sv service.Service, cat map[string]risk.Entry) Exposure {
	e := Exposure{Host: sv.Host, Port: sv.Port, Hostname: sv.Hostname, Product: sv.Product, Version: sv.Version, Auth: string(sv.Auth),
		Risk: string(sv.Risk), Remediation: sv.Remediation}
	for _, f := range sv.Findings {
		fv := FindingView{ID: f.ID, Severity: string(f.Severity), Title: f.Title, Detail: redactPrompt(f.Detail, sv)}
		if c, ok := cat[f.ID]; ok {
			fv.Why, fv.Fix = strings.TrimSpace(c.Why), strings.TrimSpace(c.FixFor(sv.Product))
		}
		e.Findings = append(e.Findings, fv)
	}
	for _, m := range sv.Models {
		mv := ModelView{Name: m.Name}
		if m.SystemPrompt != "" {
			mv.SystemPrompt = fmt.Sprintf("[redacted: %d characters", len([]rune(m.SystemPrompt)))
			if len(m.SystemPromptCategories) > 0 {
				mv.SystemPrompt += "; categories: " + strings.Join(m.SystemPromptCategories, ", ")
			}
			mv.SystemPrompt += "]"
		}
		e.Models = append(e.Models, mv)
	}
	return e
}

// redactPrompt removes system prompt text quoted in a finding's detail:
// any run of 12 or more characters that also appears in one of the
// service's system prompts.
func redactPrompt(detail string, sv service.Service) string {
	const minRun = 12
	if len(detail) > 4096 {
		detail = detail[:4096]
	}
	var prompts []string
	for _, m := range sv.Models {
		if len(m.SystemPrompt) >= minRun {
			prompts = append(prompts, m.SystemPrompt)
		}
	}
	if len(prompts) == 0 {
		return detail
	}
	var b strings.Builder
	for i := 0; i < len(detail); {
		best := 0
		for _, p := range prompts {
			for j := i + minRun; j <= len(detail) && strings.Contains(p, detail[i:j]); j++ {
				best = max(best, j-i)
			}
		}
		if best >= minRun {
			b.WriteString("[system prompt redacted]")
			i += best
			continue
		}
		b.WriteByte(detail[i])
		i++
	}
	return b.String()
}

// SecurityTxt is what a service's RFC 9116 file says.
type SecurityTxt struct {
	URL                string    `json:"url"`
	Contact            []string  `json:"contact"`
	Expires            time.Time `json:"expires"`
	Encryption         []string  `json:"encryption,omitempty"`
	Policy             []string  `json:"policy,omitempty"`
	PreferredLanguages string    `json:"preferred_languages,omitempty"`
}

// MaxSecurityTxt bounds the file read.
const MaxSecurityTxt = 32 << 10

// FetchSecurityTxt reads /.well-known/security.txt from the service's own
// address. A file without Contact, without Expires, or expired is refused
// (RFC 9116 §2.5.5: an expired file must not be used).
func FetchSecurityTxt(ctx context.Context, c *http.Client, sv service.Service, ua string, now time.Time) (SecurityTxt, error) {
	base := sv.URL
	if base == "" {
		scheme := "http"
		if sv.TLS {
			scheme = "https"
		}
		base = scheme + "://" + sv.Key() + "/"
	}
	u, err := url.Parse(base)
	if err != nil {
		return SecurityTxt{}, err
	}
	u.Path, u.RawQuery, u.Fragment = "/.well-known/security.txt", "", ""
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return SecurityTxt{}, err
	}
	if ua != "" {
		req.Header.Set("User-Agent", ua)
	}
	resp, err := c.Do(req)
	if err != nil {
		return SecurityTxt{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return SecurityTxt{}, fmt.Errorf("security.txt: %s", resp.Status)
	}
	t, err := ParseSecurityTxt(io.LimitReader(resp.Body, MaxSecurityTxt))
	if err != nil {
		return t, err
	}
	t.URL = u.String()
	if t.Expires.IsZero() || !t.Expires.After(now) {
		return t, fmt.Errorf("security.txt at %s has expired or has no Expires field", t.URL)
	}
	return t, nil
}

// ParseSecurityTxt reads the fields of a security.txt (signed files are
// read for their fields; the signature is not checked).
func ParseSecurityTxt(r io.Reader) (SecurityTxt, error) {
	var t SecurityTxt
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), MaxSecurityTxt)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, "-----") {
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		switch strings.ToLower(strings.TrimSpace(k)) {
		case "contact":
			if len(t.Contact) < 10 && v != "" {
				t.Contact = append(t.Contact, v)
			}
		case "expires":
			if e, err := time.Parse(time.RFC3339, v); err == nil {
				t.Expires = e.UTC()
			}
		case "encryption":
			if len(t.Encryption) < 10 {
				t.Encryption = append(t.Encryption, v)
			}
		case "policy":
			if len(t.Policy) < 10 {
				t.Policy = append(t.Policy, v)
			}
		case "preferred-languages":
			t.PreferredLanguages = v
		}
	}
	return t, sc.Err()
}

// Markdown writes the report, one section per owner.
func (r Report) Markdown(w io.Writer) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "# Exposed LLM services: notification from scan run %s\n\n", r.RunID)
	fmt.Fprintf(bw, "Scanned %s; report written %s. Targets: %s.\n\n", r.Scanned.Format(time.RFC3339), r.Generated.Format(time.RFC3339), md(strings.Join(r.Targets, " ")))
	if len(r.Groups) == 0 {
		fmt.Fprintln(bw, "Nothing to report: no service at or above the severity threshold.")
	}
	for _, g := range r.Groups {
		fmt.Fprintf(bw, "## %s\n\n", md(g.Team))
		if g.Contact != "" {
			fmt.Fprintf(bw, "Contact: %s (from the %s)\n\n", md(g.Contact), g.ContactSource)
		}
		for _, e := range g.Services {
			fmt.Fprintf(bw, "### %s:%d — %s %s, risk %s\n\n", md(e.Host), e.Port, md(e.Product), md(e.Version), e.Risk)
			fmt.Fprintf(bw, "Authentication: %s.\n\n", e.Auth)
			for _, f := range e.Findings {
				fmt.Fprintf(bw, "- **%s %s** (%s)", f.ID, md(f.Title), f.Severity)
				if f.Detail != "" {
					fmt.Fprintf(bw, ": %s", md(f.Detail))
				}
				fmt.Fprintln(bw)
				if f.Why != "" {
					fmt.Fprintf(bw, "  - Why it matters: %s\n", md(oneLine(f.Why)))
				}
				if f.Fix != "" {
					fmt.Fprintf(bw, "  - How to fix: %s\n", md(oneLine(f.Fix)))
				}
			}
			for _, m := range e.Models {
				if m.SystemPrompt != "" {
					fmt.Fprintf(bw, "- Model %s: system prompt %s\n", md(m.Name), m.SystemPrompt)
				}
			}
			fmt.Fprintln(bw)
		}
	}
	return bw.Flush()
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

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

// CSV writes one row per finding.
func (r Report) CSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	cw.Write([]string{"owner", "contact", "host", "port", "product", "version", "auth", "risk", "finding", "severity", "title", "detail", "fix"})
	safe := func(s string) string {
		if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
			return "'" + s
		}
		return s
	}
	for _, g := range r.Groups {
		for _, e := range g.Services {
			for _, f := range e.Findings {
				row := []string{g.Team, g.Contact, e.Host, strconv.Itoa(e.Port), e.Product, e.Version, e.Auth, e.Risk, f.ID, f.Severity, f.Title, f.Detail, oneLine(f.Fix)}
				for i := range row {
					row[i] = safe(row[i])
				}
				cw.Write(row)
			}
		}
	}
	cw.Flush()
	return cw.Error()
}

// JSON writes the report as one JSON document.
func (r Report) JSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// Write renders in a format: markdown, csv or json.
func (r Report) Write(w io.Writer, format string) error {
	switch format {
	case "markdown", "md", "":
		return r.Markdown(w)
	case "csv":
		return r.CSV(w)
	case "json":
		return r.JSON(w)
	}
	return fmt.Errorf("format %q: want markdown, csv or json", format)
}

// Only keeps one owner's group.
func (r Report) Only(team string) Report {
	out := r
	out.Groups = nil
	for _, g := range r.Groups {
		if g.Team == team {
			out.Groups = append(out.Groups, g)
		}
	}
	return out
}
