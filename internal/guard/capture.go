package guard

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/llmfence/llmfence/internal/redact"
	"github.com/llmfence/llmfence/internal/store"
)

// Capture defaults and bounds.
const (
	DefaultCaptureRetention = 720 * time.Hour
	DefaultCaptureMaxBytes  = 64 << 10
	maxCaptureMaxBytes      = 16 << 20
	// captureLookahead is how much text past MaxBytes is redacted along
	// with the rest before the cut, so that a secret straddling the cut is
	// recognised whole and does not leave a fragment behind.
	captureLookahead = 4 << 10
)

// CaptureConfig turns on storing prompts and responses. Off by default;
// when on, every prompt and response is redacted (package redact) before
// it is stored, and kept for Retention.
type CaptureConfig struct {
	Enabled bool `yaml:"enabled"`
	// Retention is how long captures are kept (default 720h); must be > 0.
	Retention time.Duration `yaml:"retention"`
	// MaxBytes caps the stored prompt and, separately, the stored response
	// (default 64 KiB): longer text is cut at a UTF-8 boundary and marked
	// truncated.
	MaxBytes int `yaml:"max_bytes"`
}

// withDefaults fills the zero fields.
func (c CaptureConfig) withDefaults() CaptureConfig {
	if c.Retention == 0 {
		c.Retention = DefaultCaptureRetention
	}
	if c.MaxBytes == 0 {
		c.MaxBytes = DefaultCaptureMaxBytes
	}
	return c
}

// validate checks a configuration after withDefaults.
func (c CaptureConfig) validate() error {
	if c.Retention <= 0 {
		return fmt.Errorf("capture.retention %v: must be positive (e.g. 720h)", c.Retention)
	}
	if c.MaxBytes <= 0 || c.MaxBytes > maxCaptureMaxBytes {
		return fmt.Errorf("capture.max_bytes %d: must be between 1 and %d", c.MaxBytes, maxCaptureMaxBytes)
	}
	return nil
}

// CaptureSink stores captures and deletes old ones. AppendCaptures must be
// all-or-nothing. store.CaptureStore (so every store.GuardStore)
// implements it.
type CaptureSink interface {
	AppendCaptures(ctx context.Context, cs []store.Capture) error
	PruneCaptures(ctx context.Context, before time.Time) (int64, error)
}

// CaptureWriter redacts captured prompts and responses and writes them to a
// CaptureSink from one goroutine, in batches, off the request path; a
// second goroutine deletes captures older than the retention period, at
// start and then hourly.
//
// Nothing leaves the writer unredacted: Submit only queues (cutting
// oversized text to MaxBytes plus a little look-ahead), and the writer
// goroutine redacts prompt and response, cuts them to MaxBytes and only
// then hands the batch to the sink. Unlike the audit log, captures are
// best effort: a capture submitted while the queue is full is dropped and
// counted, and a batch the sink refuses after the retries is counted as
// failed. Close writes what is queued.
//
// The methods of a nil *CaptureWriter do nothing, so a gateway without
// capture can hold a nil writer.
type CaptureWriter struct {
	sink CaptureSink
	cfg  CaptureConfig
	red  *redact.Redactor // nil: the patterns did not load; everything is dropped
	log  *slog.Logger
	now  func() time.Time

	// Fixed before the goroutines start; newCaptureWriter sets them.
	queue      int           // captures waiting (default 256)
	batch      int           // most captures per AppendCaptures (default 32)
	retries    int           // further attempts after a failed write (default 3)
	retryWait  time.Duration // first back-off (default 100ms), doubling
	pruneEvery time.Duration // between retention runs (default 1h)

	mu     sync.RWMutex
	closed bool
	q      chan store.Capture
	done   chan struct{} // writer goroutine ended

	stopPrune  context.CancelFunc
	pruneDone  chan struct{}
	lastWarned atomic.Int64 // unix seconds of the last "queue full" warning

	written, dropped, failed, pruned atomic.Int64
}

// captureOptions tune a CaptureWriter in tests; zero fields take defaults.
type captureOptions struct {
	Queue, Batch, Retries int
	RetryWait, PruneEvery time.Duration
}

// NewCaptureWriter starts the writer and the retention pruner; stop them
// with Close. cfg gets its defaults here (check it with validate when the
// configuration is loaded). red is the redactor to apply (nil: redact.New
// is called; should that fail, every capture is dropped). now is the
// clock (nil: time.Now).
func NewCaptureWriter(sink CaptureSink, cfg CaptureConfig, red *redact.Redactor, log *slog.Logger, now func() time.Time) *CaptureWriter {
	return newCaptureWriter(sink, cfg, red, log, now, captureOptions{})
}

func newCaptureWriter(sink CaptureSink, cfg CaptureConfig, red *redact.Redactor, log *slog.Logger, now func() time.Time, o captureOptions) *CaptureWriter {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if now == nil {
		now = time.Now
	}
	cfg = cfg.withDefaults()
	if cfg.MaxBytes < 0 || cfg.MaxBytes > maxCaptureMaxBytes {
		cfg.MaxBytes = DefaultCaptureMaxBytes
	}
	if cfg.Retention < 0 {
		cfg.Retention = DefaultCaptureRetention
	}
	if red == nil {
		var err error
		if red, err = redact.New(); err != nil {
			log.Error("capture: redaction patterns did not load; no prompt or response will be stored", "err", err)
			red = nil
		}
	}
	w := &CaptureWriter{sink: sink, cfg: cfg, red: red, log: log, now: now,
		queue: o.Queue, batch: o.Batch, retries: o.Retries, retryWait: o.RetryWait, pruneEvery: o.PruneEvery}
	if w.queue <= 0 {
		w.queue = 256
	}
	if w.batch <= 0 {
		w.batch = 32
	}
	if w.retries < 0 {
		w.retries = 0
	} else if w.retries == 0 {
		w.retries = 3
	}
	if w.retryWait <= 0 {
		w.retryWait = 100 * time.Millisecond
	}
	if w.pruneEvery <= 0 {
		w.pruneEvery = time.Hour
	}
	w.q = make(chan store.Capture, w.queue)
	w.done = make(chan struct{})
	w.pruneDone = make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	w.stopPrune = cancel
	go w.loop()
	go w.pruneLoop(ctx)
	return w
}

// Submit queues one capture without blocking; false means it was dropped
// (queue full, writer closed, or no redactor). The capture's time, when
// zero, is now. Redaction and the final cut happen on the writer's
// goroutine; here oversized text is only shortened to MaxBytes plus a
// look-ahead (and copied, so the request's buffers can be freed).
func (w *CaptureWriter) Submit(c store.Capture) bool {
	if w == nil {
		return false
	}
	if c.Time.IsZero() {
		c.Time = w.now()
	}
	var cut bool
	if c.Prompt, cut = precut(c.Prompt, w.cfg.MaxBytes+captureLookahead); cut {
		c.PromptTruncated = true
	}
	if c.Response, cut = precut(c.Response, w.cfg.MaxBytes+captureLookahead); cut {
		c.ResponseTruncated = true
	}
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.closed || w.red == nil {
		w.dropped.Add(1)
		return false
	}
	select {
	case w.q <- c:
		return true
	default:
		w.dropped.Add(1)
		if now := time.Now().Unix(); w.lastWarned.Swap(now) != now {
			w.log.Warn("capture queue full: capture dropped", "key", c.KeyName, "route", c.Route)
		}
		return false
	}
}

// Stats returns how many captures were written, dropped (queue full or
// closed), failed (the sink refused them) and pruned (deleted by
// retention) since the writer started.
func (w *CaptureWriter) Stats() (written, dropped, failed, pruned int64) {
	if w == nil {
		return 0, 0, 0, 0
	}
	return w.written.Load(), w.dropped.Load(), w.failed.Load(), w.pruned.Load()
}

// Close stops accepting captures and the pruner, writes the captures
// queued and waits for both goroutines, at most until ctx ends.
func (w *CaptureWriter) Close(ctx context.Context) error {
	if w == nil {
		return nil
	}
	w.mu.Lock()
	if !w.closed {
		w.closed = true
		close(w.q)
		w.stopPrune()
	}
	w.mu.Unlock()
	for _, ch := range []chan struct{}{w.done, w.pruneDone} {
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("capture: captures still queued at shutdown: %w", ctx.Err())
		}
	}
	return nil
}

func (w *CaptureWriter) loop() {
	defer close(w.done)
	batch := make([]store.Capture, 0, w.batch)
	for {
		c, ok := <-w.q
		if !ok {
			return
		}
		batch = append(batch[:0], w.prepare(c))
	fill: // whatever else is already queued joins this write
		for len(batch) < w.batch {
			select {
			case c, ok := <-w.q:
				if !ok {
					break fill
				}
				batch = append(batch, w.prepare(c))
			default:
				break fill
			}
		}
		w.write(batch)
		clear(batch)
	}
}

// prepare redacts a capture and cuts it to MaxBytes.
func (w *CaptureWriter) prepare(c store.Capture) store.Capture {
	prompt, ph := w.red.Redact(c.Prompt)
	response, rh := w.red.Redact(c.Response)
	var cut bool
	if c.Prompt, cut = cutText(prompt, w.cfg.MaxBytes); cut {
		c.PromptTruncated = true
	}
	if c.Response, cut = cutText(response, w.cfg.MaxBytes); cut {
		c.ResponseTruncated = true
	}
	c.Redactions = nil
	for _, h := range append(ph, rh...) {
		if c.Redactions == nil {
			c.Redactions = map[string]int{}
		}
		c.Redactions[h.ID] += h.Count
	}
	c.RedactorVersion = w.red.Version()
	return c
}

// write hands one batch to the sink, retrying with a back-off. It uses its
// own context so shutdown still flushes.
func (w *CaptureWriter) write(batch []store.Capture) {
	var err error
	wait := w.retryWait
	for attempt := 0; attempt <= w.retries; attempt++ {
		if attempt > 0 {
			time.Sleep(wait)
			wait *= 2
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err = w.sink.AppendCaptures(ctx, batch)
		cancel()
		if err == nil {
			w.written.Add(int64(len(batch)))
			return
		}
	}
	w.failed.Add(int64(len(batch)))
	w.log.Error("capture: could not store captured requests", "captures", len(batch), "err", err)
}

// pruneLoop deletes old captures at start and then every pruneEvery,
// until ctx ends.
func (w *CaptureWriter) pruneLoop(ctx context.Context) {
	defer close(w.pruneDone)
	tick := time.NewTicker(w.pruneEvery)
	defer tick.Stop()
	for {
		w.prune(ctx)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// prune deletes the captures older than now minus the retention period.
func (w *CaptureWriter) prune(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	before := w.now().Add(-w.cfg.Retention)
	n, err := w.sink.PruneCaptures(ctx, before)
	if err != nil {
		if !errors.Is(err, context.Canceled) {
			w.log.Error("capture: could not delete old captures", "before", before.UTC().Format(time.RFC3339), "err", err)
		}
		return
	}
	w.pruned.Add(n)
	if n > 0 {
		w.log.Info("capture: deleted old captures", "captures", n, "before", before.UTC().Format(time.RFC3339))
	}
}

// precut shortens s to at most n bytes at a UTF-8 boundary, copying the
// result so that s's memory can be freed.
func precut(s string, n int) (string, bool) {
	if len(s) <= n {
		return s, false
	}
	return strings.Clone(s[:runeBoundary(s, n)]), true
}

// cutText shortens redacted text to at most n bytes: at a UTF-8 boundary,
// and before a redaction marker the cut would split.
func cutText(s string, n int) (string, bool) {
	if len(s) <= n {
		return s, false
	}
	cut := runeBoundary(s, n)
	if i := strings.LastIndexByte(s[:cut], '['); i >= 0 && strings.HasPrefix(s[i:], "[REDACTED:") {
		if j := strings.IndexByte(s[i:], ']'); j < 0 || i+j >= cut {
			cut = i
		}
	}
	return s[:cut], true
}

// runeBoundary returns the largest i <= n (n < len(s)) that does not split
// a UTF-8 sequence; invalid bytes count as one-byte runes.
func runeBoundary(s string, n int) int {
	for i := n; i > 0 && i > n-utf8.UTFMax; i-- {
		if utf8.RuneStart(s[i]) {
			return i
		}
	}
	return n
}

// maxBytes is the configured cap on each stored prompt and response.
func (w *CaptureWriter) maxBytes() int { return w.cfg.MaxBytes }
