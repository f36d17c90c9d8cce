package guard

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"runtime"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/llmfence/llmfence/internal/guard/limits"
	"github.com/llmfence/llmfence/internal/guard/spool"
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

// auditLog is where the gateway writes audit records: a spool (the
// command's setting) or, without one, the store through an AuditWriter.
type auditLog interface {
	// Record writes one record durably before it returns (see the
	// implementations for what durable means).
	Record(rec *store.UsageRecord) error
	// RecordBatch writes several.
	RecordBatch(recs []store.UsageRecord) error
	Close(ctx context.Context) error
}

// writerLog adapts an AuditWriter (a commit to the store per record or
// group) to auditLog.
type writerLog struct{ w *AuditWriter }

func (l writerLog) Record(rec *store.UsageRecord) error { return l.w.Record(*rec) }
func (l writerLog) RecordBatch(recs []store.UsageRecord) error {
	for _, r := range recs {
		if !l.w.Submit(r) {
			return errors.New("audit queue full: records dropped")
		}
	}
	return nil
}
func (l writerLog) Close(ctx context.Context) error { return l.w.Close(ctx) }

// SpoolSink is the store side of a spooled audit log: it takes batches
// with the spool position (store.UsageStore implements it).
type SpoolSink = spool.Sink

// spoolLog writes audit records to the local spool (one write(2) each;
// durable against a killed process when Record returns, against power loss
// per the fsync policy) and copies them into the store in the background.
type spoolLog struct {
	sp     *spool.Spool
	m      *metrics
	log    *slog.Logger
	cancel context.CancelFunc
	done   chan struct{}
}

// newSpoolLog starts copying sp into sink in the background.
func newSpoolLog(sp *spool.Spool, sink spool.Sink, m *metrics, log *slog.Logger, grace time.Duration) *spoolLog {
	ctx, cancel := context.WithCancel(context.Background())
	l := &spoolLog{sp: sp, m: m, log: log, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(l.done)
		sp.Run(ctx, sink, 200*time.Millisecond, grace, func(st spool.ReplayStats, err error) {
			if st.Records > 0 {
				m.auditEvent("written", st.Records)
			}
			if err != nil {
				m.auditEvent("failed", 1)
			}
		})
	}()
	return l
}

func (l *spoolLog) Record(rec *store.UsageRecord) error {
	if err := l.sp.Append(rec); err != nil {
		l.m.auditEvent("dropped", 1)
		return err
	}
	l.m.auditEvent("spooled", 1)
	return nil
}

func (l *spoolLog) RecordBatch(recs []store.UsageRecord) error {
	if err := l.sp.AppendBatch(recs); err != nil {
		l.m.auditEvent("dropped", len(recs))
		return err
	}
	l.m.auditEvent("spooled", len(recs))
	return nil
}

// Close copies what is left into the store (within ctx) and closes the
// spool; records not copied stay in it for the next start.
func (l *spoolLog) Close(ctx context.Context) error {
	l.cancel()
	select {
	case <-l.done:
	case <-ctx.Done():
		return fmt.Errorf("audit spool: still copying at shutdown: %w", ctx.Err())
	}
	return l.sp.Close()
}

// Field caps for audit records: the path and the error of a refused
// request come from the client, and a 60 KB path must not cost 60 KB per
// record.
const (
	maxRouteChars = 256
	maxErrorChars = 512
)

// clip cuts s to at most n bytes on a UTF-8 boundary, marking the cut.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n - len("…")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// refusals aggregates the records of requests the gateway refused without
// forwarding them (no key, a bad key, a blocked address, a limit, a bad
// request, a preflight): per client network, key, status, route and
// reason, the first in a window is written at once and the rest as one
// record carrying their count when the window ends. A flood of refused
// requests therefore costs at most two records per kind and window, and
// the kinds tracked are bounded (beyond maxKinds, one overflow record per
// window counts the rest).
type refusals struct {
	log    auditLog
	window time.Duration
	now    func() time.Time
	logger *slog.Logger

	mu       sync.Mutex
	kinds    map[refusalKey]*refusalAgg
	overflow store.UsageRecord // Requests counts the overflow
	stop     chan struct{}
	done     chan struct{}
}

const maxRefusalKinds = 10000

type refusalKey struct {
	net     netip.Prefix
	keyID   string
	status  int
	method  string
	route   string // route table entry, or "none"/"denied"/"preflight"
	reason  string
	dialect string
}

type refusalAgg struct {
	first   store.UsageRecord // the first repeat's record (the window's first request was written at once)
	repeats int64
}

func newRefusals(log auditLog, window time.Duration, now func() time.Time, logger *slog.Logger) *refusals {
	r := &refusals{log: log, window: window, now: now, logger: logger, kinds: map[refusalKey]*refusalAgg{},
		stop: make(chan struct{}), done: make(chan struct{})}
	go r.loop()
	return r
}

// add records one refused request.
func (r *refusals) add(k refusalKey, rec *store.UsageRecord) {
	r.mu.Lock()
	if a, ok := r.kinds[k]; ok {
		if a.repeats == 0 {
			a.first = *rec
		}
		a.repeats++
		r.mu.Unlock()
		return
	}
	if len(r.kinds) >= maxRefusalKinds {
		if r.overflow.Requests == 0 {
			r.overflow = store.UsageRecord{Time: rec.Time, Method: "-", Route: "(many)", Status: rec.Status,
				Error: "refused requests of more kinds than the audit log tracks separately"}
		}
		r.overflow.Requests++
		r.mu.Unlock()
		return
	}
	r.kinds[k] = &refusalAgg{}
	r.mu.Unlock()
	if err := r.log.Record(rec); err != nil {
		r.logger.Warn("audit record not written", "route", rec.Route, "err", err)
	}
}

func (r *refusals) loop() {
	defer close(r.done)
	t := time.NewTicker(r.window)
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

// flush writes the counts of the window that ends and starts a new one.
func (r *refusals) flush() {
	r.mu.Lock()
	var recs []store.UsageRecord
	for _, a := range r.kinds {
		if a.repeats > 0 {
			rec := a.first
			rec.Requests = a.repeats
			rec.LatencyMS, rec.BytesIn, rec.BytesOut = 0, 0, 0
			recs = append(recs, rec)
		}
	}
	if r.overflow.Requests > 0 {
		recs = append(recs, r.overflow)
		r.overflow = store.UsageRecord{}
	}
	clear(r.kinds)
	r.mu.Unlock()
	if len(recs) == 0 {
		return
	}
	if err := r.log.RecordBatch(recs); err != nil {
		r.logger.Warn("aggregated audit records not written", "records", len(recs), "err", err)
	}
}

func (r *refusals) close() {
	select {
	case <-r.stop:
	default:
		close(r.stop)
	}
	<-r.done
}

// usagePruner deletes old usage records (store.UsageStore implements it).
type usagePruner interface {
	PruneUsage(ctx context.Context, before time.Time) (int64, error)
}

// pruneEvery is how often the audit retention runs (and once at start).
const pruneEvery = time.Hour

// runPruner deletes usage records older than keep, at start and then
// every pruneEvery, until stop is closed.
func runPruner(p usagePruner, keep time.Duration, now func() time.Time, log *slog.Logger, stop <-chan struct{}) {
	t := time.NewTicker(pruneEvery)
	defer t.Stop()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		n, err := p.PruneUsage(ctx, now().Add(-keep))
		cancel()
		switch {
		case err != nil:
			log.Warn("audit retention: could not delete old usage records", "err", err)
		case n > 0:
			log.Info("audit retention: deleted old usage records", "records", n, "older_than", keep)
		}
		select {
		case <-stop:
			return
		case <-t.C:
		}
	}
}

// RestoreBudgets seeds an in-process limiter with each key's usage of the
// current day and month (and the last minute), read from the audit log, so
// a restart does not hand every key a fresh budget. Replay the audit spool
// into the store first.
func RestoreBudgets(ctx context.Context, m *limits.Memory, u store.UsageStore, now time.Time) (keys int, err error) {
	day, month := m.PeriodStarts(now)
	sums := map[string]*[3]int64{}
	for i, since := range []time.Time{day, month, now.Add(-limits.Window)} {
		s, err := u.SummarizeUsage(ctx, store.UsageFilter{Since: since})
		if err != nil {
			return 0, fmt.Errorf("restoring token budgets from the audit log: %w", err)
		}
		for _, k := range s {
			if k.KeyID == "" {
				continue
			}
			if sums[k.KeyID] == nil {
				sums[k.KeyID] = &[3]int64{}
			}
			sums[k.KeyID][i] = k.PromptTokens + k.CompletionTokens
		}
	}
	for id, v := range sums {
		m.Seed(id, v[0], v[1], v[2])
	}
	return len(sums), nil
}
