package pickle

import (
	"bytes"
	"context"
	"encoding/binary"
	"slices"
	"testing"

	"github.com/llmfence/llmfence/internal/verdict"
)

// legacyStorages builds the "storages" member of a legacy torch tar: a
// count, then per storage a pickled (key, location, type) and its raw
// data, then the views; evil, if set, replaces the last record's type
// with a call of os.system, placed after the first storage's raw bytes.
func legacyStorages(n int, evil bool) []byte {
	var b []byte
	b = append(b, newPK().proto(2).k(byte(n)).stop().bytes()...)
	for i := range n {
		rec := newPK().proto(2).bu(string(rune('0' + i))).bu("cpu")
		if evil && i == n-1 {
			rec.global("os", "system").bu("id").op(opTuple1).reduce()
		} else {
			rec.global("torch", "FloatStorage")
		}
		b = append(b, rec.op(opTuple3).stop().bytes()...)
		b = binary.LittleEndian.AppendUint64(b, 3)
		// raw float data that would derail an opcode reader: 'c', '(' ...
		b = append(b, "c(R\x80\x02\xffq.\x93\x94\x95a"...) // 12 bytes
	}
	return append(b, newPK().proto(2).op(opEmptyList).stop().bytes()...)
}

func legacyTensors(evil bool) []byte {
	var b []byte
	b = append(b, newPK().proto(2).k(1).stop().bytes()...)
	b = append(b, newPK().proto(2).bu("t0").bu("0").global("torch", "FloatTensor").op(opTuple3).stop().bytes()...)
	b = binary.LittleEndian.AppendUint32(b, 2)
	b = append(b, 0, 0, 0, 0)
	for _, v := range []uint64{2, 3, 3, 1, 0} {
		b = binary.LittleEndian.AppendUint64(b, v)
	}
	if evil {
		b = append(b, callG2("subprocess", "Popen")...)
	}
	return b
}

// TestScanLayoutTorchTar: the pickles between raw storage data are all
// analysed, however the raw bytes look, and the raw bytes are skipped by
// the lengths torch reads.
func TestScanLayoutTorchTar(t *testing.T) {
	for _, c := range []struct {
		name   string
		layout Layout
		data   []byte
		want   verdict.Verdict
	}{
		{"storages", LayoutTorchTarStorages, legacyStorages(3, false), verdict.Clean},
		{"storages evil last", LayoutTorchTarStorages, legacyStorages(3, true), verdict.Malicious},
		{"tensors", LayoutTorchTarTensors, legacyTensors(false), verdict.Clean},
		{"storages truncated", LayoutTorchTarStorages, legacyStorages(2, false)[:60], verdict.Invalid},
	} {
		t.Run(c.name, func(t *testing.T) {
			res, err := ScanLayout(context.Background(), bytes.NewReader(c.data), c.layout, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if res.Verdict() != c.want {
				t.Errorf("verdict %s, want %s: %+v", res.Verdict(), c.want, res.Findings)
			}
			if c.want == verdict.Malicious && !slices.ContainsFunc(res.Globals, func(g Global) bool { return g.Module == "os" }) {
				t.Errorf("os.system not found: %+v", res.Globals)
			}
		})
	}
}
