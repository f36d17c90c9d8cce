package ggufmodeltest

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
)

// This file is a minimal, independent GGUF v3 reader used only to check what
// Write produces. It follows the format description (gguf.md in ggml), not
// the writer's code.

type ggufValue struct {
	typ     uint32 // GGUF value type
	elemTyp uint32 // element type when typ is array
	scalar  any    // decoded scalar (for non-arrays)
	array   []any  // decoded elements (for arrays)
}

type ggufTensor struct {
	name   string
	shape  []uint64
	typ    uint32
	offset uint64 // relative to the data section
}

type ggufFile struct {
	version   uint32
	kvOrder   []string
	kv        map[string]ggufValue
	tensors   []ggufTensor
	dataStart uint64
	size      uint64
	raw       []byte
}

type ggufParser struct {
	r   *bytes.Reader
	err error
}

func (p *ggufParser) read(v any) {
	if p.err == nil {
		p.err = binary.Read(p.r, binary.LittleEndian, v)
	}
}

func (p *ggufParser) u32() (v uint32) { p.read(&v); return }
func (p *ggufParser) u64() (v uint64) { p.read(&v); return }

func (p *ggufParser) str() string {
	n := p.u64()
	if p.err != nil {
		return ""
	}
	if n > uint64(p.r.Len()) {
		p.err = fmt.Errorf("string length %d beyond end of file", n)
		return ""
	}
	b := make([]byte, n)
	_, p.err = io.ReadFull(p.r, b)
	return string(b)
}

func (p *ggufParser) scalar(t uint32) any {
	switch t {
	case 0:
		var v uint8
		p.read(&v)
		return v
	case 1:
		var v int8
		p.read(&v)
		return v
	case 2:
		var v uint16
		p.read(&v)
		return v
	case 3:
		var v int16
		p.read(&v)
		return v
	case 4:
		return p.u32()
	case 5:
		var v int32
		p.read(&v)
		return v
	case 6:
		var v float32
		p.read(&v)
		return v
	case 7:
		var v uint8
		p.read(&v)
		if p.err == nil && v > 1 {
			p.err = fmt.Errorf("bool value %d", v)
		}
		return v == 1
	case 8:
		return p.str()
	case 10:
		return p.u64()
	case 11:
		var v int64
		p.read(&v)
		return v
	case 12:
		var v float64
		p.read(&v)
		return v
	}
	if p.err == nil {
		p.err = fmt.Errorf("unknown value type %d", t)
	}
	return nil
}

func parseGGUF(b []byte) (*ggufFile, error) {
	p := &ggufParser{r: bytes.NewReader(b)}
	var magic [4]byte
	p.read(&magic)
	if p.err == nil && string(magic[:]) != "GGUF" {
		return nil, fmt.Errorf("bad magic %q", magic[:])
	}
	f := &ggufFile{kv: map[string]ggufValue{}, size: uint64(len(b)), raw: b}
	f.version = p.u32()
	nTensors := p.u64()
	nKV := p.u64()
	if p.err != nil {
		return nil, p.err
	}
	for range nKV {
		key := p.str()
		t := p.u32()
		v := ggufValue{typ: t}
		if t == 9 {
			v.elemTyp = p.u32()
			n := p.u64()
			if p.err == nil && n > uint64(len(b)) {
				return nil, fmt.Errorf("array %s: length %d beyond file size", key, n)
			}
			for range n {
				v.array = append(v.array, p.scalar(v.elemTyp))
			}
		} else {
			v.scalar = p.scalar(t)
		}
		if p.err != nil {
			return nil, fmt.Errorf("key %q: %w", key, p.err)
		}
		if _, dup := f.kv[key]; dup {
			return nil, fmt.Errorf("duplicate key %q", key)
		}
		f.kv[key] = v
		f.kvOrder = append(f.kvOrder, key)
	}
	for range nTensors {
		var t ggufTensor
		t.name = p.str()
		dims := p.u32()
		if p.err == nil && dims > 4 {
			return nil, fmt.Errorf("tensor %s: %d dimensions", t.name, dims)
		}
		for range dims {
			t.shape = append(t.shape, p.u64())
		}
		t.typ = p.u32()
		t.offset = p.u64()
		if p.err != nil {
			return nil, fmt.Errorf("tensor info: %w", p.err)
		}
		f.tensors = append(f.tensors, t)
	}
	align := uint64(32)
	if v, ok := f.kv["general.alignment"]; ok {
		a, ok := v.scalar.(uint32)
		if !ok || a == 0 {
			return nil, errors.New("general.alignment is not a non-zero uint32")
		}
		align = uint64(a)
	}
	pos := uint64(len(b) - p.r.Len())
	f.dataStart = (pos + align - 1) / align * align
	if f.dataStart > f.size {
		return nil, errors.New("data section starts beyond end of file")
	}
	for i := pos; i < f.dataStart; i++ {
		if b[i] != 0 {
			return nil, fmt.Errorf("non-zero padding byte at %d", i)
		}
	}
	return f, nil
}

func (t ggufTensor) elements() uint64 {
	n := uint64(1)
	for _, d := range t.shape {
		n *= d
	}
	return n
}

// f32 returns the tensor's data, which must be F32.
func (f *ggufFile) f32(t ggufTensor) []float32 {
	start := f.dataStart + t.offset
	out := make([]float32, t.elements())
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(f.raw[start+4*uint64(i):]))
	}
	return out
}

// summary renders the structure of the file for golden comparison: every
// key with its type and value (arrays abbreviated), then every tensor.
func (f *ggufFile) summary() string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "version %d\nsize %d\ndata_start %d\n", f.version, f.size, f.dataStart)
	fmt.Fprintf(&sb, "kv %d\n", len(f.kvOrder))
	for _, k := range f.kvOrder {
		v := f.kv[k]
		if v.typ == 9 {
			n := min(len(v.array), 5)
			fmt.Fprintf(&sb, "  %s: array[%d] of type %d = %v", k, len(v.array), v.elemTyp, v.array[:n])
			if len(v.array) > n {
				fmt.Fprintf(&sb, " ... %v", v.array[len(v.array)-1])
			}
			sb.WriteString("\n")
			continue
		}
		fmt.Fprintf(&sb, "  %s: type %d = %v\n", k, v.typ, v.scalar)
	}
	fmt.Fprintf(&sb, "tensors %d\n", len(f.tensors))
	for _, t := range f.tensors {
		fmt.Fprintf(&sb, "  %s type %d shape %v offset %d\n", t.name, t.typ, t.shape, t.offset)
	}
	return sb.String()
}
