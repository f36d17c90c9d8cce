package report

import (
	"io"
	"strconv"
	"strings"

	"github.com/llmfence/llmfence/internal/locale"
	"github.com/llmfence/llmfence/internal/service"
	"github.com/llmfence/llmfence/internal/store"
)

// RunsTable writes scan runs, one per row, as `llmfence runs` shows
// them.
func RunsTable(w io.Writer, runs []store.Run, opts ListOptions) error {
	g := gridWriter{}
	g.header("RUN", "STARTED", "STATUS", "PAIRS", "OPEN", "SERVICES", "TARGETS")
	for _, r := range runs {
		g.row(r.ID, opts.when(r.StartedAt, "-"), printable(string(r.Status)),
			strconv.FormatInt(r.Stats.AddressesProbed, 10), strconv.FormatInt(r.Stats.OpenPorts, 10),
			strconv.Itoa(r.Stats.Services), clip(printable(strings.Join(r.Targets, " ")), 60))
	}
	return g.write(w, "runs table")
}

// HostsTable writes the store's hosts, one service per row, as
// `llmfence hosts` shows them.
func HostsTable(w io.Writer, hosts []store.Host, opts ListOptions) error {
	g := gridWriter{}
	g.header("HOST:PORT", "PRODUCT", "VERSION", "AUTH", "GATEWAY", "MODELS", "RISK", "FIRST SEEN", "LAST SEEN", "TOP FINDING")
	for _, h := range hosts {
		g.row(printable(h.Key()), dash(printable(h.Product)), dash(clip(printable(h.Version), 24)), dash(string(h.Auth)),
			dash(clip(printable(h.Gateway), 16)),
			strconv.Itoa(h.Models), dash(string(h.Risk)), opts.when(h.FirstSeen, "-"), opts.when(h.LastSeen, "-"),
			dash(clip(PlainText(printable(h.TopFinding)), 50)))
	}
	return g.write(w, "hosts table")
}

// FindingsTable writes findings, one per row, as `llmfence findings`
// shows them.
func FindingsTable(w io.Writer, rows []store.FindingRow, opts ListOptions) error {
	g := gridWriter{}
	g.header("SEVERITY", "ID", "HOST:PORT", "PRODUCT", "TITLE", "DETAIL")
	for _, r := range rows {
		g.row(string(r.Severity), printable(r.ID), printable((&service.Service{Host: r.Host, Port: r.Port}).Key()),
			dash(printable(r.Product)), PlainText(printable(r.Title)), dash(clip(PlainText(printable(r.Detail)), 60)))
	}
	return g.write(w, "findings table")
}

// clip puts s on one line (white space collapsed) and shortens it to at
// most n terminal columns.
func clip(s string, n int) string {
	return locale.Truncate(strings.Join(strings.Fields(s), " "), n)
}

// ProbeRunsTable writes probe runs, one per row, as `llmfence probes`
// shows them.
func ProbeRunsTable(w io.Writer, runs []store.ProbeRun, opts ListOptions) error {
	g := gridWriter{}
	g.header("RUN", "STARTED", "STATUS", "HOST:PORT", "MODEL", "WORST", "VERDICTS")
	for _, r := range runs {
		var vs []string
		for _, v := range r.Verdicts {
			vs = append(vs, printable(v.Suite+"="+v.Verdict))
		}
		status := string(r.Status)
		if r.Status == store.StatusFinished && !r.Complete {
			status += " (incomplete)"
		}
		g.row(r.ID, opts.when(r.StartedAt, "-"), status, printable((&service.Service{Host: r.Host, Port: r.Port}).Key()),
			clip(printable(r.Model), 40), string(r.Worst), strings.Join(vs, " "))
	}
	return g.write(w, "probe runs table")
}
