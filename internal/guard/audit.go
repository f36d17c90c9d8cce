package guard

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/llmfence/llmfence/internal/store"
)

// AuditOptions tune an AuditWriter; zero fields take defaults.
type AuditOptions struct {
	Queue    int           // records waiting to be written (default 4096)
	Batch    int           // records per AppendUsage call (default 256)
	Interval time.Duration // longest a record waits before a write (default 1s)
	Retries  int           // further attempts after a failed write (default 3)
}

// AuditWriter writes audit records to a UsageSink from one goroutine, in
// batches, off the request path.
//
// Durability: a record is acknowledged (counted as "written" in the
// llmfence_guard_audit_records_total metric) only when the sink's
// AppendUsage, which is all-or-nothing, returned nil for the batch holding
// it. Records still queued are written by Close on graceful shutdown. What
// can be lost, and is counted: records submitted while the queue is full
// ("dropped": the request path never blocks on the audit log) and batches
// the sink refused after all retries ("failed"); and, on a crash, whatever
// was queued (at most Queue records, at most Interval old under normal
// load). Billing against limits does not depend on the audit log.
type AuditWriter struct {
	sink UsageSink
	opts AuditOptions
	log  *slog.Logger
	m    *metrics

	mu     sync.RWMutex
	closed bool
	q      chan store.UsageRecord
	done   chan struct{}
}

// NewAuditWriter starts the writer goroutine. Stop it with Close.
func NewAuditWriter(sink UsageSink, opts AuditOptions, log *slog.Logger) *AuditWriter {
	return newAuditWriter(sink, opts, log, newMetrics())
}

func newAuditWriter(sink UsageSink, opts AuditOptions, log *slog.Logger, m *metrics) *AuditWriter {
	if opts.Queue <= 0 {
		opts.Queue = 4096
	}
	if opts.Batch <= 0 {
		opts.Batch = 256
	}
	if opts.Interval <= 0 {
		opts.Interval = time.Second
	}
	if opts.Retries < 0 {
		opts.Retries = 0
	} else if opts.Retries == 0 {
		opts.Retries = 3
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	a := &AuditWriter{sink: sink, opts: opts, log: log, m: m,
		q: make(chan store.UsageRecord, opts.Queue), done: make(chan struct{})}
	go a.loop()
	return a
}

// Submit queues one record without blocking; false means it was dropped
// (queue full or writer closed).
func (a *AuditWriter) Submit(rec store.UsageRecord) bool {
	a.mu.RLock()
	defer a.mu.RUnlock()
	if a.closed {
		a.m.auditEvent("dropped", 1)
		return false
	}
	select {
	case a.q <- rec:
		return true
	default:
		a.m.auditEvent("dropped", 1)
		a.log.Warn("audit queue full: record dropped", "key", rec.KeyName, "route", rec.Route)
		return false
	}
}

// Close stops accepting records, writes the ones queued and waits for the
// writer, at most until ctx ends.
func (a *AuditWriter) Close(ctx context.Context) error {
	a.mu.Lock()
	if !a.closed {
		a.closed = true
		close(a.q)
	}
	a.mu.Unlock()
	select {
	case <-a.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("audit log: records still queued at shutdown: %w", ctx.Err())
	}
}

func (a *AuditWriter) loop() {
	defer close(a.done)
	batch := make([]store.UsageRecord, 0, a.opts.Batch)
	tick := time.NewTicker(a.opts.Interval)
	defer tick.Stop()
	for {
		select {
		case rec, ok := <-a.q:
			if !ok {
				a.write(batch)
				return
			}
			batch = append(batch, rec)
			if len(batch) >= a.opts.Batch {
				a.write(batch)
				batch = batch[:0]
			}
		case <-tick.C:
			if len(batch) > 0 {
				a.write(batch)
				batch = batch[:0]
			}
		}
	}
}

// write hands one batch to the sink, retrying with a short back-off. It
// uses its own context so shutdown still flushes.
func (a *AuditWriter) write(batch []store.UsageRecord) {
	if len(batch) == 0 {
		return
	}
	var err error
	wait := 100 * time.Millisecond
	for attempt := 0; attempt <= a.opts.Retries; attempt++ {
		if attempt > 0 {
			time.Sleep(wait)
			wait *= 2
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err = a.sink.AppendUsage(ctx, batch)
		cancel()
		if err == nil {
			a.m.auditEvent("written", len(batch))
			return
		}
	}
	a.m.auditEvent("failed", len(batch))
	a.log.Error("audit log: could not write records", "records", len(batch), "err", err)
}
