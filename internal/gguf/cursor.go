package gguf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
)

// errTruncated means a read would go past the end of the file.
var errTruncated = errors.New("unexpected end of file")

const bufSize = 64 << 10

// cursor reads a file sequentially through a window buffer over an
// io.ReaderAt. It never reads past size and never allocates more than the
// caller asks for, and callers check lengths against remaining() first.
type cursor struct {
	r      io.ReaderAt
	size   int64
	off    int64
	buf    []byte
	bufOff int64
	bufLen int
}

func newCursor(r io.ReaderAt, size int64) *cursor {
	return &cursor{r: r, size: size, buf: make([]byte, bufSize), bufOff: -1}
}

// remaining is the number of bytes between the cursor and the end.
func (c *cursor) remaining() uint64 {
	if c.off >= c.size {
		return 0
	}
	return uint64(c.size - c.off)
}

func (c *cursor) readAt(p []byte, off int64) error {
	n, err := c.r.ReadAt(p, off)
	if n == len(p) {
		return nil
	}
	return readErr(err, off)
}

// readErr classifies a short read: the end of the data (the file is
// shorter than the size we were given) is truncation, anything else an
// I/O error.
func readErr(err error, off int64) error {
	if err == nil || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return errTruncated
	}
	return fmt.Errorf("reading at offset %d: %w", off, err)
}

// next returns the next n bytes (n <= bufSize) and advances. The slice is
// only valid until the next call.
func (c *cursor) next(n int) ([]byte, error) {
	if uint64(n) > c.remaining() {
		return nil, errTruncated
	}
	if c.bufOff < 0 || c.off < c.bufOff || c.off+int64(n) > c.bufOff+int64(c.bufLen) {
		want := int64(len(c.buf))
		if rest := c.size - c.off; rest < want {
			want = rest
		}
		got, err := c.r.ReadAt(c.buf[:want], c.off)
		if got < n {
			c.bufOff = -1
			return nil, readErr(err, c.off)
		}
		c.bufOff, c.bufLen = c.off, got
	}
	start := int(c.off - c.bufOff)
	c.off += int64(n)
	return c.buf[start : start+n], nil
}

func (c *cursor) u8() (uint8, error) {
	b, err := c.next(1)
	if err != nil {
		return 0, err
	}
	return b[0], nil
}

func (c *cursor) u32() (uint32, error) {
	b, err := c.next(4)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint32(b), nil
}

func (c *cursor) u64() (uint64, error) {
	b, err := c.next(8)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint64(b), nil
}

// skip advances n bytes without reading them.
func (c *cursor) skip(n uint64) error {
	if n > c.remaining() {
		return errTruncated
	}
	c.off += int64(n)
	return nil
}

// str reads n bytes (already checked against remaining by the caller) and
// returns at most the first keep of them as a string.
func (c *cursor) str(n uint64, keep int) (string, error) {
	if n > c.remaining() {
		return "", errTruncated
	}
	k := n
	if k > uint64(keep) {
		k = uint64(keep)
	}
	var s string
	if k <= bufSize {
		b, err := c.next(int(k))
		if err != nil {
			return "", err
		}
		s = string(b)
	} else {
		b := make([]byte, k) // k <= keep and <= bytes present in the file
		if err := c.readAt(b, c.off); err != nil {
			return "", err
		}
		c.off += int64(k)
		s = string(b)
	}
	return s, c.skip(n - k)
}

// alignUp rounds off up to a multiple of a; ok is false on overflow.
func alignUp(off uint64, a uint64) (uint64, bool) {
	if a == 0 {
		return off, true
	}
	r := off % a
	if r == 0 {
		return off, true
	}
	pad := a - r
	if off > math.MaxUint64-pad {
		return 0, false
	}
	return off + pad, true
}
