package console

import (
	"context"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/llmfence/llmfence/internal/store"
)

// Discloser writes the disclosure report of a run for each owner.
type Discloser interface {
	// Disclose writes the report of run in format (markdown, csv, json)
	// for owner ("" = every owner) to w.
	Disclose(ctx context.Context, runID, owner, format string, w interface{ Write([]byte) (int, error) }) error
}

// AlertAdmin manages alert channels and rules.
type AlertAdmin interface {
	Channels(ctx context.Context) (any, error)
	SaveChannel(ctx context.Context, body []byte, actor string) (any, error)
	TestChannel(ctx context.Context, id int64) error
}

// ScheduleAdmin manages scheduled scans.
type ScheduleAdmin interface {
	Schedules(ctx context.Context) (any, error)
	SaveSchedule(ctx context.Context, body []byte, actor string) (any, error)
	DeleteSchedule(ctx context.Context, id int64) error
}

// OIDCLogin is single sign-on through an OpenID Connect provider.
type OIDCLogin struct {
	// Start redirects the browser to the provider.
	Start func(w http.ResponseWriter, r *http.Request) error
	// Finish checks the provider's answer and returns the user to sign in
	// (created or updated with the role of their groups).
	Finish func(w http.ResponseWriter, r *http.Request) (store.User, error)
}

// inventoryCollector exports the pre-computed counts as gauges.
type inventoryCollector struct {
	st   store.ServerStore
	desc *prometheus.Desc
}

func newInventoryCollector(st store.ServerStore) *inventoryCollector {
	return &inventoryCollector{st: st, desc: prometheus.NewDesc("llmfence_inventory", "Inventory counts (services by state and risk, findings by status and severity).",
		[]string{"name"}, nil)}
}

func (c *inventoryCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *inventoryCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	counts, err := c.st.Counts(ctx)
	if err != nil {
		return
	}
	for k, n := range counts {
		if len(k) > 6 && k[:6] == "trend." {
			continue
		}
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(n), k)
	}
}
