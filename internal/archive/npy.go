package archive

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"strconv"
	"strings"
	"unicode/utf8"
)

// NpyHeader is the parsed header of a NumPy .npy file.
type NpyHeader struct {
	Major, Minor int
	// Descr is the dtype as written ('<f4', '|O', or a structured list
	// rendered back as text).
	Descr        string
	FortranOrder bool
	Shape        []int64
	// Object is true when the dtype holds Python objects: the data is a
	// pickle.
	Object bool
	// ItemSize is the bytes per element, 0 when unknown or object.
	ItemSize int64
	// DataOffset is where the array data (or the pickle) starts.
	DataOffset int64
}

// Bounds of the npy header parser.
const (
	// NumPy refuses headers over 10000 bytes unless allow_pickle=True,
	// which is when it unpickles object arrays: then any size goes.
	npyMaxHeader  = 16 << 20
	npyNumpyLimit = 10000
	npyMaxDepth   = 32
	npyMaxDims    = 64
)

// ParseNpyHeader parses the .npy preamble and header dictionary from the
// start of a file (give it the first npyMaxHeader+12 bytes or the whole file
// when shorter) the way numpy.lib.format.read_array does: versions 1.0,
// 2.0 and 3.0 only; the header decoded as Latin-1 (UTF-8 for 3.0),
// Python 2 "L" suffixes filtered out of 1.0 and 2.0 headers, then
// evaluated as ast.literal_eval would (pyEval); a dict whose keys are
// exactly descr, fortran_order and shape, shape a tuple of ints (bools are
// ints), fortran_order a bool. Object (the data is a pickle) is decided
// from descr as numpy.dtype would build it: any field, subarray or
// comma-separated part of type O/object. Differential tests hold it to
// NumPy itself.
func ParseNpyHeader(b []byte) (*NpyHeader, error) {
	if len(b) < 10 || string(b[:6]) != string(magicNpy) {
		return nil, errors.New("no \\x93NUMPY magic")
	}
	h := &NpyHeader{Major: int(b[6]), Minor: int(b[7])}
	var hlen, start int
	switch {
	case h.Major == 1 && h.Minor == 0:
		hlen, start = int(binary.LittleEndian.Uint16(b[8:])), 10
	case (h.Major == 2 || h.Major == 3) && h.Minor == 0:
		if len(b) < 12 {
			return nil, errors.New("truncated preamble")
		}
		v := binary.LittleEndian.Uint32(b[8:])
		if v > npyMaxHeader {
			return nil, fmt.Errorf("header length %d is beyond any real header", v)
		}
		hlen, start = int(v), 12
	default:
		return nil, fmt.Errorf("unknown format version %d.%d", h.Major, h.Minor)
	}
	if hlen > len(b)-start {
		return nil, fmt.Errorf("header of %d bytes is truncated", hlen)
	}
	h.DataOffset = int64(start + hlen)
	raw := b[start : start+hlen]
	var text string
	if h.Major == 3 {
		if !utf8.Valid(raw) {
			return nil, errors.New("header is not UTF-8")
		}
		text = string(raw)
	} else {
		text = latin1(raw)
	}
	v, err := pyEval(text, h.Major <= 2)
	if err != nil {
		return nil, fmt.Errorf("header dictionary: %w", err)
	}
	if v.kind != pyDictK || len(v.keys) != 3 {
		return nil, errors.New("header is not a dictionary of descr, fortran_order and shape")
	}
	descr, okD := v.get("descr")
	fo, okF := v.get("fortran_order")
	shape, okS := v.get("shape")
	if !okD || !okF || !okS {
		return nil, errors.New("header needs exactly descr, fortran_order and shape")
	}
	if shape.kind != pyTupleK {
		return nil, errors.New("shape is not a tuple")
	}
	if fo.kind != pyBool {
		return nil, errors.New("fortran_order is not a bool")
	}
	h.FortranOrder = fo.b
	if len(shape.items) > npyMaxDims {
		return nil, fmt.Errorf("%d dimensions", len(shape.items))
	}
	for _, x := range shape.items {
		switch x.kind {
		case pyBool:
			h.Shape = append(h.Shape, int64(btoi(x.b)))
		case pyInt:
			if !x.i.IsInt64() {
				h.Shape = append(h.Shape, -1) // beyond any file; numpy wraps it
				continue
			}
			h.Shape = append(h.Shape, x.i.Int64())
		default:
			return nil, fmt.Errorf("shape entry is not an integer")
		}
	}
	obj, ok := dtypeHasObject(descr, 0)
	if !ok {
		return nil, fmt.Errorf("descr %s is not a dtype", clip(pyRepr(descr)))
	}
	h.Descr = pyRepr(descr)
	h.Object = obj
	if !h.Object {
		h.ItemSize = dtypeSize(descr, 0)
	}
	return h, nil
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// latin1 decodes Latin-1 bytes.
func latin1(b []byte) string {
	var sb strings.Builder
	for _, c := range b {
		sb.WriteRune(rune(c))
	}
	return sb.String()
}

func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

// dtypeHasObject says whether numpy.lib.format.descr_to_dtype(v) would
// hold Python objects, and whether v can be a dtype description at all:
// a string (numpy.dtype of it), a (descr, shape) tuple, or an iterable of
// (name, descr[, shape]) fields. Strings are judged generously: a part
// that names type O in any spelling numpy accepts (O, |O, <O8, object,
// object_, object0, 2O, (2,)O, a field of "i4,O") counts, and so does one
// numpy would refuse, which costs only a pickle scan of the data.
func dtypeHasObject(v pyVal, depth int) (bool, bool) {
	if depth > npyMaxDepth {
		return true, true
	}
	switch v.kind {
	case pyStr:
		return strObject(v.s), true
	case pyTupleK:
		if len(v.items) < 1 {
			return false, false
		}
		return dtypeHasObject(v.items[0], depth+1)
	case pyListK, pyDictK:
		fields := v.items
		if v.kind == pyDictK {
			fields = v.keys // iterating a dict yields its keys
		}
		any := false
		for _, f := range fields {
			var sub pyVal
			switch {
			case (f.kind == pyTupleK || f.kind == pyListK) && (len(f.items) == 2 || len(f.items) == 3):
				sub = f.items[1]
			case f.kind == pyStr && utf8.RuneCountInString(f.s) == 2:
				_, n := utf8.DecodeRuneInString(f.s)
				sub = pyVal{kind: pyStr, s: f.s[n:]}
			default:
				return false, false
			}
			o, ok := dtypeHasObject(sub, depth+1)
			if !ok {
				return false, false
			}
			any = any || o
		}
		return any, true
	}
	return false, false
}

// strObject: a dtype string with a part of type object. Parts are split
// at commas outside parentheses; each loses its subarray shape ("(2,)"),
// repeat count, byte order and white space before its type is read.
func strObject(s string) bool {
	depth, start := 0, 0
	parts := []string{}
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '(':
			depth++
		case ')':
			if depth > 0 {
				depth--
			}
		case ',':
			if depth == 0 {
				parts = append(parts, s[start:i])
				start = i + 1
			}
		}
	}
	parts = append(parts, s[start:])
	for _, p := range parts {
		for {
			q := strings.TrimLeft(p, "<>|=0123456789 \t\n\r\f\v")
			if strings.HasPrefix(q, "(") {
				if i := strings.IndexByte(q, ')'); i >= 0 {
					q = q[i+1:]
				}
			}
			if q == p {
				break
			}
			p = q
		}
		if strings.HasPrefix(p, "O") || strings.HasPrefix(p, "object") {
			return true
		}
	}
	return false
}

// dtypeSize returns the item size in bytes of a non-object dtype, 0 when
// it cannot tell.
func dtypeSize(v pyVal, depth int) int64 {
	if depth > npyMaxDepth {
		return 0
	}
	switch v.kind {
	case pyStr:
		s := strings.TrimLeft(v.s, "<>|=")
		if s == "?" {
			return 1
		}
		if s == "" {
			return 0
		}
		kind := s[0]
		num := s[1:]
		if i := strings.IndexByte(num, '['); i >= 0 { // datetime units
			num = num[:i]
		}
		n, err := strconv.ParseInt(num, 10, 64)
		if err != nil || n < 0 || n > 1<<32 {
			return 0
		}
		switch kind {
		case 'b', 'i', 'u', 'f', 'c', 'S', 'V', 'M', 'm', 'a':
			return n
		case 'U':
			return n * 4
		}
	case pyListK:
		var total int64
		for _, f := range v.items {
			if f.kind != pyTupleK || len(f.items) < 2 {
				return 0
			}
			sz := dtypeSize(f.items[1], depth+1)
			if sz == 0 {
				return 0
			}
			if len(f.items) >= 3 {
				sub := f.items[2]
				if sub.kind != pyTupleK {
					return 0
				}
				for _, d := range sub.items {
					if d.kind != pyInt || !d.i.IsInt64() || d.i.Sign() < 0 {
						return 0
					}
					if sz = mulCheck(sz, d.i.Int64()); sz < 0 {
						return 0
					}
				}
			}
			if total += sz; total < 0 || total > 1<<40 {
				return 0
			}
		}
		return total
	}
	return 0
}

// mulCheck multiplies non-negative numbers, -1 on overflow.
func mulCheck(a, b int64) int64 {
	hi, lo := bits.Mul64(uint64(a), uint64(b))
	if hi != 0 || lo > 1<<62 {
		return -1
	}
	return int64(lo)
}

func (w *walker) npy() error {
	pre, err := w.readFull(0, int(min(w.size, 12)))
	if err != nil {
		return err
	}
	headLen := min(w.size, 12)
	if off, ok := npyDataOffset(pre); ok {
		headLen = min(w.size, off, npyMaxHeader+12)
	}
	b, err := w.readFull(0, int(headLen))
	if err != nil {
		return err
	}
	h, err := ParseNpyHeader(b)
	if err != nil {
		w.add("ARC-027", "", err.Error(), 0)
		// A header too large to parse may still describe an object array
		// that numpy.load(allow_pickle=True) unpickles: judge what follows.
		if off, ok := npyDataOffset(b); ok && off < w.size && strings.Contains(err.Error(), "beyond any real header") {
			data := w.size - off
			return w.call(Member{Name: "<pickle>", Size: data, Offset: off, Raw: io.NewSectionReader(w.r, off, data), Open: func() (io.ReadCloser, error) {
				return w.bounded(io.NewSectionReader(w.r, off, data), nil), nil
			}})
		}
		return nil
	}
	if h.DataOffset-10 > npyNumpyLimit {
		w.add("ARC-027", "", fmt.Sprintf("header of %d bytes: NumPy refuses headers over %d bytes by default", h.DataOffset, npyNumpyLimit), 8)
	}
	data := w.size - h.DataOffset
	if h.Object {
		w.add("ARC-025", "<pickle>", fmt.Sprintf("dtype %s", h.Descr), h.DataOffset)
		sec := io.NewSectionReader(w.r, h.DataOffset, data)
		off := h.DataOffset
		return w.call(Member{Name: "<pickle>", Size: data, Offset: off, Raw: sec, Open: func() (io.ReadCloser, error) {
			return w.bounded(io.NewSectionReader(w.r, off, data), nil), nil
		}})
	}
	if h.ItemSize == 0 {
		return nil
	}
	want := h.ItemSize
	for _, d := range h.Shape {
		if want = mulCheck(want, d); want < 0 {
			break
		}
	}
	switch {
	case want < 0 || want > data:
		w.add("ARC-027", "", fmt.Sprintf("shape %v of %s needs more than the %d data bytes present", h.Shape, h.Descr, data), h.DataOffset)
	case want < data:
		w.add("ARC-026", "", fmt.Sprintf("%d bytes after the %d bytes of array data", data-want, want), h.DataOffset+want)
	}
	return nil
}

// pyRepr renders a literal back as text for reports.
func pyRepr(v pyVal) string {
	var sb strings.Builder
	var walk func(v pyVal, depth int)
	walk = func(v pyVal, depth int) {
		if sb.Len() > 200 || depth > npyMaxDepth {
			return
		}
		switch v.kind {
		case pyStr:
			sb.WriteString(pyQuote(v.s))
		case pyBytes:
			sb.WriteString("b" + pyQuote(v.s))
		case pyInt:
			sb.WriteString(v.i.String())
		case pyBool:
			sb.WriteString(map[bool]string{true: "True", false: "False"}[v.b])
		case pyFloat:
			sb.WriteString(strconv.FormatFloat(v.f, 'g', -1, 64))
		case pyListK, pyTupleK, pySetK:
			open, close := "[", "]"
			if v.kind == pyTupleK {
				open, close = "(", ")"
			} else if v.kind == pySetK {
				open, close = "{", "}"
			}
			sb.WriteString(open)
			for i, x := range v.items {
				if i > 0 {
					sb.WriteString(", ")
				}
				walk(x, depth+1)
			}
			sb.WriteString(close)
		case pyDictK:
			sb.WriteString("{...}")
		case pyNone:
			sb.WriteString("None")
		default:
			sb.WriteString("...")
		}
	}
	walk(v, 0)
	return sb.String()
}

// pyQuote writes s in single quotes the way Python's repr mostly does.
func pyQuote(s string) string {
	q := strconv.Quote(s)
	q = strings.ReplaceAll(q[1:len(q)-1], `\"`, `"`)
	return "'" + strings.ReplaceAll(q, "'", `\'`) + "'"
}

// npyDataOffset is where the data starts according to the preamble alone.
func npyDataOffset(b []byte) (int64, bool) {
	if len(b) < 12 || string(b[:6]) != string(magicNpy) {
		return 0, false
	}
	switch b[6] {
	case 1:
		return 10 + int64(binary.LittleEndian.Uint16(b[8:])), true
	case 2, 3:
		return 12 + int64(binary.LittleEndian.Uint32(b[8:])), true
	}
	return 0, false
}
