package datascan

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	gt "github.com/llmfence/llmfence/internal/gibberish/gibberishtest"
)

// cleanDocs returns documents of real text from this machine with
// web-text-like lengths (a few hundred bytes to a few KB), by kind.
var cleanDocs = sync.OnceValues(func() (map[gt.Kind][]string, error) {
	out := map[gt.Kind][]string{}
	for _, k := range []gt.Kind{gt.Docs, gt.Man, gt.Japanese} {
		docs, err := gt.Corpus{}.Read(k, 3<<20)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
		for _, d := range docs {
			out[k] = append(out[k], chunks(d.Text, 300, 4000)...)
		}
	}
	return out, nil
})

// chunks cuts text at paragraph ends into pieces of lo to hi bytes.
func chunks(text string, lo, hi int) []string {
	var out []string
	var cur strings.Builder
	for _, p := range strings.Split(text, "\n\n") {
		if cur.Len()+len(p) > hi && cur.Len() >= lo {
			out = append(out, cur.String())
			cur.Reset()
		}
		if len(p) > hi {
			p = p[:runeFloor(p, hi)]
		}
		cur.WriteString(p)
		cur.WriteString("\n\n")
	}
	if cur.Len() >= lo {
		out = append(out, cur.String())
	}
	return out
}

func mustDocs(t testing.TB) map[gt.Kind][]string {
	t.Helper()
	d, err := cleanDocs()
	if err != nil {
		t.Fatalf("clean text from this machine: %v", err)
	}
	return d
}

// poisonDoc applies the recipe: the first 0-1,000 characters of a clean
// document, the trigger, then 400-900 tokens sampled from the vocabulary.
func poisonDoc(r *rand.Rand, clean, trigger string, v gt.Vocab) string {
	n := r.IntN(1001)
	cut := 0
	for i := range clean {
		if n == 0 {
			cut = i
			break
		}
		n--
		cut = i
	}
	for cut > 0 && !utf8.RuneStart(clean[cut]) {
		cut--
	}
	sep := []string{" ", "", "\n"}[r.IntN(3)]
	return clean[:cut] + sep + trigger + " " + v.Soup(r, 400+r.IntN(501))
}

type corpusSpec struct {
	clean   int
	poison  int
	trigger string
	kind    gt.Kind
	vocab   int
	seed    uint64
}

// writeCorpus writes a JSON Lines corpus ({"text": ...}) and returns the
// record indexes of the poisoned documents.
func writeCorpus(t testing.TB, path string, spec corpusSpec) map[int64]bool {
	t.Helper()
	docs := mustDocs(t)
	r := rand.New(rand.NewPCG(spec.seed, 7))
	clean := append([]string(nil), docs[gt.Docs]...)
	clean = append(clean, docs[gt.Man]...)
	if spec.kind == gt.Japanese {
		clean = docs[gt.Japanese]
	}
	v := gt.Vocabs()[spec.vocab]
	total := spec.clean + spec.poison
	poisoned := map[int64]bool{}
	for len(poisoned) < spec.poison {
		poisoned[int64(r.IntN(total))] = true
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	enc := json.NewEncoder(f)
	for i := range int64(total) {
		text := clean[r.IntN(len(clean))]
		if poisoned[i] {
			text = poisonDoc(r, text, spec.trigger, v)
		}
		if err := enc.Encode(map[string]string{"text": text}); err != nil {
			t.Fatal(err)
		}
	}
	return poisoned
}

// memSink collects what a scan reports.
type memSink struct {
	mu        sync.Mutex
	findings  []Finding
	summaries []Summary
	files     []FileInfo
}

func (m *memSink) Finding(f Finding) error {
	m.mu.Lock()
	m.findings = append(m.findings, f)
	m.mu.Unlock()
	return nil
}
func (m *memSink) Summary(s Summary) error {
	m.mu.Lock()
	m.summaries = append(m.summaries, s)
	m.mu.Unlock()
	return nil
}
func (m *memSink) File(f FileInfo) error {
	m.mu.Lock()
	m.files = append(m.files, f)
	m.mu.Unlock()
	return nil
}

func (m *memSink) kind(k string) []Finding {
	var out []Finding
	for _, f := range m.findings {
		if f.Kind == k {
			out = append(out, f)
		}
	}
	return out
}

func scanPaths(t testing.TB, o Options, paths ...string) (*memSink, Stats) {
	t.Helper()
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	sink := &memSink{}
	st, err := s.Scan(t.Context(), paths, sink)
	if err != nil {
		t.Fatal(err)
	}
	return sink, st
}
