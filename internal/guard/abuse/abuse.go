package abuse

import (
	"context"
	"fmt"
	"hash/maphash"
	"log/slog"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/llmfence/llmfence/internal/classify"
	"github.com/llmfence/llmfence/internal/service"
)

// Action is what a rule does when its signal fires.
type Action int

// Actions, from weakest to strongest. Allow turns the rule off.
const (
	Allow Action = iota
	Log
	Alert // log and POST to the webhook
	Block // alert, and the gateway refuses the request
)

var actionNames = [...]string{"allow", "log", "alert", "block"}

func (a Action) String() string {
	if a >= 0 && int(a) < len(actionNames) {
		return actionNames[a]
	}
	return fmt.Sprintf("action(%d)", int(a))
}

// MarshalText implements encoding.TextMarshaler.
func (a Action) MarshalText() ([]byte, error) {
	if a < 0 || int(a) >= len(actionNames) {
		return nil, fmt.Errorf("unknown abuse action %d", int(a))
	}
	return []byte(actionNames[a]), nil
}

// UnmarshalText implements encoding.TextUnmarshaler ("allow", "off",
// "log", "alert", "block"; case-insensitive).
func (a *Action) UnmarshalText(b []byte) error {
	s := strings.ToLower(strings.TrimSpace(string(b)))
	if s == "off" || s == "" {
		*a = Allow
		return nil
	}
	i := slices.Index(actionNames[:], s)
	if i < 0 {
		return fmt.Errorf("abuse action %q: want allow, log, alert or block", string(b))
	}
	*a = Action(i)
	return nil
}

// Signal kinds.
const (
	KindRateJump    = "rate_jump"
	KindNewNetwork  = "new_network"
	KindPromptAbuse = "prompt_abuse"
	KindBulkSpam    = "bulk_spam"
	// KindOutputGibberish: a streamed answer turned to gibberish (the
	// output watch, off by default): a backdoor trigger may sit in the
	// prompt that preceded it.
	KindOutputGibberish = "output_gibberish"
)

// RateJumpRule configures the token/request-rate jump signal. Zero fields
// take the defaults shown.
type RateJumpRule struct {
	Action               Action        `yaml:"action" json:"action"`
	Factor               float64       `yaml:"factor" json:"factor"`                                   // 10
	HalfLife             time.Duration `yaml:"half_life" json:"half_life"`                             // 1h
	WarmupMinutes        int           `yaml:"warmup_minutes" json:"warmup_minutes"`                   // 30
	WarmupRequests       int           `yaml:"warmup_requests" json:"warmup_requests"`                 // 20
	MinTokensPerMinute   int64         `yaml:"min_tokens_per_minute" json:"min_tokens_per_minute"`     // 2000
	MinRequestsPerMinute int64         `yaml:"min_requests_per_minute" json:"min_requests_per_minute"` // 20
}

// NewNetworkRule configures the new-client-network signal.
type NewNetworkRule struct {
	Action      Action `yaml:"action" json:"action"`
	MaxNetworks int    `yaml:"max_networks" json:"max_networks"` // 64
}

// PromptAbuseRule configures prompt classification.
type PromptAbuseRule struct {
	Action Action `yaml:"action" json:"action"`
	// Categories flagged (service.Categories names); empty means
	// DefaultCategories.
	Categories []string `yaml:"categories" json:"categories"`
}

// BulkSpamRule configures the near-duplicate prompt signal.
type BulkSpamRule struct {
	Action      Action        `yaml:"action" json:"action"`
	Threshold   int           `yaml:"threshold" json:"threshold"`       // 20 near-duplicates, this one included
	Window      time.Duration `yaml:"window" json:"window"`             // 1h
	MaxDistance int           `yaml:"max_distance" json:"max_distance"` // 12 bits of 64
	MaxPrompts  int           `yaml:"max_prompts" json:"max_prompts"`   // 256 hashes kept per key
	MinChars    int           `yaml:"min_chars" json:"min_chars"`       // 64 characters
}

// OutputWatchRule configures the watch on streamed answers: the gateway
// scores the text of each streamed answer as it passes (package
// gibberish) and signals an answer that turns to gibberish, with the end
// of the prompt that preceded it (redacted), where a backdoor trigger
// would sit. Off by default; log or alert (an answer already on its way
// is not blocked).
type OutputWatchRule struct {
	Action Action `yaml:"action" json:"action"`
	// PromptChars is how much of the end of the preceding prompt the
	// signal carries (default 512).
	PromptChars int `yaml:"prompt_chars" json:"prompt_chars"`
}

// Config selects the rules and where alerts go.
type Config struct {
	RateJump    RateJumpRule    `yaml:"rate_jump" json:"rate_jump"`
	NewNetwork  NewNetworkRule  `yaml:"new_network" json:"new_network"`
	PromptAbuse PromptAbuseRule `yaml:"prompt_abuse" json:"prompt_abuse"`
	BulkSpam    BulkSpamRule    `yaml:"bulk_spam" json:"bulk_spam"`
	OutputWatch OutputWatchRule `yaml:"output_watch" json:"output_watch"`

	Webhook        string        `yaml:"webhook" json:"webhook"`                   // alert URL; empty logs alerts only
	WebhookTimeout time.Duration `yaml:"webhook_timeout" json:"webhook_timeout"`   // 5s
	QueueSize      int           `yaml:"queue_size" json:"queue_size"`             // 256 pending alerts
	Cooldown       time.Duration `yaml:"cooldown" json:"cooldown"`                 // 1m per key and kind
	MaxKeys        int           `yaml:"max_keys" json:"max_keys"`                 // 10000
	MaxPromptBytes int           `yaml:"max_prompt_bytes" json:"max_prompt_bytes"` // 8192
	MaxBodyBytes   int           `yaml:"max_body_bytes" json:"max_body_bytes"`     // 4 MiB
}

// DefaultCategories are the prompt categories flagged by default.
var DefaultCategories = []string{
	service.CategoryFraudPhishing,
	service.CategoryMalwareIntrusion,
	service.CategoryHarassmentHate,
	service.CategoryDisinformation,
	service.CategoryPersonalDataHarvesting,
	service.CategoryCSAM,
}

// DefaultConfig returns a configuration that logs or alerts on every
// signal and blocks nothing, with every threshold and size at the value
// a zero field stands for.
func DefaultConfig() Config {
	c := Config{
		RateJump:    RateJumpRule{Action: Alert},
		NewNetwork:  NewNetworkRule{Action: Log},
		PromptAbuse: PromptAbuseRule{Action: Alert, Categories: slices.Clone(DefaultCategories)},
		BulkSpam:    BulkSpamRule{Action: Alert},
	}
	if err := c.fill(); err != nil {
		panic("abuse: the default configuration is invalid: " + err.Error()) // a test covers it
	}
	return c
}

func (c *Config) fill() error {
	r := &c.RateJump
	if r.Factor == 0 {
		r.Factor = 10
	}
	if r.Factor <= 1 {
		return fmt.Errorf("rate_jump factor %v: must be more than 1", r.Factor)
	}
	if r.HalfLife == 0 {
		r.HalfLife = time.Hour
	}
	if r.HalfLife < time.Minute {
		return fmt.Errorf("rate_jump half_life %v: must be at least 1m", r.HalfLife)
	}
	setDefault(&r.WarmupMinutes, 30)
	setDefault(&r.WarmupRequests, 20)
	if r.MinTokensPerMinute == 0 {
		r.MinTokensPerMinute = 2000
	}
	if r.MinRequestsPerMinute == 0 {
		r.MinRequestsPerMinute = 20
	}
	setDefault(&c.NewNetwork.MaxNetworks, 64)
	if len(c.PromptAbuse.Categories) == 0 {
		c.PromptAbuse.Categories = DefaultCategories
	}
	for _, cat := range c.PromptAbuse.Categories {
		if !slices.Contains(service.Categories, cat) {
			return fmt.Errorf("prompt_abuse category %q: not one of %s", cat, strings.Join(service.Categories, ", "))
		}
	}
	b := &c.BulkSpam
	setDefault(&b.Threshold, 20)
	if b.Window == 0 {
		b.Window = time.Hour
	}
	setDefault(&b.MaxDistance, 12)
	setDefault(&b.MaxPrompts, 256)
	setDefault(&b.MinChars, 64)
	if b.Threshold < 2 {
		return fmt.Errorf("bulk_spam threshold %d: must be at least 2", b.Threshold)
	}
	if c.WebhookTimeout == 0 {
		c.WebhookTimeout = 5 * time.Second
	}
	if c.OutputWatch.Action == Block {
		return fmt.Errorf("output_watch action block: not supported (the answer is already on its way); use log or alert")
	}
	setDefault(&c.OutputWatch.PromptChars, 512)
	setDefault(&c.QueueSize, 256)
	if c.Cooldown == 0 {
		c.Cooldown = time.Minute
	}
	setDefault(&c.MaxKeys, 10000)
	setDefault(&c.MaxPromptBytes, 8<<10)
	setDefault(&c.MaxBodyBytes, 4<<20)
	if r.WarmupMinutes < 0 || r.WarmupRequests < 0 || r.MinTokensPerMinute < 0 || r.MinRequestsPerMinute < 0 {
		return fmt.Errorf("rate_jump warm-up and floors must not be negative")
	}
	for _, v := range []int{c.NewNetwork.MaxNetworks, b.MaxPrompts, c.QueueSize, c.MaxKeys, c.MaxPromptBytes} {
		if v <= 0 {
			return fmt.Errorf("abuse config: sizes and counts must be positive")
		}
	}
	if c.Webhook != "" && !strings.HasPrefix(c.Webhook, "http://") && !strings.HasPrefix(c.Webhook, "https://") {
		return fmt.Errorf("abuse webhook %q: want an http:// or https:// URL", c.Webhook)
	}
	return nil
}

func setDefault(p *int, v int) {
	if *p == 0 {
		*p = v
	}
}

// Options are the Detector's collaborators; zero fields take defaults.
type Options struct {
	Now        func() time.Time // time.Now
	Logger     *slog.Logger     // slog.Default()
	HTTPClient *http.Client     // a client with no redirects followed
	Classifier *classify.Classifier
	// Background takes prompt classification and the near-duplicate check
	// off the request path: unless prompt_abuse or bulk_spam is set to
	// block (then Before must decide), Before queues the prompt for a
	// background worker and returns at once; their signals are logged and
	// alerted from there. A full queue skips the prompt (counted by
	// Skipped). The gateway sets it.
	Background bool
	// QueueSize bounds the prompts waiting for the background worker
	// (default 1024).
	QueueSize int
	// OnSignal, if set, is called with every signal notified (after the
	// cooldown), from whichever goroutine noticed it.
	OnSignal func(Signal)
}

// Request is what the gateway knows about a request before proxying it.
type Request struct {
	KeyID    string
	KeyName  string
	ClientIP netip.Addr
	Route    string // normalised upstream path, e.g. /api/chat
	Body     []byte // the validated JSON request body
}

// Completed reports a finished, billed request.
type Completed struct {
	KeyID            string
	PromptTokens     int64
	CompletionTokens int64
	At               time.Time // zero means now
}

// Signal is one abuse signal that fired.
type Signal struct {
	Kind       string   `json:"kind"`
	Action     Action   `json:"action"`
	KeyName    string   `json:"key_name"`
	Detail     string   `json:"detail"`
	Categories []string `json:"categories,omitempty"`
	// Prompt is the (redacted) end of the prompt before an answer the
	// output watch flagged.
	Prompt string `json:"prompt,omitempty"`
}

// Verdict is the outcome of Before: the strongest action of the signals.
type Verdict struct {
	Action  Action
	Signals []Signal
}

// Blocked returns the first blocking signal, if any.
func (v Verdict) Blocked() (Signal, bool) {
	for _, s := range v.Signals {
		if s.Action == Block {
			return s, true
		}
	}
	return Signal{}, false
}

// Detector holds per-key state. It is safe for concurrent use. Close it to
// stop the webhook sender.
type Detector struct {
	cfg    Config
	now    func() time.Time
	log    *slog.Logger
	cls    *classify.Classifier
	cats   map[string]bool
	seed   maphash.Seed
	shards [numShards]shard
	alerts *alerter
	cache  promptCache
	onSig  func(Signal)
	// record receives every notified signal with its particulars (see
	// SetRecorder); nil: none.
	record atomic.Pointer[func(AlertEvent)]

	// Background prompt analysis (Options.Background).
	jobs     chan promptJob
	jobsMu   sync.RWMutex
	closed   bool
	workDone chan struct{}
	skipped  atomic.Int64
}

// promptJob is a prompt waiting for the background worker.
type promptJob struct {
	ev  Request
	now time.Time
}

// New builds a Detector; it starts the webhook sender when a webhook is set.
func New(cfg Config, opts Options) (*Detector, error) {
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	d := &Detector{cfg: cfg, now: opts.Now, log: opts.Logger, cls: opts.Classifier, cats: map[string]bool{},
		seed: maphash.MakeSeed()}
	if d.now == nil {
		d.now = time.Now
	}
	if d.log == nil {
		d.log = slog.Default()
	}
	if d.cls == nil && cfg.PromptAbuse.Action != Allow {
		c, err := classify.New()
		if err != nil {
			return nil, fmt.Errorf("loading the prompt classifier: %w", err)
		}
		d.cls = c
	}
	for _, c := range cfg.PromptAbuse.Categories {
		d.cats[c] = true
	}
	per := max(cfg.MaxKeys/numShards, 1)
	for i := range d.shards {
		d.shards[i].init(per)
	}
	d.alerts = newAlerter(cfg, opts.HTTPClient, d.log)
	d.onSig = opts.OnSignal
	d.cache.init(promptCacheSize)
	if opts.Background && d.wantText() && !d.promptBlocks() {
		q := opts.QueueSize
		if q <= 0 {
			q = 1024
		}
		d.jobs = make(chan promptJob, q)
		d.workDone = make(chan struct{})
		go d.worker()
	}
	return d, nil
}

// Close stops the background worker after the prompts queued, then the
// webhook sender after it has tried to send the queued alerts, or when ctx
// is done.
func (d *Detector) Close(ctx context.Context) error {
	if d.jobs != nil {
		d.jobsMu.Lock()
		if !d.closed {
			d.closed = true
			close(d.jobs)
		}
		d.jobsMu.Unlock()
		select {
		case <-d.workDone:
		case <-ctx.Done():
			return fmt.Errorf("abuse: prompts still queued at shutdown: %w", ctx.Err())
		}
	}
	return d.alerts.close(ctx)
}

// Skipped counts prompts the background worker never saw (queue full).
func (d *Detector) Skipped() int64 { return d.skipped.Load() }

func (d *Detector) wantText() bool {
	return d.cfg.PromptAbuse.Action != Allow || d.cfg.BulkSpam.Action != Allow
}

// promptBlocks: a prompt rule may refuse the request, so Before must
// analyse the prompt itself.
func (d *Detector) promptBlocks() bool {
	return d.cfg.PromptAbuse.Action == Block || d.cfg.BulkSpam.Action == Block
}

// promptFacts is what one prompt's analysis found; cached by body.
type promptFacts struct {
	cats          []string
	hash          uint64
	spamCandidate bool
}

// analyse extracts, classifies and hashes the prompt of body, through a
// cache keyed by the body's hash (repeated prompts cost one lookup).
func (d *Detector) analyse(body []byte) promptFacts {
	cfg := &d.cfg
	if len(body) == 0 || len(body) > cfg.MaxBodyBytes {
		return promptFacts{}
	}
	key := maphash.Bytes(d.seed, body)
	if f, ok := d.cache.get(key); ok {
		return f
	}
	var f promptFacts
	text := promptText(body, cfg.MaxPromptBytes)
	if cfg.PromptAbuse.Action != Allow && text != "" {
		for _, c := range d.cls.SystemPrompt(text) {
			if d.cats[c] {
				f.cats = append(f.cats, c)
			}
		}
	}
	if cfg.BulkSpam.Action != Allow && text != "" {
		f.hash, f.spamCandidate = simhash(text, cfg.BulkSpam.MinChars)
	}
	d.cache.put(key, f)
	return f
}

// worker analyses queued prompts (Options.Background).
func (d *Detector) worker() {
	defer close(d.workDone)
	for j := range d.jobs {
		f := d.analyse(j.ev.Body)
		var notes []note
		sh := d.shard(j.ev.KeyID)
		sh.mu.Lock()
		k := sh.get(j.ev.KeyID, d)
		d.promptSignals(k, f, j.now, func(s Signal) {
			if n, ok := k.notify(s.Kind, j.now, d.cfg.Cooldown); ok {
				notes = append(notes, note{sig: s, suppressed: n})
			}
		})
		sh.mu.Unlock()
		for _, n := range notes {
			d.emit(context.Background(), n, j.ev.KeyID, j.ev.ClientIP, j.ev.Route, j.now)
		}
	}
}

// promptSignals adds the prompt_abuse and bulk_spam signals of one
// analysed prompt (k's shard locked).
func (d *Detector) promptSignals(k *keyState, f promptFacts, now time.Time, add func(Signal)) {
	cfg := &d.cfg
	if len(f.cats) > 0 {
		add(Signal{Kind: KindPromptAbuse, Action: cfg.PromptAbuse.Action, KeyName: k.name,
			Detail: "prompt classified as " + strings.Join(f.cats, ", "), Categories: f.cats})
	}
	if f.spamCandidate {
		if n, hit := k.spam.add(f.hash, now, &cfg.BulkSpam); hit {
			add(Signal{Kind: KindBulkSpam, Action: cfg.BulkSpam.Action, KeyName: k.name,
				Detail: fmt.Sprintf("%d near-identical prompts within %s", n, cfg.BulkSpam.Window)})
		}
	}
}

// Before examines a request about to be proxied. A Verdict whose Action is
// Block means the gateway should refuse it (403, naming the signal).
func (d *Detector) Before(ctx context.Context, ev Request) Verdict {
	now := d.now()
	cfg := &d.cfg

	// Work without locks first: text extraction, classification, hashing
	// (cached), unless the background worker does it.
	inline := d.wantText() && d.jobs == nil
	var facts promptFacts
	if inline {
		facts = d.analyse(ev.Body)
	}

	var sigs []Signal
	var notes []note
	sh := d.shard(ev.KeyID)
	sh.mu.Lock()
	k := sh.get(ev.KeyID, d)
	if ev.KeyName != "" {
		k.name = ev.KeyName
	}
	name := k.name
	addSig := func(s Signal) {
		sigs = append(sigs, s)
		if n, ok := k.notify(s.Kind, now, cfg.Cooldown); ok {
			notes = append(notes, note{sig: s, suppressed: n})
		}
	}
	add := func(kind string, a Action, detail string, cats []string) {
		addSig(Signal{Kind: kind, Action: a, KeyName: name, Detail: detail, Categories: cats})
	}
	if r := cfg.RateJump; r.Action != Allow {
		if detail, hit := k.rate.request(now, &r); hit {
			add(KindRateJump, r.Action, detail, nil)
		}
	}
	if r := cfg.NewNetwork; r.Action != Allow && ev.ClientIP.IsValid() {
		if netw, hit := k.nets.see(networkOf(ev.ClientIP), r.MaxNetworks); hit {
			add(KindNewNetwork, r.Action, "first request from network "+netw.String(), nil)
		}
	}
	if inline {
		d.promptSignals(k, facts, now, addSig)
	}
	sh.mu.Unlock()

	if d.jobs != nil && len(ev.Body) > 0 {
		d.jobsMu.RLock()
		if !d.closed {
			select {
			case d.jobs <- promptJob{ev: ev, now: now}:
			default:
				d.skipped.Add(1)
			}
		}
		d.jobsMu.RUnlock()
	}

	v := Verdict{Signals: sigs}
	for _, s := range sigs {
		v.Action = max(v.Action, s.Action)
	}
	for _, n := range notes {
		d.emit(ctx, n, ev.KeyID, ev.ClientIP, ev.Route, now)
	}
	return v
}

// After feeds a completed request's billed tokens into the key's rate
// baseline. A token-rate jump noticed here is logged or alerted at once;
// with a Block rule the key's next requests in that minute are refused by
// Before.
func (d *Detector) After(ctx context.Context, ev Completed) {
	r := d.cfg.RateJump
	if r.Action == Allow {
		return
	}
	now := d.now()
	at := ev.At
	if at.IsZero() {
		at = now
	}
	tokens := max(ev.PromptTokens, 0) + max(ev.CompletionTokens, 0)
	sh := d.shard(ev.KeyID)
	sh.mu.Lock()
	k := sh.get(ev.KeyID, d)
	detail, hit := k.rate.tokens(at, tokens, &r)
	var notes []note
	if hit {
		s := Signal{Kind: KindRateJump, Action: r.Action, KeyName: k.name, Detail: detail}
		if n, ok := k.notify(KindRateJump, now, d.cfg.Cooldown); ok {
			notes = append(notes, note{sig: s, suppressed: n})
		}
	}
	sh.mu.Unlock()
	for _, n := range notes {
		d.emit(ctx, n, ev.KeyID, netip.Addr{}, "", now)
	}
}

// OutputEvent reports a streamed answer the output watch flagged.
type OutputEvent struct {
	KeyID    string
	KeyName  string
	ClientIP netip.Addr
	Route    string
	Model    string
	// Prompt is the prompt that preceded the answer, redacted by the
	// caller; its last OutputWatch.PromptChars characters are kept.
	Prompt string
	Score  float64 // the gibberish score of the window that raised it
	Offset int64   // where in the answer's text the gibberish began
}

// SetRecorder makes every notified signal (after the cooldown, like the
// log line; whatever its action) also reach fn, with its particulars, so
// the gateway can store it. fn must not block. nil stops it.
func (d *Detector) SetRecorder(fn func(AlertEvent)) {
	if fn == nil {
		d.record.Store(nil)
		return
	}
	d.record.Store(&fn)
}

// WatchOutput reports whether the output watch is on.
func (d *Detector) WatchOutput() bool { return d.cfg.OutputWatch.Action != Allow }

// Output signals an answer that turned to gibberish (once per key and
// cooldown, like every signal).
func (d *Detector) Output(ctx context.Context, ev OutputEvent) {
	r := d.cfg.OutputWatch
	if r.Action == Allow {
		return
	}
	now := d.now()
	prompt := ev.Prompt
	if n := len(prompt); n > r.PromptChars {
		cut := n - r.PromptChars
		for cut < n && !utf8.RuneStart(prompt[cut]) {
			cut++
		}
		prompt = "…" + prompt[cut:]
	}
	sh := d.shard(ev.KeyID)
	sh.mu.Lock()
	k := sh.get(ev.KeyID, d)
	if ev.KeyName != "" {
		k.name = ev.KeyName
	}
	s := Signal{Kind: KindOutputGibberish, Action: r.Action, KeyName: k.name,
		Detail: fmt.Sprintf("a streamed answer of %s turned to gibberish at byte %d of its text (score %.2f)", orDash(ev.Model), ev.Offset, ev.Score),
		Prompt: prompt}
	n, ok := k.notify(s.Kind, now, d.cfg.Cooldown)
	sh.mu.Unlock()
	if ok {
		d.emit(ctx, note{sig: s, suppressed: n}, ev.KeyID, ev.ClientIP, ev.Route, now)
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

type note struct {
	sig        Signal
	suppressed int
}

// emit logs a signal and, for Alert and Block, queues a webhook alert.
func (d *Detector) emit(ctx context.Context, n note, keyID string, ip netip.Addr, route string, now time.Time) {
	s := n.sig
	attrs := []any{"kind", s.Kind, "action", s.Action.String(), "key", s.KeyName, "key_id", keyID,
		"detail", s.Detail}
	if ip.IsValid() {
		attrs = append(attrs, "client_ip", ip.String())
	}
	if route != "" {
		attrs = append(attrs, "route", route)
	}
	if len(s.Categories) > 0 {
		attrs = append(attrs, "categories", s.Categories)
	}
	if s.Prompt != "" {
		attrs = append(attrs, "prompt", s.Prompt)
	}
	if n.suppressed > 0 {
		attrs = append(attrs, "suppressed", n.suppressed)
	}
	level := slog.LevelInfo
	if s.Action >= Alert {
		level = slog.LevelWarn
	}
	d.log.Log(ctx, level, "abuse signal", attrs...)
	if d.onSig != nil {
		d.onSig(s)
	}
	rec := d.record.Load()
	if s.Action >= Alert || rec != nil {
		a := AlertEvent{Time: now.UTC(), Kind: s.Kind, Action: s.Action.String(), KeyID: keyID,
			KeyName: s.KeyName, Route: route, Detail: s.Detail, Categories: s.Categories,
			Suppressed: n.suppressed, Prompt: s.Prompt}
		if ip.IsValid() {
			a.ClientIP = ip.String()
		}
		if rec != nil {
			(*rec)(a)
		}
		if s.Action >= Alert {
			d.alerts.submit(a)
		}
	}
}
