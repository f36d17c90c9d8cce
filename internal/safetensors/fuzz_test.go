package safetensors

import (
	"bytes"
	"context"
	"testing"

	"github.com/llmfence/llmfence/internal/pythontest"

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
		checkIDs(t, dataForTest(t).st, fs)
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
		checkIDs(t, dataForTest(t).onnx, fs)
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
		checkIDs(t, dataForTest(t).keras, scanKerasConfig(dataForTest(t), cfg))
	})
}

// FuzzPythonJSON: the json.loads-compatible parser never panics, and what
// it accepts it accepts again; effective keys are unique.
func FuzzPythonJSON(f *testing.F) {
	for _, c := range pythontest.JSONCases(7, 40) {
		f.Add(c.Data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := parsePythonJSON(data, 64)
		if err != nil {
			return
		}
		var check func(v *jvalue)
		check = func(v *jvalue) {
			if v.kind == '{' {
				keys, vals := v.effective()
				seen := map[string]bool{}
				for i, k := range keys {
					if seen[k] {
						t.Fatalf("effective keys repeat %q", k)
					}
					seen[k] = true
					check(vals[i])
				}
			}
			for _, it := range v.items {
				check(it)
			}
		}
		check(v)
		LooksKerasConfig(data)
	})
}
