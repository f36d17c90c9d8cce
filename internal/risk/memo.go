package risk

import (
	"crypto/sha256"
	"slices"
	"sync"
)

// maxMemo bounds each of a Judge's verdict memos; past it a memo starts
// over. 64k entries of a digest and a few short strings: a few MiB.
const maxMemo = 1 << 16

// verdictMemo remembers the classifier's verdicts for the life of one Judge
// (one scan), so a system prompt that many hosts share — a fleet built from
// one image, a popular Modelfile — is classified once, whatever the models
// it comes with are called, even when those hosts are judged at the same
// moment: later callers wait for the first one's answer. Keys are SHA-256
// digests, so the memo never holds a prompt's text. Safe for concurrent
// use.
type verdictMemo struct {
	prompts memo[modelVerdict] // by system prompt alone
	names   memo[modelVerdict] // lineage markers, by name, parent and family
}

type modelVerdict struct {
	categories []string
	removed    bool
	evidence   string
}

// memo is a bounded map from digest to a value computed once.
type memo[V any] struct {
	mu sync.Mutex
	m  map[[32]byte]*memoEntry[V]
}

type memoEntry[V any] struct {
	done chan struct{} // closed once v is set
	v    V
}

// get returns the value for k, computing it with f if no caller has.
func (m *memo[V]) get(k [32]byte, f func() V) V {
	m.mu.Lock()
	e, ok := m.m[k]
	if !ok {
		if m.m == nil || len(m.m) >= maxMemo {
			m.m = make(map[[32]byte]*memoEntry[V])
		}
		e = &memoEntry[V]{done: make(chan struct{})}
		m.m[k] = e
	}
	m.mu.Unlock()
	if ok {
		<-e.done
		return e.v
	}
	defer close(e.done)
	e.v = f()
	return e.v
}

func (m *memo[V]) len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.m)
}

func digest(parts ...string) [32]byte {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	var d [32]byte
	h.Sum(d[:0])
	return d
}

// model returns classify(name, parent, family, prompt) — categories,
// guardrails removed, why — built from two memoised halves: the verdict on
// the prompt alone (classify("", "", "", prompt)) and on the names alone
// (classify(name, parent, family, "")). classify must be the classifier's
// Model, whose answer is exactly that composition: the prompt's
// categories, and a lineage marker in a name before the prompt's own
// guardrail_removal verdict.
func (m *verdictMemo) model(name, parent, family, prompt string, classify func(string, string, string, string) ([]string, bool, string)) ([]string, bool, string) {
	p := m.prompts.get(digest(prompt), func() modelVerdict {
		c, r, why := classify("", "", "", prompt)
		return modelVerdict{c, r, why}
	})
	cats := slices.Clip(slices.Clone(p.categories)) // callers own their slice
	if name == "" && parent == "" && family == "" {
		return cats, p.removed, p.evidence
	}
	n := m.names.get(digest(name, parent, family), func() modelVerdict {
		_, r, why := classify(name, parent, family, "")
		return modelVerdict{nil, r, why}
	})
	if n.removed {
		return cats, true, n.evidence
	}
	return cats, p.removed, p.evidence
}
