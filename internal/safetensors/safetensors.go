package safetensors

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math/bits"
	"sort"
	"strconv"
	"unicode/utf8"

	"github.com/llmfence/llmfence/internal/verdict"
)

// Limits of the safetensors parser.
const (
	// MaxHeader is the reference implementation's header limit.
	MaxHeader      = 100_000_000
	maxJSONDepth   = 16
	maxDims        = 64
	maxMetaEntries = 1024
	maxMetaBytes   = 1 << 20
	metadataKey    = "__metadata__"
)

// Tensor is one tensor entry of the header.
type Tensor struct {
	Name  string  `json:"name"`
	DType string  `json:"dtype"`
	Shape []int64 `json:"shape"`
	// Begin and End are offsets relative to the start of the data area.
	Begin int64 `json:"begin"`
	End   int64 `json:"end"`
}

// Header is what Scan learned about a safetensors file.
type Header struct {
	// HeaderSize is the JSON header length from the first 8 bytes.
	HeaderSize int64 `json:"header_size"`
	// DataSize is the size of the data area after the header.
	DataSize int64    `json:"data_size"`
	Tensors  []Tensor `json:"tensors"`
	// Params is the total element count of the well-formed tensors.
	Params int64 `json:"params"`
	// Metadata is the __metadata__ map (string values only, bounded).
	Metadata map[string]string `json:"metadata,omitempty"`
}

// Looks reports whether head (the first bytes of a file, at least 9)
// looks like a safetensors file: a plausible little-endian header length
// followed by '{'.
func Looks(head []byte) bool {
	if len(head) < 9 {
		return false
	}
	n := binary.LittleEndian.Uint64(head)
	if n < 2 || n > MaxHeader || head[8] != '{' {
		return false
	}
	if len(head) > 9 {
		switch head[9] {
		case '"', '}', ' ', '\t', '\n', '\r':
		default:
			return false
		}
	}
	return true
}

// Scan checks a safetensors file of size bytes. The error is for I/O
// failures and cancellation only; a malformed file yields findings (and a
// nil Header when the header could not be parsed at all), and for the
// embedded checks failing to load.
func Scan(ctx context.Context, r io.ReaderAt, size int64) (*Header, []verdict.Finding, error) {
	d, err := loaded()
	if err != nil {
		return nil, nil, err
	}
	fs := &findings{cat: d.st}
	if size < 8 {
		fs.add("ST-001", fmt.Sprintf("%d bytes", size), 0)
		return nil, fs.list, nil
	}
	var lb [8]byte
	if _, err := r.ReadAt(lb[:], 0); err != nil && err != io.EOF {
		return nil, nil, fmt.Errorf("read safetensors header length: %w", err)
	}
	n := binary.LittleEndian.Uint64(lb[:])
	switch {
	case n > MaxHeader:
		fs.add("ST-002", fmt.Sprintf("header length %d", n), 0)
		return nil, fs.list, nil
	case n > uint64(size-8):
		fs.add("ST-003", fmt.Sprintf("header length %d, only %d bytes follow", n, size-8), 0)
		return nil, fs.list, nil
	}
	h := &Header{HeaderSize: int64(n), DataSize: size - 8 - int64(n)}
	buf := make([]byte, n) // bounded by MaxHeader and by the file size
	if _, err := r.ReadAt(buf, 8); err != nil && err != io.EOF {
		return nil, nil, fmt.Errorf("read safetensors header: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	if len(buf) == 0 || buf[0] != '{' {
		fs.add("ST-004", "header does not start with '{'", 8)
		return nil, fs.list, nil
	}
	if !utf8.Valid(buf) {
		fs.add("ST-004", "header is not valid UTF-8", 8)
		return nil, fs.list, nil
	}
	root, end, err := parseJSON(buf, maxJSONDepth)
	if err != nil {
		fs.add("ST-004", fmt.Sprintf("JSON: %v", err), 8)
		return nil, fs.list, nil
	}
	for i, c := range buf[end:] {
		if c != ' ' && c != '\t' && c != '\n' && c != '\r' {
			fs.add("ST-017", fmt.Sprintf("%d bytes after the JSON object, from header offset %d", len(buf)-int(end), int(end)+i), 8+end+int64(i))
			break
		}
	}
	if root.kind != '{' {
		fs.add("ST-004", "header is not a JSON object", 8)
		return nil, fs.list, nil
	}
	for _, k := range root.dups {
		fs.add("ST-005", fmt.Sprintf("key %q appears more than once", k), 8)
	}
	var good []Tensor
	// A repeated name is one tensor to the loader: the last entry wins.
	keys, vals := root.effective()
	for i, name := range keys {
		if i%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, nil, err
			}
		}
		v := vals[i]
		if name == metadataKey {
			h.Metadata = scanMetadata(v, fs)
			continue
		}
		t, placed, sized := scanTensor(name, v, fs, d.rules.DTypes)
		h.Tensors = append(h.Tensors, t)
		if placed {
			good = append(good, t)
		}
		if sized {
			if n, ok := elements(t.Shape); ok {
				h.Params = satAdd(h.Params, n)
			}
		}
	}
	checkLayout(good, h.DataSize, 8+int64(n), fs)
	return h, fs.list, nil
}

func satAdd(a, b int64) int64 {
	if s := a + b; s >= a {
		return s
	}
	return 1<<63 - 1
}

func scanMetadata(v *jvalue, fs *findings) map[string]string {
	if v.kind == '0' {
		return nil
	}
	if v.kind != '{' {
		fs.add("ST-014", "__metadata__ is not an object", 8)
		return nil
	}
	for _, k := range v.dups {
		fs.add("ST-005", fmt.Sprintf("__metadata__ key %q appears more than once", k), 8)
	}
	out := map[string]string{}
	total := 0
	big := false
	for i, k := range v.keys {
		s, ok := v.vals[i].asString()
		if !ok {
			fs.add("ST-014", fmt.Sprintf("__metadata__[%q] is not a string", k), 8)
			continue
		}
		total += len(k) + len(s)
		if len(out) >= maxMetaEntries || total > maxMetaBytes {
			big = true
			continue
		}
		out[k] = s
	}
	if big {
		fs.add("ST-015", fmt.Sprintf("%d entries, %d bytes; %d entries reported", len(v.keys), total, len(out)), 8)
	}
	return out
}

// scanTensor checks one tensor entry. placed says its data_offsets are
// well-formed (its byte range takes part in the layout checks); sized says
// dtype and shape are valid too.
func scanTensor(name string, v *jvalue, fs *findings, dtypes map[string]int) (t Tensor, placed, sized bool) {
	t = Tensor{Name: name}
	if v.kind != '{' {
		fs.add("ST-004", fmt.Sprintf("tensor %q is not an object", name), 8)
		return t, false, false
	}
	for _, k := range v.dups {
		fs.add("ST-005", fmt.Sprintf("tensor %q: key %q appears more than once", name, k), 8)
	}
	ekeys, _ := v.effective()
	for _, k := range ekeys {
		if k != "dtype" && k != "shape" && k != "data_offsets" {
			fs.add("ST-016", fmt.Sprintf("tensor %q: field %q", name, k), 8)
		}
	}
	ok := true
	dt, isStr := v.get("dtype").asString()
	t.DType = dt
	bitsPer, known := dtypes[dt]
	if !isStr || !known {
		fs.add("ST-006", fmt.Sprintf("tensor %q: dtype %q", name, clip(dt)), 8)
		ok = false
	}
	shape := v.get("shape")
	if shape == nil || shape.kind != '[' || len(shape.items) > maxDims {
		fs.add("ST-007", fmt.Sprintf("tensor %q: shape must be a list of at most %d integers", name, maxDims), 8)
		ok = false
	} else {
		for _, d := range shape.items {
			n, err := intOf(d)
			if err != nil || n < 0 {
				fs.add("ST-007", fmt.Sprintf("tensor %q: dimension %s", name, clip(string(d.num))), 8)
				ok = false
				break
			}
			t.Shape = append(t.Shape, n)
		}
	}
	offs := v.get("data_offsets")
	if offs == nil || offs.kind != '[' || len(offs.items) != 2 {
		fs.add("ST-008", fmt.Sprintf("tensor %q: data_offsets must be [begin, end]", name), 8)
		return t, false, false
	}
	b, err1 := intOf(offs.items[0])
	e, err2 := intOf(offs.items[1])
	if err1 != nil || err2 != nil || b < 0 || e < b {
		fs.add("ST-008", fmt.Sprintf("tensor %q: data_offsets [%s, %s]", name, clip(string(offs.items[0].num)), clip(string(offs.items[1].num))), 8)
		return t, false, false
	}
	t.Begin, t.End = b, e
	if !ok {
		return t, true, false
	}
	elems, fits := elements(t.Shape)
	if !fits {
		fs.add("ST-007", fmt.Sprintf("tensor %q: shape %v overflows 64 bits", name, t.Shape), 8)
		return t, true, false
	}
	hi, lo := bits.Mul64(uint64(elems), uint64(bitsPer))
	if hi != 0 || lo%8 != 0 || lo/8 != uint64(e-b) {
		want := "more than 2^64 bits"
		switch {
		case hi == 0 && lo%8 == 0:
			want = fmt.Sprintf("%d bytes", lo/8)
		case hi == 0:
			want = fmt.Sprintf("%d bits (not a whole number of bytes)", lo)
		}
		fs.add("ST-009", fmt.Sprintf("tensor %q: %s %v needs %s, data_offsets give %d bytes", name, dt, t.Shape, want, e-b), 8)
		// The byte range is still a claim on the data area: keep it.
	}
	return t, true, true
}

func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// intOf parses a JSON integer (no fraction, no exponent) into int64.
func intOf(v *jvalue) (int64, error) {
	if v == nil || v.kind != 'n' {
		return 0, fmt.Errorf("not a number")
	}
	return strconv.ParseInt(string(v.num), 10, 64)
}

// elements multiplies dimensions; ok is false on overflow past 2^63-1.
func elements(shape []int64) (int64, bool) {
	n := int64(1)
	for _, d := range shape {
		hi, lo := bits.Mul64(uint64(n), uint64(d))
		if hi != 0 || lo > 1<<63-1 {
			return 0, false
		}
		n = int64(lo)
	}
	return n, true
}

// checkLayout verifies that the tensors tile the data area exactly.
func checkLayout(ts []Tensor, dataSize, dataStart int64, fs *findings) {
	sorted := append([]Tensor(nil), ts...)
	sort.SliceStable(sorted, func(i, j int) bool {
		if sorted[i].Begin != sorted[j].Begin {
			return sorted[i].Begin < sorted[j].Begin
		}
		return sorted[i].End < sorted[j].End
	})
	var end int64
	var last string
	for _, t := range sorted {
		if t.End > dataSize {
			fs.add("ST-012", fmt.Sprintf("tensor %q ends at %d, data area has %d bytes", t.Name, t.End, dataSize), dataStart+t.Begin)
		}
		switch {
		case t.Begin < end:
			fs.add("ST-010", fmt.Sprintf("tensor %q [%d, %d) overlaps %q (ends at %d)", t.Name, t.Begin, t.End, last, end), dataStart+t.Begin)
		case t.Begin > end:
			fs.add("ST-011", fmt.Sprintf("%d bytes at data offset %d before tensor %q", t.Begin-end, end, t.Name), dataStart+end)
		}
		if t.End > end {
			end, last = t.End, t.Name
		}
	}
	if end < dataSize {
		fs.add("ST-013", fmt.Sprintf("%d bytes after the last tensor (data offset %d)", dataSize-end, end), dataStart+end)
	}
}
