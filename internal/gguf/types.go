package gguf

import "fmt"

// ValueType is the type tag of a GGUF metadata value.
type ValueType uint32

// Metadata value types, numbered as in the GGUF specification.
const (
	TypeUint8   ValueType = 0
	TypeInt8    ValueType = 1
	TypeUint16  ValueType = 2
	TypeInt16   ValueType = 3
	TypeUint32  ValueType = 4
	TypeInt32   ValueType = 5
	TypeFloat32 ValueType = 6
	TypeBool    ValueType = 7
	TypeString  ValueType = 8
	TypeArray   ValueType = 9
	TypeUint64  ValueType = 10
	TypeInt64   ValueType = 11
	TypeFloat64 ValueType = 12
)

var valueTypeNames = [...]string{
	"uint8", "int8", "uint16", "int16", "uint32", "int32", "float32",
	"bool", "string", "array", "uint64", "int64", "float64",
}

// String returns the spec's lower-case name of the type.
func (t ValueType) String() string {
	if int(t) < len(valueTypeNames) {
		return valueTypeNames[t]
	}
	return fmt.Sprintf("type(%d)", uint32(t))
}

// Valid reports whether t is one of the 13 types the spec defines.
func (t ValueType) Valid() bool { return t <= TypeFloat64 }

// fixedSize is the encoded size of a scalar type; 0 for string and array.
func (t ValueType) fixedSize() uint64 {
	switch t {
	case TypeUint8, TypeInt8, TypeBool:
		return 1
	case TypeUint16, TypeInt16:
		return 2
	case TypeUint32, TypeInt32, TypeFloat32:
		return 4
	case TypeUint64, TypeInt64, TypeFloat64:
		return 8
	}
	return 0
}

// minSize is the fewest bytes one value of type t can occupy: a string
// needs its 8-byte length, an array its 4-byte element type and 8-byte
// count.
func (t ValueType) minSize() uint64 {
	switch t {
	case TypeString:
		return 8
	case TypeArray:
		return 12
	}
	return t.fixedSize()
}

func valueTypeByName(s string) (ValueType, bool) {
	for i, n := range valueTypeNames {
		if n == s {
			return ValueType(i), true
		}
	}
	return 0, false
}

// Array is the value of an ARRAY key/value: its element type, its length
// and at most the first maxHead elements (nested arrays are not kept).
type Array struct {
	Elem ValueType `json:"elem"`
	Len  uint64    `json:"len"`
	Head []any     `json:"head,omitempty"`
}

// KV is one metadata key/value pair.
type KV struct {
	Key    string    `json:"key"`
	Type   ValueType `json:"type"`
	Offset int64     `json:"offset"` // where the key starts in the file
	// Value is uint64 (unsigned types), int64 (signed), float64, bool,
	// string or Array. Strings longer than the keep limit are cut and
	// Truncated is set; nil when the value could not be read.
	Value     any  `json:"value"`
	Truncated bool `json:"truncated,omitempty"`
}

// Tensor is one tensor description. Size and Elements are 0 when they
// could not be computed (unknown type, bad dimensions).
type Tensor struct {
	Name     string   `json:"name"`
	Dims     []uint64 `json:"dims"`
	Type     uint32   `json:"type"`
	TypeName string   `json:"type_name,omitempty"`
	Offset   uint64   `json:"offset"` // relative to File.DataOffset
	Elements uint64   `json:"elements"`
	Size     uint64   `json:"size"`
	InfoAt   int64    `json:"info_at"` // where the description starts
}

// File is what Scan could read of a GGUF file.
type File struct {
	Version    uint32   `json:"version"`
	Alignment  uint32   `json:"alignment"`
	KV         []KV     `json:"kv,omitempty"`
	Tensors    []Tensor `json:"tensors,omitempty"`
	DataOffset int64    `json:"data_offset"`
	Summary    Summary  `json:"summary"`
	// Complete is true when the whole header and every tensor description
	// were read; false when a fatal finding stopped the parse.
	Complete bool `json:"complete"`
}

// Summary is what the model says about itself, plus what its tensors show.
type Summary struct {
	Architecture  string            `json:"architecture,omitempty"`
	Name          string            `json:"name,omitempty"`
	Basename      string            `json:"basename,omitempty"`
	Finetune      string            `json:"finetune,omitempty"`
	SizeLabel     string            `json:"size_label,omitempty"`
	Quantization  string            `json:"quantization,omitempty"`
	License       string            `json:"license,omitempty"`
	BaseModel     string            `json:"base_model,omitempty"`
	ChatTemplate  string            `json:"-"`
	Parameters    uint64            `json:"parameters,omitempty"`
	ContextLength uint64            `json:"context_length,omitempty"`
	TensorTypes   map[string]uint64 `json:"tensor_types,omitempty"` // type name -> tensor count
	// GuardrailsRemoved explains a lineage marker of removed refusals.
	GuardrailsRemoved string `json:"guardrails_removed,omitempty"`
}

// Lookup returns the value of the first pair with the given key.
func (f *File) Lookup(key string) (KV, bool) {
	for _, kv := range f.KV {
		if kv.Key == key {
			return kv, true
		}
	}
	return KV{}, false
}
