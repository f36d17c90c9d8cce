// Package report renders scan results for people and scripts: JSON Lines
// (one service per line, streamed), a terminal table, CSV (one row per
// service or per finding) and a single self-contained HTML report.
//
// The table and the HTML report speak the reader's language
// (TableOptions.Text, Report.Text: an internal/locale printer; nil is
// English), with columns aligned by display width. JSON Lines and CSV are
// the same in every language: English texts and message IDs.
//
// Every renderer treats service data as hostile: model names and system
// prompts come from whoever runs the scanned server. HTML goes through
// html/template, CSV cells that a spreadsheet would run as formulas are
// neutralised, and terminal output is stripped of control characters.
package report

import (
	"sort"
	"strings"
	"time"
	"unicode"

	"github.com/llmfence/llmfence/internal/locale"
	"github.com/llmfence/llmfence/internal/service"
)

// Report is one scan run as the HTML renderer shows it.
type Report struct {
	RunID    string
	Started  time.Time
	Finished time.Time
	Targets  []string
	Services []service.Service
	// VulnDataDate is the date of the vulnerability data the services
	// were judged with; empty means "take it from the services".
	VulnDataDate string
	// Text says the report in the reader's language; nil is English.
	// Machine-readable renderers (JSON Lines, CSV) ignore it.
	Text *locale.Printer
}

// VulnDataDate returns the date of the vulnerability data the services
// were judged with (the newest when they differ), or "" when none says.
func VulnDataDate(services []service.Service) string {
	d := ""
	for i := range services {
		if v := services[i].VulnDataDate; v > d {
			d = v
		}
	}
	return d
}

// riskOrder lists severities from the highest down.
var riskOrder = []service.Severity{
	service.SeverityCritical, service.SeverityHigh, service.SeverityMedium,
	service.SeverityLow, service.SeverityInfo, service.SeverityNone,
}

// riskOf returns a service's risk, "none" when unset.
func riskOf(s *service.Service) service.Severity {
	if r, ok := service.ParseSeverity(string(s.Risk)); ok && r != "" {
		return r
	}
	return service.SeverityNone
}

// CountByRisk counts services per risk level; every level is present.
func CountByRisk(services []service.Service) map[service.Severity]int {
	m := make(map[service.Severity]int, len(riskOrder))
	for _, r := range riskOrder {
		m[r] = 0
	}
	for i := range services {
		m[riskOf(&services[i])]++
	}
	return m
}

// CountByProduct counts services per product ("unknown" when empty).
func CountByProduct(services []service.Service) map[string]int {
	m := map[string]int{}
	for i := range services {
		p := services[i].Product
		if p == "" {
			p = "unknown"
		}
		m[p]++
	}
	return m
}

// SortByRisk returns a copy of services, highest risk first, then by
// host:port.
func SortByRisk(services []service.Service) []service.Service {
	out := append([]service.Service(nil), services...)
	sort.SliceStable(out, func(i, j int) bool {
		a, b := riskOf(&out[i]).Rank(), riskOf(&out[j]).Rank()
		if a != b {
			return a > b
		}
		if out[i].Host != out[j].Host {
			return hostLess(out[i].Host, out[j].Host)
		}
		return out[i].Port < out[j].Port
	})
	return out
}

// hostLess orders hosts as text, but numeric runs by value so that
// 10.0.0.9 sorts before 10.0.0.10.
func hostLess(a, b string) bool {
	for a != "" && b != "" {
		ca, ra := run(a)
		cb, rb := run(b)
		if ca != cb {
			da, db := isDigits(ca), isDigits(cb)
			if da && db {
				if len(ca) != len(cb) {
					return len(ca) < len(cb)
				}
			}
			return ca < cb
		}
		a, b = ra, rb
	}
	return len(a) < len(b)
}

func run(s string) (string, string) {
	d := s[0] >= '0' && s[0] <= '9'
	i := 1
	for i < len(s) && (s[i] >= '0' && s[i] <= '9') == d {
		i++
	}
	return s[:i], s[i:]
}

func isDigits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return s != ""
}

// printable replaces control characters (terminal escapes, newlines) so
// hostile text cannot rewrite a terminal or break a table row.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' || unicode.In(r, unicode.Bidi_Control) {
			return ' '
		}
		return r
	}, s)
}

// truncate shortens s to at most n runes, marking the cut with an ellipsis.
func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	if n <= 1 {
		return "…"
	}
	return string(r[:n-1]) + "…"
}
