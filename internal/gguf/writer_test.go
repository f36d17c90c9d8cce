package gguf

import (
	"encoding/binary"
	"math"
	"os"
	"strings"
	"testing"
)

// A small GGUF writer for tests: every field can be set to a hostile value.

func le32(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }
func le64(v uint64) []byte { return binary.LittleEndian.AppendUint64(nil, v) }

func pStr(s string) []byte { return append(le64(uint64(len(s))), s...) }

func cat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// pArr encodes an array payload: element type, count, then raw elements.
func pArr(elem ValueType, count uint64, elems []byte) []byte {
	return cat(le32(uint32(elem)), le64(count), elems)
}

type gkv struct {
	key     []byte // encoded key (length + bytes), to allow bad lengths
	typ     uint32
	payload []byte
}

func kv(key string, typ ValueType, payload []byte) gkv {
	return gkv{key: pStr(key), typ: uint32(typ), payload: payload}
}

func kvStr(key, val string) gkv       { return kv(key, TypeString, pStr(val)) }
func kvU32(key string, v uint32) gkv  { return kv(key, TypeUint32, le32(v)) }
func kvBool(key string, v byte) gkv   { return kv(key, TypeBool, []byte{v}) }
func kvF32(key string, v float32) gkv { return kv(key, TypeFloat32, le32(math.Float32bits(v))) }

type gtensor struct {
	name []byte // encoded name
	dims []uint64
	nd   *uint32 // overrides len(dims)
	typ  uint32
	off  uint64
}

func tensor(name string, typ uint32, off uint64, dims ...uint64) gtensor {
	return gtensor{name: pStr(name), dims: dims, typ: typ, off: off}
}

type gfile struct {
	magic    string
	version  uint32
	nTensors *uint64 // overrides len(tensors)
	nKV      *uint64 // overrides len(kvs)
	kvs      []gkv
	tensors  []gtensor
	align    uint64 // layout alignment of the data section
	data     []byte // the data section
	extra    []byte // bytes after the data section
	cut      int    // bytes removed from the end
}

func ptr[T any](v T) *T { return &v }

func (g *gfile) bytes() []byte {
	b := []byte(g.magic)
	b = append(b, le32(g.version)...)
	nt, nk := uint64(len(g.tensors)), uint64(len(g.kvs))
	if g.nTensors != nil {
		nt = *g.nTensors
	}
	if g.nKV != nil {
		nk = *g.nKV
	}
	b = append(b, le64(nt)...)
	b = append(b, le64(nk)...)
	for _, k := range g.kvs {
		b = append(b, k.key...)
		b = append(b, le32(k.typ)...)
		b = append(b, k.payload...)
	}
	for _, t := range g.tensors {
		b = append(b, t.name...)
		nd := uint32(len(t.dims))
		if t.nd != nil {
			nd = *t.nd
		}
		b = append(b, le32(nd)...)
		for _, d := range t.dims {
			b = append(b, le64(d)...)
		}
		b = append(b, le32(t.typ)...)
		b = append(b, le64(t.off)...)
	}
	if len(g.data) > 0 {
		for uint64(len(b))%g.align != 0 {
			b = append(b, 0)
		}
		b = append(b, g.data...)
	}
	b = append(b, g.extra...)
	return b[:len(b)-g.cut]
}

// llama3Template is a short template in the llama3 format.
const llama3Template = "{{ bos_token }}{% for message in messages %}{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}"

// baseFile is a valid GGUF v3 file: llama metadata, a chat template and two
// 8x4 F32 tensors.
func baseFile() *gfile {
	return &gfile{
		magic:   "GGUF",
		version: 3,
		kvs: []gkv{
			kvStr("general.architecture", "llama"),
			kvStr("general.name", "Tiny Llama"),
			kvStr("general.license", "apache-2.0"),
			kvStr("general.base_model.0.name", "Llama 3.2 1B"),
			kvStr("general.base_model.0.organization", "Meta Llama"),
			kvU32("general.alignment", 32),
			kvU32("general.file_type", 0),
			kvU32("llama.context_length", 2048),
			kvF32("llama.rope.freq_base", 10000),
			kvBool("tokenizer.ggml.add_bos_token", 1),
			kv("tokenizer.ggml.tokens", TypeArray, pArr(TypeString, 3, cat(pStr("<s>"), pStr("</s>"), pStr("a")))),
			kv("tokenizer.ggml.scores", TypeArray, pArr(TypeFloat32, 3, make([]byte, 12))),
			kvStr("tokenizer.chat_template", llama3Template),
		},
		tensors: []gtensor{
			tensor("token_embd.weight", 0, 0, 8, 4),
			tensor("output.weight", 0, 128, 8, 4),
		},
		align: 32,
		data:  make([]byte, 256),
	}
}

func (g *gfile) setKV(key string, k gkv) *gfile {
	for i := range g.kvs {
		if string(g.kvs[i].key[8:]) == key {
			g.kvs[i] = k
			return g
		}
	}
	g.kvs = append(g.kvs, k)
	return g
}

func (g *gfile) dropKV(key string) *gfile {
	out := g.kvs[:0]
	for _, k := range g.kvs {
		if string(k.key[8:]) != key {
			out = append(out, k)
		}
	}
	g.kvs = out
	return g
}

// nested returns an array payload nested depth levels deep.
func nested(depth int) []byte {
	p := pArr(TypeUint8, 1, []byte{7})
	for i := 1; i < depth; i++ {
		p = pArr(TypeArray, 1, p)
	}
	return p
}

func TestWriterProducesTheLayoutItClaims(t *testing.T) {
	b := baseFile().bytes()
	if !strings.HasPrefix(string(b), "GGUF") || len(b)%32 != 0 {
		t.Fatalf("base file: %d bytes, prefix %q", len(b), b[:4])
	}
	if os.Getenv("GGUF_DUMP") != "" {
		_ = os.WriteFile(os.Getenv("GGUF_DUMP"), b, 0o600)
	}
}
