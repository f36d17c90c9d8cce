package report

import (
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/llmfence/llmfence/internal/service"
)

// CSVHeader is the column list of CSV, in order.
var CSVHeader = []string{
	"host", "hostname", "port", "url", "product", "version", "auth", "tls",
	"cors", "management_open", "risk", "model_count", "models", "findings",
	"remediation", "scanned_at", "error", "gateway",
}

// FindingsCSVHeader is the column list of FindingsCSV, in order.
var FindingsCSVHeader = []string{
	"host", "port", "product", "version", "risk", "finding_id", "severity", "title", "detail",
}

// CSV writes one row per service, in the order given: the main fields, the
// model names joined with "; " and the findings as "ID severity: title"
// joined with "; ". Columns are only ever added at the end (gateway is
// the newest), so scripts that read by position keep working. Code spans
// in catalogue texts lose their backticks (PlainText).
func CSV(w io.Writer, services []service.Service) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(CSVHeader); err != nil {
		return fmt.Errorf("writing CSV: %w", err)
	}
	for _, s := range services {
		models := make([]string, 0, len(s.Models))
		for _, m := range s.Models {
			models = append(models, m.Name)
		}
		findings := make([]string, 0, len(s.Findings))
		for _, f := range s.Findings {
			findings = append(findings, fmt.Sprintf("%s %s: %s", f.ID, f.Severity, PlainText(f.Title)))
		}
		scanned := ""
		if !s.ScannedAt.IsZero() {
			scanned = s.ScannedAt.UTC().Format(time.RFC3339)
		}
		row := []string{
			s.Host, s.Hostname, strconv.Itoa(s.Port), s.URL, s.Product, s.Version,
			string(s.Auth), strconv.FormatBool(s.TLS), s.CORS, strconv.FormatBool(s.ManagementOpen),
			string(riskOf(&s)), strconv.Itoa(len(s.Models)), strings.Join(models, "; "),
			strings.Join(findings, "; "), PlainText(s.Remediation), scanned, s.Error, s.Gateway,
		}
		if err := cw.Write(safeRow(row)); err != nil {
			return fmt.Errorf("writing CSV: %w", err)
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("writing CSV: %w", err)
	}
	return nil
}

// FindingsCSV writes one row per finding (services without findings are
// left out).
func FindingsCSV(w io.Writer, services []service.Service) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(FindingsCSVHeader); err != nil {
		return fmt.Errorf("writing CSV: %w", err)
	}
	for _, s := range services {
		for _, f := range s.Findings {
			row := []string{s.Host, strconv.Itoa(s.Port), s.Product, s.Version, string(riskOf(&s)),
				f.ID, string(f.Severity), PlainText(f.Title), PlainText(f.Detail)}
			if err := cw.Write(safeRow(row)); err != nil {
				return fmt.Errorf("writing CSV: %w", err)
			}
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("writing CSV: %w", err)
	}
	return nil
}

// safeRow neutralises cells a spreadsheet would evaluate as a formula
// (leading =, +, -, @, tab or carriage return) by prefixing a quote.
// Scanned servers choose model names and versions, so they are untrusted.
func safeRow(row []string) []string {
	for i, c := range row {
		if c != "" && strings.ContainsRune("=+-@\t\r", rune(c[0])) {
			row[i] = "'" + c
		}
	}
	return row
}
