package ggufmodeltest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/llmfence/llmfence/internal/goldentest"
)

func write(t *testing.T, o Options) []byte {
	t.Helper()
	var buf bytes.Buffer
	n, err := Write(&buf, o)
	if err != nil {
		t.Fatalf("Write(%+v): %v", o, err)
	}
	if n != int64(buf.Len()) {
		t.Fatalf("Write reported %d bytes, wrote %d", n, buf.Len())
	}
	return buf.Bytes()
}

var shapes = []struct {
	name string
	opts Options
}{
	{"default", Options{}},
	{"small", Options{Seed: 7, Layers: 1, Embed: 32, Heads: 2, Context: 128, Name: "small"}},
	{"wide", Options{Seed: -3, Layers: 3, Embed: 96, Heads: 6, Context: 512, Name: "wide"}},
}

// The golden files pin the exact layout and the sha256 of the bytes: a change
// to either changes every digest tests and fixtures see, and must be seen.
func TestWriteGolden(t *testing.T) {
	for _, tc := range shapes {
		t.Run(tc.name, func(t *testing.T) {
			b := write(t, tc.opts)
			f, err := parseGGUF(b)
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			sum := sha256.Sum256(b)
			got := f.summary() + "sha256 " + hex.EncodeToString(sum[:]) + "\n"
			goldentest.Check(t, filepath.Join("testdata", tc.name+".golden"), []byte(got))
		})
	}
}

func TestWriteStructure(t *testing.T) {
	for _, tc := range shapes {
		t.Run(tc.name, func(t *testing.T) {
			o := tc.opts.withDefaults()
			f, err := parseGGUF(write(t, tc.opts))
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			if f.version != 3 {
				t.Errorf("version %d, want 3", f.version)
			}
			if f.dataStart%Alignment != 0 {
				t.Errorf("data section at %d, not aligned to %d", f.dataStart, Alignment)
			}
			checkMetadata(t, f, o)
			checkVocab(t, f)
			checkTensors(t, f, o)
		})
	}
}

func checkMetadata(t *testing.T, f *ggufFile, o Options) {
	t.Helper()
	want := map[string]any{
		"general.architecture":                   "llama",
		"general.name":                           o.Name,
		"general.alignment":                      uint32(32),
		"general.file_type":                      uint32(0),
		"llama.context_length":                   uint32(o.Context),
		"llama.embedding_length":                 uint32(o.Embed),
		"llama.block_count":                      uint32(o.Layers),
		"llama.feed_forward_length":              uint32(4 * o.Embed),
		"llama.attention.head_count":             uint32(o.Heads),
		"llama.attention.head_count_kv":          uint32(o.Heads),
		"llama.rope.dimension_count":             uint32(o.Embed / o.Heads),
		"llama.attention.layer_norm_rms_epsilon": float32(1e-5),
		"llama.vocab_size":                       uint32(259),
		"tokenizer.ggml.model":                   "llama",
		"tokenizer.ggml.bos_token_id":            uint32(1),
		"tokenizer.ggml.eos_token_id":            uint32(2),
		"tokenizer.ggml.unknown_token_id":        uint32(0),
		"tokenizer.ggml.add_bos_token":           true,
	}
	for k, w := range want {
		v, ok := f.kv[k]
		if !ok {
			t.Errorf("key %s missing", k)
			continue
		}
		// The loaders type-check: llama.cpp rejects e.g. an int32
		// context_length, Ollama panics on it.
		if v.scalar != w {
			t.Errorf("%s = %#v, want %#v", k, v.scalar, w)
		}
	}
}

func checkVocab(t *testing.T, f *ggufFile) {
	t.Helper()
	tokens, scores, types := f.kv["tokenizer.ggml.tokens"], f.kv["tokenizer.ggml.scores"], f.kv["tokenizer.ggml.token_type"]
	if tokens.typ != 9 || tokens.elemTyp != 8 || len(tokens.array) != 259 {
		t.Fatalf("tokens: type %d/%d, %d entries; want string array of 259", tokens.typ, tokens.elemTyp, len(tokens.array))
	}
	if scores.elemTyp != 6 || len(scores.array) != 259 {
		t.Errorf("scores: element type %d, %d entries; want 259 float32", scores.elemTyp, len(scores.array))
	}
	if types.elemTyp != 5 || len(types.array) != 259 {
		t.Fatalf("token_type: element type %d, %d entries; want 259 int32", types.elemTyp, len(types.array))
	}
	seen := map[string]bool{}
	for i, tok := range tokens.array {
		s := tok.(string)
		if seen[s] {
			t.Errorf("token %q appears twice", s)
		}
		seen[s] = true
		var wantTok string
		var wantType int32
		switch {
		case i == 0:
			wantTok, wantType = "<unk>", 2
		case i == 1:
			wantTok, wantType = "<s>", 3
		case i == 2:
			wantTok, wantType = "</s>", 3
		default:
			wantTok, wantType = fmt.Sprintf("<0x%02X>", i-3), 6
		}
		if s != wantTok || types.array[i].(int32) != wantType {
			t.Errorf("token %d = %q type %v, want %q type %d", i, s, types.array[i], wantTok, wantType)
		}
	}
}

func checkTensors(t *testing.T, f *ggufFile, o Options) {
	t.Helper()
	e, ff, v := uint64(o.Embed), uint64(4*o.Embed), uint64(259)
	want := map[string][]uint64{
		"token_embd.weight":  {e, v},
		"output_norm.weight": {e},
		"output.weight":      {e, v},
	}
	for i := range o.Layers {
		for name, shape := range map[string][]uint64{
			"attn_norm": {e}, "ffn_norm": {e},
			"attn_q": {e, e}, "attn_k": {e, e}, "attn_v": {e, e}, "attn_output": {e, e},
			"ffn_gate": {e, ff}, "ffn_up": {e, ff}, "ffn_down": {ff, e},
		} {
			want[fmt.Sprintf("blk.%d.%s.weight", i, name)] = shape
		}
	}
	if len(f.tensors) != len(want) {
		t.Errorf("%d tensors, want %d", len(f.tensors), len(want))
	}

	var end uint64
	for i, tn := range f.tensors {
		if w, ok := want[tn.name]; !ok {
			t.Errorf("unexpected tensor %s", tn.name)
		} else if !slices.Equal(tn.shape, w) {
			t.Errorf("%s shape %v, want %v", tn.name, tn.shape, w)
		}
		if tn.typ != 0 {
			t.Errorf("%s has ggml type %d, want F32 (0)", tn.name, tn.typ)
		}
		if tn.offset%Alignment != 0 {
			t.Errorf("%s offset %d not aligned", tn.name, tn.offset)
		}
		if i > 0 && tn.offset < end {
			t.Errorf("%s at %d overlaps the previous tensor ending at %d", tn.name, tn.offset, end)
		}
		end = tn.offset + 4*tn.elements()
		if f.dataStart+end > f.size {
			t.Fatalf("%s ends at %d, beyond the file (%d bytes)", tn.name, f.dataStart+end, f.size)
		}
	}
	// Ollama sizes a GGUF by walking to the end of its last tensor.
	if f.dataStart+end != f.size {
		t.Errorf("last tensor ends at %d, file is %d bytes", f.dataStart+end, f.size)
	}

	for _, tn := range f.tensors {
		data := f.f32(tn)
		if strings.HasSuffix(tn.name, "norm.weight") {
			for _, x := range data {
				if x != 1 {
					t.Errorf("%s holds %v, want all 1", tn.name, x)
					break
				}
			}
			continue
		}
		distinct := map[float32]bool{}
		for _, x := range data {
			if math.IsNaN(float64(x)) || math.Abs(float64(x)) > 1 {
				t.Errorf("%s holds %v, want finite values in [-1, 1]", tn.name, x)
				break
			}
			distinct[x] = true
		}
		if len(distinct) < len(data)/2 {
			t.Errorf("%s has only %d distinct values in %d", tn.name, len(distinct), len(data))
		}
	}
}

func TestWriteDeterministic(t *testing.T) {
	a := write(t, Options{Seed: 42})
	b := write(t, Options{Seed: 42})
	c := write(t, Options{Seed: 43})
	if !bytes.Equal(a, b) {
		t.Error("same options gave different bytes")
	}
	if len(a) != len(c) {
		t.Errorf("seed changed the size: %d vs %d", len(a), len(c))
	}
	if bytes.Equal(a, c) {
		t.Error("different seeds gave identical bytes")
	}
	fa, err := parseGGUF(a)
	if err != nil {
		t.Fatal(err)
	}
	fc, err := parseGGUF(c)
	if err != nil {
		t.Fatal(err)
	}
	if fa.summary() != fc.summary() {
		t.Error("seed changed the layout")
	}
}

func TestWriteInvalidOptions(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts Options
		want string
	}{
		{"negative layers", Options{Layers: -1}, "layers"},
		{"too many layers", Options{Layers: 33}, "layers"},
		{"embed too wide", Options{Embed: 4096}, "embedding width"},
		{"heads do not divide", Options{Embed: 64, Heads: 3}, "do not divide"},
		{"odd head size", Options{Embed: 63, Heads: 1}, "must be even"},
		{"negative context", Options{Context: -5}, "context length"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			n, err := Write(&buf, tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one mentioning %q", err, tc.want)
			}
			if n != 0 || buf.Len() != 0 {
				t.Errorf("wrote %d bytes for invalid options", buf.Len())
			}
		})
	}
}

func TestWriteFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.gguf")
	sum, size, err := WriteFile(path, Options{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256(b)
	if sum != hex.EncodeToString(h[:]) {
		t.Errorf("returned sha256 %s, file has %x", sum, h)
	}
	if size != int64(len(b)) {
		t.Errorf("returned size %d, file has %d", size, len(b))
	}
	if !bytes.Equal(b, write(t, Options{Seed: 1})) {
		t.Error("WriteFile and Write disagree")
	}

	if _, _, err := WriteFile(filepath.Join(t.TempDir(), "missing", "m.gguf"), Options{}); err == nil {
		t.Error("WriteFile into a missing directory succeeded")
	}
	bad := filepath.Join(t.TempDir(), "bad.gguf")
	if _, _, err := WriteFile(bad, Options{Heads: 5}); err == nil {
		t.Error("WriteFile with invalid options succeeded")
	} else if _, serr := os.Stat(bad); !errors.Is(serr, os.ErrNotExist) {
		t.Errorf("failed WriteFile left %s behind (stat: %v)", bad, serr)
	}
}

type failAfter struct{ n int }

var errDiskFull = errors.New("disk full")

func (w *failAfter) Write(p []byte) (int, error) {
	if len(p) > w.n {
		n := w.n
		w.n = 0
		return n, errDiskFull
	}
	w.n -= len(p)
	return len(p), nil
}

func TestWriteReportsWriterError(t *testing.T) {
	n, err := Write(&failAfter{n: 100_000}, Options{})
	if !errors.Is(err, errDiskFull) {
		t.Fatalf("err = %v, want it to wrap the writer's error", err)
	}
	if n != 100_000 {
		t.Errorf("reported %d bytes written, want 100000", n)
	}
}
