package guard

import (
	"bufio"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// metrics holds the gateway's counters and writes them in the Prometheus
// text exposition format (version 0.0.4). It is written here rather than
// with client_golang because that module's dependencies are not in go.sum.
//
// Label cardinality is bounded: routes are table entry IDs (or "denied"),
// statuses are HTTP codes, keys are key names, reasons are fixed strings.
type metrics struct {
	mu        sync.Mutex
	requests  map[[2]string]uint64 // route, status
	tokens    map[[2]string]uint64 // key, type (prompt|completion)
	limited   map[string]uint64    // reason
	denied    map[string]uint64    // reason
	audit     map[string]uint64    // outcome: written|dropped|failed
	inFlight  int64
	upBuckets []float64
	upCounts  []uint64 // cumulative at export; stored per bucket
	upSum     float64
	upCount   uint64
}

// upstreamBuckets are the upstream latency histogram bounds, in seconds:
// time until the upstream's response headers.
var upstreamBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300}

func newMetrics() *metrics {
	return &metrics{
		requests:  make(map[[2]string]uint64),
		tokens:    make(map[[2]string]uint64),
		limited:   make(map[string]uint64),
		denied:    make(map[string]uint64),
		audit:     make(map[string]uint64),
		upBuckets: upstreamBuckets,
		upCounts:  make([]uint64, len(upstreamBuckets)),
	}
}

func (m *metrics) request(route string, status int) {
	m.mu.Lock()
	m.requests[[2]string{route, strconv.Itoa(status)}]++
	m.mu.Unlock()
}

func (m *metrics) addTokens(key string, prompt, completion int64) {
	m.mu.Lock()
	if prompt > 0 {
		m.tokens[[2]string{key, "prompt"}] += uint64(prompt)
	}
	if completion > 0 {
		m.tokens[[2]string{key, "completion"}] += uint64(completion)
	}
	m.mu.Unlock()
}

func (m *metrics) limit(reason string) { m.inc(m.limited, reason) }
func (m *metrics) deny(reason string)  { m.inc(m.denied, reason) }
func (m *metrics) auditEvent(outcome string, n int) {
	m.mu.Lock()
	m.audit[outcome] += uint64(n)
	m.mu.Unlock()
}

func (m *metrics) inc(c map[string]uint64, label string) {
	m.mu.Lock()
	c[label]++
	m.mu.Unlock()
}

func (m *metrics) flight(d int64) {
	m.mu.Lock()
	m.inFlight += d
	m.mu.Unlock()
}

func (m *metrics) upstreamLatency(d time.Duration) {
	s := d.Seconds()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.upSum += s
	m.upCount++
	for i, b := range m.upBuckets {
		if s <= b {
			m.upCounts[i]++
			return
		}
	}
}

// write renders every metric, sorted, in the text format.
func (m *metrics) write(w io.Writer) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	bw := bufio.NewWriter(w)

	header(bw, "llmfence_guard_requests_total", "counter", "Requests answered, by route table entry and HTTP status.")
	for _, k := range sortedKeys2(m.requests) {
		fmt.Fprintf(bw, "llmfence_guard_requests_total{route=%s,status=%s} %d\n", quote(k[0]), quote(k[1]), m.requests[k])
	}
	header(bw, "llmfence_guard_tokens_total", "counter", "Tokens billed, by key name and type (prompt or completion).")
	for _, k := range sortedKeys2(m.tokens) {
		fmt.Fprintf(bw, "llmfence_guard_tokens_total{key=%s,type=%s} %d\n", quote(k[0]), quote(k[1]), m.tokens[k])
	}
	header(bw, "llmfence_guard_limited_total", "counter", "Requests refused by a per-key limit, by limit.")
	writeCounter1(bw, "llmfence_guard_limited_total", "reason", m.limited)
	header(bw, "llmfence_guard_denied_total", "counter", "Requests refused before reaching the upstream, by reason.")
	writeCounter1(bw, "llmfence_guard_denied_total", "reason", m.denied)
	header(bw, "llmfence_guard_audit_records_total", "counter", "Audit records, by outcome (written, dropped, failed).")
	writeCounter1(bw, "llmfence_guard_audit_records_total", "outcome", m.audit)
	header(bw, "llmfence_guard_in_flight_requests", "gauge", "Requests being proxied now.")
	fmt.Fprintf(bw, "llmfence_guard_in_flight_requests %d\n", m.inFlight)

	header(bw, "llmfence_guard_upstream_latency_seconds", "histogram", "Time until the upstream's response headers.")
	var cum uint64
	for i, b := range m.upBuckets {
		cum += m.upCounts[i]
		fmt.Fprintf(bw, "llmfence_guard_upstream_latency_seconds_bucket{le=\"%s\"} %d\n", strconv.FormatFloat(b, 'g', -1, 64), cum)
	}
	fmt.Fprintf(bw, "llmfence_guard_upstream_latency_seconds_bucket{le=\"+Inf\"} %d\n", m.upCount)
	fmt.Fprintf(bw, "llmfence_guard_upstream_latency_seconds_sum %s\n", strconv.FormatFloat(m.upSum, 'g', -1, 64))
	fmt.Fprintf(bw, "llmfence_guard_upstream_latency_seconds_count %d\n", m.upCount)
	return bw.Flush()
}

func header(w io.Writer, name, typ, help string) {
	fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, typ)
}

func writeCounter1(w io.Writer, name, label string, c map[string]uint64) {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		fmt.Fprintf(w, "%s{%s=%s} %d\n", name, label, quote(k), c[k])
	}
}

func sortedKeys2(c map[[2]string]uint64) [][2]string {
	keys := make([][2]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b [2]string) int {
		if x := strings.Compare(a[0], b[0]); x != 0 {
			return x
		}
		return strings.Compare(a[1], b[1])
	})
	return keys
}

// quote escapes a label value as the text format requires.
func quote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	return `"` + r.Replace(s) + `"`
}
