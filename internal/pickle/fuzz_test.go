package pickle

import (
	"bytes"
	"context"
	"io"
	"testing"

	"github.com/llmfence/llmfence/internal/pythontest"

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

// FuzzSniff: Sniff never panics and takes for a pickle anything whose scan
// calls an imported callable off the allow-list (what would run code).
func FuzzSniff(f *testing.F) {
	for _, c := range pythontest.PickleCases(7, 40) {
		f.Add(c.Data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got := Sniff(context.Background(), bytes.NewReader(data), int64(len(data)))
		res, err := Scan(context.Background(), bytes.NewReader(data), Options{MaxOpcodes: 1 << 16, Size: int64(len(data))})
		if err != nil {
			t.Fatal(err)
		}
		called, names := false, true
		for _, g := range res.Globals {
			called = called || g.Called
			names = names && identifierPath(g.Module) && identifierPath(g.Name) && !g.Unresolved
		}
		if res.Complete && called && names && res.Opcodes < 1<<15 && !got {
			t.Fatal("a complete stream calls an import but Sniff says it is no pickle")
		}
	})
}

// FuzzScanLayout: the legacy torch tar layouts never panic, never report
// more opcodes than bytes, and report only catalogue findings.
func FuzzScanLayout(f *testing.F) {
	f.Add(legacyStorages(3, false), false)
	f.Add(legacyStorages(2, true), false)
	f.Add(legacyTensors(false), true)
	f.Fuzz(func(t *testing.T, data []byte, tensors bool) {
		layout := LayoutTorchTarStorages
		if tensors {
			layout = LayoutTorchTarTensors
		}
		res, err := ScanLayout(context.Background(), bytes.NewReader(data), layout, Options{MaxOpcodes: 1 << 16})
		if err != nil {
			t.Fatal(err)
		}
		if res.Opcodes > int64(len(data)) {
			t.Fatalf("%d opcodes from %d bytes", res.Opcodes, len(data))
		}
		for _, fd := range res.Findings {
			if _, ok := dataForTest(t).cat.Entry(fd.ID); !ok {
				t.Fatalf("unknown finding %s", fd.ID)
			}
		}
	})
}
