package report

import (
	"bufio"
	"fmt"
	"io"
	"strings"
	"unicode"

	"github.com/llmfence/llmfence/internal/service"
	"github.com/llmfence/llmfence/internal/store"
)

// DiffText writes a diff of two runs for a terminal, as `llmfence diff`
// shows it: a header naming both runs, then appeared (+), disappeared
// (-) and changed (~) services with one line per change. Text that came
// from scanned servers has control characters replaced with U+FFFD, so
// a hostile banner cannot drive the terminal.
func DiffText(w io.Writer, d store.Diff) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "Diff %s → %s\n", runLabel(d.From), runLabel(d.To))
	if d.Empty() {
		fmt.Fprintln(bw, "No changes.")
		return bw.Flush()
	}
	fmt.Fprintf(bw, "%d appeared, %d disappeared, %d changed\n", len(d.Appeared), len(d.Disappeared), len(d.Changed))
	section := func(title, mark string, svcs []service.Service) {
		if len(svcs) == 0 {
			return
		}
		fmt.Fprintf(bw, "\n%s:\n", title)
		for _, s := range svcs {
			fmt.Fprintf(bw, "  %s %s\n", mark, serviceLabel(s))
		}
	}
	section("Appeared", "+", d.Appeared)
	section("Disappeared", "-", d.Disappeared)
	if len(d.Changed) > 0 {
		fmt.Fprintf(bw, "\nChanged:\n")
		for _, c := range d.Changed {
			fmt.Fprintf(bw, "  ~ %s\n", serviceLabel(c.After))
			for _, ch := range c.Changes {
				fmt.Fprintf(bw, "      %s\n", safeText(ch.Text))
			}
		}
	}
	return bw.Flush()
}

func runLabel(r store.Run) string {
	if r.ID == "" {
		return "(unsaved)"
	}
	if r.StartedAt.IsZero() {
		return "run " + r.ID
	}
	return fmt.Sprintf("run %s (%s)", r.ID, r.StartedAt.UTC().Format("2006-01-02 15:04 UTC"))
}

func serviceLabel(s service.Service) string {
	var b strings.Builder
	b.WriteString(s.Key())
	if s.Hostname != "" {
		b.WriteString(" (" + safeText(s.Hostname) + ")")
	}
	product := safeText(s.Product)
	if product == "" {
		product = "unknown"
	}
	b.WriteString("  " + product)
	if s.Version != "" {
		b.WriteString(" " + safeText(s.Version))
	}
	if s.Gateway != "" {
		b.WriteString("  behind " + safeText(s.Gateway))
	}
	if s.Risk != "" {
		b.WriteString("  risk " + safeText(string(s.Risk)))
	}
	return b.String()
}

// safeText replaces control characters (C0, DEL, C1, and so terminal
// escape sequences) with U+FFFD.
func safeText(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return '\uFFFD'
		}
		return r
	}, s)
}
