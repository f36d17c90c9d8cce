// Package verdict is the shared vocabulary of `llmfence inspect`: what each
// file parser (pickle, gguf, safetensors, archives, ...) reports about a
// hostile file, and how those reports add up to one verdict per file.
//
// Each parser keeps its own catalogue of findings as embedded data (IDs with
// a per-format prefix: PKL-, GGUF-, ST-, ZIP-, ...), each entry carrying the
// verdict it implies. The orchestrator (internal/inspect) only combines them.
package verdict

import (
	"fmt"
	"strings"

	"github.com/llmfence/llmfence/internal/datafile"
	"github.com/llmfence/llmfence/internal/service"
)

// Verdict is the judgement on one file.
type Verdict string

const (
	Clean      Verdict = "clean"      // inspected, nothing found that should stop a load
	Suspicious Verdict = "suspicious" // something a human should look at
	Malicious  Verdict = "malicious"  // it would run code or is built to attack
	Invalid    Verdict = "invalid"    // not a well-formed file of its format
	// NotInspected: the content (or part of it) was not checked — missing,
	// unreadable, too large, or in no format llmfence recognises. It is
	// never reported as clean.
	NotInspected Verdict = "not-inspected"
)

// All lists the verdicts from the least to the most serious.
var All = []Verdict{Clean, NotInspected, Suspicious, Invalid, Malicious}

// rank orders verdicts for Worst:
// clean < not-inspected < suspicious < invalid < malicious.
func (v Verdict) rank() int {
	switch v {
	case NotInspected:
		return 1
	case Suspicious:
		return 2
	case Invalid:
		return 3
	case Malicious:
		return 4
	}
	return 0
}

// Known reports whether v is one of the verdicts.
func (v Verdict) Known() bool { return v == Clean || v.rank() > 0 }

// Worst returns the most serious of the verdicts (Clean for none).
func Worst(vs ...Verdict) Verdict {
	out := Clean
	for _, v := range vs {
		if v.rank() > out.rank() {
			out = v
		}
	}
	return out
}

// Finding is one thing a parser found in a file.
type Finding struct {
	ID       string           `json:"id"`
	Severity service.Severity `json:"severity"`
	Title    string           `json:"title"`
	Detail   string           `json:"detail,omitempty"`
	// Verdict is what this finding alone makes of the file.
	Verdict Verdict `json:"verdict"`
	// Offset is the byte offset in the file (or archive member) where the
	// evidence starts, -1 when not applicable.
	Offset int64 `json:"offset"`
	// Member names the archive member the finding is in, if any.
	Member string `json:"member,omitempty"`
	// Executes is set when the finding means that loading the file runs
	// code nobody vetted (a pickle calling a callable off the allow-list,
	// a Keras object from outside Keras, ...). Such a file fails every
	// --fail-on threshold, whatever the finding's severity.
	Executes bool `json:"executes,omitempty"`
}

// Entry is one catalogue entry: what a finding ID means.
type Entry struct {
	ID       string           `yaml:"id" json:"id"`
	Severity service.Severity `yaml:"severity" json:"severity"`
	Verdict  Verdict          `yaml:"verdict" json:"verdict"`
	Title    string           `yaml:"title" json:"title"`
	Why      string           `yaml:"why" json:"why"`
	Fix      string           `yaml:"fix" json:"fix"`
	// Executes: the finding means loading runs unvetted code (see
	// Finding.Executes).
	Executes bool `yaml:"executes,omitempty" json:"executes,omitempty"`
}

// Catalogue is a parser's set of findings, loaded from embedded YAML:
//
//	version: 1
//	findings:
//	  - {id: PKL-001, severity: critical, verdict: malicious, title: ..., why: ..., fix: ...}
type Catalogue struct {
	Version  int     `yaml:"version"`
	Findings []Entry `yaml:"findings"`
	byID     map[string]Entry
}

// LoadCatalogue decodes and checks the catalogue file name (data): a
// version, unique IDs with the given prefix, known severities and verdicts,
// a title, why and fix. Errors name the file (see internal/datafile).
func LoadCatalogue(name string, data []byte, prefix string) (*Catalogue, error) {
	return datafile.Decode(name, data, func(c *Catalogue) error { return c.check(prefix) })
}

func (c *Catalogue) check(prefix string) error {
	c.byID = map[string]Entry{}
	for _, e := range c.Findings {
		switch {
		case !strings.HasPrefix(e.ID, prefix):
			return fmt.Errorf("%q does not start with %q", e.ID, prefix)
		case c.byID[e.ID].ID != "":
			return fmt.Errorf("duplicate %s", e.ID)
		case e.Severity.Rank() == 0:
			return fmt.Errorf("%s: bad severity %q", e.ID, e.Severity)
		case !e.Verdict.Known():
			return fmt.Errorf("%s: bad verdict %q", e.ID, e.Verdict)
		case e.Title == "" || e.Why == "" || e.Fix == "":
			return fmt.Errorf("%s needs title, why and fix", e.ID)
		}
		c.byID[e.ID] = e
	}
	return nil
}

// New returns a Finding for catalogue entry id. It panics on an unknown ID:
// that is a programming error caught by the parser's tests.
func (c *Catalogue) New(id, detail string, offset int64) Finding {
	e, ok := c.byID[id]
	if !ok {
		panic("verdict: unknown finding " + id)
	}
	return Finding{ID: e.ID, Severity: e.Severity, Title: e.Title, Detail: detail, Verdict: e.Verdict, Offset: offset, Executes: e.Executes}
}

// Entry returns the catalogue entry for id.
func (c *Catalogue) Entry(id string) (Entry, bool) {
	e, ok := c.byID[id]
	return e, ok
}

// Executes reports whether any finding means loading runs unvetted code.
func Executes(fs []Finding) bool {
	for _, f := range fs {
		if f.Executes {
			return true
		}
	}
	return false
}
