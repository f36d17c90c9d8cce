// Package scan runs a discovery-and-fingerprint pass over a target set: a
// TCP connect to every (address, port) pair in the order the target set
// yields them (a random permutation), and, for each open port, a full
// fingerprint of whatever LLM server answers there, in the same pass.
//
// The package owns the scheduling only: rate, concurrency, retries, progress
// and the hand-off of results. What a target is (internal/targets), how a
// service is recognised (internal/fingerprint), judged (internal/classify,
// internal/risk) and kept (internal/store) is decided elsewhere and reaches
// this package through the small interfaces below.
//
// Memory is bounded by the concurrency, never by the size of the target set:
// targets stream from the walker into a bounded channel, and results stream
// out to the sink as they complete.
//
// On Linux the connect itself is hand-written (connect_linux.go) rather
// than net.Dialer, for speed: a sweep is almost all refused ports, and the
// kernel usually knows the refusal when connect(2) returns, so reading it
// there — without the runtime poller, on a reused socket — makes the sweep
// about three times as fast (docs/benchmarks.md). Connects still pending
// fall back to the poller. Slow fingerprints never hold the sweep: open
// ports that find every fingerprint slot busy are queued.
package scan

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/time/rate"

	"github.com/llmfence/llmfence/internal/service"
)

// Target is one (address, port) pair to try.
type Target struct {
	Addr     netip.AddrPort
	Hostname string // the name the user gave, "" for literal addresses
	TLS      bool   // the user asked for https
}

// Walker yields targets. Count is the total, for progress.
type Walker interface {
	Count() uint64
	Walk(ctx context.Context, fn func(Target) error) error
}

// Prober fingerprints one open port. conn is an open connection to addr,
// which the prober takes over, or nil when the prober must connect itself
// (the port was queued for a free fingerprint slot).
type Prober interface {
	Probe(ctx context.Context, addr netip.AddrPort, hostname string, tlsHint bool, conn net.Conn) (*service.Service, error)
}

// Annotator judges a fingerprinted service in place (classification of
// system prompts, findings, risk).
type Annotator interface {
	Annotate(svc *service.Service)
}

// Options tune one scan.
type Options struct {
	// Rate caps new connection attempts per second; 0 means unlimited.
	Rate float64
	// Concurrency caps the TCP connects in flight at once. The scanner
	// adapts the number it actually uses, between MinConcurrency and this
	// cap, to what the network and the machine sustain (see limit.go).
	Concurrency int
	// MinConcurrency is where the adaptive connect limit starts and the
	// least it shrinks to (default 64, never above Concurrency).
	MinConcurrency int
	// Fingerprints caps the open ports being fingerprinted at once. It is
	// separate from Concurrency so slow services (tarpits) cannot stall
	// discovery.
	Fingerprints int
	// DialTimeout bounds one TCP connect.
	DialTimeout time.Duration
	// Retries is how many more times a connect that timed out is tried
	// (a refused connection is an answer, not a failure, and is not retried).
	Retries int
	// KeepHTTP keeps services that answered HTTP but matched no LLM stack
	// and no gateway (a recognised gateway is always kept).
	KeepHTTP bool
	// Progress, if non-nil, is called about every ProgressEvery with a
	// snapshot, and once at the end.
	Progress      func(Stats)
	ProgressEvery time.Duration
	Logger        *slog.Logger
	// Dial replaces the TCP dialer (tests).
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// Stats is a snapshot of a scan's progress.
type Stats struct {
	Total     uint64 `json:"total"`      // pairs in the target set
	Done      uint64 `json:"done"`       // pairs tried
	Open      uint64 `json:"open"`       // pairs that accepted a connection
	Services  uint64 `json:"services"`   // LLM services found
	NotHTTP   uint64 `json:"not_http"`   // open ports that did not speak HTTP
	OtherHTTP uint64 `json:"other_http"` // HTTP that matched no LLM stack and no gateway
	// Fenced counts HTTP services that show nothing of the LLM server
	// behind them but were recognised as an authenticating gateway
	// (service.Service.Gateway); they are reported like services.
	Fenced uint64 `json:"fenced"`
	// Unidentified counts open ports where neither an LLM server nor a
	// gateway was recognised: NotHTTP + OtherHTTP. Open = Services +
	// Fenced + Unidentified once every fingerprint has finished.
	Unidentified uint64        `json:"unidentified"`
	Errors       uint64        `json:"errors"` // connects that failed other than refused/timeout
	Elapsed      time.Duration `json:"elapsed_ns"`
	// Sweep is how long discovery took: from the start until the last
	// connect finished. Fingerprints of slow services may run on after it.
	Sweep time.Duration `json:"sweep_ns"`
	// RateWait is how long the target walk waited on Options.Rate. When it
	// is most of Sweep, the rate cap — not the network, the targets or the
	// machine — set the pace of discovery.
	RateWait time.Duration `json:"rate_wait_ns"`
	// Concurrency is the connect limit in force (it adapts).
	Concurrency int `json:"concurrency"`
	// Queued counts open ports that found every fingerprint slot busy and
	// waited for one (fingerprinted on a new connection).
	Queued uint64 `json:"queued"`
}

// Scanner runs scans.
type Scanner struct {
	opts      Options
	prober    Prober
	annotator Annotator
	log       *slog.Logger
	// connect opens one TCP connection: connectTCP, or Options.Dial. Each
	// connect worker passes its own socket cache.
	connect func(ctx context.Context, addr netip.AddrPort, cache *socketCache) (net.Conn, error)
}

// DefaultOptions are the defaults New takes for zero fields; the dial
// timeout is service.DefaultTimeout, shared with the fingerprint and the
// CLI.
func DefaultOptions() Options {
	return Options{
		Concurrency:    4096,
		MinConcurrency: 64,
		Fingerprints:   256,
		DialTimeout:    service.DefaultTimeout,
		ProgressEvery:  250 * time.Millisecond,
	}
}

// New returns a Scanner. prober is required; annotator may be nil.
func New(opts Options, prober Prober, annotator Annotator) (*Scanner, error) {
	if prober == nil {
		return nil, errors.New("scan: no prober")
	}
	d := DefaultOptions()
	if opts.Concurrency <= 0 {
		opts.Concurrency = d.Concurrency
	}
	if opts.MinConcurrency <= 0 {
		opts.MinConcurrency = d.MinConcurrency
	}
	opts.MinConcurrency = min(opts.MinConcurrency, opts.Concurrency)
	if opts.Fingerprints <= 0 {
		opts.Fingerprints = d.Fingerprints
	}
	if opts.DialTimeout <= 0 {
		opts.DialTimeout = d.DialTimeout
	}
	if opts.Retries < 0 {
		return nil, fmt.Errorf("retries must be 0 or more, got %d", opts.Retries)
	}
	if opts.Rate < 0 {
		return nil, fmt.Errorf("rate must be 0 (unlimited) or more, got %v", opts.Rate)
	}
	if opts.ProgressEvery <= 0 {
		opts.ProgressEvery = d.ProgressEvery
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Scanner{opts: opts, prober: prober, annotator: annotator, log: log}
	timeout := opts.DialTimeout
	if dial := opts.Dial; dial != nil {
		s.connect = func(ctx context.Context, addr netip.AddrPort, _ *socketCache) (net.Conn, error) {
			ctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			return dial(ctx, "tcp", addr.String())
		}
	} else {
		s.connect = func(ctx context.Context, addr netip.AddrPort, cache *socketCache) (net.Conn, error) {
			return connectTCP(ctx, addr, timeout, cache)
		}
	}
	return s, nil
}

type counters struct {
	done, open, services, notHTTP, otherHTTP, fenced, errs, queued atomic.Uint64
	sweep, rateWait                                                atomic.Int64
	slots                                                          *adaptiveLimit
}

func (c *counters) snapshot(total uint64, start time.Time) Stats {
	st := Stats{
		Total: total, Done: c.done.Load(), Open: c.open.Load(), Services: c.services.Load(),
		NotHTTP: c.notHTTP.Load(), OtherHTTP: c.otherHTTP.Load(), Fenced: c.fenced.Load(), Errors: c.errs.Load(),
		Elapsed: time.Since(start), Sweep: time.Duration(c.sweep.Load()), RateWait: time.Duration(c.rateWait.Load()),
		Concurrency: c.slots.current(), Queued: c.queued.Load(),
	}
	st.Unidentified = st.NotHTTP + st.OtherHTTP
	return st
}

// Run scans every target w yields and calls emit, from one goroutine at a
// time, for each service found, as soon as it is found. An error from emit
// stops the scan. Run returns the final stats; when ctx is cancelled it
// returns what was done so far with ctx's error.
//
// The steps: results go to emit from one goroutine (startEmitter); connect
// workers, as many as the adaptive limit allows, take targets from the
// walk (startConnectWorkers, feed); open ports that find every fingerprint
// slot busy wait in a queue (startQueue); progress and the limit's control
// tick beside them (startTickers); then everything drains in order
// (drain) and the first error that matters is returned (outcome).
func (s *Scanner) Run(ctx context.Context, w Walker, emit func(*service.Service) error) (Stats, error) {
	r := s.newRun(ctx, w.Count())
	defer r.cancel(nil)
	r.startEmitter(emit)
	r.startConnectWorkers()
	r.startQueue()
	r.startTickers()
	walkErr := w.Walk(r.ctx, r.feed)
	emitErr := r.drain()
	st := r.c.snapshot(r.total, r.start)
	if s.opts.Progress != nil {
		s.opts.Progress(st)
	}
	return st, r.outcome(emitErr, walkErr)
}

// run is the state of one Run.
type run struct {
	s      *Scanner
	ctx    context.Context
	cancel context.CancelCauseFunc
	start  time.Time
	total  uint64
	c      counters

	limiter  *rate.Limiter // nil: no rate cap
	results  chan *service.Service
	emitDone chan error

	work      chan Target
	fp        *fingerprints
	workers   sync.WaitGroup
	gate      chan struct{} // connects in the kernel at once (see connectTCP)
	slots     *adaptiveLimit
	queueDone chan struct{}

	stop chan struct{} // ends the tickers
	bg   sync.WaitGroup
}

func (s *Scanner) newRun(ctx context.Context, total uint64) *run {
	r := &run{s: s, start: time.Now(), total: total}
	r.ctx, r.cancel = context.WithCancelCause(ctx)
	if s.opts.Rate > 0 {
		burst := int(s.opts.Rate / 100)
		if burst < 1 {
			burst = 1
		}
		r.limiter = rate.NewLimiter(rate.Limit(s.opts.Rate), burst)
	}
	r.results = make(chan *service.Service, s.opts.Fingerprints)
	r.emitDone = make(chan error, 1)
	r.work = make(chan Target, 256)
	r.fp = &fingerprints{slots: make(chan struct{}, s.opts.Fingerprints), queue: make(chan Target, maxQueued)}
	r.gate = make(chan struct{}, 2*runtime.GOMAXPROCS(0))
	r.queueDone = make(chan struct{})
	r.stop = make(chan struct{})
	return r
}

// startEmitter passes results to emit from one goroutine, so sinks need no
// locking. After emit fails the rest are drained and the scan cancelled.
func (r *run) startEmitter(emit func(*service.Service) error) {
	go func() {
		var err error
		for svc := range r.results {
			if err != nil {
				continue // drain
			}
			if err = emit(svc); err != nil {
				r.cancel(fmt.Errorf("saving results: %w", err))
			}
		}
		r.emitDone <- err
	}()
}

// startConnectWorkers sets up the adaptive connect limit (limit.go), which
// starts and stops connect workers; fingerprints have their own fixed pool
// so tarpits cannot stall discovery.
func (r *run) startConnectWorkers() {
	opts := r.s.opts
	r.slots = newAdaptiveLimit(opts.MinConcurrency, opts.Concurrency, r.startWorker)
	r.c.slots = r.slots
	r.slots.set(opts.MinConcurrency)
}

// startWorker starts one connect worker; it stops when the limit shrinks
// or the work runs out.
func (r *run) startWorker() {
	r.workers.Add(1)
	go func() {
		defer r.workers.Done()
		sockets := socketCache{gate: r.gate}
		defer sockets.close()
		for t := range r.work {
			r.s.one(r.ctx, t, &sockets, &r.c, r.fp, r.results)
			// A refused connect never parks the goroutine (see
			// connectTCP), so without a yield the sweep's workers
			// would hold both Ps for a whole preemption slice
			// (10 ms) each and leave fingerprint goroutines, ready
			// with a response, waiting behind dozens of them: their
			// per-target budget would run out in the run queue.
			runtime.Gosched()
			if r.slots.leave() {
				return
			}
		}
	}()
}

// startQueue fingerprints the open ports that found every fingerprint slot
// busy, as slots free up.
func (r *run) startQueue() {
	go func() {
		defer close(r.queueDone)
		for t := range r.fp.queue {
			select {
			case r.fp.slots <- struct{}{}:
				r.s.startFingerprint(r.ctx, t, nil, &r.c, r.fp, r.results)
			case <-r.ctx.Done():
			}
		}
	}()
}

// startTickers starts the progress reports (when asked for) and the
// adaptive limit's control loop.
func (r *run) startTickers() {
	if progress := r.s.opts.Progress; progress != nil {
		r.bg.Add(1)
		go func() {
			defer r.bg.Done()
			t := time.NewTicker(r.s.opts.ProgressEvery)
			defer t.Stop()
			for {
				select {
				case <-r.stop:
					return
				case <-t.C:
					progress(r.c.snapshot(r.total, r.start))
				}
			}
		}()
	}
	r.bg.Add(1)
	go func() {
		defer r.bg.Done()
		r.slots.control(r.stop, &r.c.done, 200*time.Millisecond)
	}()
}

// feed is the walk's callback: it paces by the rate cap and hands the
// target to a connect worker, telling the adaptive limit when every worker
// was busy.
func (r *run) feed(t Target) error {
	if r.limiter != nil {
		if err := pace(r.ctx, r.limiter, &r.c.rateWait); err != nil {
			return err
		}
	}
	select {
	case r.work <- t:
		return nil
	default:
		r.slots.saturated.Store(true)
	}
	select {
	case r.work <- t:
		return nil
	case <-r.ctx.Done():
		return r.ctx.Err()
	}
}

// drain waits for every stage in order: connects, then queued and running
// fingerprints, then the emitter and the tickers. It returns emit's error.
func (r *run) drain() error {
	close(r.work)
	r.slots.close()
	r.workers.Wait()
	r.c.sweep.Store(int64(time.Since(r.start)))
	close(r.fp.queue)
	<-r.queueDone
	r.fp.running.Wait()
	close(r.results)
	emitErr := <-r.emitDone
	close(r.stop)
	r.bg.Wait()
	return emitErr
}

// outcome is Run's error: emit's, else the cancellation's cause (a failed
// save), else the walk's, else ctx's.
func (r *run) outcome(emitErr, walkErr error) error {
	if emitErr != nil {
		return emitErr
	}
	if cause := context.Cause(r.ctx); cause != nil && !errors.Is(cause, context.Canceled) {
		return cause
	}
	if walkErr != nil {
		if errors.Is(walkErr, context.Canceled) || errors.Is(walkErr, context.DeadlineExceeded) {
			return walkErr
		}
		return fmt.Errorf("reading targets: %w", walkErr)
	}
	return r.ctx.Err()
}

// maxQueued bounds the open ports waiting for a fingerprint slot (the
// buffer, about 50 bytes a port, is allocated up front); past it connect
// workers wait.
const maxQueued = 1 << 14

// fingerprints is the fingerprint pool: its slots and the queue of open
// ports waiting for one.
type fingerprints struct {
	slots   chan struct{}
	queue   chan Target
	running sync.WaitGroup
}

// one handles a single target: connect, and if open, hand the connection
// to a fingerprint goroutine. When every fingerprint slot is busy (slow
// services, tarpits that pass for HTTP) the connect worker does not wait
// for one, and does not keep the connection — it could go stale before a
// slot frees — but queues the target, to be fingerprinted on a new
// connection: discovery runs at the speed of the sweep whatever the
// fingerprints cost.
func (s *Scanner) one(ctx context.Context, t Target, sockets *socketCache, c *counters, fp *fingerprints, results chan<- *service.Service) {
	conn, err := s.dial(ctx, t.Addr, sockets)
	c.done.Add(1)
	if err != nil {
		if !isClosed(err) && ctx.Err() == nil {
			c.errs.Add(1)
			s.log.Debug("connect failed", "addr", t.Addr, "err", err)
		}
		return
	}
	c.open.Add(1)
	select {
	case fp.slots <- struct{}{}:
		s.startFingerprint(ctx, t, conn, c, fp, results)
		return
	default:
	}
	conn.Close()
	c.queued.Add(1)
	select {
	case fp.queue <- t:
	case <-ctx.Done():
	}
}

// startFingerprint runs one fingerprint in its own goroutine; the caller
// holds a slot, which the goroutine gives back.
func (s *Scanner) startFingerprint(ctx context.Context, t Target, conn net.Conn, c *counters, fp *fingerprints, results chan<- *service.Service) {
	fp.running.Add(1)
	go func() {
		defer fp.running.Done()
		defer func() { <-fp.slots }()
		s.fingerprint(ctx, t, conn, c, results)
	}()
}

// fingerprint identifies the service on an open port and passes it on.
func (s *Scanner) fingerprint(ctx context.Context, t Target, conn net.Conn, c *counters, results chan<- *service.Service) {
	svc, err := s.prober.Probe(ctx, t.Addr, t.Hostname, t.TLS, conn)
	if err != nil || svc == nil {
		c.notHTTP.Add(1)
		s.log.Debug("not an HTTP service", "addr", t.Addr, "err", err)
		return
	}
	switch {
	case svc.Product != "" && svc.Product != "http":
		c.services.Add(1)
	case svc.Gateway != "":
		// Nothing behind the fence shows, but the fence itself is known:
		// an inventory must list it.
		c.fenced.Add(1)
	default:
		c.otherHTTP.Add(1)
		if !s.opts.KeepHTTP {
			return
		}
	}
	if s.annotator != nil {
		s.annotator.Annotate(svc)
	}
	select {
	case results <- svc:
	case <-ctx.Done():
	}
}

// pace waits for the rate limiter's next slot and adds the time waited to
// waited.
func pace(ctx context.Context, l *rate.Limiter, waited *atomic.Int64) error {
	r := l.Reserve()
	d := r.Delay()
	if d <= 0 {
		return nil
	}
	waited.Add(int64(d))
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		r.Cancel()
		return ctx.Err()
	}
}

func (s *Scanner) dial(ctx context.Context, addr netip.AddrPort, sockets *socketCache) (net.Conn, error) {
	var err error
	for attempt := 0; attempt <= s.opts.Retries; attempt++ {
		var conn net.Conn
		conn, err = s.connect(ctx, addr, sockets)
		if err == nil {
			return conn, nil
		}
		if isClosed(err) || ctx.Err() != nil {
			return nil, err
		}
	}
	return nil, err
}

// isClosed reports whether err means "nothing listens there" (an answer),
// as opposed to a timeout or local failure.
func isClosed(err error) bool {
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EHOSTUNREACH) ||
		errors.Is(err, syscall.ENETUNREACH) || errors.Is(err, syscall.ECONNRESET)
}
