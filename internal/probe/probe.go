package probe

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/llmfence/llmfence/internal/probe/packs"
	"github.com/llmfence/llmfence/internal/probe/transport"
)

// Result is a finished (or stopped) run.
type Result struct {
	Config   Config           `json:"config"`
	Server   transport.Server `json:"server"`
	Digest   string           `json:"digest,omitempty"`
	Started  time.Time        `json:"started"`
	Elapsed  time.Duration    `json:"elapsed"`
	Journal  string           `json:"journal,omitempty"`
	PlanHash string           `json:"plan_hash"`
	// Planned counts the requests of the plan (judge requests included);
	// Sent those answered or failed in this process, Resumed those taken
	// from the journal.
	Planned, Sent, Resumed int
	Attempts               []*Attempt `json:"-"`
	Summaries              []Summary  `json:"summaries"`
	// Complete is false when budgets, errors or an interruption left
	// requests unanswered; Stop says why the run stopped early.
	Complete bool  `json:"complete"`
	Stop     error `json:"-"`
}

// Worst is the highest severity among the summaries.
func (r *Result) Worst() Summary {
	var w Summary
	for _, s := range r.Summaries {
		if w.Suite == "" || s.Severity.Rank() > w.Severity.Rank() {
			w = s
		}
	}
	return w
}

// ErrSetup: the run could not start (bad configuration, target or model).
var ErrSetup = errors.New("probe cannot start")

// Run probes one model. It returns an error without a Result only when the
// run could not start; a run stopped early (interrupt, budget, failing
// target) returns its partial Result with Stop set and the same error.
func Run(ctx context.Context, opts Options) (*Result, error) {
	opts.withDefaults()
	var (
		journal *Journal
		done    = map[string]Outcome{}
		header  Header
	)
	if opts.Resume != "" {
		j, h, outs, err := OpenJournal(opts.Resume)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrSetup, err)
		}
		if err := sameRun(opts.Config, h.Config); err != nil {
			j.Close()
			return nil, fmt.Errorf("%w: %w", ErrSetup, err)
		}
		opts.Config = h.Config
		journal, done, header = j, outs, h
		defer journal.Close()
	}
	if err := checkConfig(&opts.Config); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSetup, err)
	}
	if opts.Packs == nil {
		ps, err := loadPacks(opts.UserPacks)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrSetup, err)
		}
		opts.Packs = ps
	}
	det, err := newDetectors()
	if err != nil {
		return nil, err
	}
	client, err := transport.New(transport.Config{BaseURL: opts.Target, API: opts.API, APIKey: opts.APIKey,
		UserAgent: opts.UserAgent, InsecureTLS: opts.InsecureTLS, HTTPClient: opts.HTTPClient, Limits: opts.Limits})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSetup, err)
	}
	res := &Result{Config: opts.Config, Started: time.Now()}
	e, digest, err := prepare(ctx, client, &opts)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSetup, err)
	}
	res.Server, res.Digest = client.Server(), digest
	specs, err := e.plan()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSetup, err)
	}
	res.PlanHash = planHash(specs)
	if journal != nil {
		if header.PlanHash != res.PlanHash {
			return nil, fmt.Errorf("%w: the journal's plan differs from this run's (the model, its system prompt or vocabulary, or the packs changed since); start a new run", ErrSetup)
		}
		res.Started = header.Started
		res.Journal = journal.Path()
	} else if opts.Journal != "" {
		j, err := CreateJournal(opts.Journal, Header{Started: res.Started, Tool: opts.Tool, Config: opts.Config,
			PlanHash: res.PlanHash, Requests: len(specs)})
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrSetup, err)
		}
		journal = j
		res.Journal = j.Path()
		defer journal.Close()
	}
	for _, s := range specs {
		if o, ok := done[s.Key]; ok && o.Error == "" {
			res.Resumed++
		}
	}
	r := newRunner(client, &opts, journal, opts.Progress)
	r.noStream = !opts.Stream && res.Server.API == transport.APIOllama
	total := len(specs)
	if opts.Config.Judge != "" {
		total += countGuardrails(specs)
	}
	r.ctrl.total = total
	start := time.Now()
	stop := r.run(ctx, specs, done, total)
	all := specs
	if stop == nil {
		if judge := e.planJudge(specs, done); len(judge) > 0 {
			stop = r.run(ctx, judge, done, total)
			all = append(slices.Clone(specs), judge...)
		}
	} else if opts.Config.Judge != "" {
		all = append(slices.Clone(specs), e.planJudge(specs, done)...)
	}
	res.Elapsed = time.Since(start)
	res.Planned = len(all)
	res.Sent = r.sent
	res.Attempts = e.attempts(all, done, det)
	res.Complete = stop == nil
	for _, a := range res.Attempts {
		if a.Error != "" {
			res.Complete = false
		}
	}
	if len(res.Attempts) < len(all) {
		res.Complete = false
	}
	res.Summaries = e.summarise(res.Attempts, all, res.Complete)
	res.Stop = stop
	if stop != nil {
		return res, stop
	}
	return res, nil
}

func countGuardrails(specs []*Spec) int {
	n := 0
	for _, s := range specs {
		if s.Suite == packs.SuiteGuardrails {
			n++
		}
	}
	return n
}

// checkConfig validates and completes a configuration.
func checkConfig(c *Config) error {
	base, err := ParseTarget(c.Target)
	if err != nil {
		return err
	}
	c.Target = base
	if strings.TrimSpace(c.Model) == "" {
		return errors.New("no model: give --model NAME")
	}
	if len(c.Suites) == 0 {
		c.Suites = slices.Clone(packs.Suites)
	}
	for _, s := range c.Suites {
		if !slices.Contains(packs.Suites, s) {
			return fmt.Errorf("suite %q: want %s", s, strings.Join(packs.Suites, ", "))
		}
	}
	slices.SortFunc(c.Suites, func(a, b string) int { return slices.Index(packs.Suites, a) - slices.Index(packs.Suites, b) })
	c.Suites = slices.Compact(c.Suites)
	if len(c.Languages) == 0 {
		c.Languages = slices.Clone(packs.Languages)
	}
	for _, l := range c.Languages {
		if !slices.Contains(packs.Languages, l) {
			return fmt.Errorf("language %q: want %s", l, strings.Join(packs.Languages, ", "))
		}
	}
	if c.Temperature < 0 || c.Temperature > 2 {
		return fmt.Errorf("temperature %v: want 0 to 2", c.Temperature)
	}
	if c.MaxRequests < 0 || c.RareTokens < 0 {
		return errors.New("max requests and rare tokens cannot be negative")
	}
	for i, cn := range c.Canaries {
		if strings.TrimSpace(cn.Prefix) == "" {
			return fmt.Errorf("canary %d has no prefix", i+1)
		}
	}
	return nil
}

// sameRun checks that what the user typed on resume agrees with the
// journal: a target or model that differs is an error, not a new run.
func sameRun(typed, journal Config) error {
	if typed.Target != "" {
		if t, err := ParseTarget(typed.Target); err == nil && t != journal.Target {
			return fmt.Errorf("the journal probes %s, not %s", journal.Target, t)
		}
	}
	if typed.Model != "" && typed.Model != journal.Model {
		return fmt.Errorf("the journal probes model %s, not %s", journal.Model, typed.Model)
	}
	if len(typed.Suites) > 0 && !reflect.DeepEqual(sortedSuites(typed.Suites), journal.Suites) {
		return fmt.Errorf("the journal runs suites %s, not %s", strings.Join(journal.Suites, ","), strings.Join(typed.Suites, ","))
	}
	return nil
}

func sortedSuites(s []string) []string {
	out := slices.Clone(s)
	slices.SortFunc(out, func(a, b string) int { return slices.Index(packs.Suites, a) - slices.Index(packs.Suites, b) })
	return slices.Compact(out)
}

// prepare talks to the target before the first prompt: which API, whether
// the models exist, what the model reveals about itself.
func prepare(ctx context.Context, c *transport.Client, opts *Options) (*env, string, error) {
	cfg := &opts.Config
	srv, err := c.Detect(ctx)
	if err != nil {
		return nil, "", err
	}
	if cfg.API == "" {
		cfg.API = srv.API
	}
	e := &env{cfg: cfg, packs: opts.Packs, server: srv}
	models, lerr := c.Models(ctx)
	digest := ""
	names := make([]string, 0, len(models))
	for _, m := range models {
		names = append(names, m.Name)
		if sameModel(m.Name, cfg.Model) {
			digest = m.Digest
		}
	}
	for _, m := range []string{cfg.Model, cfg.Baseline, cfg.Judge} {
		if m == "" {
			continue
		}
		if srv.API == transport.APIOllama {
			if _, err := c.Show(ctx, m, false); err != nil {
				if errors.Is(err, transport.ErrModelNotFound) {
					return nil, "", fmt.Errorf("model %q is not on %s (it serves: %s): %w", m, cfg.Target, listOr(names), err)
				}
				return nil, "", err
			}
			continue
		}
		if lerr == nil && !slices.ContainsFunc(names, func(n string) bool { return sameModel(n, m) }) {
			return nil, "", fmt.Errorf("model %q is not on %s (it serves: %s): %w", m, cfg.Target, listOr(names), transport.ErrModelNotFound)
		}
	}
	if srv.API == transport.APIOllama {
		verbose := slices.Contains(cfg.Suites, packs.SuiteBackdoor) && cfg.RareTokens > 0
		show, err := c.Show(ctx, cfg.Model, verbose)
		if err != nil {
			return nil, "", err
		}
		e.show, e.showOK = show, true
		e.rare = rareTokens(show, cfg.RareTokens)
	}
	switch {
	case cfg.SystemPrompt != "":
		e.systemPrompt, e.promptSource = cfg.SystemPrompt, "given"
	case e.showOK && strings.TrimSpace(e.show.System) != "":
		e.systemPrompt, e.promptSource = e.show.System, "show"
	}
	return e, digest, nil
}

func listOr(names []string) string {
	if len(names) == 0 {
		return "no models"
	}
	if len(names) > 10 {
		return strings.Join(names[:10], ", ") + fmt.Sprintf(" and %d more", len(names)-10)
	}
	return strings.Join(names, ", ")
}

// sameModel compares model names, a missing tag meaning ":latest".
func sameModel(a, b string) bool {
	norm := func(s string) string {
		s = strings.ToLower(strings.TrimSpace(s))
		if i := strings.LastIndexByte(s, '/'); !strings.Contains(s[i+1:], ":") {
			s += ":latest"
		}
		return s
	}
	return norm(a) == norm(b)
}

// loadPacks returns the built-in packs and the user packs a configuration
// names, each checked against the hash it was recorded with (a resumed
// run must plan with the same packs).
func loadPacks(refs []PackRef) ([]*packs.Pack, error) {
	ps, err := packs.Builtin()
	if err != nil {
		return nil, err
	}
	for _, ref := range refs {
		b, err := os.ReadFile(ref.Path)
		if err != nil {
			return nil, fmt.Errorf("user pack: %w", err)
		}
		if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != ref.SHA256 {
			return nil, fmt.Errorf("user pack %s changed since the run started", ref.Path)
		}
		p, err := packs.Load(bytes.NewReader(b), ref.Path)
		if err != nil {
			return nil, err
		}
		ps = append(ps, p)
	}
	return ps, nil
}
