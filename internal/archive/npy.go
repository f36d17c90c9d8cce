package archive

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"strconv"
	"strings"
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
	npyMaxHeader  = 1 << 16 // NumPy itself refuses headers over 10000 bytes by default
	npyNumpyLimit = 10000
	npyMaxDepth   = 32
	npyMaxDims    = 64
)

// ParseNpyHeader parses the .npy preamble and header dictionary from the
// start of a file (give it the first npyMaxHeader+12 bytes or the whole file
// when shorter).
func ParseNpyHeader(b []byte) (*NpyHeader, error) {
	if len(b) < 10 || string(b[:6]) != string(magicNpy) {
		return nil, errors.New("no \\x93NUMPY magic")
	}
	h := &NpyHeader{Major: int(b[6]), Minor: int(b[7])}
	var hlen, start int
	switch h.Major {
	case 1:
		hlen, start = int(binary.LittleEndian.Uint16(b[8:])), 10
	case 2, 3:
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
	text := string(b[start : start+hlen])
	p := &pyParser{s: text}
	v, err := p.value(0)
	if err != nil {
		return nil, fmt.Errorf("header dictionary: %w", err)
	}
	if rest := strings.TrimRight(p.s[p.i:], " \n"); rest != "" {
		return nil, fmt.Errorf("header dictionary: unexpected %q after the dictionary", clip(rest))
	}
	d, ok := v.(pyDict)
	if !ok || len(d) != 3 {
		return nil, errors.New("header is not a dictionary of descr, fortran_order and shape")
	}
	descr, okD := d["descr"]
	fo, okF := d["fortran_order"].(bool)
	shape, okS := d["shape"].(pyTuple)
	if !okD || !okF || !okS {
		return nil, errors.New("header needs descr, fortran_order (bool) and shape (tuple)")
	}
	h.FortranOrder = fo
	if len(shape) > npyMaxDims {
		return nil, fmt.Errorf("%d dimensions", len(shape))
	}
	for _, x := range shape {
		n, ok := x.(int64)
		if !ok || n < 0 {
			return nil, fmt.Errorf("shape entry %v is not a non-negative integer", x)
		}
		h.Shape = append(h.Shape, n)
	}
	h.Descr = pyRepr(descr)
	h.Object = dtypeHasObject(descr, 0)
	if !h.Object {
		h.ItemSize = dtypeSize(descr, 0)
	}
	if _, isStr := descr.(string); !isStr {
		if _, isList := descr.(pyList); !isList {
			if _, isDict := descr.(pyDict); !isDict {
				return nil, errors.New("descr is not a dtype")
			}
		}
	}
	return h, nil
}

func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

// dtypeHasObject reports whether a dtype description contains 'O'.
func dtypeHasObject(v any, depth int) bool {
	if depth > npyMaxDepth {
		return true
	}
	switch t := v.(type) {
	case string:
		s := strings.TrimLeft(t, "<>|=")
		return strings.HasPrefix(s, "O") || s == "object"
	case pyList:
		for _, f := range t {
			if tup, ok := f.(pyTuple); ok && len(tup) >= 2 && dtypeHasObject(tup[1], depth+1) {
				return true
			}
		}
	case pyTuple:
		for _, f := range t {
			if dtypeHasObject(f, depth+1) {
				return true
			}
		}
	case pyDict:
		return dtypeHasObject(t["formats"], depth+1)
	}
	return false
}

// dtypeSize returns the item size in bytes of a non-object dtype, 0 when
// it cannot tell.
func dtypeSize(v any, depth int) int64 {
	if depth > npyMaxDepth {
		return 0
	}
	switch t := v.(type) {
	case string:
		s := strings.TrimLeft(t, "<>|=")
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
	case pyList:
		var total int64
		for _, f := range t {
			tup, ok := f.(pyTuple)
			if !ok || len(tup) < 2 {
				return 0
			}
			sz := dtypeSize(tup[1], depth+1)
			if sz == 0 {
				return 0
			}
			if len(tup) >= 3 {
				sub, ok := tup[2].(pyTuple)
				if !ok {
					return 0
				}
				for _, d := range sub {
					k, ok := d.(int64)
					if !ok || k < 0 {
						return 0
					}
					if sz = mulCheck(sz, k); sz < 0 {
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
	b, err := w.readFull(0, int(min(w.size, npyMaxHeader+12)))
	if err != nil {
		return err
	}
	h, err := ParseNpyHeader(b)
	if err != nil {
		w.add("ARC-027", "", err.Error(), 0)
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

// A minimal parser for the Python literals NumPy writes in .npy headers:
// dicts, lists, tuples, strings, integers, True/False/None. Depth and
// input size are bounded by the caller.
type (
	pyDict  map[string]any
	pyList  []any
	pyTuple []any
)

type pyParser struct {
	s string
	i int
}

func (p *pyParser) ws() {
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\n' || p.s[p.i] == '\t' || p.s[p.i] == '\r') {
		p.i++
	}
}

func (p *pyParser) value(depth int) (any, error) {
	if depth > npyMaxDepth {
		return nil, errors.New("nested too deeply")
	}
	p.ws()
	if p.i >= len(p.s) {
		return nil, errors.New("unexpected end")
	}
	switch c := p.s[p.i]; {
	case c == '{':
		p.i++
		d := pyDict{}
		for {
			p.ws()
			if p.i < len(p.s) && p.s[p.i] == '}' {
				p.i++
				return d, nil
			}
			k, err := p.value(depth + 1)
			if err != nil {
				return nil, err
			}
			ks, ok := k.(string)
			if !ok {
				return nil, errors.New("dictionary key is not a string")
			}
			if _, dup := d[ks]; dup {
				return nil, fmt.Errorf("duplicate key %q", ks)
			}
			p.ws()
			if p.i >= len(p.s) || p.s[p.i] != ':' {
				return nil, errors.New("expected ':'")
			}
			p.i++
			v, err := p.value(depth + 1)
			if err != nil {
				return nil, err
			}
			d[ks] = v
			if !p.sep('}') {
				return nil, errors.New("expected ',' or '}'")
			}
		}
	case c == '[' || c == '(':
		closer := byte(']')
		if c == '(' {
			closer = ')'
		}
		p.i++
		var items []any
		for {
			p.ws()
			if p.i < len(p.s) && p.s[p.i] == closer {
				p.i++
				if closer == ')' {
					return pyTuple(items), nil
				}
				return pyList(items), nil
			}
			v, err := p.value(depth + 1)
			if err != nil {
				return nil, err
			}
			items = append(items, v)
			if !p.sep(closer) {
				return nil, fmt.Errorf("expected ',' or '%c'", closer)
			}
		}
	case c == '\'' || c == '"':
		p.i++
		var sb strings.Builder
		for p.i < len(p.s) && p.s[p.i] != c {
			if p.s[p.i] == '\\' && p.i+1 < len(p.s) {
				p.i++
			}
			sb.WriteByte(p.s[p.i])
			p.i++
		}
		if p.i >= len(p.s) {
			return nil, errors.New("unterminated string")
		}
		p.i++
		return sb.String(), nil
	case c == '-' || (c >= '0' && c <= '9'):
		j := p.i + 1
		for j < len(p.s) && p.s[j] >= '0' && p.s[j] <= '9' {
			j++
		}
		if j < len(p.s) && p.s[j] == 'L' { // Python 2 long
			defer func() { p.i++ }()
		}
		n, err := strconv.ParseInt(p.s[p.i:j], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("bad integer %q", clip(p.s[p.i:j]))
		}
		p.i = j
		return n, nil
	default:
		for _, w := range []struct {
			lit string
			v   any
		}{{"True", true}, {"False", false}, {"None", nil}} {
			if strings.HasPrefix(p.s[p.i:], w.lit) {
				p.i += len(w.lit)
				return w.v, nil
			}
		}
	}
	return nil, fmt.Errorf("unexpected %q", clip(p.s[p.i:]))
}

// sep consumes a ',' (then an optional closer is left for the caller) or
// reports whether the closer follows.
func (p *pyParser) sep(closer byte) bool {
	p.ws()
	if p.i < len(p.s) && p.s[p.i] == ',' {
		p.i++
		return true
	}
	return p.i < len(p.s) && p.s[p.i] == closer
}

// pyRepr renders a parsed literal back as text for reports.
func pyRepr(v any) string {
	var sb strings.Builder
	var walk func(v any, depth int)
	walk = func(v any, depth int) {
		if sb.Len() > 200 || depth > npyMaxDepth {
			return
		}
		switch t := v.(type) {
		case string:
			sb.WriteString("'" + t + "'")
		case int64:
			sb.WriteString(strconv.FormatInt(t, 10))
		case bool:
			sb.WriteString(strconv.FormatBool(t))
		case pyList, pyTuple:
			items, open, close := []any(nil), "[", "]"
			if l, ok := t.(pyList); ok {
				items = l
			} else {
				items, open, close = t.(pyTuple), "(", ")"
			}
			sb.WriteString(open)
			for i, x := range items {
				if i > 0 {
					sb.WriteString(", ")
				}
				walk(x, depth+1)
			}
			sb.WriteString(close)
		case pyDict:
			sb.WriteString("{...}")
		case nil:
			sb.WriteString("None")
		}
	}
	walk(v, 0)
	return sb.String()
}
