package safetensors

import (
	"bytes"
	"context"
	"testing"

	"github.com/llmfence/llmfence/internal/verdict"
)

func checkIDs(t *testing.T, cat *verdict.Catalogue, fs []verdict.Finding) {
	t.Helper()
	for _, f := range fs {
		if _, ok := cat.Entry(f.ID); !ok {
			t.Errorf("finding %s not in catalogue", f.ID)
		}
	}
}

func FuzzSafetensors(f *testing.F) {
	for _, c := range stCases() {
		if d := c.data(); len(d) < 64<<10 {
			f.Add(d)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		h, fs, err := Scan(context.Background(), bytes.NewReader(data), int64(len(data)))
		if err != nil {
			t.Fatalf("Scan on in-memory input: %v", err)
		}
		checkIDs(t, Catalogue(), fs)
		if h != nil && (h.HeaderSize+8 > int64(len(data)) || h.DataSize < 0 || len(h.Tensors) > len(data)) {
			t.Errorf("header %d/%d bytes, %d tensors, from %d bytes", h.HeaderSize, h.DataSize, len(h.Tensors), len(data))
		}
	})
}

func FuzzONNX(f *testing.F) {
	for _, c := range onnxCases() {
		f.Add(c.data())
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		info, fs, err := ScanONNX(context.Background(), bytes.NewReader(data), int64(len(data)))
		if err != nil {
			t.Fatalf("ScanONNX on in-memory input: %v", err)
		}
		checkIDs(t, ONNXCatalogue(), fs)
		if info == nil || info.Nodes > len(data) || info.Tensors > len(data) {
			t.Errorf("info %+v from %d bytes", info, len(data))
		}
	})
}

func FuzzKerasConfig(f *testing.F) {
	for _, c := range kerasCases() {
		f.Add([]byte(c.cfg))
	}
	f.Fuzz(func(t *testing.T, cfg []byte) {
		checkIDs(t, KerasCatalogue(), ScanKerasConfig(cfg))
	})
}
