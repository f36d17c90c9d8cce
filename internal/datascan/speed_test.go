package datascan

import (
	"testing"

	gt "github.com/llmfence/llmfence/internal/gibberish/gibberishtest"
)

// BenchmarkDetectors: each per-record detector alone on clean documents of
// this machine (MB/s per core).
func BenchmarkDetectors(b *testing.B) {
	docs := mustDocs(b)
	texts := append(append([]string(nil), docs[gt.Docs]...), docs[gt.Man]...)
	n := 0
	for _, x := range texts {
		n += len(x)
	}
	s, err := New(Options{})
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name string
		fn   func(string)
	}{
		{"personal", func(x string) { s.red.Find(x) }},
		{"injection", func(x string) { s.inj.find(x) }},
		{"backdoor", func(x string) {
			if s.model.Screen(x) {
				s.model.FindTurn(x)
			}
		}},
		{"duplicates", func(x string) { signature(x) }},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(n))
			for b.Loop() {
				for _, x := range texts {
					c.fn(x)
				}
			}
		})
	}
}
