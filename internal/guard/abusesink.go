package guard

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/llmfence/llmfence/internal/guard/abuse"
	"github.com/llmfence/llmfence/internal/store"
)

// AbuseSignalSink stores aggregated abuse signals (llmfence serve's guard
// page shows them). The store implements it.
type AbuseSignalSink interface {
	SaveAbuseSignals(ctx context.Context, sigs []store.AbuseSignal) error
}

// abuseRecorder aggregates the detector's signals per minute, key and kind
// in memory and writes them in one transaction every flushEvery, so a
// flood of signals costs at most maxPending rows per flush, never a write
// per request (the audit-flooding hole of the request log). Signals past
// maxPending groups in one interval are counted and logged, not stored.
type abuseRecorder struct {
	sink       AbuseSignalSink
	log        *slog.Logger
	flushEvery time.Duration
	maxPending int

	mu      sync.Mutex
	pending map[abuseGroup]*store.AbuseSignal
	dropped int64

	stop chan struct{}
	done chan struct{}
	once sync.Once
}

type abuseGroup struct {
	minute    int64
	key, kind string
}

func newAbuseRecorder(sink AbuseSignalSink, log *slog.Logger, every time.Duration, max int) *abuseRecorder {
	r := &abuseRecorder{sink: sink, log: log, flushEvery: every, maxPending: min(max, store.MaxAbuseBatch),
		pending: map[abuseGroup]*store.AbuseSignal{}, stop: make(chan struct{}), done: make(chan struct{})}
	go r.run()
	return r
}

var actionOrder = map[string]int{"log": 1, "alert": 2, "block": 3}

// record adds one signal; it never blocks on the store.
func (r *abuseRecorder) record(ev abuse.AlertEvent) {
	at := ev.Time
	if at.IsZero() {
		at = time.Now()
	}
	g := abuseGroup{minute: at.Truncate(time.Minute).Unix(), key: ev.KeyID, kind: ev.Kind}
	r.mu.Lock()
	defer r.mu.Unlock()
	s, ok := r.pending[g]
	if !ok {
		if len(r.pending) >= r.maxPending {
			r.dropped++
			return
		}
		s = &store.AbuseSignal{Minute: at.Truncate(time.Minute), KeyID: ev.KeyID, Kind: ev.Kind}
		r.pending[g] = s
	}
	s.Count++
	s.Suppressed += int64(ev.Suppressed)
	if actionOrder[ev.Action] >= actionOrder[s.Action] {
		s.Action = ev.Action
	}
	s.KeyName, s.ClientIP, s.Route, s.Detail, s.Categories, s.LastAt = ev.KeyName, ev.ClientIP, ev.Route, ev.Detail, ev.Categories, at
}

func (r *abuseRecorder) run() {
	defer close(r.done)
	t := time.NewTicker(r.flushEvery)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			r.flush()
		case <-r.stop:
			r.flush()
			return
		}
	}
}

func (r *abuseRecorder) flush() {
	r.mu.Lock()
	batch := make([]store.AbuseSignal, 0, len(r.pending))
	for _, s := range r.pending {
		batch = append(batch, *s)
	}
	clear(r.pending)
	dropped := r.dropped
	r.dropped = 0
	r.mu.Unlock()
	if dropped > 0 {
		r.log.Warn("abuse signals not stored: too many in one interval", "dropped", dropped, "kept", len(batch))
	}
	if len(batch) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.sink.SaveAbuseSignals(ctx, batch); err != nil {
		r.log.Warn("abuse signals not stored", "signals", len(batch), "err", err)
	}
}

// close writes what is pending and stops, waiting at most until ctx ends.
func (r *abuseRecorder) close(ctx context.Context) error {
	r.once.Do(func() { close(r.stop) })
	select {
	case <-r.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
