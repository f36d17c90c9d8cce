// Package ggufmodeltest writes tiny, random-weight language models in the GGUF v3
// format, for tests that need a real LLM server (Ollama, llama.cpp) to load
// and generate from a model without downloading one.
//
// The model is a llama-architecture transformer (general.architecture
// "llama") with a byte-level SentencePiece-style vocabulary: <unk>, <s>, </s>
// followed by the 256 byte tokens "<0x00>".."<0xFF>" (tokenizer.ggml.model
// "llama", with scores and token types). Any text tokenizes through the byte
// fallback, so no merges are needed. All tensors are F32 and aligned to
// general.alignment (32). The output is a pure function of Options: the same
// options always give the same bytes, so the file's sha256 is stable.
//
// Ollama 0.6.8 runs "llama" models with a SentencePiece vocabulary on its
// llama.cpp-based runner (its Go engine only takes gpt2/BPE vocabularies for
// llama), which is the loader this layout targets.
package ggufmodeltest

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
)

// Defaults used for zero fields of Options.
const (
	DefaultLayers  = 2
	DefaultEmbed   = 64
	DefaultHeads   = 4
	DefaultContext = 256
	DefaultName    = "llmfence-tiny"
)

// Alignment is the general.alignment written into every file; tensor data
// offsets are multiples of it.
const Alignment = 32

// Special token ids of the vocabulary; byte b has id ByteTokenBase+b.
const (
	TokenUNK      = 0
	TokenBOS      = 1
	TokenEOS      = 2
	ByteTokenBase = 3
	VocabSize     = ByteTokenBase + 256
)

// Limits keep a mistyped option from producing a huge file.
const (
	maxLayers  = 32
	maxEmbed   = 1024
	maxContext = 1 << 20
)

// Options shape the model. Zero values take the Default* constants.
type Options struct {
	Seed    int64  // weights are drawn from a PRNG seeded with this
	Layers  int    // transformer blocks (llama.block_count)
	Embed   int    // hidden width (llama.embedding_length)
	Heads   int    // attention heads; Embed/Heads must be even
	Context int    // llama.context_length
	Name    string // general.name
}

func (o Options) withDefaults() Options {
	if o.Layers == 0 {
		o.Layers = DefaultLayers
	}
	if o.Embed == 0 {
		o.Embed = DefaultEmbed
	}
	if o.Heads == 0 {
		o.Heads = DefaultHeads
	}
	if o.Context == 0 {
		o.Context = DefaultContext
	}
	if o.Name == "" {
		o.Name = DefaultName
	}
	return o
}

func (o Options) validate() error {
	switch {
	case o.Layers < 1 || o.Layers > maxLayers:
		return fmt.Errorf("tiny model: layers must be between 1 and %d, got %d", maxLayers, o.Layers)
	case o.Embed < 2 || o.Embed > maxEmbed:
		return fmt.Errorf("tiny model: embedding width must be between 2 and %d, got %d", maxEmbed, o.Embed)
	case o.Heads < 1 || o.Embed%o.Heads != 0:
		return fmt.Errorf("tiny model: %d heads do not divide embedding width %d", o.Heads, o.Embed)
	case (o.Embed/o.Heads)%2 != 0:
		return fmt.Errorf("tiny model: head size %d must be even for rotary embeddings", o.Embed/o.Heads)
	case o.Context < 1 || o.Context > maxContext:
		return fmt.Errorf("tiny model: context length must be between 1 and %d, got %d", maxContext, o.Context)
	}
	return nil
}

// GGUF value types (gguf.h).
const (
	typeUint32  uint32 = 4
	typeInt32   uint32 = 5
	typeFloat32 uint32 = 6
	typeBool    uint32 = 7
	typeString  uint32 = 8
	typeArray   uint32 = 9
)

// GGML tensor type F32 and the matching general.file_type (LLAMA_FTYPE_ALL_F32).
const (
	ggmlTypeF32 uint32 = 0
	fileTypeF32 uint32 = 0
)

const (
	ggufMagic   = "GGUF"
	ggufVersion = 3
)

type kv struct {
	key string
	val any // uint32, float32, bool, string, []string, []float32 or []int32
}

// init kinds for tensor data
const (
	initRandom = iota // uniform in [-scale, scale]
	initOnes          // RMS norm weights
)

type tensor struct {
	name  string
	shape []uint64 // ggml order: shape[0] is the contiguous dimension
	init  int
	scale float32
}

func (t tensor) elements() uint64 {
	n := uint64(1)
	for _, d := range t.shape {
		n *= d
	}
	return n
}

func (t tensor) bytes() uint64 { return 4 * t.elements() }

func pad(n uint64) uint64 {
	return (Alignment - n%Alignment) % Alignment
}

// layout returns the metadata and tensors of the model in file order.
func layout(o Options) ([]kv, []tensor) {
	embed, ff := uint64(o.Embed), uint64(4*o.Embed)
	vocab := uint64(VocabSize)
	headDim := o.Embed / o.Heads

	tokens := make([]string, VocabSize)
	scores := make([]float32, VocabSize)
	types := make([]int32, VocabSize)
	tokens[TokenUNK], types[TokenUNK] = "<unk>", 2 // LLAMA_TOKEN_TYPE_UNKNOWN
	tokens[TokenBOS], types[TokenBOS] = "<s>", 3   // CONTROL
	tokens[TokenEOS], types[TokenEOS] = "</s>", 3  // CONTROL
	for b := range 256 {
		tokens[ByteTokenBase+b] = fmt.Sprintf("<0x%02X>", b)
		types[ByteTokenBase+b] = 6 // BYTE
	}

	kvs := []kv{
		{"general.architecture", "llama"},
		{"general.name", o.Name},
		{"general.file_type", fileTypeF32},
		{"general.alignment", uint32(Alignment)},
		{"llama.vocab_size", uint32(VocabSize)},
		{"llama.context_length", uint32(o.Context)},
		{"llama.embedding_length", uint32(o.Embed)},
		{"llama.block_count", uint32(o.Layers)},
		{"llama.feed_forward_length", uint32(ff)},
		{"llama.attention.head_count", uint32(o.Heads)},
		{"llama.attention.head_count_kv", uint32(o.Heads)},
		{"llama.attention.layer_norm_rms_epsilon", float32(1e-5)},
		{"llama.rope.dimension_count", uint32(headDim)},
		{"llama.rope.freq_base", float32(10000)},
		{"tokenizer.ggml.model", "llama"},
		{"tokenizer.ggml.tokens", tokens},
		{"tokenizer.ggml.scores", scores},
		{"tokenizer.ggml.token_type", types},
		{"tokenizer.ggml.unknown_token_id", uint32(TokenUNK)},
		{"tokenizer.ggml.bos_token_id", uint32(TokenBOS)},
		{"tokenizer.ggml.eos_token_id", uint32(TokenEOS)},
		{"tokenizer.ggml.add_bos_token", true},
		{"tokenizer.ggml.add_eos_token", false},
	}

	// Uniform(-s, s) has standard deviation s/sqrt(3); scaling by the fan-in
	// keeps activations near unit size, so logits stay finite and varied.
	fanIn := func(n uint64) float32 { return float32(math.Sqrt(3 / float64(n))) }
	ts := []tensor{
		{name: "token_embd.weight", shape: []uint64{embed, vocab}, init: initRandom, scale: 1},
		{name: "output_norm.weight", shape: []uint64{embed}, init: initOnes},
		{name: "output.weight", shape: []uint64{embed, vocab}, init: initRandom, scale: fanIn(embed)},
	}
	for i := range o.Layers {
		blk := func(s string) string { return fmt.Sprintf("blk.%d.%s.weight", i, s) }
		ts = append(ts,
			tensor{name: blk("attn_norm"), shape: []uint64{embed}, init: initOnes},
			tensor{name: blk("attn_q"), shape: []uint64{embed, embed}, init: initRandom, scale: fanIn(embed)},
			tensor{name: blk("attn_k"), shape: []uint64{embed, embed}, init: initRandom, scale: fanIn(embed)},
			tensor{name: blk("attn_v"), shape: []uint64{embed, embed}, init: initRandom, scale: fanIn(embed)},
			tensor{name: blk("attn_output"), shape: []uint64{embed, embed}, init: initRandom, scale: fanIn(embed)},
			tensor{name: blk("ffn_norm"), shape: []uint64{embed}, init: initOnes},
			tensor{name: blk("ffn_gate"), shape: []uint64{embed, ff}, init: initRandom, scale: fanIn(embed)},
			tensor{name: blk("ffn_up"), shape: []uint64{embed, ff}, init: initRandom, scale: fanIn(embed)},
			tensor{name: blk("ffn_down"), shape: []uint64{ff, embed}, init: initRandom, scale: fanIn(ff)},
		)
	}
	return kvs, ts
}

// Write writes the model described by opts to w and returns the number of
// bytes written.
func Write(w io.Writer, opts Options) (int64, error) {
	o := opts.withDefaults()
	if err := o.validate(); err != nil {
		return 0, err
	}
	kvs, ts := layout(o)

	cw := &countingWriter{w: w}
	e := &encoder{w: bufio.NewWriterSize(cw, 64<<10)}

	e.raw([]byte(ggufMagic))
	e.u32(ggufVersion)
	e.u64(uint64(len(ts)))
	e.u64(uint64(len(kvs)))
	for _, p := range kvs {
		e.str(p.key)
		e.value(p.val)
	}
	var off uint64
	for _, t := range ts {
		e.str(t.name)
		e.u32(uint32(len(t.shape)))
		for _, d := range t.shape {
			e.u64(d)
		}
		e.u32(ggmlTypeF32)
		e.u64(off)
		off += t.bytes() + pad(t.bytes())
	}
	e.zeros(pad(e.n))

	rng := rand.New(rand.NewPCG(uint64(o.Seed), 0x6c6c6d66656e6365)) // "llmfence"
	for i, t := range ts {
		for range t.elements() {
			switch t.init {
			case initOnes:
				e.f32(1)
			default:
				e.f32(t.scale * float32(2*rng.Float64()-1))
			}
		}
		// Padding between tensors only: Ollama measures a GGUF by walking
		// to the end of the last tensor and expects that to be the file end.
		if i < len(ts)-1 {
			e.zeros(pad(t.bytes()))
		}
	}
	if e.err == nil {
		e.err = e.w.Flush()
	}
	if e.err != nil {
		return cw.n, fmt.Errorf("writing tiny model: %w", e.err)
	}
	return cw.n, nil
}

// WriteFile writes the model described by opts to path (created or
// truncated) and returns the hex sha256 of its contents and its size.
func WriteFile(path string, opts Options) (sha256hex string, size int64, err error) {
	f, err := os.Create(path)
	if err != nil {
		return "", 0, fmt.Errorf("creating tiny model file: %w", err)
	}
	h := sha256.New()
	n, err := Write(io.MultiWriter(f, h), opts)
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("closing tiny model file %s: %w", filepath.Base(path), cerr)
	}
	if err != nil {
		return "", n, errors.Join(err, os.Remove(path))
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// encoder writes little-endian GGUF primitives, remembering the first error.
type encoder struct {
	w   *bufio.Writer
	n   uint64
	err error
	buf [8]byte
}

func (e *encoder) raw(p []byte) {
	if e.err != nil {
		return
	}
	_, e.err = e.w.Write(p)
	e.n += uint64(len(p))
}

func (e *encoder) u32(v uint32) {
	binary.LittleEndian.PutUint32(e.buf[:4], v)
	e.raw(e.buf[:4])
}

func (e *encoder) u64(v uint64) {
	binary.LittleEndian.PutUint64(e.buf[:8], v)
	e.raw(e.buf[:8])
}

func (e *encoder) f32(v float32) { e.u32(math.Float32bits(v)) }

func (e *encoder) str(s string) {
	e.u64(uint64(len(s)))
	e.raw([]byte(s))
}

func (e *encoder) zeros(n uint64) {
	var z [Alignment]byte
	e.raw(z[:n])
}

// value writes a typed metadata value.
func (e *encoder) value(v any) {
	switch v := v.(type) {
	case uint32:
		e.u32(typeUint32)
		e.u32(v)
	case float32:
		e.u32(typeFloat32)
		e.f32(v)
	case bool:
		e.u32(typeBool)
		b := byte(0)
		if v {
			b = 1
		}
		e.raw([]byte{b})
	case string:
		e.u32(typeString)
		e.str(v)
	case []string:
		e.u32(typeArray)
		e.u32(typeString)
		e.u64(uint64(len(v)))
		for _, s := range v {
			e.str(s)
		}
	case []float32:
		e.u32(typeArray)
		e.u32(typeFloat32)
		e.u64(uint64(len(v)))
		for _, f := range v {
			e.f32(f)
		}
	case []int32:
		e.u32(typeArray)
		e.u32(typeInt32)
		e.u64(uint64(len(v)))
		for _, i := range v {
			e.u32(uint32(i))
		}
	default:
		if e.err == nil {
			e.err = fmt.Errorf("unsupported metadata type %T", v)
		}
	}
}
