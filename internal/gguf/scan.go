package gguf

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"slices"
	"strings"
	"sync"

	"github.com/llmfence/llmfence/internal/classify"
	"github.com/llmfence/llmfence/internal/verdict"
)

// Magic is the first four bytes of every GGUF file.
const Magic = "GGUF"

// DefaultAlignment is the tensor data alignment when general.alignment is
// absent.
const DefaultAlignment = 32

// Limits of the format that do not depend on Options.
const (
	maxKeyLen     = 65535
	maxTensorName = 64
	maxDims       = 4
	minKVSize     = 8 + 4 + 1     // empty key, type, one-byte value
	minTensorSize = 8 + 4 + 4 + 8 // empty name, n_dims 0, type, offset
	// overflowCount: a count at or above this wraps 64 bits when a loader
	// multiplies it by the size of its per-entry structure (up to 64
	// bytes); no real file comes near it.
	overflowCount = math.MaxUint64 / 64
	keepString    = 1 << 20 // string values kept in KV.Value
	maxHead       = 16      // array elements kept in Array.Head
	maxHeadString = 256     // bytes kept of a string array element
	maxPerID      = 20      // findings of one ID reported per file
)

// Options bound the parse. Zero fields take the defaults.
type Options struct {
	MaxKV      uint64 // metadata pairs (default 65,536)
	MaxTensors uint64 // tensor descriptions (default 1,048,576)
	MaxString  uint64 // bytes in one metadata string (default 16 MiB)
	MaxArray   uint64 // elements in one array (default 2^26)
	MaxDepth   int    // array nesting depth, 1 = no nesting (default 4)
	// Classifier judges the model's lineage; nil uses classify.New().
	Classifier *classify.Classifier
}

func (o Options) withDefaults() Options {
	if o.MaxKV == 0 {
		o.MaxKV = 1 << 16
	}
	if o.MaxTensors == 0 {
		o.MaxTensors = 1 << 20
	}
	if o.MaxString == 0 {
		o.MaxString = 16 << 20
	}
	if o.MaxArray == 0 {
		o.MaxArray = 1 << 26
	}
	if o.MaxDepth <= 0 {
		o.MaxDepth = 4
	}
	return o
}

var defaultClassifier = sync.OnceValues(classify.New)

// Looks reports whether head (the first bytes of a file) starts with the
// GGUF magic.
func Looks(head []byte) bool { return bytes.HasPrefix(head, []byte(Magic)) }

// errStop ends the parse after a fatal finding was recorded.
var errStop = errors.New("stop")

type scanner struct {
	ctx    context.Context
	c      *cursor
	opts   Options
	d      *data
	f      *File
	found  []verdict.Finding
	perID  map[string]int
	keys   map[string]bool
	nCheck int
}

// Scan checks the GGUF file of the given size readable through r and
// summarises it. Problems with the file are findings (verdict invalid or
// malicious), never errors; the error is for I/O failures and a cancelled
// ctx. The File holds whatever could be read even when findings stopped
// the parse early. r is only read, and tensor data is never read at all.
func Scan(ctx context.Context, r io.ReaderAt, size int64, opts Options) (*File, []verdict.Finding, error) {
	d, err := loadData()
	if err != nil {
		return nil, nil, fmt.Errorf("loading GGUF checks: %w", err)
	}
	s := &scanner{
		ctx:   ctx,
		c:     newCursor(r, size),
		opts:  opts.withDefaults(),
		d:     d,
		f:     &File{Alignment: DefaultAlignment},
		perID: map[string]int{},
		keys:  map[string]bool{},
	}
	err = s.header()
	switch {
	case err == nil:
		s.f.Complete = true
	case errors.Is(err, errTruncated):
		s.add("GGUF-003", fmt.Sprintf("the file ends at byte %d, in the middle of the header or tensor descriptions", size), s.c.off)
	case errors.Is(err, errStop):
	default:
		return s.f, s.findings(), fmt.Errorf("inspecting GGUF file: %w", err)
	}
	if s.f.Version != 0 {
		s.afterHeader(size)
		if err := s.summarise(); err != nil {
			return s.f, s.findings(), err
		}
	}
	return s.f, s.findings(), nil
}

// add records a finding, at most maxPerID per ID.
func (s *scanner) add(id, detail string, off int64) {
	s.perID[id]++
	if s.perID[id] > maxPerID {
		return
	}
	s.found = append(s.found, s.d.cat.New(id, detail, off))
}

// findings returns the findings, noting how many of each ID were dropped.
func (s *scanner) findings() []verdict.Finding {
	out := slices.Clone(s.found)
	for i := len(out) - 1; i >= 0; i-- {
		id := out[i].ID
		if n := s.perID[id]; n > maxPerID {
			out[i].Detail += fmt.Sprintf(" (and %d more like it)", n-maxPerID)
			s.perID[id] = maxPerID
		}
	}
	return out
}

// tick checks for cancellation every so often in long loops.
func (s *scanner) tick() error {
	s.nCheck++
	if s.nCheck%1024 == 0 {
		if err := s.ctx.Err(); err != nil {
			return err
		}
	}
	return nil
}

func (s *scanner) header() error {
	if err := s.ctx.Err(); err != nil {
		return err
	}
	head, err := s.c.next(4)
	if err != nil {
		if errors.Is(err, errTruncated) {
			s.add("GGUF-001", "the file is shorter than the 4-byte GGUF magic", 0)
			return errStop
		}
		return err
	}
	if string(head) != Magic {
		s.add("GGUF-001", fmt.Sprintf("the file starts with %q, not %q", head, Magic), 0)
		return errStop
	}
	ver, err := s.c.u32()
	if err != nil {
		return err
	}
	switch {
	case ver == 2 || ver == 3:
		s.f.Version = ver
	case ver == 1:
		s.add("GGUF-002", "version 1 (32-bit counts) is obsolete and no longer read by llama.cpp", 4)
		return errStop
	case bits.ReverseBytes32(ver) == 2 || bits.ReverseBytes32(ver) == 3:
		s.add("GGUF-002", fmt.Sprintf("version %d in big-endian byte order; this checker reads little-endian files only", bits.ReverseBytes32(ver)), 4)
		return errStop
	default:
		s.add("GGUF-002", fmt.Sprintf("version %d", ver), 4)
		return errStop
	}
	nTensors, err := s.c.u64()
	if err != nil {
		return err
	}
	nKV, err := s.c.u64()
	if err != nil {
		return err
	}
	if err := s.checkCount(nTensors, minTensorSize, s.opts.MaxTensors, "GGUF-004", "tensor", "CVE-2024-23605 class, tensor count", 8); err != nil {
		return err
	}
	if err := s.checkCount(nKV, minKVSize, s.opts.MaxKV, "GGUF-006", "metadata key/value", "CVE-2024-23605, n_kv", 16); err != nil {
		return err
	}
	// Both tables share the remaining bytes.
	need, ok := addMul(nTensors*minTensorSize, nKV, minKVSize)
	if !ok || need > s.c.remaining() {
		s.add("GGUF-006", fmt.Sprintf("%d tensors and %d key/value pairs need at least %d bytes; %d remain", nTensors, nKV, need, s.c.remaining()), 16)
		return errStop
	}
	for i := uint64(0); i < nKV; i++ {
		if err := s.ctx.Err(); err != nil {
			return err
		}
		if err := s.kv(); err != nil {
			return err
		}
	}
	s.f.Tensors = make([]Tensor, 0, min64(nTensors, 4096))
	names := map[string]bool{}
	for i := uint64(0); i < nTensors; i++ {
		if err := s.tick(); err != nil {
			return err
		}
		t, err := s.tensor()
		if err != nil {
			return err
		}
		if names[t.Name] {
			s.add("GGUF-030", fmt.Sprintf("tensor %q is described twice", t.Name), t.InfoAt)
		}
		names[t.Name] = true
		s.f.Tensors = append(s.f.Tensors, t)
	}
	return nil
}

// addMul returns a + b*c, ok false on overflow.
func addMul(a, b, c uint64) (uint64, bool) {
	hi, lo := bits.Mul64(b, c)
	if hi != 0 {
		return 0, false
	}
	sum, carry := bits.Add64(a, lo, 0)
	return sum, carry == 0
}

func (s *scanner) checkCount(n, minSize, limit uint64, id, what, cve string, off int64) error {
	switch {
	case n >= overflowCount:
		s.add("GGUF-005", fmt.Sprintf("%s count %d (0x%x) wraps 64-bit size arithmetic (%s overflow)", what, n, n, cve), off)
		return errStop
	case n > s.c.remaining()/minSize:
		s.add(id, fmt.Sprintf("%s count %d needs at least %d bytes each, but only %d bytes remain", what, n, minSize, s.c.remaining()), off)
		return errStop
	case n > limit:
		s.add(id, fmt.Sprintf("%s count %d is above the limit of %d", what, n, limit), off)
		return errStop
	}
	return nil
}

// readLen reads a string length and checks it against the file and a
// limit. tooLong is the finding for a length within the file but above
// limit (empty: GGUF-013); the string is then skipped and skipped is true.
func (s *scanner) readString(limit uint64, keep int, what, tooLong string) (str string, skipped bool, err error) {
	at := s.c.off
	n, err := s.c.u64()
	if err != nil {
		return "", false, err
	}
	if n >= 1<<63 {
		s.add("GGUF-005", fmt.Sprintf("%s length %d (0x%x) overflows signed and length+1 arithmetic (CVE-2025-53630 class)", what, n, n), at)
		return "", false, errStop
	}
	if n > s.c.remaining() {
		if n <= limit {
			// A plausible length: most likely an incomplete file.
			s.add("GGUF-003", fmt.Sprintf("%s length %d, but only %d bytes remain in the file", what, n, s.c.remaining()), at)
		} else {
			s.add("GGUF-013", fmt.Sprintf("%s length %d, but only %d bytes remain in the file", what, n, s.c.remaining()), at)
		}
		return "", false, errStop
	}
	if n > limit {
		if tooLong == "" {
			tooLong = "GGUF-013"
		}
		s.add(tooLong, fmt.Sprintf("%s length %d is above the limit of %d", what, n, limit), at)
		return "", true, s.c.skip(n)
	}
	str, err = s.c.str(n, keep)
	return str, false, err
}

func (s *scanner) kv() error {
	at := s.c.off
	key, skipped, err := s.readString(maxKeyLen, maxKeyLen, "metadata key", "GGUF-010")
	if err != nil {
		return err
	}
	if !skipped {
		s.checkKey(key, at)
	}
	tv, err := s.c.u32()
	if err != nil {
		return err
	}
	t := ValueType(tv)
	if !t.Valid() {
		s.add("GGUF-014", fmt.Sprintf("key %q has value type %d", clip(key, 80), tv), s.c.off-4)
		return errStop
	}
	kv := KV{Key: key, Type: t, Offset: at}
	kv.Value, kv.Truncated, err = s.value(t, 1, key)
	if err != nil {
		return err
	}
	if skipped {
		return nil
	}
	if s.keys[key] {
		s.add("GGUF-019", fmt.Sprintf("key %q appears more than once", clip(key, 80)), at)
	}
	s.keys[key] = true
	s.f.KV = append(s.f.KV, kv)
	return nil
}

// checkKey applies the spec's key rules.
func (s *scanner) checkKey(key string, at int64) {
	if key == "" {
		s.add("GGUF-010", "empty key", at)
		return
	}
	for i := 0; i < len(key); i++ {
		if b := key[i]; b <= ' ' || b >= 0x7f {
			s.add("GGUF-011", fmt.Sprintf("key %q contains byte 0x%02x at position %d", clip(key, 80), b, i), at)
			return
		}
	}
	conventional := true
	for seg := range strings.SplitSeq(key, ".") {
		if seg == "" {
			s.add("GGUF-011", fmt.Sprintf("key %q has an empty segment", clip(key, 80)), at)
			return
		}
		for i := 0; i < len(seg); i++ {
			b := seg[i]
			if !(b >= 'a' && b <= 'z' || b >= '0' && b <= '9' || b == '_' || b == '-') {
				conventional = false
			}
		}
	}
	if !conventional {
		s.add("GGUF-012", fmt.Sprintf("key %q is not dotted lower_snake_case", clip(key, 80)), at)
	}
}

// value reads one value of type t at nesting depth depth.
func (s *scanner) value(t ValueType, depth int, key string) (any, bool, error) {
	at := s.c.off
	switch t {
	case TypeString:
		str, skipped, err := s.readString(s.opts.MaxString, keepString, fmt.Sprintf("value of %q:", clip(key, 80)), "")
		if err != nil || skipped {
			return nil, false, err
		}
		return str, s.c.off-at-8 > int64(len(str)), nil
	case TypeArray:
		return s.array(depth, key)
	case TypeBool:
		b, err := s.c.u8()
		if err != nil {
			return nil, false, err
		}
		if b > 1 {
			s.add("GGUF-017", fmt.Sprintf("key %q has BOOL value %d", clip(key, 80), b), at)
		}
		return b != 0, false, nil
	}
	b, err := s.c.next(int(t.fixedSize()))
	if err != nil {
		return nil, false, err
	}
	return decodeScalar(t, b), false, nil
}

func decodeScalar(t ValueType, b []byte) any {
	var u uint64
	for i := len(b) - 1; i >= 0; i-- {
		u = u<<8 | uint64(b[i])
	}
	switch t {
	case TypeInt8:
		return int64(int8(u))
	case TypeInt16:
		return int64(int16(u))
	case TypeInt32:
		return int64(int32(u))
	case TypeInt64:
		return int64(u)
	case TypeFloat32:
		return float64(math.Float32frombits(uint32(u)))
	case TypeFloat64:
		return math.Float64frombits(u)
	case TypeBool:
		return u != 0
	}
	return u
}

func (s *scanner) array(depth int, key string) (any, bool, error) {
	at := s.c.off
	ev, err := s.c.u32()
	if err != nil {
		return nil, false, err
	}
	et := ValueType(ev)
	if !et.Valid() {
		s.add("GGUF-014", fmt.Sprintf("array %q has element type %d", clip(key, 80), ev), at)
		return nil, false, errStop
	}
	n, err := s.c.u64()
	if err != nil {
		return nil, false, err
	}
	if et == TypeArray && depth+1 > s.opts.MaxDepth {
		s.add("GGUF-016", fmt.Sprintf("array %q nests deeper than %d levels", clip(key, 80), s.opts.MaxDepth), at)
		return nil, false, errStop
	}
	min := et.minSize()
	switch {
	case n >= math.MaxUint64/16:
		s.add("GGUF-005", fmt.Sprintf("array %q claims %d (0x%x) elements, which wraps 64-bit size arithmetic (CVE-2025-53630 class)", clip(key, 80), n, n), at+4)
		return nil, false, errStop
	case n > s.c.remaining()/min:
		s.add("GGUF-015", fmt.Sprintf("array %q claims %d %s elements, but only %d bytes remain", clip(key, 80), n, et, s.c.remaining()), at+4)
		return nil, false, errStop
	case n > s.opts.MaxArray:
		s.add("GGUF-015", fmt.Sprintf("array %q has %d elements, above the limit of %d", clip(key, 80), n, s.opts.MaxArray), at+4)
		return nil, false, errStop
	}
	arr := Array{Elem: et, Len: n}
	switch {
	case et == TypeBool:
		bad := 0
		for i := uint64(0); i < n; {
			if err := s.tick(); err != nil {
				return nil, false, err
			}
			chunk := min64(n-i, bufSize)
			b, err := s.c.next(int(chunk))
			if err != nil {
				return nil, false, err
			}
			for j, v := range b {
				if v > 1 && bad == 0 {
					s.add("GGUF-017", fmt.Sprintf("array %q element %d has BOOL value %d", clip(key, 80), i+uint64(j), v), s.c.off-int64(len(b))+int64(j))
				}
				if v > 1 {
					bad++
				}
				if i+uint64(j) < maxHead {
					arr.Head = append(arr.Head, v != 0)
				}
			}
			i += chunk
		}
	case et.fixedSize() > 0:
		sz := et.fixedSize()
		keep := min64(n, maxHead)
		for i := uint64(0); i < keep; i++ {
			b, err := s.c.next(int(sz))
			if err != nil {
				return nil, false, err
			}
			arr.Head = append(arr.Head, decodeScalar(et, b))
		}
		if err := s.c.skip((n - keep) * sz); err != nil { // n*sz <= remaining, checked above
			return nil, false, err
		}
	case et == TypeString:
		for i := uint64(0); i < n; i++ {
			if err := s.tick(); err != nil {
				return nil, false, err
			}
			keep := 0
			if i < maxHead {
				keep = maxHeadString
			}
			str, _, err := s.readString(s.opts.MaxString, keep, fmt.Sprintf("element %d of %q:", i, clip(key, 80)), "")
			if err != nil {
				return nil, false, err
			}
			if i < maxHead {
				arr.Head = append(arr.Head, str)
			}
		}
	default: // nested array
		for i := uint64(0); i < n; i++ {
			if err := s.tick(); err != nil {
				return nil, false, err
			}
			if _, _, err := s.array(depth+1, key); err != nil {
				return nil, false, err
			}
		}
	}
	return arr, false, nil
}

func min64(a, b uint64) uint64 {
	if a < b {
		return a
	}
	return b
}

func (s *scanner) tensor() (Tensor, error) {
	t := Tensor{InfoAt: s.c.off}
	name, skipped, err := s.readString(maxTensorName, maxTensorName, "tensor name", "GGUF-020")
	if err != nil {
		return t, err
	}
	t.Name = name
	if skipped {
		t.Name = fmt.Sprintf("<tensor at %d>", t.InfoAt)
	} else if name == "" {
		s.add("GGUF-020", fmt.Sprintf("tensor described at byte %d has an empty name", t.InfoAt), t.InfoAt)
	}
	nd, err := s.c.u32()
	if err != nil {
		return t, err
	}
	if nd > maxDims {
		s.add("GGUF-021", fmt.Sprintf("tensor %q claims %d dimensions; ggml allows %d (CVE-2024-21802)", clip(t.Name, 80), nd, maxDims), s.c.off-4)
		return t, errStop
	}
	elements, valid, overflow := uint64(1), true, false
	for i := uint32(0); i < nd; i++ {
		d, err := s.c.u64()
		if err != nil {
			return t, err
		}
		t.Dims = append(t.Dims, d)
		switch {
		case d == 0:
			s.add("GGUF-022", fmt.Sprintf("tensor %q dimension %d is 0", clip(t.Name, 80), i), s.c.off-8)
			valid = false
		case d > math.MaxInt64:
			s.add("GGUF-023", fmt.Sprintf("tensor %q dimension %d is %d, beyond int64 (CVE-2024-21802)", clip(t.Name, 80), i, d), s.c.off-8)
			valid, overflow = false, true
		case !overflow:
			hi, lo := bits.Mul64(elements, d)
			if hi != 0 || lo > math.MaxInt64 {
				overflow = true
			}
			elements = lo
		}
	}
	if overflow && valid {
		s.add("GGUF-023", fmt.Sprintf("tensor %q has dimensions %v whose product overflows int64 (CVE-2024-21802)", clip(t.Name, 80), t.Dims), t.InfoAt)
		valid = false
	}
	ty, err := s.c.u32()
	if err != nil {
		return t, err
	}
	t.Type = ty
	gt, known := s.d.tab.types[ty]
	if !known {
		s.add("GGUF-024", fmt.Sprintf("tensor %q has ggml type %d", clip(t.Name, 80), ty), s.c.off-4)
	} else {
		t.TypeName = gt.Name
	}
	if t.Offset, err = s.c.u64(); err != nil {
		return t, err
	}
	if !valid || !known {
		return t, nil
	}
	t.Elements = elements
	row := uint64(1)
	if nd > 0 {
		row = t.Dims[0]
	}
	if row%gt.Block != 0 {
		s.add("GGUF-025", fmt.Sprintf("tensor %q row of %d elements is not a multiple of the %s block size %d", clip(t.Name, 80), row, gt.Name, gt.Block), t.InfoAt)
		return t, nil
	}
	hi, lo := bits.Mul64(elements/gt.Block, gt.Size)
	if hi != 0 || lo > math.MaxInt64 {
		s.add("GGUF-026", fmt.Sprintf("tensor %q: %d elements of %s need more than 2^63 bytes (CVE-2025-53630)", clip(t.Name, 80), elements, gt.Name), t.InfoAt)
		return t, nil
	}
	t.Size = lo
	return t, nil
}

// afterHeader checks alignment, tensor placement and key types, once the
// header has been read as far as possible.
func (s *scanner) afterHeader(size int64) {
	f := s.f
	if kv, ok := f.Lookup("general.alignment"); ok && kv.Type == TypeUint32 {
		a, _ := kv.Value.(uint64)
		if a == 0 || a%8 != 0 || a&(a-1) != 0 {
			s.add("GGUF-031", fmt.Sprintf("general.alignment is %d; it must be a non-zero power of two and a multiple of 8 (using %d)", a, DefaultAlignment), kv.Offset)
		} else {
			f.Alignment = uint32(a)
		}
	}
	arch := ""
	if kv, ok := f.Lookup("general.architecture"); ok {
		arch, _ = kv.Value.(string)
	}
	for _, kv := range f.KV {
		want := s.d.tab.expectedTypes(kv.Key, arch)
		if want == nil || typeMatches(kv, want) {
			continue
		}
		got := kv.Type.String()
		if a, ok := kv.Value.(Array); ok {
			got = "array:" + a.Elem.String()
		}
		s.add("GGUF-018", fmt.Sprintf("key %q is %s; the spec wants %s", clip(kv.Key, 80), got, strings.Join(want, " or ")), kv.Offset)
	}
	if !f.Complete {
		return
	}
	if arch == "" {
		s.add("GGUF-033", "no general.architecture string", -1)
	}
	align := uint64(f.Alignment)
	data, ok := alignUp(uint64(s.c.off), align)
	if !ok {
		return
	}
	f.DataOffset = int64(data)
	type span struct {
		start, end uint64
		name       string
	}
	var spans []span
	placed := true
	for _, t := range f.Tensors {
		if t.Offset%align != 0 {
			s.add("GGUF-027", fmt.Sprintf("tensor %q offset %d is not a multiple of the alignment %d", clip(t.Name, 80), t.Offset, align), t.InfoAt)
			placed = false
		}
		if t.Size == 0 {
			placed = false
			continue
		}
		start, ok1 := addMul(data, t.Offset, 1)
		end, ok2 := addMul(start, t.Size, 1)
		if !ok1 || !ok2 || end > uint64(size) {
			s.add("GGUF-028", fmt.Sprintf("tensor %q data at offset %d+%d, %d bytes, ends past the end of the %d-byte file", clip(t.Name, 80), data, t.Offset, t.Size, size), t.InfoAt)
			placed = false
			continue
		}
		spans = append(spans, span{start, end, t.Name})
	}
	slices.SortFunc(spans, func(a, b span) int {
		switch {
		case a.start < b.start:
			return -1
		case a.start > b.start:
			return 1
		}
		return strings.Compare(a.name, b.name)
	})
	covered, uncovered := data, uint64(0)
	var lastName string
	for _, sp := range spans {
		if sp.start < covered && lastName != "" {
			s.add("GGUF-029", fmt.Sprintf("tensor %q (bytes %d-%d) overlaps tensor %q", clip(sp.name, 80), sp.start, sp.end, clip(lastName, 80)), int64(sp.start))
			placed = false
		} else if gap := sp.start - covered; sp.start > covered && gap >= align {
			uncovered += gap
		}
		if sp.end > covered {
			covered, lastName = sp.end, sp.name
		}
	}
	if !placed {
		return
	}
	if len(f.Tensors) == 0 {
		covered = uint64(s.c.off)
	}
	if uint64(size) > covered && uint64(size)-covered >= align {
		uncovered += uint64(size) - covered
	}
	if uncovered > 0 {
		s.add("GGUF-032", fmt.Sprintf("%d bytes of the data section are outside every tensor and its padding", uncovered), int64(covered))
	}
}

func typeMatches(kv KV, want []string) bool {
	for _, w := range want {
		ts, _ := parseTypeName(w)
		if ts.t != kv.Type {
			continue
		}
		if ts.t != TypeArray {
			return true
		}
		if a, ok := kv.Value.(Array); ok && a.Elem == ts.elem {
			return true
		}
	}
	return false
}

// clip shortens s for a finding's detail.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
