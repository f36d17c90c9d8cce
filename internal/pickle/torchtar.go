package pickle

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"strings"
)

// Layout names a file whose loader reads pickles interleaved with raw data.
type Layout string

// Layouts of the legacy torch.save tar format (PyTorch < 0.4): the
// "storages" member holds a pickled count, then per storage a pickled
// (key, location, storage type) and the storage's raw bytes (an 8-byte
// element count and the elements), then a pickled list of views; the
// "tensors" member a pickled count, then per tensor a pickled (key,
// storage id, type) and raw dimensions, strides and offset.
const (
	LayoutTorchTarStorages Layout = "torch-tar-storages"
	LayoutTorchTarTensors  Layout = "torch-tar-tensors"
)

// torchElementSize is the element size of the legacy storage classes.
var torchElementSize = map[string]int64{
	"FloatStorage": 4, "DoubleStorage": 8, "HalfStorage": 2, "BFloat16Storage": 2,
	"LongStorage": 8, "IntStorage": 4, "ShortStorage": 2, "CharStorage": 1, "ByteStorage": 1,
	"BoolStorage": 1, "ComplexFloatStorage": 8, "ComplexDoubleStorage": 16,
	"QInt8Storage": 1, "QUInt8Storage": 1, "QInt32Storage": 4, "QUInt4x2Storage": 1, "QUInt2x4Storage": 1,
}

// maxLayoutRecords bounds the records a layout count may claim.
const maxLayoutRecords = 1 << 20

// ScanLayout is Scan for a file that a loader reads as pickles interleaved
// with raw data (see Layout): each pickle is analysed and the raw data
// between them skipped by the lengths the loader would read.
func ScanLayout(ctx context.Context, r io.Reader, layout Layout, opts Options) (*Result, error) {
	d, err := loaded()
	if err != nil {
		return nil, err
	}
	m := newMachine(ctx, d, r, opts, 64<<10)
	m.opts.MaxStreams = max(m.opts.MaxStreams, maxLayoutRecords+2)
	var count int64 = -1
	m.afterStop = func(stream int, v value) (bool, error) {
		if stream == 0 {
			if v.k != vInt || !v.known || v.n < 0 || v.n > maxLayoutRecords {
				m.add("PKL-010", fmt.Sprintf("%s: the first pickle is not a record count", layout), m.src.off, "")
				return true, nil
			}
			count = v.n
			return false, nil
		}
		if int64(stream) > count {
			return layout == LayoutTorchTarTensors || int64(stream) > count+1, nil
		}
		err := m.skipRecord(layout, v)
		if err != nil {
			if b, ok := err.(*streamBreak); ok {
				m.add("PKL-008", fmt.Sprintf("%s record %d: %s", layout, stream, b.msg), b.off, "")
				m.res.Complete = false
				return true, nil
			}
			return true, err
		}
		return false, nil
	}
	if err := m.run(ctx); err != nil {
		return m.res, err
	}
	return m.res, nil
}

// skipRecord consumes the raw data after one record's pickle.
func (m *machine) skipRecord(layout Layout, args value) error {
	if args.k != vTuple || args.c == nil || len(args.c.items) != 3 {
		return &streamBreak{kind: breakMalformed, off: m.src.off, msg: "the record is not a 3-tuple"}
	}
	switch layout {
	case LayoutTorchTarStorages:
		st := args.c.items[2]
		size, ok := int64(0), false
		if st.k == vGlobal {
			name := st.s[strings.LastIndexByte(st.s, '.')+1:]
			size, ok = torchElementSize[name]
		}
		if !ok {
			return &streamBreak{kind: breakMalformed, off: m.src.off, msg: "the storage type is not a known storage class"}
		}
		b, err := m.src.readFixed(8, "storage size")
		if err != nil {
			return err
		}
		n := binary.LittleEndian.Uint64(b)
		if n > 1<<62/uint64(size) {
			return &streamBreak{kind: breakMalformed, off: m.src.off, msg: fmt.Sprintf("storage of %d elements", n)}
		}
		_, _, err = m.src.readCounted(int64(n)*size, 0, "storage data", true)
		return err
	case LayoutTorchTarTensors:
		b, err := m.src.readFixed(8, "tensor dimensions")
		if err != nil {
			return err
		}
		ndim := int64(int32(binary.LittleEndian.Uint32(b)))
		if ndim < 0 || ndim > 64 {
			return &streamBreak{kind: breakMalformed, off: m.src.off, msg: fmt.Sprintf("tensor with %d dimensions", ndim)}
		}
		_, _, err = m.src.readCounted(16*ndim+8, 0, "tensor sizes, strides and offset", true)
		return err
	}
	return fmt.Errorf("pickle: unknown layout %q", layout)
}
