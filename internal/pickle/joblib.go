package pickle

import (
	"fmt"
	"math/bits"
	"strconv"
	"strings"
)

// joblibWrapper is the class joblib.dump writes in place of each NumPy
// array. joblib's unpickler, on the BUILD that sets its state, reads the
// array's raw bytes straight from the file — not as opcodes — and then
// goes on unpickling after them (an object array is a whole nested pickle
// instead). The stream is only well-formed when read the same way.
const joblibWrapper = "joblib.numpy_pickle.NumpyArrayWrapper"

// maxJoblibNesting bounds object arrays inside object arrays.
const maxJoblibNesting = 4

// joblibArray skips the array data that follows a NumpyArrayWrapper's
// BUILD, sized from its state (shape, dtype, alignment padding), or runs
// the nested pickle of an object array.
func (m *machine) joblibArray(in *instr, state value) error {
	shape, okS := state.dictGet("shape")
	dtype, okD := state.dictGet("dtype")
	if !okS || !okD {
		return m.malformed(in, "joblib array wrapper without a known shape and dtype")
	}
	obj, itemSize, ok := joblibDType(dtype)
	if !ok {
		return m.malformed(in, "joblib array wrapper with a dtype that cannot be sized")
	}
	if obj {
		return m.nestedStream(in)
	}
	count, ok := joblibCount(shape)
	if !ok {
		return m.malformed(in, "joblib array wrapper with a shape that is not a tuple of non-negative integers")
	}
	hi, size := bits.Mul64(count, uint64(itemSize))
	if hi != 0 || size > 1<<62 {
		return m.malformed(in, "joblib array of %d items of %d bytes is larger than any file", count, itemSize)
	}
	if _, aligned := state.dictGet("numpy_array_alignment_bytes"); aligned {
		pad, err := m.src.readFixed(1, "joblib alignment padding")
		if err != nil {
			return err
		}
		if _, _, err := m.src.readCounted(int64(pad[0]), 0, "joblib alignment padding", true); err != nil {
			return err
		}
	}
	if _, _, err := m.src.readCounted(int64(size), 0, "joblib array data", true); err != nil {
		return err
	}
	if m.trace != nil {
		m.note = fmt.Sprintf("joblib array data: %d bytes skipped", size)
	}
	return nil
}

// nestedStream runs the complete pickle stream joblib unpickles in place of
// an object array, then resumes the outer stream where it left off.
func (m *machine) nestedStream(in *instr) error {
	if m.nested >= maxJoblibNesting {
		return m.malformed(in, "joblib object arrays nested more than %d deep", maxJoblibNesting)
	}
	saved := struct {
		stack          []value
		marks          int
		memo           map[int64]value
		memoFull       bool
		proto          int
		imports, calls map[int32]int
	}{m.stack, m.marks, m.memo, m.memoFull, m.streamProto, m.nestedImports, m.nestedCalls}
	m.stack, m.marks, m.memo, m.memoFull = nil, 0, map[int64]value{}, false
	m.nestedImports, m.nestedCalls = nil, nil
	m.nested++
	end, err := m.runStream(m.src.ctx)
	m.nested--
	m.flushNestedInto(saved.imports, saved.calls)
	m.stack, m.marks, m.memo, m.memoFull = saved.stack, saved.marks, saved.memo, saved.memoFull
	m.streamProto = max(m.streamProto, saved.proto)
	if err != nil {
		return err
	}
	switch end {
	case endStop:
		return nil
	case endLimit:
		return errLimit
	case endEmpty:
		return m.src.fail(breakTruncated, m.src.off, "data ends where joblib expects the pickle of an object array")
	}
	return m.brk
}

// flushNestedInto merges the embedded-loader counts of a nested stream
// into the outer stream's.
func (m *machine) flushNestedInto(imports, calls map[int32]int) {
	for g, n := range m.nestedImports {
		if imports == nil {
			imports = map[int32]int{}
		}
		imports[g] += n
	}
	for g, n := range m.nestedCalls {
		if calls == nil {
			calls = map[int32]int{}
		}
		calls[g] += n
	}
	m.nestedImports, m.nestedCalls = imports, calls
}

// joblibDType reads a pickled numpy.dtype: numpy.dtype(descr, align, copy)
// then BUILD (version, byteorder, subdescr, names, fields, elsize,
// alignment, flags). It says whether the dtype holds Python objects and
// the size of one item.
func joblibDType(v value) (object bool, size int64, ok bool) {
	if v.k != vCall || v.c == nil || v.c.fn != "numpy.dtype" {
		return false, 0, false
	}
	args := v.c.args
	if args.k != vTuple || args.c == nil || len(args.c.items) == 0 || args.c.items[0].k != vStr || !args.c.items[0].known {
		return false, 0, false
	}
	descr := args.c.items[0].s
	st := v.c.state
	if st.k == vTuple && st.c != nil && len(st.c.items) >= 8 {
		if f := st.c.items[7]; f.k == vInt && f.known && f.n&1 != 0 { // NPY_ITEM_HASOBJECT
			return true, 0, true
		}
		if e := st.c.items[5]; e.k == vInt && e.known && e.n > 0 {
			return strings.HasPrefix(strings.TrimLeft(descr, "<>|="), "O"), e.n, true
		}
	}
	t := strings.TrimLeft(descr, "<>|=")
	if t == "" {
		return false, 0, false
	}
	if t[0] == 'O' {
		return true, 0, true
	}
	if t == "?" {
		return false, 1, true
	}
	num := t[1:]
	if i := strings.IndexByte(num, '['); i >= 0 {
		num = num[:i]
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n <= 0 || n > 1<<32 {
		return false, 0, false
	}
	switch t[0] {
	case 'b', 'i', 'u', 'f', 'c', 'S', 'V', 'M', 'm', 'a':
		return false, n, true
	case 'U':
		return false, 4 * n, true
	}
	return false, 0, false
}

// joblibCount is the number of items of a shape: a tuple of known
// non-negative integers (or one integer).
func joblibCount(shape value) (uint64, bool) {
	if shape.k == vInt && shape.known && shape.n >= 0 {
		return uint64(shape.n), true
	}
	if shape.k != vTuple || shape.c == nil {
		return 0, false
	}
	count := uint64(1)
	for _, d := range shape.c.items {
		if d.k != vInt || !d.known || d.n < 0 {
			return 0, false
		}
		hi, lo := bits.Mul64(count, uint64(d.n))
		if hi != 0 {
			return 0, false
		}
		count = lo
	}
	return count, true
}
