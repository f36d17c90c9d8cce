package inspect

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/llmfence/llmfence/internal/pythontest"
	"github.com/llmfence/llmfence/internal/verdict"
)

type dumpReq struct {
	Kind string `json:"kind"`
	Path string `json:"path"`
}

type dumpResp struct {
	OK    bool   `json:"ok"`
	Error string `json:"error"`
}

// dumpWith has the real library write each file (see
// pythontest/oracles/dump.py) and returns the paths.
func dumpWith(t *testing.T, dir string, modules []string, kinds []string) []string {
	t.Helper()
	py := pythontest.Need(t, modules...)
	reqs := make([]dumpReq, len(kinds))
	paths := make([]string, len(kinds))
	for i, k := range kinds {
		ext := ".pt"
		if strings.HasPrefix(k, "joblib/") {
			ext = ".joblib"
		}
		paths[i] = filepath.Join(dir, strings.NewReplacer("/", "_", "@", "_", ":", "_").Replace(k)+ext)
		reqs[i] = dumpReq{Kind: k, Path: paths[i]}
	}
	for i, r := range pythontest.Batch[dumpReq, dumpResp](t, py, pythontest.Oracle("dump"), reqs) {
		if !r.OK {
			t.Fatalf("%s: %s", kinds[i], r.Error)
		}
	}
	return paths
}

// TestRealJoblib: files written by joblib.dump — arrays of every layout,
// raw and compressed — are clean: the array bytes after each
// NumpyArrayWrapper are skipped by length, not parsed as opcodes; an object
// whose pickle calls os.system is malicious wherever it sits, before,
// between or after raw array data, or inside an object array.
func TestRealJoblib(t *testing.T) {
	var kinds []string
	benign := []string{"f64", "i32-2d", "bool", "c128", "u5", "s3", "struct", "empty", "scalar", "fortran", "big-endian", "datetime", "object", "dict", "list"}
	evil := []string{"evil-object-array", "evil-after-array", "evil-between-arrays"}
	for _, k := range append(append([]string{}, benign...), evil...) {
		kinds = append(kinds, "joblib/"+k)
	}
	for _, c := range []string{"zlib:3", "gzip:3", "bz2:3", "lzma:3", "xz:3"} {
		kinds = append(kinds, "joblib/dict@"+c, "joblib/evil-between-arrays@"+c)
	}
	paths := dumpWith(t, t.TempDir(), []string{"joblib", "numpy"}, kinds)
	in := newTestInspector(t, nil, func(o *Options) { o.MaxMemberSize = 64 << 20 })
	for i, k := range kinds {
		t.Run(k, func(t *testing.T) {
			r := in.InspectFile(context.Background(), paths[i], "")
			want := verdict.Clean
			if strings.Contains(k, "evil") {
				want = verdict.Malicious
			}
			if r.Verdict != want || r.Error != "" {
				t.Errorf("verdict %s (error %q), want %s; findings %+v", r.Verdict, r.Error, want, r.Findings)
			}
			if want == verdict.Malicious && !r.Fails("critical") {
				t.Error("a malicious joblib file does not fail")
			}
		})
	}
}

// TestRealTorch: checkpoints written by torch.save (zip and legacy) and
// plain pickles of tensors, whose storages are torch archives passed to
// torch.storage._load_from_bytes, are clean; the nested archive is opened
// and judged by what it holds.
func TestRealTorch(t *testing.T) {
	kinds := []string{"torch/zip", "torch/legacy", "torch/pickled-tensor", "torch/pickled-tensor-evil-inside", "torch/legacy-evil"}
	paths := dumpWith(t, t.TempDir(), []string{"torch"}, kinds)
	in := newTestInspector(t, nil, func(o *Options) { o.MaxMemberSize = 64 << 20 })
	for i, k := range kinds {
		t.Run(k, func(t *testing.T) {
			r := in.InspectFile(context.Background(), paths[i], "")
			want := verdict.Clean
			if strings.Contains(k, "evil") {
				want = verdict.Malicious
			}
			if r.Verdict != want || r.Error != "" {
				t.Errorf("verdict %s (error %q), want %s; findings %+v", r.Verdict, r.Error, want, r.Findings)
			}
			if k == "torch/pickled-tensor-evil-inside" {
				found := slices.ContainsFunc(r.Findings, func(f verdict.Finding) bool {
					return f.ID == "PKL-001" && strings.Contains(f.Member, "_load_from_bytes")
				})
				if !found {
					t.Errorf("the malicious import is not attributed to the embedded archive: %+v", r.Findings)
				}
			}
		})
	}
}

// legacyTarMember builds the "storages" member of a legacy (pre-0.4)
// torch tar checkpoint: a pickled count, one pickled (key, location,
// FloatStorage) record, 3 floats of raw data that would derail an opcode
// reader, then extra as a further record, then the views list.
func legacyTarStorages(extra []byte) []byte {
	b := []byte("\x80\x02K\x02.")
	b = append(b, "\x80\x02X\x01\x00\x00\x000X\x03\x00\x00\x00cpuctorch\nFloatStorage\n\x87."...)
	b = append(b, 3, 0, 0, 0, 0, 0, 0, 0)
	b = append(b, "c(R\x80\x02\xffq.\x93\x94\x95a"...)
	b = append(b, extra...)
	b = append(b, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x80, 0x3f)
	return append(b, "\x80\x02]."...)
}

// TestLegacyTorchTar: every pickle of a legacy torch tar checkpoint is
// judged, including one that sits after raw storage bytes.
func TestLegacyTorchTar(t *testing.T) {
	record := []byte("\x80\x02X\x01\x00\x00\x001X\x03\x00\x00\x00cpuctorch\nFloatStorage\n\x87.")
	evil := []byte("\x80\x02X\x01\x00\x00\x001X\x03\x00\x00\x00cpucposix\nsystem\nX\x02\x00\x00\x00id\x85R\x87.")
	dir := t.TempDir()
	in := newTestInspector(t, nil, nil)
	for name, c := range map[string]struct {
		storages []byte
		want     verdict.Verdict
	}{
		"benign.pt": {legacyTarStorages(record), verdict.Clean},
		"evil.pt":   {legacyTarStorages(evil), verdict.Malicious},
	} {
		t.Run(name, func(t *testing.T) {
			p := writeFile(t, dir, name, tarFile(t,
				zmember{"sys_info", []byte("\x80\x02}q\x00.")},
				zmember{"pickle", []byte("\x80\x02}q\x00.")},
				zmember{"storages", c.storages},
				zmember{"tensors", []byte("\x80\x02K\x00.")}))
			r := in.InspectFile(context.Background(), p, "")
			if r.Verdict != c.want || r.Format != FormatPyTorchTar {
				t.Errorf("%s %s, want %s %s: %+v", r.Format, r.Verdict, FormatPyTorchTar, c.want, r.Findings)
			}
		})
	}
}

// TestKerasLayouts: every layout Keras loads builds the model from its
// config first, so every one is checked: config only, .npz weights, no
// metadata, an .h5 weights file, the JSON model_from_json reads.
func TestKerasLayouts(t *testing.T) {
	lambda := `{"module": "keras", "class_name": "Sequential", "config": {"layers": [{"module": "keras.layers", "class_name": "Lambda", "config": {"name": "l", "function": ["4wEAAAAAAAAA", null, null], "function_type": "lambda"}}]}}`
	benign := `{"module": "keras", "class_name": "Sequential", "config": {"layers": [{"module": "keras.layers", "class_name": "Dense", "config": {"name": "d", "units": 2}}]}}`
	dup := `{"module": "keras", "class_name": "Sequential", "config": {"layers": [{"module": "keras.layers", "class_name": "Dense", "config": {"name": "l", "function": ["4wEAAAAAAAAA", null, null], "function_type": "lambda"}, "class_name": "Lambda"}]}}`
	dir := t.TempDir()
	in := newTestInspector(t, nil, nil)
	for _, c := range []struct {
		name   string
		data   []byte
		format string
		want   verdict.Verdict
	}{
		{"config-only.keras", zipFile(t, "", zmember{"config.json", []byte(lambda)}), FormatKeras, verdict.Malicious},
		{"npz-weights.keras", zipFile(t, "", zmember{"config.json", []byte(lambda)}, zmember{"model.weights.npz", zipFile(t, "", zmember{"a.npy", npyFile()})}), FormatKeras, verdict.Malicious},
		{"no-metadata.keras", zipFile(t, "", zmember{"config.json", []byte(lambda)}, zmember{"model.weights.h5", []byte("\x89HDF\r\n\x1a\nweights")}), FormatKeras, verdict.Malicious},
		{"duplicate-key.keras", zipFile(t, "", zmember{"config.json", []byte(dup)}, zmember{"metadata.json", []byte(`{}`)}), FormatKeras, verdict.Malicious},
		{"benign.keras", zipFile(t, "", zmember{"config.json", []byte(benign)}, zmember{"model.weights.h5", []byte("\x89HDF\r\n\x1a\nweights")}), FormatKeras, verdict.Clean},
		{"model.json", []byte(lambda), FormatKerasJSON, verdict.Malicious},
		{"benign-model.json", []byte(benign), FormatKerasJSON, verdict.Clean},
		{"hf-config.json", []byte(`{"architectures": ["LlamaForCausalLM"], "model_type": "llama"}`), FormatText, verdict.Clean},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := in.InspectFile(context.Background(), writeFile(t, dir, c.name, c.data), "")
			if r.Format != c.format || r.Verdict != c.want {
				t.Errorf("%s %s, want %s %s: %+v", r.Format, r.Verdict, c.format, c.want, r.Findings)
			}
		})
	}
}
