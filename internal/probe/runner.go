package probe

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/llmfence/llmfence/internal/probe/transport"
)

// Generator sends one generation request (transport.Client implements it).
type Generator interface {
	Generate(ctx context.Context, r transport.Request) (transport.Response, error)
}

// Progress is a snapshot of a running run.
type Progress struct {
	Done, Total, InFlight, Limit, Errors int
	Tokens                               int64
	Elapsed                              time.Duration
}

// ErrBudget: a budget (--max-tokens, --timeout) ended the run before every
// request was sent.
var ErrBudget = errors.New("budget exhausted")

// ErrTargetFailing: the target failed too many requests in a row.
var ErrTargetFailing = errors.New("the target keeps failing")

// runner sends specs with adaptive concurrency and records outcomes.
type runner struct {
	gen      Generator
	noStream bool
	opts     *Options
	journal  *Journal
	progress func(Progress)
	seed     int
	temp     float64

	ctrl  *controller
	start time.Time
	// reportMu makes progress callbacks one at a time (a tick and the
	// final report can meet).
	reportMu sync.Mutex

	mu          sync.Mutex
	done        int
	sent        int
	errors      int
	consecutive int
	lastErr     error
	tokens      int64
	reserved    int64
	stop        error
}

func newRunner(gen Generator, opts *Options, j *Journal, progress func(Progress)) *runner {
	return &runner{gen: gen, opts: opts, journal: j, progress: progress, seed: opts.Seed, temp: opts.Temperature,
		ctrl: newController(opts.Concurrency, opts.MaxConcurrency)}
}

// order sorts specs so the longest answers go first (less idle time at the
// end of a run), then by key for a stable order.
func order(specs []*Spec) {
	slices.SortStableFunc(specs, func(a, b *Spec) int {
		if c := cmp.Compare(b.NumPredict, a.NumPredict); c != 0 {
			return c
		}
		if c := cmp.Compare(len(b.prompt()), len(a.prompt())); c != 0 {
			return c
		}
		return cmp.Compare(a.Key, b.Key)
	})
}

// run sends every spec not in outs and adds its outcome to outs. It returns
// nil when every spec was answered or failed on its own, or why it stopped
// early (ctx's error, ErrBudget, ErrTargetFailing, a journal error).
func (r *runner) run(ctx context.Context, specs []*Spec, outs map[string]Outcome, total int) error {
	r.start = time.Now()
	var todo []*Spec
	for _, s := range specs {
		if o, ok := outs[s.Key]; !ok || o.Error != "" {
			todo = append(todo, s)
		}
	}
	order(todo)
	var outMu sync.Mutex
	r.done = total - len(todo)
	var wg sync.WaitGroup
	if r.progress != nil {
		tick := time.NewTicker(250 * time.Millisecond)
		stopTick := make(chan struct{})
		defer func() { tick.Stop(); close(stopTick) }()
		go func() {
			for {
				select {
				case <-tick.C:
					r.report()
				case <-stopTick:
					return
				}
			}
		}()
	}

	dctx := ctx
	if r.opts.Timeout > 0 {
		var cancel context.CancelFunc
		dctx, cancel = context.WithTimeoutCause(ctx, r.opts.Timeout, ErrBudget)
		defer cancel()
	}
	for _, s := range todo {
		if err := r.stopped(); err != nil {
			break
		}
		if !r.reserve(s) {
			r.setStop(fmt.Errorf("%w: --max-tokens %d reached", ErrBudget, r.opts.MaxTokens))
			break
		}
		level, err := r.ctrl.acquire(dctx)
		if err != nil {
			r.unreserve(s)
			break
		}
		wg.Add(1)
		go func(s *Spec, level int) {
			defer wg.Done()
			defer r.ctrl.release()
			o, err := r.send(dctx, s, level)
			r.unreserve(s)
			if err != nil && dctx.Err() != nil {
				return // interrupted: not an outcome, the resumed run sends it again
			}
			if jerr := r.record(s, o, err); jerr != nil {
				r.setStop(jerr)
				return
			}
			outMu.Lock()
			outs[s.Key] = o
			outMu.Unlock()
		}(s, level)
	}
	wg.Wait()
	r.report()
	if err := r.stopped(); err != nil {
		return err
	}
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	if dctx.Err() != nil {
		return fmt.Errorf("%w: --timeout %v reached", ErrBudget, r.opts.Timeout)
	}
	return nil
}

// send runs one spec, retrying a busy server with back-off.
func (r *runner) send(ctx context.Context, s *Spec, level int) (Outcome, error) {
	req := transport.Request{Model: s.Model, System: s.System, Messages: s.Messages, Raw: s.Raw,
		Seed: r.seed, Temperature: r.temp, NumPredict: s.NumPredict, Logprobs: s.Logprobs, NoStream: r.noStream}
	var resp transport.Response
	var err error
	for attempt := 0; ; attempt++ {
		firstSeen := false
		req.OnFirstToken = func(ttft time.Duration) {
			firstSeen = true
			r.ctrl.firstToken(level, ttft, len(s.prompt()))
		}
		rctx, cancel := context.WithTimeout(ctx, r.opts.RequestTimeout)
		resp, err = r.gen.Generate(rctx, req)
		cancel()
		if err == nil || !errors.Is(err, transport.ErrBusy) || attempt >= 3 || ctx.Err() != nil {
			if err == nil {
				r.ctrl.finished(level, resp, firstSeen)
			}
			break
		}
		r.ctrl.busy()
		select {
		case <-time.After(time.Duration(500*(attempt+1)) * time.Millisecond):
		case <-ctx.Done():
		}
	}
	o := Outcome{Key: s.Key, Text: resp.Text, Tokens: resp.Tokens, PromptTokens: resp.PromptTokens, DoneReason: resp.DoneReason,
		Cut: resp.Cut, LatencyMS: resp.Latency.Milliseconds(), TTFTMS: resp.TTFT.Milliseconds(), QueueMS: -1, Logprobs: resp.Logprobs}
	if resp.QueueWait >= 0 {
		o.QueueMS = resp.QueueWait.Milliseconds()
	}
	if err != nil {
		o.Error = err.Error()
	}
	return o, err
}

// record notes an outcome: counters, failure streak, journal.
func (r *runner) record(s *Spec, o Outcome, err error) error {
	r.mu.Lock()
	r.done++
	r.sent++
	r.tokens += int64(o.Tokens)
	if err != nil {
		r.errors++
		r.consecutive++
		r.lastErr = err
		fatal := errors.Is(err, transport.ErrUnauthorized) || errors.Is(err, transport.ErrModelNotFound) || errors.Is(err, transport.ErrUnreachable)
		if fatal || r.consecutive >= r.opts.MaxConsecutiveErrors {
			if r.stop == nil {
				r.stop = fmt.Errorf("%w (%d failed requests in a row); last: %w", ErrTargetFailing, r.consecutive, err)
			}
		}
	} else {
		r.consecutive = 0
	}
	r.mu.Unlock()
	if r.journal != nil {
		return r.journal.Append(o)
	}
	return nil
}

func (r *runner) setStop(err error) {
	r.mu.Lock()
	if r.stop == nil {
		r.stop = err
	}
	r.mu.Unlock()
}

func (r *runner) stopped() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stop
}

// reserve holds the spec's answer length against --max-tokens.
func (r *runner) reserve(s *Spec) bool {
	if r.opts.MaxTokens <= 0 {
		return true
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.tokens+r.reserved+int64(s.NumPredict) > r.opts.MaxTokens {
		return false
	}
	r.reserved += int64(s.NumPredict)
	return true
}

func (r *runner) unreserve(s *Spec) {
	if r.opts.MaxTokens <= 0 {
		return
	}
	r.mu.Lock()
	r.reserved -= int64(s.NumPredict)
	r.mu.Unlock()
}

func (r *runner) report() {
	if r.progress == nil {
		return
	}
	r.mu.Lock()
	p := Progress{Done: r.done, Errors: r.errors, Tokens: r.tokens, Elapsed: time.Since(r.start)}
	r.mu.Unlock()
	p.InFlight, p.Limit = r.ctrl.snapshot()
	p.Total = r.ctrl.total
	r.reportMu.Lock()
	defer r.reportMu.Unlock()
	r.progress(p)
}

// controller adapts the number of requests in flight to what the server
// sustains. A model server decodes a fixed number of requests at once
// (Ollama: OLLAMA_NUM_PARALLEL) and queues the rest; a queued request shows
// as server-reported queue time (Ollama's durations) or as a first token
// that comes much later than an unqueued one. The controller starts at one
// request, adds one each time a request dispatched at the current level
// was not queued, and on the first queued request learns the server's
// slots: it then keeps slots+1 in flight, so one request is always waiting
// and no slot idles between two requests. Eight unqueued requests in a
// row at slots+1 raise the estimate (the server has more room than
// thought); a queued one lowers it again.
type controller struct {
	mu       sync.Mutex
	fixed    bool
	limit    int
	max      int
	inflight int
	slots    int // learned; 0 = unknown
	streak   int
	total    int
	// baseTTFT is the smallest first-token time seen per prompt size
	// class; tokenGap a running estimate of the time per token.
	baseTTFT map[int]time.Duration
	tokenGap time.Duration
	wake     chan struct{}
}

func newController(fixed, max int) *controller {
	c := &controller{limit: 1, max: max, baseTTFT: map[int]time.Duration{}, wake: make(chan struct{})}
	if c.max <= 0 {
		c.max = 16
	}
	if fixed > 0 {
		c.fixed, c.limit, c.max = true, fixed, fixed
	}
	return c
}

// acquire waits for room and returns how many requests are in flight
// including this one.
func (c *controller) acquire(ctx context.Context) (int, error) {
	for {
		c.mu.Lock()
		if c.inflight < c.limit {
			c.inflight++
			n := c.inflight
			c.mu.Unlock()
			return n, nil
		}
		wake := c.wake
		c.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
			return 0, context.Cause(ctx)
		}
	}
}

func (c *controller) release() {
	c.mu.Lock()
	c.inflight--
	c.signal()
	c.mu.Unlock()
}

// signal wakes waiters; c.mu is held.
func (c *controller) signal() {
	close(c.wake)
	c.wake = make(chan struct{})
}

func (c *controller) snapshot() (int, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.inflight, c.limit
}

func sizeClass(promptBytes int) int {
	k := 0
	for n := promptBytes / 256; n > 0; n /= 2 {
		k++
	}
	return k
}

// slack is how much later than the quickest first token a request may
// start and still count as not queued.
func (c *controller) slack() time.Duration {
	return max(40*time.Millisecond, 4*c.tokenGap)
}

// firstToken judges a request by its time to first token.
func (c *controller) firstToken(level int, ttft time.Duration, promptBytes int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := sizeClass(promptBytes)
	base, ok := c.baseTTFT[k]
	if !ok || ttft < base {
		c.baseTTFT[k] = ttft
		base = ttft
	}
	c.observe(level, ttft > base+c.slack())
}

// finished refines the judgement with the server's own queue time, and
// learns the time per token.
func (c *controller) finished(level int, resp transport.Response, firstSeen bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if resp.Tokens > 1 && resp.Latency > resp.TTFT {
		gap := (resp.Latency - resp.TTFT) / time.Duration(resp.Tokens-1)
		if c.tokenGap == 0 {
			c.tokenGap = gap
		} else {
			c.tokenGap = (3*c.tokenGap + gap) / 4
		}
	}
	// The server's own queue time is exact: a few milliseconds of waiting
	// already mean the request found every slot busy.
	if resp.QueueWait >= 0 && resp.QueueWait > max(5*time.Millisecond, c.tokenGap/2) {
		c.observe(level, true)
	} else if !firstSeen {
		c.observe(level, false)
	}
}

// busy: the server refused with 503/429; step down.
func (c *controller) busy() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.fixed {
		c.limit = max(1, c.limit-1)
		if c.slots > 0 {
			c.slots = max(1, min(c.slots, c.limit))
		}
	}
}

// observe adapts the limit to one request dispatched at level; c.mu is
// held.
func (c *controller) observe(level int, queued bool) {
	if c.fixed {
		return
	}
	old := c.limit
	switch {
	case queued:
		s := max(1, level-1)
		if c.slots == 0 || s < c.slots {
			c.slots = s
		}
		c.streak = 0
		c.limit = min(c.max, c.slots+1)
	case c.slots == 0:
		if level >= c.limit {
			c.limit = min(c.max, level+1)
		}
	case level > c.slots:
		c.streak++
		if c.streak >= 8 {
			c.slots++
			c.streak = 0
			c.limit = min(c.max, c.slots+1)
		}
	}
	if c.limit > old {
		c.signal()
	}
}
