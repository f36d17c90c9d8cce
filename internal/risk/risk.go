// Package risk judges one fingerprinted service: it applies the findings
// catalogue (catalogue.yaml, embedded and versioned) and the vulnerability
// data (OSV records from internal/vulndb), and fills the service's Findings,
// Risk, Remediation and the date of the vulnerability data used.
//
// The catalogue holds the words (title, why, fix per product) and the
// severities; catalogue.ja.yaml and details.LANG.yaml say them and the
// findings' details in Japanese (internal/locale). A service records the
// English texts and, beside them, the message IDs and arguments they were
// written from (Finding.DetailMsg, Service.RemediationMsgs); say.go renders
// them in the reader's language; the trigger of each entry is a small Go function in checks.go
// keyed by the entry's ID. docs/findings.md is generated from the catalogue
// and the embedded vulnerability data (WriteMarkdown) and a test keeps it in
// step.
package risk

import (
	_ "embed"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/llmfence/llmfence/internal/datafile"
	"github.com/llmfence/llmfence/internal/locale"
	"github.com/llmfence/llmfence/internal/service"
	"github.com/llmfence/llmfence/internal/vulndb"
)

//go:generate go test -run TestFindingsDocUpToDate -update .

//go:embed catalogue.yaml
var catalogueYAML []byte

// catalogueName names the catalogue in errors.
const catalogueName = "internal/risk/catalogue.yaml"

// Entry is one finding the catalogue knows.
type Entry struct {
	ID       string           `yaml:"id"`
	Slug     string           `yaml:"slug"`
	Severity service.Severity `yaml:"severity"`
	// Variants maps a named situation to the severity that applies in it
	// (for example "csam": critical on LLMF-005).
	Variants   map[string]service.Severity `yaml:"variants"`
	Title      string                      `yaml:"title"`
	Why        string                      `yaml:"why"`
	Fix        map[string]string           `yaml:"fix"`
	Rank       int                         `yaml:"rank"`
	References []string                    `yaml:"references"`
}

// FixFor returns the fix text for a product, falling back to the default.
// Placeholders are left in place.
func (e Entry) FixFor(product string) string { return e.Fix[fixKey(e, product, "")] }

type catalogueFile struct {
	Version int     `yaml:"version"`
	Entries []Entry `yaml:"entries"`
}

// Engine applies the catalogue and the vulnerability data. It is immutable
// after New and safe for concurrent use.
type Engine struct {
	catalogueVersion int
	entries          []Entry
	byID             map[string]Entry
	db               *vulndb.DB
	vulns            []vulndb.Vuln
	dataDate         string
	// en renders details and fixes in English, the text that
	// machine-readable output keeps.
	en *locale.Printer
}

// New loads the embedded catalogue and the embedded vulnerability data.
func New() (*Engine, error) {
	db, err := vulndb.Embedded()
	if err != nil {
		return nil, err
	}
	return Load(catalogueYAML, db)
}

// NewWith loads the embedded catalogue and uses the given vulnerability
// data (for example the embedded data refreshed by an import).
func NewWith(db *vulndb.DB) (*Engine, error) { return Load(catalogueYAML, db) }

// Load builds an engine from catalogue YAML, validating it, and
// vulnerability data.
func Load(catalogue []byte, db *vulndb.DB) (*Engine, error) {
	if db == nil {
		return nil, errors.New("no vulnerability data")
	}
	cf, err := datafile.Decode[catalogueFile](catalogueName, catalogue, nil)
	if err != nil {
		return nil, err
	}
	e := &Engine{
		catalogueVersion: cf.Version,
		entries:          cf.Entries,
		byID:             make(map[string]Entry, len(cf.Entries)),
		db:               db,
		vulns:            db.Vulns(),
		dataDate:         db.Date().UTC().Format("2006-01-02"),
	}
	if err := e.validate(); err != nil {
		return nil, err
	}
	cat, err := locale.NewCatalogue(func(b *locale.Builder) error { return addMessages(b, e.entries) })
	if err != nil {
		return nil, fmt.Errorf("reading the findings catalogue's texts: %w", err)
	}
	e.en = cat.Printer(locale.English)
	return e, nil
}

var entryID = regexp.MustCompile(`^LLMF-\d{3}$`)

// oldPlaceholder finds the catalogue's former placeholder syntax, {port},
// which would now be printed as it is.
var oldPlaceholder = regexp.MustCompile(`(^|[^{])\{(port|guard_port|product|fixed_version|cves)\}`)

func (e *Engine) validate() error {
	var errs []error
	slugs := map[string]bool{}
	for _, en := range e.entries {
		where := fmt.Sprintf("findings catalogue entry %q", en.ID)
		if !entryID.MatchString(en.ID) {
			errs = append(errs, fmt.Errorf("%s: id must look like LLMF-001", where))
		}
		if _, dup := e.byID[en.ID]; dup {
			errs = append(errs, fmt.Errorf("%s: duplicate id", where))
		}
		e.byID[en.ID] = en
		if en.Slug == "" || slugs[en.Slug] {
			errs = append(errs, fmt.Errorf("%s: missing or duplicate slug %q", where, en.Slug))
		}
		slugs[en.Slug] = true
		if _, ok := service.ParseSeverity(string(en.Severity)); !ok || en.Severity == service.SeverityNone {
			errs = append(errs, fmt.Errorf("%s: severity %q is not info, low, medium, high or critical", where, en.Severity))
		}
		for name, s := range en.Variants {
			if _, ok := service.ParseSeverity(string(s)); !ok || s == service.SeverityNone {
				errs = append(errs, fmt.Errorf("%s: variant %q has severity %q", where, name, s))
			}
		}
		if en.Title == "" || en.Why == "" || en.Fix["default"] == "" || len(en.References) == 0 {
			errs = append(errs, fmt.Errorf("%s: title, why, fix.default and references are required", where))
		}
		if en.Rank <= 0 {
			errs = append(errs, fmt.Errorf("%s: rank must be positive", where))
		}
		for k, f := range en.Fix {
			if m := oldPlaceholder.FindStringSubmatch(f); m != nil {
				errs = append(errs, fmt.Errorf("%s: fix %q says {%s}; placeholders are template fields now: {{.%s}}", where, k, m[2], m[2]))
			}
		}
	}
	for id := range checks {
		if _, ok := e.byID[id]; !ok {
			errs = append(errs, fmt.Errorf("findings catalogue: no entry for check %s", id))
		}
	}
	for _, en := range e.entries {
		if _, ok := checks[en.ID]; !ok {
			errs = append(errs, fmt.Errorf("findings catalogue entry %q: no check implements it", en.ID))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return &datafile.Error{File: catalogueName, Err: err}
	}
	return nil
}

// CatalogueVersion returns the version of the findings catalogue in use.
func (e *Engine) CatalogueVersion() int { return e.catalogueVersion }

// VulnData returns the vulnerability data in use.
func (e *Engine) VulnData() *vulndb.DB { return e.db }

// VulnDataDate is the date of the vulnerability data in use (YYYY-MM-DD):
// how current the known-vulnerability findings are.
func (e *Engine) VulnDataDate() string { return e.dataDate }

// Catalogue returns the catalogue entries in ID order.
func (e *Engine) Catalogue() []Entry {
	out := append([]Entry(nil), e.entries...)
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// CVEs returns the known vulnerabilities, by product then ID.
func (e *Engine) CVEs() []vulndb.Vuln {
	out := append([]vulndb.Vuln(nil), e.vulns...)
	sort.SliceStable(out, func(i, j int) bool {
		if a, b := normProduct(out[i].Product), normProduct(out[j].Product); a != b {
			return a < b
		}
		return out[i].ID < out[j].ID
	})
	return out
}

// Entry returns the catalogue entry with the given ID.
func (e *Engine) Entry(id string) (Entry, bool) {
	en, ok := e.byID[id]
	return en, ok
}

// cvesFor returns the vulnerabilities of a product.
func (e *Engine) cvesFor(product string) []vulndb.Vuln {
	p := normProduct(product)
	if p == "" {
		return nil
	}
	var out []vulndb.Vuln
	for _, c := range e.CVEs() {
		if normProduct(c.Product) == p {
			out = append(out, c)
		}
	}
	return out
}

// normProduct compares product names ignoring case and punctuation.
func normProduct(p string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(p) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// Evaluate replaces svc's Findings, Risk and Remediation with the result of
// applying the catalogue and CVE table to it. Findings are sorted by
// severity (highest first), then ID, then detail.
func (e *Engine) Evaluate(svc *service.Service) {
	if svc == nil {
		return
	}
	e.apply(svc, e.collect(svc))
}

// collect runs every catalogue check on svc.
func (e *Engine) collect(svc *service.Service) []hit {
	var hits []hit
	for _, en := range e.Catalogue() {
		hits = append(hits, e.entryHits(en, svc)...)
	}
	return hits
}

// apply sorts hits and writes them to svc as findings, risk and remediation.
func (e *Engine) apply(svc *service.Service, hits []hit) {
	sort.SliceStable(hits, func(i, j int) bool {
		a, b := hits[i], hits[j]
		if ra, rb := a.severity.Rank(), b.severity.Rank(); ra != rb {
			return ra > rb
		}
		if a.entry.ID != b.entry.ID {
			return a.entry.ID < b.entry.ID
		}
		return a.detail < b.detail
	})
	findings := make([]service.Finding, 0, len(hits))
	risk := service.SeverityNone
	for _, h := range hits {
		findings = append(findings, service.Finding{
			ID:        h.entry.ID,
			Severity:  h.severity,
			Title:     h.entry.Title,
			Detail:    h.detail,
			DetailMsg: h.msg,
		})
		if h.severity.Rank() > risk.Rank() {
			risk = h.severity
		}
	}
	svc.Findings = findings
	svc.Risk = risk
	svc.Remediation, svc.RemediationMsgs = e.remediation(svc, hits)
	svc.VulnDataDate = e.dataDate
}

// maxRemediationSteps caps how many distinct fixes a remediation lists.
const maxRemediationSteps = 3

// remediation orders the distinct fixes of the findings by catalogue rank
// (the most useful fix first) and joins them, one per line; the messages
// say the same lines in other languages.
func (e *Engine) remediation(svc *service.Service, hits []hit) (string, []service.Message) {
	byRank := append([]hit(nil), hits...)
	sort.SliceStable(byRank, func(i, j int) bool {
		if byRank[i].entry.Rank != byRank[j].entry.Rank {
			return byRank[i].entry.Rank < byRank[j].entry.Rank
		}
		return byRank[i].severity.Rank() > byRank[j].severity.Rank()
	})
	var steps []string
	var msgs []service.Message
	seen := map[string]bool{}
	for _, h := range byRank {
		if h.severity.Rank() <= service.SeverityInfo.Rank() && len(steps) > 0 {
			continue // info findings only speak when nothing else does
		}
		text, msg := e.fixText(svc, h)
		if text == "" || seen[text] {
			continue
		}
		seen[text] = true
		steps = append(steps, text)
		msgs = append(msgs, msg)
		if len(steps) == maxRemediationSteps {
			break
		}
	}
	return strings.Join(steps, "\n"), msgs
}

// fixKey returns the catalogue fix key that applies to a finding on a
// product: the hit's own key, else the product's, else "default".
func fixKey(en Entry, product, hitKey string) string {
	if hitKey != "" {
		if _, ok := en.Fix[hitKey]; ok {
			return hitKey
		}
	}
	if p := normProduct(product); p != "" {
		keys := make([]string, 0, len(en.Fix))
		for k := range en.Fix {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if k != "default" && normProduct(k) == p {
				return k
			}
		}
	}
	return "default"
}

// FixArgs returns the values of a fix's placeholders for a service: its
// port, the port a guard in front would listen on, and its product.
func FixArgs(svc *service.Service) map[string]string {
	port := svc.Port
	if port <= 0 {
		port = 80
	}
	guard := port + 1
	if guard > 65535 {
		guard = 8080
	}
	args := map[string]string{"port": strconv.Itoa(port), "guard_port": strconv.Itoa(guard), "product": svc.Product}
	if svc.Product == "" {
		args["product"], args["product_msg"] = "the server", "risk.the_server"
	}
	return args
}

// fixText fills the placeholders of a finding's fix; the message keeps
// the arguments the fix uses.
func (e *Engine) fixText(svc *service.Service, h hit) (string, service.Message) {
	id := FixID(h.entry.ID, fixKey(h.entry, svc.Product, h.fixKey))
	all := FixArgs(svc)
	all["fixed_version"], all["cves"] = h.fixedVersion, h.cves
	args := map[string]string{}
	for _, f := range e.en.Catalogue().Placeholders(id) {
		args[f] = all[f]
		if m, ok := all[f+"_msg"]; ok {
			args[f+"_msg"] = m
		}
	}
	return e.en.Message(id, args), service.Message{ID: id, Args: args}
}

// FixText is the English fix of a catalogue entry for a product on a port,
// as a remediation line says it ("" for an unknown ID).
func (e *Engine) FixText(id, product string, port int) string {
	en, ok := e.byID[id]
	if !ok {
		return ""
	}
	text, _ := e.fixText(&service.Service{Product: product, Port: port}, hit{entry: en})
	return text
}
