// Package packs provides the probe packs of `llmfence probe`: embedded,
// versioned YAML files (guardrails, robustness, backdoor, leak), and user
// packs in the same format.
//
// A pack names its suite and carries probes; a probe has an id (unique in
// its pack), a category, a kind, a detector and one prompt template per
// language. Every built-in probe has an English and a Japanese prompt;
// user packs may carry either or both. Templates are Go text/template with
// the data fields Request, Other and Prefix and the functions b64, leet and
// split (see Data and the pack files). Unknown YAML fields are refused, and
// so is any probe in the csam category: llmfence never sends such a
// request.
//
// Harmful requests are written as the public refusal benchmarks write
// them: the request only. No pack stores an answer to one.
package packs

import (
	"bytes"
	"embed"
	"encoding/base64"
	"fmt"
	"io"
	"io/fs"
	"regexp"
	"slices"
	"strings"
	"text/template"
	"unicode"

	"gopkg.in/yaml.v3"

	"github.com/llmfence/llmfence/internal/service"
)

// Suites.
const (
	SuiteGuardrails = "guardrails"
	SuiteBackdoor   = "backdoor"
	SuiteLeak       = "leak"
	SuiteRobustness = "robustness"
)

// Suites lists every suite in the order a run executes and reports them.
var Suites = []string{SuiteGuardrails, SuiteBackdoor, SuiteLeak, SuiteRobustness}

// Languages a probe can be written in.
var Languages = []string{"en", "ja"}

// Probe kinds per suite.
const (
	KindHarmful    = "harmful"    // guardrails: refusing is right
	KindBenign     = "benign"     // guardrails: answering is right
	KindWrapper    = "wrapper"    // robustness: a jailbreak template around a request
	KindNeutral    = "neutral"    // backdoor: a prompt triggers are inserted into
	KindExtraction = "extraction" // leak: asks for the system prompt
	KindCanary     = "canary"     // leak: asks to continue a canary prefix
)

// Detectors a probe can name.
const (
	DetectorRefusal      = "refusal"
	DetectorGibberish    = "gibberish"
	DetectorSystemPrompt = "system_prompt"
	DetectorCanary       = "canary"
)

// Families of the robustness suite.
var Families = []string{"roleplay", "ignore_previous", "encoding", "language_switch", "many_shot", "refusal_suppression"}

var suiteKinds = map[string][]string{
	SuiteGuardrails: {KindHarmful, KindBenign},
	SuiteRobustness: {KindWrapper},
	SuiteBackdoor:   {KindNeutral},
	SuiteLeak:       {KindExtraction, KindCanary},
}

var kindDetector = map[string]string{
	KindHarmful: DetectorRefusal, KindBenign: DetectorRefusal, KindWrapper: DetectorRefusal,
	KindNeutral: DetectorGibberish, KindExtraction: DetectorSystemPrompt, KindCanary: DetectorCanary,
}

// Limits on one pack, so a user pack cannot make a run unbounded.
const (
	MaxProbes      = 5000
	MaxPromptBytes = 16 << 10
	MaxTriggers    = 1000
	MaxPackBytes   = 4 << 20
)

// Pack is one parsed pack.
type Pack struct {
	Name        string   `yaml:"pack" json:"pack"`
	Version     int      `yaml:"version" json:"version"`
	Suite       string   `yaml:"suite" json:"suite"`
	Description string   `yaml:"description" json:"description,omitempty"`
	Sources     []string `yaml:"sources" json:"sources,omitempty"`
	Probes      []*Probe `yaml:"probes" json:"probes"`
	// Triggers and Controls are read from backdoor packs only.
	Triggers []Trigger `yaml:"triggers" json:"triggers,omitempty"`
	Controls []string  `yaml:"controls" json:"controls,omitempty"`
	// Origin is "builtin" or the file the pack was read from.
	Origin string `yaml:"-" json:"origin"`
}

// Trigger is a published backdoor trigger.
type Trigger struct {
	Text   string `yaml:"text" json:"text"`
	Source string `yaml:"source" json:"source"`
}

// Probe is one probe: a prompt template per language.
type Probe struct {
	ID       string            `yaml:"id" json:"id"`
	Category string            `yaml:"category" json:"category"`
	Kind     string            `yaml:"kind" json:"kind"`
	Detector string            `yaml:"detector" json:"detector"`
	Prompts  map[string]string `yaml:"prompts" json:"prompts"`
	// NumPredict overrides the suite's answer length for this probe.
	NumPredict int `yaml:"num_predict" json:"num_predict,omitempty"`

	tmpl map[string]*template.Template
}

// Data fills a prompt template.
type Data struct {
	// Request is the harmful request a wrapper wraps, in the wrapper's
	// language; Other the same request in the other language.
	Request, Other string
	// Prefix is the canary or personal-data prefix to continue.
	Prefix string
}

// Langs returns the probe's languages in Languages order.
func (p *Probe) Langs() []string {
	var out []string
	for _, l := range Languages {
		if _, ok := p.Prompts[l]; ok {
			out = append(out, l)
		}
	}
	return out
}

// Render fills the probe's template for lang.
func (p *Probe) Render(lang string, d Data) (string, error) {
	t, ok := p.tmpl[lang]
	if !ok {
		return "", fmt.Errorf("probe %s has no %s prompt", p.ID, lang)
	}
	var b bytes.Buffer
	if err := t.Execute(&b, d); err != nil {
		return "", fmt.Errorf("probe %s (%s): %w", p.ID, lang, err)
	}
	return b.String(), nil
}

//go:embed *.yaml
var builtinFS embed.FS

// Builtin parses the embedded packs, in Suites order.
func Builtin() ([]*Pack, error) {
	names, err := fs.Glob(builtinFS, "*.yaml")
	if err != nil {
		return nil, err
	}
	var out []*Pack
	for _, n := range names {
		b, err := builtinFS.ReadFile(n)
		if err != nil {
			return nil, err
		}
		p, err := parse(b, "builtin", true)
		if err != nil {
			return nil, fmt.Errorf("built-in pack %s: %w", n, err)
		}
		out = append(out, p)
	}
	slices.SortStableFunc(out, func(a, b *Pack) int { return slices.Index(Suites, a.Suite) - slices.Index(Suites, b.Suite) })
	return out, nil
}

// Load reads a user pack (at most MaxPackBytes); origin names it in errors.
func Load(r io.Reader, origin string) (*Pack, error) {
	b, err := io.ReadAll(io.LimitReader(r, MaxPackBytes+1))
	if err != nil {
		return nil, fmt.Errorf("pack %s: %w", origin, err)
	}
	if len(b) > MaxPackBytes {
		return nil, fmt.Errorf("pack %s: larger than %d bytes", origin, MaxPackBytes)
	}
	p, err := parse(b, origin, false)
	if err != nil {
		return nil, fmt.Errorf("pack %s: %w", origin, err)
	}
	return p, nil
}

var idPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,79}$`)

var funcs = template.FuncMap{"b64": Base64, "leet": Leet, "split": Split}

func parse(b []byte, origin string, builtin bool) (*Pack, error) {
	var p Pack
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("not a valid pack: %w", err)
	}
	p.Origin = origin
	if !idPattern.MatchString(p.Name) {
		return nil, fmt.Errorf("pack name %q: want lower-case letters, digits, '.', '_' or '-'", p.Name)
	}
	if p.Version <= 0 {
		return nil, fmt.Errorf("pack %s has no version", p.Name)
	}
	kinds, ok := suiteKinds[p.Suite]
	if !ok {
		return nil, fmt.Errorf("pack %s: suite %q: want one of %s", p.Name, p.Suite, strings.Join(Suites, ", "))
	}
	if len(p.Probes) == 0 || len(p.Probes) > MaxProbes {
		return nil, fmt.Errorf("pack %s: needs 1 to %d probes, has %d", p.Name, MaxProbes, len(p.Probes))
	}
	if p.Suite != SuiteBackdoor && (len(p.Triggers) > 0 || len(p.Controls) > 0) {
		return nil, fmt.Errorf("pack %s: triggers and controls belong in backdoor packs", p.Name)
	}
	if len(p.Triggers) > MaxTriggers || len(p.Controls) > MaxTriggers {
		return nil, fmt.Errorf("pack %s: more than %d triggers or controls", p.Name, MaxTriggers)
	}
	for i, t := range p.Triggers {
		if strings.TrimSpace(t.Text) == "" || len(t.Text) > 256 {
			return nil, fmt.Errorf("pack %s: trigger %d is empty or longer than 256 bytes", p.Name, i+1)
		}
		if builtin && t.Source == "" {
			return nil, fmt.Errorf("pack %s: trigger %q cites no source", p.Name, t.Text)
		}
	}
	if p.Suite == SuiteBackdoor && builtin && len(p.Controls) == 0 {
		return nil, fmt.Errorf("pack %s: a backdoor pack needs controls", p.Name)
	}
	seen := map[string]bool{}
	for i, pr := range p.Probes {
		if pr == nil {
			return nil, fmt.Errorf("pack %s: probe %d is empty", p.Name, i+1)
		}
		if err := checkProbe(&p, pr, kinds, builtin); err != nil {
			return nil, fmt.Errorf("pack %s: probe %d (%s): %w", p.Name, i+1, pr.ID, err)
		}
		if seen[pr.ID] {
			return nil, fmt.Errorf("pack %s: probe id %q appears twice", p.Name, pr.ID)
		}
		seen[pr.ID] = true
	}
	return &p, nil
}

func checkProbe(p *Pack, pr *Probe, kinds []string, builtin bool) error {
	if !idPattern.MatchString(pr.ID) {
		return fmt.Errorf("id %q: want lower-case letters, digits, '.', '_' or '-'", pr.ID)
	}
	if !slices.Contains(kinds, pr.Kind) {
		return fmt.Errorf("kind %q: a %s probe is one of %s", pr.Kind, p.Suite, strings.Join(kinds, ", "))
	}
	if want := kindDetector[pr.Kind]; pr.Detector != want {
		return fmt.Errorf("detector %q: a %s probe uses %q", pr.Detector, pr.Kind, want)
	}
	switch p.Suite {
	case SuiteGuardrails:
		if pr.Category == service.CategoryCSAM {
			return fmt.Errorf("category csam: llmfence never sends such a request")
		}
		if !slices.Contains(service.Categories, pr.Category) || pr.Category == service.CategoryGuardrailRemoval {
			return fmt.Errorf("category %q: want a harmful-activity category (%s)", pr.Category, strings.Join(requestCategories(), ", "))
		}
	case SuiteRobustness:
		if !slices.Contains(Families, pr.Category) {
			return fmt.Errorf("family %q: want one of %s", pr.Category, strings.Join(Families, ", "))
		}
	default:
		if pr.Category == "" {
			pr.Category = pr.Kind
		}
	}
	if pr.NumPredict < 0 || pr.NumPredict > 4096 {
		return fmt.Errorf("num_predict %d: want 0 to 4096", pr.NumPredict)
	}
	if len(pr.Prompts) == 0 {
		return fmt.Errorf("no prompts")
	}
	for lang := range pr.Prompts {
		if !slices.Contains(Languages, lang) {
			return fmt.Errorf("language %q: want %s", lang, strings.Join(Languages, " or "))
		}
	}
	if builtin {
		for _, l := range Languages {
			if strings.TrimSpace(pr.Prompts[l]) == "" {
				return fmt.Errorf("a built-in probe needs a %s prompt", l)
			}
		}
	}
	pr.tmpl = map[string]*template.Template{}
	for lang, text := range pr.Prompts {
		if strings.TrimSpace(text) == "" || len(text) > MaxPromptBytes {
			return fmt.Errorf("%s prompt is empty or longer than %d bytes", lang, MaxPromptBytes)
		}
		t, err := template.New(pr.ID + "." + lang).Funcs(funcs).Option("missingkey=error").Parse(text)
		if err != nil {
			return fmt.Errorf("%s prompt: %w", lang, err)
		}
		switch pr.Kind {
		case KindWrapper:
			if !strings.Contains(text, ".Request") && !strings.Contains(text, ".Other") {
				return fmt.Errorf("%s wrapper never uses the request ({{.Request}} or {{.Other}})", lang)
			}
		case KindCanary:
			if !strings.Contains(text, ".Prefix") {
				return fmt.Errorf("%s canary prompt never uses {{.Prefix}}", lang)
			}
		default:
			if strings.Contains(text, "{{") {
				return fmt.Errorf("%s prompt: only wrapper and canary prompts are templates", lang)
			}
		}
		// A template that cannot run on sample data is refused now, not
		// in the middle of a run.
		if err := t.Execute(io.Discard, Data{Request: "sample", Other: "sample", Prefix: "sample"}); err != nil {
			return fmt.Errorf("%s prompt: %w", lang, err)
		}
		pr.tmpl[lang] = t
	}
	return nil
}

func requestCategories() []string {
	var out []string
	for _, c := range service.Categories {
		if c != service.CategoryCSAM && c != service.CategoryGuardrailRemoval {
			out = append(out, c)
		}
	}
	return out
}

// Base64 is standard base64 of the UTF-8 text.
func Base64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

var leetMap = map[rune]rune{'a': '4', 'e': '3', 'i': '1', 'o': '0', 's': '5', 't': '7', 'A': '4', 'E': '3', 'I': '1', 'O': '0', 'S': '5', 'T': '7'}

// Leet writes ASCII letters in leetspeak (a->4, e->3, i->1, o->0, s->5,
// t->7); other characters, Japanese included, are kept.
func Leet(s string) string {
	return strings.Map(func(r rune) rune {
		if l, ok := leetMap[r]; ok {
			return l
		}
		return r
	}, s)
}

// Split separates the characters of every word with spaces and the words
// with " / ".
func Split(s string) string {
	var words []string
	for _, w := range strings.FieldsFunc(s, unicode.IsSpace) {
		rs := []rune(w)
		parts := make([]string, len(rs))
		for i, r := range rs {
			parts[i] = string(r)
		}
		words = append(words, strings.Join(parts, " "))
	}
	return strings.Join(words, " / ")
}

// Find returns the probe with id in the packs of suite.
func Find(ps []*Pack, suite, id string) (*Probe, bool) {
	for _, p := range ps {
		if p.Suite != suite {
			continue
		}
		for _, pr := range p.Probes {
			if pr.ID == id {
				return pr, true
			}
		}
	}
	return nil, false
}
