package report

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/llmfence/llmfence/internal/vulndb"
)

// VulnRecord is one line of `llmfence vulndb list --format json`
// (docs/schemas/vulndb-entry.json).
type VulnRecord struct {
	ID       string   `json:"id"`
	Aliases  []string `json:"aliases,omitempty"`
	Product  string   `json:"product"`
	Affected string   `json:"affected"`
	Severity string   `json:"severity"`
	Score    string   `json:"score"`
	Title    string   `json:"title"`
	Verified bool     `json:"verified"`
	Origin   string   `json:"origin"` // embedded or imported
	Source   string   `json:"source"`
	Modified string   `json:"modified"`
	DataDate string   `json:"data_date"`
}

// VulnRecords turns vulnerabilities into records; dataDate is the date
// of the data in use.
func VulnRecords(vulns []vulndb.Vuln, dataDate time.Time) []VulnRecord {
	out := make([]VulnRecord, len(vulns))
	for i, v := range vulns {
		out[i] = VulnRecord{ID: v.ID, Aliases: v.Aliases, Product: v.Product, Affected: v.RangesText(),
			Severity: string(v.Severity), Score: v.Score, Title: v.Title, Verified: v.Verified, Origin: vulnOrigin(v),
			Source: v.Source, Modified: DateOf(v.Modified), DataDate: DateOf(dataDate)}
	}
	return out
}

func vulnOrigin(v vulndb.Vuln) string {
	if v.Imported {
		return "imported"
	}
	return "embedded"
}

// DateOf is a date as YYYY-MM-DD in UTC, "unknown" when zero.
func DateOf(t time.Time) string {
	if t.IsZero() {
		return "unknown"
	}
	return t.UTC().Format("2006-01-02")
}

// VulnData says where the vulnerability data in use came from, for the
// head of `llmfence vulndb list`.
type VulnData struct {
	Date     time.Time
	Embedded vulndb.Info
	// Imported is the imported data, when HasImport.
	Imported  vulndb.Info
	HasImport bool
	// Path is where imports are saved ("" when unknown).
	Path string
}

// VulnTable writes the data's date and origin, then one vulnerability
// per row.
func VulnTable(w io.Writer, d VulnData, vulns []vulndb.Vuln) error {
	var b strings.Builder
	fmt.Fprintf(&b, "Vulnerability data as of %s.\n", DateOf(d.Date))
	fmt.Fprintf(&b, "  embedded: %d OSV records, data of %s\n", d.Embedded.Records, DateOf(d.Embedded.Date))
	switch {
	case d.HasImport:
		var src []string
		for _, s := range d.Imported.Sources {
			src = append(src, s.Path)
		}
		fmt.Fprintf(&b, "  imported: %d OSV records, data of %s, imported %s from %s (%s)\n",
			d.Imported.Records, DateOf(d.Imported.Date), DateOf(d.Imported.ImportedAt), printable(strings.Join(src, ", ")), d.Path)
	case d.Path != "":
		fmt.Fprintf(&b, "  imported: none (llmfence vulndb import saves to %s)\n", d.Path)
	}
	b.WriteString("\n")
	g := gridWriter{}
	g.header("PRODUCT", "ID", "AFFECTED", "SEVERITY", "ORIGIN", "TITLE")
	for _, v := range vulns {
		origin := vulnOrigin(v)
		if !v.Verified {
			origin += " (unverified)"
		}
		g.row(printable(v.Product), printable(v.ID), clip(printable(v.RangesText()), 48), string(v.Severity), origin,
			clip(PlainText(printable(v.Title)), 70))
	}
	g.render(&b)
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("writing the vulnerability table: %w", err)
	}
	return nil
}
