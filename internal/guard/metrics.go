package guard

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics holds the gateway's Prometheus collectors in a registry of its
// own (no global default registry), served on the metrics listener.
//
// Label cardinality is bounded: routes are table entry IDs (or "denied"),
// statuses are HTTP codes, keys are key names, reasons are fixed strings.
type metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec // route, status
	tokens   *prometheus.CounterVec // key, type
	limited  *prometheus.CounterVec // reason
	denied   *prometheus.CounterVec // reason
	audit    *prometheus.CounterVec // outcome: written|dropped|failed
	inFlight prometheus.Gauge
	upstream prometheus.Histogram
}

// upstreamBuckets are the upstream latency histogram bounds, in seconds:
// time until the upstream's response headers.
var upstreamBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "llmfence_guard_requests_total", Help: "Requests answered, by route table entry and HTTP status.",
		}, []string{"route", "status"}),
		tokens: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "llmfence_guard_tokens_total", Help: "Tokens billed, by key name and type (prompt or completion).",
		}, []string{"key", "type"}),
		limited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "llmfence_guard_limited_total", Help: "Requests refused by a per-key limit, by limit.",
		}, []string{"reason"}),
		denied: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "llmfence_guard_denied_total", Help: "Requests refused before reaching the upstream, by reason.",
		}, []string{"reason"}),
		audit: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "llmfence_guard_audit_records_total", Help: "Audit records, by outcome (written, unconfirmed, dropped, failed).",
		}, []string{"outcome"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "llmfence_guard_in_flight_requests", Help: "Requests being proxied now.",
		}),
		upstream: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "llmfence_guard_upstream_latency_seconds", Help: "Time until the upstream's response headers.",
			Buckets: upstreamBuckets,
		}),
	}
	m.reg.MustRegister(m.requests, m.tokens, m.limited, m.denied, m.audit, m.inFlight, m.upstream,
		prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) request(route string, status int) {
	m.requests.WithLabelValues(route, strconv.Itoa(status)).Inc()
}

func (m *metrics) addTokens(key string, prompt, completion int64) {
	if prompt > 0 {
		m.tokens.WithLabelValues(key, "prompt").Add(float64(prompt))
	}
	if completion > 0 {
		m.tokens.WithLabelValues(key, "completion").Add(float64(completion))
	}
}

func (m *metrics) limit(reason string) { m.limited.WithLabelValues(reason).Inc() }
func (m *metrics) deny(reason string)  { m.denied.WithLabelValues(reason).Inc() }
func (m *metrics) auditEvent(outcome string, n int) {
	m.audit.WithLabelValues(outcome).Add(float64(n))
}
func (m *metrics) flight(d int64)                  { m.inFlight.Add(float64(d)) }
func (m *metrics) upstreamLatency(d time.Duration) { m.upstream.Observe(d.Seconds()) }
func (m *metrics) handler() http.Handler           { return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}) }
