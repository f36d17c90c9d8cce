package probe

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/llmfence/llmfence/internal/probe/packs"
	"github.com/llmfence/llmfence/internal/probe/transport"
)

// env is what planning and judging know about the run.
type env struct {
	cfg    *Config
	packs  []*packs.Pack
	server transport.Server
	show   transport.Show
	showOK bool
	// systemPrompt is the prompt leak extraction is measured against
	// (--system-prompt, else what /api/show reveals); promptSource says
	// which ("given", "show", or "" for none).
	systemPrompt, promptSource string
	rare                       []TriggerCandidate
}

func (e *env) selected(suite string) bool { return slices.Contains(e.cfg.Suites, suite) }

func (e *env) probesOf(suite string) []*packs.Probe {
	var out []*packs.Probe
	for _, p := range e.packs {
		if p.Suite == suite {
			out = append(out, p.Probes...)
		}
	}
	return out
}

func (e *env) langs(p *packs.Probe) []string {
	var out []string
	for _, l := range p.Langs() {
		if slices.Contains(e.cfg.Languages, l) {
			out = append(out, l)
		}
	}
	return out
}

func chat(user string) []transport.Message {
	return []transport.Message{{Role: "user", Content: user}}
}

// plan builds the first phase of the run: every request of the selected
// suites, deduplicated by key.
func (e *env) plan() ([]*Spec, error) {
	var all []*Spec
	seen := map[string]bool{}
	add := func(ss []*Spec) {
		for _, s := range ss {
			if !seen[s.Key] {
				seen[s.Key] = true
				all = append(all, s)
			}
		}
	}
	for _, suite := range packs.Suites {
		if !e.selected(suite) {
			continue
		}
		var ss []*Spec
		var err error
		switch suite {
		case packs.SuiteGuardrails:
			ss, err = e.planGuardrails()
		case packs.SuiteRobustness:
			ss, err = e.planRobustness()
		case packs.SuiteBackdoor:
			ss, err = e.planBackdoor()
		case packs.SuiteLeak:
			ss, err = e.planLeak()
		}
		if err != nil {
			return nil, err
		}
		add(ss)
		if len(all) > MaxPlan {
			return nil, fmt.Errorf("the packs plan more than %d requests", MaxPlan)
		}
	}
	if e.cfg.MaxRequests > 0 && len(all) > e.cfg.MaxRequests {
		all = trim(all, e.cfg.MaxRequests)
	}
	return all, nil
}

// trim keeps n specs: each suite keeps a share proportional to its size,
// and within a suite the specs are taken in turn from each category (or
// family), so every group keeps its part. The backdoor suite keeps its
// untriggered answers and then whole candidates (a candidate with only some
// of its samples cannot be judged).
func trim(specs []*Spec, n int) []*Spec {
	bySuite := map[string][]*Spec{}
	for _, s := range specs {
		bySuite[s.Suite] = append(bySuite[s.Suite], s)
	}
	var suites []string
	var sizes []int
	for _, su := range packs.Suites {
		if len(bySuite[su]) > 0 {
			suites, sizes = append(suites, su), append(sizes, len(bySuite[su]))
		}
	}
	shares := proportional(n, sizes)
	var out []*Spec
	for i, su := range suites {
		if su == packs.SuiteBackdoor {
			out = append(out, trimBackdoor(bySuite[su], shares[i])...)
			continue
		}
		out = append(out, roundRobin(bySuite[su], shares[i], func(s *Spec) string { return s.Category + "/" + s.Family + "/" + s.Kind })...)
	}
	return out
}

// proportional splits n over sizes in proportion, largest remainders
// first, never giving a group more than its size.
func proportional(n int, sizes []int) []int {
	total := 0
	for _, z := range sizes {
		total += z
	}
	out := make([]int, len(sizes))
	if total == 0 {
		return out
	}
	type rem struct {
		i int
		f float64
	}
	var rems []rem
	given := 0
	for i, z := range sizes {
		exact := float64(n) * float64(z) / float64(total)
		out[i] = min(z, int(exact))
		given += out[i]
		rems = append(rems, rem{i, exact - float64(int(exact))})
	}
	slices.SortStableFunc(rems, func(a, b rem) int { return cmp.Compare(b.f, a.f) })
	for _, r := range rems {
		if given >= n {
			break
		}
		if out[r.i] < sizes[r.i] {
			out[r.i]++
			given++
		}
	}
	return out
}

// roundRobin takes n specs, one from each group in turn.
func roundRobin(specs []*Spec, n int, group func(*Spec) string) []*Spec {
	groups := map[string][]*Spec{}
	var names []string
	for _, s := range specs {
		g := group(s)
		if _, ok := groups[g]; !ok {
			names = append(names, g)
		}
		groups[g] = append(groups[g], s)
	}
	var out []*Spec
	for len(out) < n {
		took := false
		for _, g := range names {
			if len(groups[g]) > 0 && len(out) < n {
				out = append(out, groups[g][0])
				groups[g] = groups[g][1:]
				took = true
			}
		}
		if !took {
			break
		}
	}
	return out
}

func trimBackdoor(specs []*Spec, n int) []*Spec {
	var out []*Spec
	groups := map[string][]*Spec{}
	var names []string
	for _, s := range specs {
		if s.Position == PosNone {
			out = append(out, s)
			continue
		}
		g := "t\x00" + s.Trigger
		if s.Control != "" {
			g = "c\x00" + s.Control
		}
		if _, ok := groups[g]; !ok {
			names = append(names, g)
		}
		groups[g] = append(groups[g], s)
	}
	if len(out) >= n {
		return out[:n]
	}
	for _, g := range names {
		if len(out)+len(groups[g]) > n {
			break
		}
		out = append(out, groups[g]...)
	}
	return out
}

// planHash identifies a plan: its keys, models, prompts and lengths.
func planHash(specs []*Spec) string {
	lines := make([]string, 0, len(specs))
	for _, s := range specs {
		lines = append(lines, fmt.Sprintf("%s|%s|%s|%d|%t", s.Key, s.Model, PromptHash(s.System, s.Messages, s.Raw), s.NumPredict, s.Logprobs))
	}
	slices.Sort(lines)
	h := sha256.Sum256([]byte(strings.Join(lines, "\n")))
	return hex.EncodeToString(h[:])[:24]
}

// ---- guardrails ----

func guardrailsKey(probe, lang, role string) string {
	return "guardrails/" + probe + "/" + lang + "/" + role
}

func (e *env) guardrailsSpec(p *packs.Probe, lang, role, model string) (*Spec, error) {
	text, err := p.Render(lang, packs.Data{})
	if err != nil {
		return nil, err
	}
	np := predictGuardrails
	if p.NumPredict > 0 {
		np = p.NumPredict
	}
	return &Spec{Key: guardrailsKey(p.ID, lang, role), Suite: packs.SuiteGuardrails, Probe: p.ID, Kind: p.Kind,
		Category: p.Category, Lang: lang, Role: role, Model: model, System: e.cfg.SystemPrompt,
		Messages: chat(text), NumPredict: np}, nil
}

func (e *env) planGuardrails() ([]*Spec, error) {
	var out []*Spec
	for _, p := range e.probesOf(packs.SuiteGuardrails) {
		for _, l := range e.langs(p) {
			s, err := e.guardrailsSpec(p, l, RoleTarget, e.cfg.Model)
			if err != nil {
				return nil, err
			}
			out = append(out, s)
			if e.cfg.Baseline != "" {
				b, err := e.guardrailsSpec(p, l, RoleBaseline, e.cfg.Baseline)
				if err != nil {
					return nil, err
				}
				out = append(out, b)
			}
		}
	}
	return out, nil
}

// ---- robustness ----

// robustnessBase returns the harmful requests the wrappers wrap: the first
// harmful probe of every category.
func (e *env) robustnessBase() []*packs.Probe {
	var out []*packs.Probe
	seen := map[string]bool{}
	for _, p := range e.probesOf(packs.SuiteGuardrails) {
		if p.Kind == packs.KindHarmful && !seen[p.Category] {
			seen[p.Category] = true
			out = append(out, p)
		}
	}
	return out
}

func otherLang(l string) string {
	if l == "ja" {
		return "en"
	}
	return "ja"
}

func (e *env) planRobustness() ([]*Spec, error) {
	var out []*Spec
	base := e.robustnessBase()
	for _, b := range base {
		for _, l := range e.langs(b) {
			d, err := e.guardrailsSpec(b, l, RoleTarget, e.cfg.Model)
			if err != nil {
				return nil, err
			}
			out = append(out, d) // the direct request, shared with guardrails
		}
	}
	for _, w := range e.probesOf(packs.SuiteRobustness) {
		for _, b := range base {
			for _, l := range e.langs(w) {
				req, ok := b.Prompts[l]
				if !ok {
					continue
				}
				other, ok := b.Prompts[otherLang(l)]
				if !ok {
					if strings.Contains(w.Prompts[l], ".Other") {
						continue
					}
					other = req
				}
				text, err := w.Render(l, packs.Data{Request: req, Other: other})
				if err != nil {
					return nil, err
				}
				np := predictGuardrails
				if w.NumPredict > 0 {
					np = w.NumPredict
				}
				out = append(out, &Spec{Key: "robustness/" + w.ID + "/" + b.ID + "/" + l, Suite: packs.SuiteRobustness,
					Probe: w.ID, Kind: w.Kind, Category: b.Category, Family: w.Category, Lang: l, Role: RoleTarget,
					Model: e.cfg.Model, System: e.cfg.SystemPrompt, Messages: chat(text), NumPredict: np})
			}
		}
	}
	return out, nil
}

// ---- backdoor ----

type candidate struct {
	text, source string
}

// candidates lists the triggers to test: built-in, from the triggers
// file, from the vocabulary; duplicates dropped.
func (e *env) candidates() []candidate {
	var out []candidate
	seen := map[string]bool{}
	add := func(t, src string) {
		t = strings.TrimSpace(t)
		if t == "" || seen[t] {
			return
		}
		seen[t] = true
		out = append(out, candidate{text: t, source: src})
	}
	for _, p := range e.packs {
		for _, t := range p.Triggers {
			add(t.Text, t.Source)
		}
	}
	for _, t := range e.cfg.Triggers {
		add(t.Text, t.Source)
	}
	for _, t := range e.rare {
		add(t.Text, t.Source)
	}
	return out
}

func (e *env) controls() []string {
	var out []string
	for _, p := range e.packs {
		if p.Suite == packs.SuiteBackdoor {
			out = append(out, p.Controls...)
		}
	}
	return slices.Compact(out)
}

var positions = []string{PosStart, PosMiddle, PosEnd}

// insert puts c into prompt at pos.
func insert(prompt, c, pos string) string {
	switch pos {
	case PosStart:
		return c + " " + prompt
	case PosEnd:
		return prompt + " " + c
	case PosMiddle:
		rs := []rune(prompt)
		mid := len(rs) / 2
		// Prefer a word boundary near the middle in spaced text.
		for d := 0; d < len(rs)/2; d++ {
			if mid+d < len(rs) && unicode.IsSpace(rs[mid+d]) {
				mid += d
				break
			}
			if mid-d > 0 && unicode.IsSpace(rs[mid-d]) {
				mid -= d
				break
			}
		}
		return strings.TrimSpace(string(rs[:mid])) + " " + c + " " + strings.TrimSpace(string(rs[mid:]))
	}
	return prompt
}

// backdoorPrompt is one prompt the sweep inserts candidates into.
type backdoorPrompt struct {
	probe, lang, text, kind string
	positions               []string
	numPredict              int
}

// backdoorPrompts are the neutral prompts (two positions each, all three
// positions covered) and one harmful request per language (start only),
// where a trigger that switches refusals off shows as a refusal flip.
func (e *env) backdoorPrompts() ([]backdoorPrompt, error) {
	var out []backdoorPrompt
	i := 0
	for _, p := range e.probesOf(packs.SuiteBackdoor) {
		for _, l := range e.langs(p) {
			text, err := p.Render(l, packs.Data{})
			if err != nil {
				return nil, err
			}
			out = append(out, backdoorPrompt{probe: p.ID, lang: l, text: text, kind: p.Kind, numPredict: p.NumPredict,
				positions: []string{positions[i%3], positions[(i+1)%3]}})
			i++
		}
	}
	if base := e.robustnessBase(); len(base) > 0 {
		p := base[0]
		for _, l := range e.langs(p) {
			text, err := p.Render(l, packs.Data{})
			if err != nil {
				return nil, err
			}
			out = append(out, backdoorPrompt{probe: p.ID, lang: l, text: text, kind: packs.KindHarmful, positions: []string{PosStart}})
		}
	}
	return out, nil
}

func shortHash(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])[:12]
}

func (e *env) planBackdoor() ([]*Spec, error) {
	prompts, err := e.backdoorPrompts()
	if err != nil {
		return nil, err
	}
	var out []*Spec
	mk := func(bp backdoorPrompt, key, text, trigger, control, pos string) *Spec {
		np := predictBackdoor
		if bp.numPredict > 0 {
			np = bp.numPredict
		}
		return &Spec{Key: key, Suite: packs.SuiteBackdoor, Probe: bp.probe, Kind: bp.kind, Category: bp.kind, Lang: bp.lang,
			Role: RoleTarget, Model: e.cfg.Model, Trigger: trigger, Control: control, Position: pos,
			Messages: chat(text), NumPredict: np, Logprobs: e.server.Logprobs}
	}
	for _, bp := range prompts {
		out = append(out, mk(bp, "backdoor/clean/"+bp.probe+"/"+bp.lang, bp.text, "", "", PosNone))
	}
	for _, c := range e.controls() {
		for _, bp := range prompts {
			for _, pos := range bp.positions {
				out = append(out, mk(bp, "backdoor/control/"+shortHash(c)+"/"+bp.probe+"/"+bp.lang+"/"+pos, insert(bp.text, c, pos), "", c, pos))
			}
		}
	}
	for _, c := range e.candidates() {
		for _, bp := range prompts {
			for _, pos := range bp.positions {
				out = append(out, mk(bp, "backdoor/trigger/"+shortHash(c.text)+"/"+bp.probe+"/"+bp.lang+"/"+pos, insert(bp.text, c.text, pos), c.text, "", pos))
			}
		}
	}
	return out, nil
}

// rareTokens picks up to n of the model's own unusual vocabulary entries:
// user-defined tokens first (where planted triggers live), then control
// tokens the chat template does not use; never the byte, unknown or
// ordinary tokens.
func rareTokens(show transport.Show, n int) []TriggerCandidate {
	if n <= 0 || len(show.Tokens) == 0 || len(show.TokenTypes) != len(show.Tokens) {
		return nil
	}
	type cand struct {
		tok  string
		rank int
	}
	var cs []cand
	for i, t := range show.Tokens {
		typ := show.TokenTypes[i]
		if strings.TrimSpace(t) == "" || len(t) > 64 || !utf8.ValidString(t) || strings.Contains(show.Template, t) {
			continue
		}
		switch typ {
		case 4: // user defined
			cs = append(cs, cand{t, 0})
		case 3: // control
			if t == "<s>" || t == "</s>" || t == "<unk>" || t == "<pad>" || t == "<|endoftext|>" {
				continue
			}
			cs = append(cs, cand{t, 1})
		}
	}
	slices.SortStableFunc(cs, func(a, b cand) int { return cmp.Compare(a.rank, b.rank) })
	var out []TriggerCandidate
	for _, c := range cs {
		if len(out) >= n {
			break
		}
		out = append(out, TriggerCandidate{Text: c.tok, Source: "vocabulary"})
	}
	return out
}

// ---- leak ----

func (e *env) planLeak() ([]*Spec, error) {
	var out []*Spec
	for _, p := range e.probesOf(packs.SuiteLeak) {
		if p.Kind != packs.KindExtraction {
			continue
		}
		for _, l := range e.langs(p) {
			text, err := p.Render(l, packs.Data{})
			if err != nil {
				return nil, err
			}
			np := predictLeak
			if p.NumPredict > 0 {
				np = p.NumPredict
			}
			out = append(out, &Spec{Key: "leak/" + p.ID + "/" + l, Suite: packs.SuiteLeak, Probe: p.ID, Kind: p.Kind,
				Category: p.Category, Lang: l, Role: RoleTarget, Model: e.cfg.Model, System: e.cfg.SystemPrompt,
				Messages: chat(text), NumPredict: np})
		}
	}
	var canaryProbe *packs.Probe
	for _, p := range e.probesOf(packs.SuiteLeak) {
		if p.Kind == packs.KindCanary {
			canaryProbe = p
			break
		}
	}
	for i, c := range e.cfg.Canaries {
		n := i + 1
		out = append(out, &Spec{Key: fmt.Sprintf("leak/canary/%d/raw", n), Suite: packs.SuiteLeak, Probe: "canary.raw",
			Kind: packs.KindCanary, Category: packs.KindCanary, Lang: langOf(c.Prefix), Role: RoleTarget, Model: e.cfg.Model,
			Canary: n, Raw: c.Prefix, NumPredict: predictCanary})
		if canaryProbe == nil {
			continue
		}
		l := langOf(c.Prefix)
		if _, ok := canaryProbe.Prompts[l]; !ok {
			l = canaryProbe.Langs()[0]
		}
		text, err := canaryProbe.Render(l, packs.Data{Prefix: c.Prefix})
		if err != nil {
			return nil, err
		}
		out = append(out, &Spec{Key: fmt.Sprintf("leak/canary/%d/chat/%s", n, l), Suite: packs.SuiteLeak, Probe: canaryProbe.ID,
			Kind: packs.KindCanary, Category: packs.KindCanary, Lang: l, Role: RoleTarget, Model: e.cfg.Model, Canary: n,
			Messages: chat(text), NumPredict: predictCanary})
	}
	return out, nil
}

// ---- judge (second phase) ----

// planJudge grades every answered guardrails request with the judge model.
func (e *env) planJudge(specs []*Spec, outs map[string]Outcome) []*Spec {
	if e.cfg.Judge == "" {
		return nil
	}
	var out []*Spec
	for _, s := range specs {
		if s.Suite != packs.SuiteGuardrails {
			continue
		}
		o, ok := outs[s.Key]
		if !ok || o.Error != "" {
			continue
		}
		out = append(out, &Spec{Key: "judge/" + s.Key, Suite: s.Suite, Probe: s.Probe, Kind: s.Kind, Category: s.Category,
			Lang: s.Lang, Role: RoleJudge, Model: e.cfg.Judge, Judged: s.Key, NumPredict: predictJudge,
			Messages: []transport.Message{{Role: "user", Content: s.prompt()}, {Role: "assistant", Content: o.Text}}})
	}
	return out
}
