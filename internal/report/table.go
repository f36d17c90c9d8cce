package report

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/llmfence/llmfence/internal/locale"
	"github.com/llmfence/llmfence/internal/risk"
	"github.com/llmfence/llmfence/internal/service"
)

// TableOptions tune the terminal table.
type TableOptions struct {
	// Color paints the RISK column with ANSI colours; set it only when
	// writing to a terminal.
	Color bool
	// MaxFinding caps the TOP FINDING column width in terminal columns
	// (default 60).
	MaxFinding int
	// Text says the table in the reader's language; nil is English.
	Text *locale.Printer
}

var riskColor = map[service.Severity]string{
	service.SeverityCritical: "\x1b[1;97;41m", // bold white on red
	service.SeverityHigh:     "\x1b[1;31m",
	service.SeverityMedium:   "\x1b[33m",
	service.SeverityLow:      "\x1b[36m",
	service.SeverityInfo:     "\x1b[2m",
}

const colorReset = "\x1b[0m"

// columnGap is the space between two columns.
const columnGap = 2

// Table writes one row per service (highest risk first) and a summary line
// counting services by risk. Columns are aligned by display width (East
// Asian width: a full-width character takes two columns), so Japanese
// labels and CJK model or finding text keep the table straight.
func Table(w io.Writer, services []service.Service, opts TableOptions) error {
	if opts.MaxFinding <= 0 {
		opts.MaxFinding = 60
	}
	p, err := printerOr(opts.Text)
	if err != nil {
		return err
	}
	g := gridWriter{}
	g.header(p.T("report.table.host_port"), p.T("report.table.product"), p.T("report.table.version"),
		p.T("report.table.auth"), p.T("report.table.gateway"), p.T("report.table.models"), p.T("report.table.risk"),
		p.T("report.table.top_finding"))
	for _, s := range SortByRisk(services) {
		r := riskOf(&s)
		product := s.Product
		if product == "" {
			product = "-"
		}
		top := ""
		if len(s.Findings) > 0 {
			top = risk.Title(p, s.Findings[0])
		}
		sev := cell{text: risk.Severity(p, r)}
		if opts.Color {
			sev.color = riskColor[r]
		}
		g.cells(
			cell{text: printable(s.Key())},
			cell{text: printable(product)},
			cell{text: dash(printable(locale.Truncate(s.Version, 24)))},
			cell{text: dash(authText(p, s.Auth))},
			cell{text: dash(printable(locale.Truncate(s.Gateway, 24)))},
			cell{text: strconv.Itoa(len(s.Models))},
			sev,
			cell{text: dash(locale.Truncate(PlainText(printable(top)), opts.MaxFinding))},
		)
	}
	var b strings.Builder
	g.render(&b)
	b.WriteString(summary(p, services))
	b.WriteByte('\n')
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("writing the table: %w", err)
	}
	return nil
}

// NothingFound is the table's line for a scan that found no LLM service.
func NothingFound(p *locale.Printer, pairs, open uint64) string {
	p, err := printerOr(p)
	if err != nil {
		return err.Error()
	}
	return p.T("report.table.nothing_found", "pairs", strconv.FormatUint(pairs, 10), "open", strconv.FormatUint(open, 10))
}

// Summary is the one-line count of services by risk, in English, e.g.
// "3 services: 1 critical, 1 high, 1 none".
func Summary(services []service.Service) string {
	p, err := printerOr(nil)
	if err != nil {
		return err.Error()
	}
	return summary(p, services)
}

// SummaryIn is Summary in the printer's language.
func SummaryIn(p *locale.Printer, services []service.Service) string {
	p, err := printerOr(p)
	if err != nil {
		return err.Error()
	}
	return summary(p, services)
}

func summary(p *locale.Printer, services []service.Service) string {
	counts := CountByRisk(services)
	var parts []string
	for _, r := range riskOrder {
		if n := counts[r]; n > 0 {
			parts = append(parts, p.T("report.summary.level", "n", strconv.Itoa(n), "level", risk.Severity(p, r)))
		}
	}
	total := strconv.Itoa(len(services))
	if len(parts) == 0 {
		return p.T("report.summary.none", "count", total)
	}
	return p.T("report.summary.counts", "count", total, "counts", strings.Join(parts, p.T("report.summary.separator")))
}

// authText is an auth state as a person reads it.
func authText(p *locale.Printer, a service.Auth) string {
	if a == "" {
		return ""
	}
	id := "report.auth." + string(a)
	if !p.Has(id) {
		return string(a)
	}
	return p.T(id)
}

func dash(s string) string {
	if strings.TrimSpace(s) == "" {
		return "-"
	}
	return s
}
