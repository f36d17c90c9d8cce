package guard

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"time"

	"github.com/llmfence/llmfence/internal/store"
)

// AuditOptions tune an AuditWriter; zero fields take defaults.
type AuditOptions struct {
	Queue   int // records waiting to be written (default 4096)
	Batch   int // most records per AppendUsage call (default 256)
	Retries int // further attempts after a failed write (default 3)
	// Wait bounds how long Record waits for its record to be committed
	// (default 5s); past it the request completes anyway and the record,
	// still queued, is counted as "unconfirmed".
	Wait time.Duration
}

// AuditWriter writes audit records to a UsageSink from one goroutine, off
// the request path but not behind its back: group commit.
//
// Durability: the gateway calls Record as the last step of every request,
// before the response is complete (the end of a response is held back
// until then, see meter and forward), and Record returns when the sink's
// AppendUsage, which is all-or-nothing, returned nil for the batch holding
// the record. So a client that saw its response end has its record in the
// store, and a crash of the guard loses only records of requests still in
// flight. The writer does not wait to fill batches: it writes whatever is
// queued as soon as the previous write returns, so batches grow with load
// and one commit serves many requests. Counted in
// llmfence_guard_audit_records_total: "written"; "unconfirmed" (Record
// gave up waiting, the record stays queued); "dropped" (queue full past
// the wait, or writer closed); "failed" (the sink refused a batch after
// all retries). Billing against limits does not depend on the audit log.
type AuditWriter struct {
	sink UsageSink
	opts AuditOptions
	log  *slog.Logger
	m    *metrics

	mu     sync.RWMutex
	closed bool
	q      chan auditEntry
	done   chan struct{}
}

// auditEntry is a queued record and, for Record, where to report its
// commit.
type auditEntry struct {
	rec  store.UsageRecord
	done chan error // nil: nobody waits
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
	if opts.Wait <= 0 {
		opts.Wait = 5 * time.Second
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
		q: make(chan auditEntry, opts.Queue), done: make(chan struct{})}
	go a.loop()
	return a
}

// Submit queues one record without blocking or waiting for its commit;
// false means it was dropped (queue full or writer closed).
func (a *AuditWriter) Submit(rec store.UsageRecord) bool {
	a.mu.RLock()
	defer a.mu.RUnlock()
	if a.closed {
		a.m.auditEvent("dropped", 1)
		return false
	}
	select {
	case a.q <- auditEntry{rec: rec}:
		return true
	default:
		a.m.auditEvent("dropped", 1)
		a.log.Warn("audit queue full: record dropped", "key", rec.KeyName, "route", rec.Route)
		return false
	}
}

// errUnconfirmed: Record stopped waiting; the record may still be written.
var errUnconfirmed = errors.New("audit record not confirmed in time; it stays queued")

// Record queues one record and waits, at most the Wait option, until it
// is committed. A full queue makes it wait for room (back-pressure) rather
// than drop the record at once.
func (a *AuditWriter) Record(rec store.UsageRecord) error {
	timer := time.NewTimer(a.opts.Wait)
	defer timer.Stop()
	e := auditEntry{rec: rec, done: make(chan error, 1)}
	a.mu.RLock()
	if a.closed {
		a.mu.RUnlock()
		a.m.auditEvent("dropped", 1)
		return errors.New("audit log closed: record dropped")
	}
	select {
	case a.q <- e:
		a.mu.RUnlock()
	case <-timer.C:
		a.mu.RUnlock()
		a.m.auditEvent("dropped", 1)
		return errors.New("audit queue full: record dropped")
	}
	select {
	case err := <-e.done:
		return err
	case <-timer.C:
		a.m.auditEvent("unconfirmed", 1)
		return errUnconfirmed
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
	batch := make([]auditEntry, 0, a.opts.Batch)
	recs := make([]store.UsageRecord, 0, a.opts.Batch)
	for {
		e, ok := <-a.q
		if !ok {
			return
		}
		batch = append(batch[:0], e)
		// Let requests finishing at this moment on other threads queue
		// their records first: a commit costs about the same for one
		// record as for many.
		for range 2 {
			if len(a.q) >= a.opts.Batch {
				break
			}
			runtime.Gosched()
		}
	fill: // whatever else is already queued joins this commit
		for len(batch) < a.opts.Batch {
			select {
			case e, ok := <-a.q:
				if !ok {
					break fill
				}
				batch = append(batch, e)
			default:
				break fill
			}
		}
		recs = recs[:0]
		for _, e := range batch {
			recs = append(recs, e.rec)
		}
		err := a.write(recs)
		for i := range batch {
			if batch[i].done != nil {
				batch[i].done <- err
			}
			batch[i] = auditEntry{}
		}
	}
}

// write hands one batch to the sink, retrying with a short back-off. It
// uses its own context so shutdown still flushes.
func (a *AuditWriter) write(batch []store.UsageRecord) error {
	if len(batch) == 0 {
		return nil
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
			return nil
		}
	}
	a.m.auditEvent("failed", len(batch))
	a.log.Error("audit log: could not write records", "records", len(batch), "err", err)
	return fmt.Errorf("audit log: %w", err)
}
