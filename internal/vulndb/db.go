package vulndb

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/llmfence/llmfence/internal/service"
)

//go:embed osv/*.json
var embeddedFS embed.FS

// Info describes one body of vulnerability data.
type Info struct {
	// Origin is "embedded", or the file an import was saved to.
	Origin string `json:"origin"`
	// Date is the newest "modified" time among the records of the data
	// (for an import: among every record the export held, kept or not), so
	// a reader knows how current it is.
	Date time.Time `json:"date"`
	// ImportedAt is when the data was imported (zero when embedded).
	ImportedAt time.Time `json:"imported_at,omitzero"`
	// Records is how many records the data holds for llmfence products.
	Records int `json:"records"`
	// Sources lists the exports an import read.
	Sources []Source `json:"sources,omitempty"`
}

// DB is the vulnerability data in use: the embedded records, possibly
// refreshed by imported ones. It is immutable and safe for concurrent use.
type DB struct {
	products *Products
	vulns    []Vuln
	embedded Info
	imported *Info
}

// Vuln is one vulnerability of one product, as the judge uses it.
type Vuln struct {
	// ID is the CVE ID when the record has one (as ID or alias), else the
	// record's ID; Aliases are the record's other IDs.
	ID      string
	Aliases []string
	Product string
	// Severity and Score: the severity reported, and where it comes from
	// ("9.8 CVSS:3.1/... (GitHub CNA)").
	Severity service.Severity
	Score    string
	Title    string
	Summary  string
	Advisory string
	// Source says where the ranges were checked (embedded records) or
	// which export they came from (imported ones).
	Source string
	Note   string
	// Verified: only verified entries claim a version.
	Verified bool
	// Imported is true for a record from `llmfence vulndb import`.
	Imported bool
	Modified time.Time

	record   *Record
	affected []Affected
	ordering Ordering
}

// Check evaluates a reported version against the vulnerability's ranges.
// Unverified entries never claim a version.
func (v Vuln) Check(version string) Verdict {
	var out Verdict
	for i := range v.affected {
		r := evaluate(&v.affected[i], v.ordering, version)
		out.Comparable = out.Comparable || r.Comparable
		if r.Affected {
			out.Affected = true
			if r.Fixed != "" && (out.Fixed == "" || lessIn(v.ordering, r.Fixed, out.Fixed)) {
				out.Fixed = r.Fixed
			}
		}
	}
	if !v.Verified {
		out.Affected, out.Fixed = false, ""
	}
	return out
}

func lessIn(o Ordering, a, b string) bool {
	c, ok := o.compare(a, b)
	return ok && c < 0
}

// Record returns the OSV record behind the vulnerability.
func (v Vuln) Record() *Record { return v.record }

// Ordering is how the product's versions sort.
func (v Vuln) Ordering() Ordering { return v.ordering }

// Affected returns the record's affected entries for this product.
func (v Vuln) Affected() []Affected { return append([]Affected(nil), v.affected...) }

// RangesText renders the affected ranges for people: ">= 0.6.5, < 0.8.5",
// "all versions (no fix yet)", "= 2.5", "commits up to 55d4206c8 (not
// comparable with a version)".
func (v Vuln) RangesText() string {
	var parts []string
	for _, a := range v.affected {
		for _, rg := range a.Ranges {
			parts = append(parts, rangeText(rg))
		}
		if len(a.Versions) > 0 {
			vs := a.Versions
			if len(vs) > 4 {
				vs = append(append([]string(nil), vs[:4]...), fmt.Sprintf("%d more", len(a.Versions)-4))
			}
			parts = append(parts, "= "+strings.Join(vs, ", "))
		}
	}
	if len(parts) == 0 {
		return "none listed"
	}
	return strings.Join(parts, "; ")
}

func rangeText(rg Range) string {
	var s []string
	open := true
	for _, e := range rg.Events {
		switch {
		case e.Introduced != "" && e.Introduced != "0":
			s = append(s, ">= "+e.Introduced)
		case e.Fixed != "":
			s, open = append(s, "< "+e.Fixed), false
		case e.LastAffected != "":
			s, open = append(s, "<= "+e.LastAffected), false
		case e.Limit != "" && e.Limit != "*":
			s = append(s, "limit "+e.Limit)
		}
	}
	if rg.Type == RangeGit {
		return "commits " + strings.Join(s, ", ") + " (not comparable with a version)"
	}
	if open {
		if len(s) == 0 {
			return "all versions (no fix yet)"
		}
		return strings.Join(s, ", ") + " (no fix yet)"
	}
	return strings.Join(s, ", ")
}

// embeddedData is the embedded product map and OSV records, read and
// checked once, on first use, and never modified afterwards.
type embeddedData struct {
	products *Products
	records  []*Record
}

var loadEmbedded = sync.OnceValues(func() (*embeddedData, error) {
	products, err := parseProducts(productsYAML)
	if err != nil {
		return nil, err
	}
	recs, err := readEmbedded(embeddedFS)
	if err != nil {
		return nil, err
	}
	return &embeddedData{products: products, records: recs}, nil
})

// Embedded returns the embedded vulnerability data.
func Embedded() (*DB, error) {
	emb, err := loadEmbedded()
	if err != nil {
		return nil, err
	}
	return build(emb.products, emb.records, nil, nil)
}

// readEmbedded reads and checks every embedded record: valid OSV as
// llmfence reads it, file named after the ID, annotated, unique.
func readEmbedded(fsys fs.FS) ([]*Record, error) {
	names, err := fs.Glob(fsys, "osv/*.json")
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	var recs []*Record
	var errs []error
	for _, n := range names {
		b, err := fs.ReadFile(fsys, n)
		if err != nil {
			return nil, err
		}
		r, err := ParseRecord(b)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", n, err))
			continue
		}
		if want := strings.TrimSuffix(path.Base(n), ".json"); r.ID != want {
			errs = append(errs, fmt.Errorf("%s: record id %q does not match the file name", n, r.ID))
		}
		if r.Notes == nil {
			errs = append(errs, fmt.Errorf("%s: no database_specific.llmfence annotation", n))
		}
		recs = append(recs, r)
	}
	return recs, errors.Join(errs...)
}

// build assembles a DB from embedded records and, optionally, imported
// ones. An imported record replaces the embedded record it shares an ID or
// alias with: the user imported it to refresh the data (among several
// imported records for one embedded record, the newest wins). The embedded
// record's severity is kept when the import carries none.
func build(products *Products, embedded, imported []*Record, imp *Info) (*DB, error) {
	db := &DB{products: products, embedded: Info{Origin: "embedded"}}
	if err := checkAnnotated(embedded); err != nil {
		return nil, err
	}
	byID := map[string]int{}
	for i, r := range embedded {
		for _, id := range r.ids() {
			byID[id] = i
		}
		if r.Modified.After(db.embedded.Date) {
			db.embedded.Date = r.Modified
		}
	}
	db.embedded.Records = len(embedded)
	replaced := map[int]*Record{} // embedded index -> imported record replacing it
	var extra []*Record
	for _, r := range imported {
		hit := -1
		for _, id := range r.ids() {
			if i, ok := byID[id]; ok {
				hit = i
				break
			}
		}
		switch {
		case hit < 0:
			extra = append(extra, r)
		default:
			if prev, ok := replaced[hit]; !ok || r.Modified.After(prev.Modified) {
				replaced[hit] = r
			}
		}
	}
	for i, r := range embedded {
		if rep, ok := replaced[i]; ok {
			db.add(rep, r, imp)
			continue
		}
		db.add(r, nil, nil)
	}
	for _, r := range extra {
		db.add(r, nil, imp)
	}
	if imp != nil {
		cp := *imp
		db.imported = &cp
	}
	sort.SliceStable(db.vulns, func(i, j int) bool {
		a, b := db.vulns[i], db.vulns[j]
		if a.Product != b.Product {
			return a.Product < b.Product
		}
		return a.ID < b.ID
	})
	return db, nil
}

func checkAnnotated(recs []*Record) error {
	var errs []error
	for _, r := range recs {
		n := r.Notes
		if n == nil {
			continue
		}
		s, ok := service.ParseSeverity(n.Severity)
		if !ok || s == service.SeverityNone || s == service.SeverityInfo {
			errs = append(errs, fmt.Errorf("record %s: severity %q is not low, medium, high or critical", r.ID, n.Severity))
		}
		if n.ScoreSource == "" || n.Source == "" || n.Advisory == "" || r.Summary == "" {
			errs = append(errs, fmt.Errorf("record %s: summary, score_source, source and advisory are required", r.ID))
		}
		if n.Score != "" {
			f, err := strconv.ParseFloat(n.Score, 64)
			if err != nil || f < 0 || f > 10 {
				errs = append(errs, fmt.Errorf("record %s: score %q is not a CVSS base score", r.ID, n.Score))
			} else if sev := severityOfScore(f); sev != string(s) {
				errs = append(errs, fmt.Errorf("record %s: score %s means %s, not %s", r.ID, n.Score, sev, n.Severity))
			}
		}
		if n.Verified && len(r.Affected) == 0 {
			errs = append(errs, fmt.Errorf("record %s: a verified record needs an affected package", r.ID))
		}
	}
	return errors.Join(errs...)
}

// add appends one Vuln per product the record affects. fallback is the
// embedded record an imported one replaced (its severity is used when the
// import carries none); imp is non-nil for imported records.
func (db *DB) add(r, fallback *Record, imp *Info) {
	if r.Withdrawn != nil {
		return
	}
	type group struct {
		entry PackageEntry
		aff   []Affected
	}
	var groups []*group
	idx := map[string]*group{}
	for _, a := range r.Affected {
		e, ok := db.products.Lookup(a.Package)
		if !ok {
			continue
		}
		g := idx[e.Product]
		if g == nil {
			g = &group{entry: e}
			idx[e.Product] = g
			groups = append(groups, g)
		}
		g.aff = append(g.aff, a)
	}
	for _, g := range groups {
		v := Vuln{
			ID:       displayID(r),
			Product:  g.entry.Product,
			Title:    firstNonEmpty(r.Summary, r.ID),
			Summary:  strings.TrimSpace(r.Details),
			Imported: imp != nil,
			Modified: r.Modified,
			record:   r,
			affected: g.aff,
			ordering: g.entry.Ordering,
		}
		for _, id := range r.ids() {
			if id != v.ID {
				v.Aliases = append(v.Aliases, id)
			}
		}
		if n := r.Notes; n != nil {
			v.Severity = service.Severity(n.Severity)
			v.Score = scoreText(n)
			v.Advisory, v.Source, v.Note, v.Verified = n.Advisory, n.Source, n.Note, n.Verified
		} else {
			v.Verified = true
			v.Source = "imported OSV record " + r.ID
			if imp != nil && len(imp.Sources) > 0 {
				v.Source += " from " + imp.Sources[len(imp.Sources)-1].Path
			}
			v.Advisory = advisoryURL(r)
			v.Severity, v.Score = importedSeverity(r, fallback)
		}
		db.vulns = append(db.vulns, v)
	}
}

func scoreText(n *Notes) string {
	var s []string
	if n.Score != "" {
		s = append(s, n.Score)
	}
	if n.ScoreVector != "" {
		s = append(s, n.ScoreVector)
	}
	if len(s) == 0 {
		return "no verified score; " + n.ScoreSource
	}
	return strings.Join(s, " ") + " (" + n.ScoreSource + ")"
}

// importedSeverity rates a record without llmfence's annotation: the
// GitHub advisory severity, else the CVSS v3 vector's base score, else the
// severity of the embedded record it replaces, else high (LLMF-003's
// base severity).
func importedSeverity(r, fallback *Record) (service.Severity, string) {
	if s := r.ghsaSeverity(); s != "" {
		return service.Severity(s), "GitHub advisory severity " + strings.ToUpper(s)
	}
	for _, sv := range r.Severity {
		if sv.Type != "CVSS_V3" {
			continue
		}
		if f, err := cvss3BaseScore(sv.Score); err == nil && f > 0 {
			return service.Severity(severityOfScore(f)), fmt.Sprintf("%.1f %s (the record's vector)", f, sv.Score)
		}
	}
	if fallback != nil && fallback.Notes != nil {
		return service.Severity(fallback.Notes.Severity), "from llmfence's embedded entry: " + scoreText(fallback.Notes)
	}
	return service.SeverityHigh, "the record gives no severity; rated high (LLMF-003's base severity)"
}

func advisoryURL(r *Record) string {
	for _, ref := range r.References {
		if ref.Type == "ADVISORY" {
			return ref.URL
		}
	}
	if len(r.References) > 0 {
		return r.References[0].URL
	}
	return "https://osv.dev/vulnerability/" + r.ID
}

// displayID prefers a CVE ID, the name most reports use.
func displayID(r *Record) string {
	if strings.HasPrefix(r.ID, "CVE-") {
		return r.ID
	}
	for _, a := range r.Aliases {
		if strings.HasPrefix(a, "CVE-") {
			return a
		}
	}
	return r.ID
}

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if strings.TrimSpace(x) != "" {
			return strings.TrimSpace(x)
		}
	}
	return ""
}

// Vulns returns every vulnerability of every product, by product then ID.
func (db *DB) Vulns() []Vuln { return append([]Vuln(nil), db.vulns...) }

// Products returns the product map in use.
func (db *DB) Products() *Products { return db.products }

// EmbeddedInfo describes the embedded data.
func (db *DB) EmbeddedInfo() Info { return db.embedded }

// ImportedInfo describes the imported data, if any.
func (db *DB) ImportedInfo() (Info, bool) {
	if db.imported == nil {
		return Info{}, false
	}
	return *db.imported, true
}

// Date is how current the data in use is: the later of the embedded
// data's date and the imported export's date.
func (db *DB) Date() time.Time {
	d := db.embedded.Date
	if db.imported != nil && db.imported.Date.After(d) {
		d = db.imported.Date
	}
	return d
}

// Describe says in one line what data is in use, for reports.
func (db *DB) Describe() string {
	s := fmt.Sprintf("embedded data of %s (%d records)", db.embedded.Date.UTC().Format("2006-01-02"), db.embedded.Records)
	if db.imported != nil {
		s += fmt.Sprintf("; imported data of %s (%d records, imported %s)", db.imported.Date.UTC().Format("2006-01-02"),
			db.imported.Records, db.imported.ImportedAt.UTC().Format("2006-01-02"))
	}
	return s
}

// Records returns the OSV records in use (embedded, with imported ones
// replacing those they share an ID or alias with), each once.
func (db *DB) Records() []*Record {
	seen := map[*Record]bool{}
	var out []*Record
	for _, v := range db.vulns {
		if !seen[v.record] {
			seen[v.record] = true
			out = append(out, v.record)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}
