package pickle

import (
	"bytes"
	"context"
	"io"
	"testing"

	"github.com/llmfence/llmfence/internal/verdict"
)

// FuzzScan checks that no input makes Scan, Disassemble or Looks panic,
// fail on an in-memory reader, or report more than the input could hold.
func FuzzScan(f *testing.F) {
	for _, c := range corpus() {
		// The nesting bombs (several KB) are covered by TestScanCorpus;
		// as seeds they only slow down minimisation.
		if len(c.data) <= 2048 {
			f.Add(c.data)
		}
	}
	f.Add([]byte("\x80\x02((((((]]]]aaaa)ttt."))
	f.Fuzz(func(t *testing.T, data []byte) {
		opts := Options{MaxOpcodes: 1 << 20, MaxStack: 1 << 12, MaxMemo: 1 << 12, MaxDepth: 64}
		res, err := Scan(context.Background(), bytes.NewReader(data), opts)
		if err != nil {
			t.Fatalf("Scan returned an error for in-memory data: %v", err)
		}
		if res.Opcodes > int64(len(data)) {
			t.Fatalf("%d opcodes from %d bytes", res.Opcodes, len(data))
		}
		switch v := res.Verdict(); v {
		case verdict.Clean, verdict.Suspicious, verdict.Malicious, verdict.Invalid:
		default:
			t.Fatalf("verdict %q", v)
		}
		if len(data) == 0 && res.Verdict() != verdict.Invalid {
			t.Fatal("empty input not invalid")
		}
		for _, f := range res.Findings {
			if f.Offset < 0 || f.Offset > int64(len(data)) {
				t.Fatalf("finding %s offset %d outside %d bytes", f.ID, f.Offset, len(data))
			}
		}
		for _, g := range res.Globals {
			if g.Class != Safe && res.Verdict() == verdict.Clean {
				t.Fatalf("clean verdict with import %+v", g)
			}
			if g.Count < 1 || g.Offset < 0 || g.Offset >= int64(len(data)) {
				t.Fatalf("global %+v", g)
			}
		}
		if err := Disassemble(io.Discard, bytes.NewReader(data), opts); err != nil {
			t.Fatalf("Disassemble: %v", err)
		}
		Looks(data)
	})
}
