package report

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/llmfence/llmfence/internal/service"
)

// TableOptions tune the terminal table.
type TableOptions struct {
	// Color paints the RISK column with ANSI colours; set it only when
	// writing to a terminal.
	Color bool
	// MaxFinding caps the TOP FINDING column width in characters
	// (default 60).
	MaxFinding int
}

var riskColor = map[service.Severity]string{
	service.SeverityCritical: "\x1b[1;97;41m", // bold white on red
	service.SeverityHigh:     "\x1b[1;31m",
	service.SeverityMedium:   "\x1b[33m",
	service.SeverityLow:      "\x1b[36m",
	service.SeverityInfo:     "\x1b[2m",
}

const colorReset = "\x1b[0m"

// Table writes one row per service (highest risk first) and a summary line
// counting services by risk.
func Table(w io.Writer, services []service.Service, opts TableOptions) error {
	if opts.MaxFinding <= 0 {
		opts.MaxFinding = 60
	}
	// Colour codes would confuse tabwriter's width count, so the risk
	// column is padded by hand and coloured after padding.
	riskWidth := len("RISK")
	for i := range services {
		riskWidth = max(riskWidth, len(riskOf(&services[i])))
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "HOST:PORT\tPRODUCT\tVERSION\tAUTH\tMODELS\t%-*s\tTOP FINDING\n", riskWidth, "RISK")
	for _, s := range SortByRisk(services) {
		r := riskOf(&s)
		cell := fmt.Sprintf("%-*s", riskWidth, r)
		if c, ok := riskColor[r]; ok && opts.Color {
			cell = c + string(r) + colorReset + strings.Repeat(" ", riskWidth-len(r))
		}
		product := s.Product
		if product == "" {
			product = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n",
			printable(s.Key()),
			printable(product),
			dash(printable(truncate(s.Version, 24))),
			dash(string(s.Auth)),
			strconv.Itoa(len(s.Models)),
			cell,
			dash(printable(truncate(topFinding(&s), opts.MaxFinding))),
		)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("writing the table: %w", err)
	}
	_, err := fmt.Fprintln(w, Summary(services))
	if err != nil {
		return fmt.Errorf("writing the table: %w", err)
	}
	return nil
}

// Summary is the one-line count of services by risk, e.g.
// "3 services: 1 critical, 1 high, 1 none".
func Summary(services []service.Service) string {
	counts := CountByRisk(services)
	var parts []string
	for _, r := range riskOrder {
		if n := counts[r]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, r))
		}
	}
	noun := "services"
	if len(services) == 1 {
		noun = "service"
	}
	if len(parts) == 0 {
		return fmt.Sprintf("0 %s", noun)
	}
	return fmt.Sprintf("%d %s: %s", len(services), noun, strings.Join(parts, ", "))
}

func dash(s string) string {
	if strings.TrimSpace(s) == "" {
		return "-"
	}
	return s
}
