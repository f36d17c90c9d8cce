package safetensors

import (
	"slices"
	"sort"
	"testing"

	"github.com/llmfence/llmfence/internal/goldentest"
)

type kerasCase struct {
	name string
	cfg  string
	want []string
}

const kerasDense = `{"module": "keras.layers", "class_name": "Dense", "config": {"name": "dense", "units": 4, "activation": "relu",
  "kernel_initializer": {"module": "keras.initializers", "class_name": "GlorotUniform", "config": {"seed": null}, "registered_name": null},
  "dtype": {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "float32"}, "registered_name": null}},
  "registered_name": null, "build_config": {"input_shape": [null, 4]}}`

func kerasModel(layers string) string {
	return `{"module": "keras", "class_name": "Sequential", "config": {"name": "seq", "layers": [` + layers + `]}, "registered_name": null}`
}

func kerasCases() []kerasCase {
	return []kerasCase{
		{"benign-sequential", kerasModel(kerasDense), nil},
		{"benign-lookalike-names", kerasModel(`{"module": "keras.layers", "class_name": "Dense", "config": {"name": "Lambda", "note": "__lambda__ os.system"}}`), nil},
		{"benign-keras-hub", kerasModel(`{"module": "keras_hub.src.models.gemma", "class_name": "GemmaBackbone", "config": {"name": "g"}, "registered_name": "keras_hub>GemmaBackbone"}`), nil},
		{"lambda-keras3", kerasModel(kerasDense + `, {"module": "keras.layers", "class_name": "Lambda", "config": {"name": "lambda", "function": {"class_name": "__lambda__", "config": {"code": "4wEAAAAAAAAAAAAAAAEAAAADAAAAQwAAAHMIAAAAdABkAYMBUwA=", "defaults": null, "closure": null}}}}`), []string{"KERAS-001"}},
		{"lambda-keras2", `{"class_name": "Model", "config": {"layers": [{"class_name": "Lambda", "config": {"name": "l", "function": ["4wEAAAAAAAAA", null, null], "function_type": "lambda"}}]}}`, []string{"KERAS-001"}},
		{"lambda-named-function", kerasModel(`{"class_name": "Lambda", "config": {"name": "l", "function": "normalize", "function_type": "function"}}`), []string{"KERAS-002"}},
		{"custom-object", kerasModel(`{"module": "my_pkg.layers", "class_name": "MyLayer", "config": {"name": "m"}, "registered_name": "my_pkg>MyLayer"}`), []string{"KERAS-003"}},
		{"unsafe-deserialization", kerasModel(`{"module": "keras.layers", "class_name": "Dense", "config": {"name": "d", "activation": {"module": "keras.config", "class_name": "function", "config": "enable_unsafe_deserialization", "registered_name": "function"}}}`), []string{"KERAS-004"}},
		{"os-system", kerasModel(`{"module": "os", "class_name": "function", "config": "system", "registered_name": "function"}`), []string{"KERAS-004"}},
		{"get-file", kerasModel(`{"module": "keras.utils", "class_name": "function", "config": "get_file"}`), []string{"KERAS-004"}},
		// Parsed as json.loads parses bytes: the last of repeated keys
		// wins, NaN and Infinity are numbers, UTF-16 and UTF-32 are read.
		{"duplicate-class-name", kerasModel(`{"module": "keras.layers", "class_name": "Dense", "config": {"name": "l", "function": ["4wEAAAAAAAAA", null, null], "function_type": "lambda"}, "class_name": "Lambda"}`), []string{"KERAS-001", "KERAS-006"}},
		{"duplicate-module", kerasModel(`{"module": "keras.layers", "class_name": "function", "config": "system", "module": "os"}`), []string{"KERAS-004", "KERAS-006"}},
		{"shadowed-lambda", kerasModel(`{"module": "keras.layers", "class_name": "Lambda", "config": {"name": "l", "function": "f"}, "class_name": "Dense"}`), []string{"KERAS-006"}},
		{"nan-and-infinity", kerasModel(`{"module": "keras.layers", "class_name": "Dense", "config": {"name": "d", "l2": NaN, "clip": -Infinity}}, {"module": "os", "class_name": "function", "config": "system"}`), []string{"KERAS-004"}},
		{"utf-16", utf16LE(kerasModel(`{"module": "os", "class_name": "function", "config": "system"}`)), []string{"KERAS-004"}},
		{"utf-8-bom", "\ufeff" + kerasModel(`{"module": "os", "class_name": "function", "config": "system"}`), []string{"KERAS-004"}},
		{"escaped-keys", kerasModel(`{"\u006dodule": "o\u0073", "class\u005fname": "function", "config": "system"}`), []string{"KERAS-004"}},
		{"invalid-json", `{"class_name": `, []string{"KERAS-005"}},
		{"not-object", `[1, 2]`, []string{"KERAS-005"}},
	}
}

func TestScanKerasConfig(t *testing.T) {
	g := goldentest.LoadCases(t, "testdata/keras.golden.json")
	defer g.Write(t)
	for _, c := range kerasCases() {
		t.Run(c.name, func(t *testing.T) {
			fs := scanKerasConfig(dataForTest(t), []byte(c.cfg))
			want := append([]string(nil), c.want...)
			sort.Strings(want)
			if got := idSet(fs); !slices.Equal(got, want) {
				t.Errorf("IDs %v, want %v\n%s", got, want, dump(fs))
			}
			g.Check(t, c.name, fs)
		})
	}
}

// utf16LE encodes s as UTF-16LE with a BOM, as json.loads accepts.
func utf16LE(s string) string {
	b := []byte{0xFF, 0xFE}
	for _, r := range s {
		b = append(b, byte(r), byte(r>>8))
	}
	return string(b)
}
