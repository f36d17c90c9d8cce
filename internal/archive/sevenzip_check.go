package archive

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"

	"github.com/ulikunitz/xz/lzma"
)

// The 7z library trusts the counts in the archive header (up to 2^32) when
// it sizes slices, so a 50-byte file can make it allocate hundreds of
// gigabytes. precheck7z walks the header grammar first — decoding an
// LZMA/LZMA2-compressed header itself, under a size limit — and refuses
// archives whose counts exceed the configured bounds before the library
// sees them.

const (
	max7zHeader = 64 << 20 // largest (decoded) header accepted
	max7zCoders = 64
)

var errBounds7z = errors.New("7z header counts exceed the limits")

// sevenReader reads the 7z header grammar from a byte slice.
type sevenReader struct {
	b     []byte
	i     int
	limit uint64 // most items any count may claim
}

var errShort7z = errors.New("7z header is truncated")

func (r *sevenReader) byte() (byte, error) {
	if r.i >= len(r.b) {
		return 0, errShort7z
	}
	c := r.b[r.i]
	r.i++
	return c, nil
}

func (r *sevenReader) number() (uint64, error) {
	first, err := r.byte()
	if err != nil {
		return 0, err
	}
	mask := byte(0x80)
	var v uint64
	for i := 0; i < 8; i++ {
		if first&mask == 0 {
			high := uint64(first & (mask - 1))
			return v | high<<(8*i), nil
		}
		c, err := r.byte()
		if err != nil {
			return 0, err
		}
		v |= uint64(c) << (8 * i)
		mask >>= 1
	}
	return v, nil
}

// count reads a number used to size something and bounds it.
func (r *sevenReader) count(limit uint64) (uint64, error) {
	v, err := r.number()
	if err != nil {
		return 0, err
	}
	if v > limit {
		return 0, fmt.Errorf("%w: %d items claimed, limit %d", errBounds7z, v, limit)
	}
	return v, nil
}

func (r *sevenReader) skip(n uint64) error {
	if n > uint64(len(r.b)-r.i) {
		return errShort7z
	}
	r.i += int(n)
	return nil
}

// bits skips a bit vector of n items, optionally preceded by "all defined".
func (r *sevenReader) digests(n uint64) error {
	all, err := r.byte()
	if err != nil {
		return err
	}
	defined := n
	if all == 0 {
		defined = 0
		for i := uint64(0); i < n; i += 8 {
			c, err := r.byte()
			if err != nil {
				return err
			}
			for j := uint64(0); j < 8 && i+j < n; j++ {
				if c&(0x80>>j) != 0 {
					defined++
				}
			}
		}
	}
	return r.skip(4 * defined)
}

type folder7z struct {
	outs    uint64
	coderID []byte
	props   []byte
}

// streamsInfo walks a StreamsInfo block and returns its folders and pack
// stream sizes (for decoding an encoded header).
func (r *sevenReader) streamsInfo() (folders []folder7z, packPos uint64, packSizes []uint64, unpack []uint64, err error) {
	var numPack uint64
	for {
		id, err := r.byte()
		if err != nil {
			return nil, 0, nil, nil, err
		}
		switch id {
		case 0x00:
			return folders, packPos, packSizes, unpack, nil
		case 0x06: // PackInfo
			if packPos, err = r.number(); err != nil {
				return nil, 0, nil, nil, err
			}
			if numPack, err = r.count(r.limit); err != nil {
				return nil, 0, nil, nil, err
			}
			for {
				p, err := r.byte()
				if err != nil {
					return nil, 0, nil, nil, err
				}
				if p == 0x00 {
					break
				}
				switch p {
				case 0x09:
					for i := uint64(0); i < numPack; i++ {
						s, err := r.number()
						if err != nil {
							return nil, 0, nil, nil, err
						}
						packSizes = append(packSizes, s)
					}
				case 0x0A:
					if err := r.digests(numPack); err != nil {
						return nil, 0, nil, nil, err
					}
				default:
					return nil, 0, nil, nil, fmt.Errorf("unexpected property %#x in pack info", p)
				}
			}
		case 0x07: // UnpackInfo
			if folders, unpack, err = r.unpackInfo(); err != nil {
				return nil, 0, nil, nil, err
			}
		case 0x08: // SubStreamsInfo
			if err := r.subStreams(uint64(len(folders))); err != nil {
				return nil, 0, nil, nil, err
			}
		default:
			return nil, 0, nil, nil, fmt.Errorf("unexpected property %#x in streams info", id)
		}
	}
}

func (r *sevenReader) unpackInfo() ([]folder7z, []uint64, error) {
	id, err := r.byte()
	if err != nil {
		return nil, nil, err
	}
	if id != 0x0B {
		return nil, nil, fmt.Errorf("expected folder list, got %#x", id)
	}
	n, err := r.count(r.limit)
	if err != nil {
		return nil, nil, err
	}
	if ext, err := r.byte(); err != nil || ext != 0 {
		return nil, nil, errors.New("external folder data is not supported")
	}
	var folders []folder7z
	var totalOut uint64
	for i := uint64(0); i < n; i++ {
		f, err := r.folder()
		if err != nil {
			return nil, nil, err
		}
		totalOut += f.outs
		if totalOut > r.limit*max7zCoders {
			return nil, nil, errBounds7z
		}
		folders = append(folders, f)
	}
	var unpack []uint64
	for {
		id, err := r.byte()
		if err != nil {
			return nil, nil, err
		}
		switch id {
		case 0x00:
			return folders, unpack, nil
		case 0x0C:
			for i := uint64(0); i < totalOut; i++ {
				s, err := r.number()
				if err != nil {
					return nil, nil, err
				}
				unpack = append(unpack, s)
			}
		case 0x0A:
			if err := r.digests(n); err != nil {
				return nil, nil, err
			}
		default:
			return nil, nil, fmt.Errorf("unexpected property %#x in unpack info", id)
		}
	}
}

func (r *sevenReader) folder() (folder7z, error) {
	var f folder7z
	coders, err := r.count(max7zCoders)
	if err != nil || coders == 0 {
		return f, errors.Join(err, errBounds7z)
	}
	var ins uint64
	for c := uint64(0); c < coders; c++ {
		flag, err := r.byte()
		if err != nil {
			return f, err
		}
		idLen := uint64(flag & 0x0F)
		if r.i+int(idLen) > len(r.b) {
			return f, errShort7z
		}
		id := r.b[r.i : r.i+int(idLen)]
		r.i += int(idLen)
		in, out := uint64(1), uint64(1)
		if flag&0x10 != 0 {
			if in, err = r.count(max7zCoders); err != nil {
				return f, err
			}
			if out, err = r.count(max7zCoders); err != nil {
				return f, err
			}
		}
		var props []byte
		if flag&0x20 != 0 {
			n, err := r.number()
			if err != nil {
				return f, err
			}
			if n > uint64(len(r.b)-r.i) {
				return f, errShort7z
			}
			props = r.b[r.i : r.i+int(n)]
			r.i += int(n)
		}
		if flag&0x80 != 0 {
			return f, errors.New("alternative coder methods are not supported")
		}
		if c == 0 {
			f.coderID, f.props = id, props
		}
		ins += in
		f.outs += out
	}
	if f.outs == 0 {
		return f, errBounds7z
	}
	for p := uint64(0); p < f.outs-1; p++ {
		if _, err := r.number(); err != nil {
			return f, err
		}
		if _, err := r.number(); err != nil {
			return f, err
		}
	}
	if ins < f.outs-1 {
		return f, errBounds7z
	}
	if packed := ins - (f.outs - 1); packed > 1 {
		for p := uint64(0); p < packed; p++ {
			if _, err := r.number(); err != nil {
				return f, err
			}
		}
	}
	return f, nil
}

func (r *sevenReader) subStreams(folders uint64) error {
	perFolder := make([]uint64, folders)
	for i := range perFolder {
		perFolder[i] = 1
	}
	total := folders
	for {
		id, err := r.byte()
		if err != nil {
			return err
		}
		switch id {
		case 0x00:
			return nil
		case 0x0D:
			total = 0
			for i := range perFolder {
				if perFolder[i], err = r.count(r.limit); err != nil {
					return err
				}
				if total += perFolder[i]; total > r.limit {
					return fmt.Errorf("%w: %d streams", errBounds7z, total)
				}
			}
		case 0x09:
			for _, n := range perFolder {
				for j := uint64(1); j < n; j++ {
					if _, err := r.number(); err != nil {
						return err
					}
				}
			}
		case 0x0A:
			if err := r.digests(total); err != nil {
				return err
			}
		default:
			return fmt.Errorf("unexpected property %#x in substreams info", id)
		}
	}
}

// header walks a plain (decoded) header.
func (r *sevenReader) header() error {
	for {
		id, err := r.byte()
		if err != nil {
			return err
		}
		switch id {
		case 0x00:
			return nil
		case 0x02: // ArchiveProperties
			for {
				p, err := r.byte()
				if err != nil {
					return err
				}
				if p == 0 {
					break
				}
				n, err := r.number()
				if err != nil {
					return err
				}
				if err := r.skip(n); err != nil {
					return err
				}
			}
		case 0x03, 0x04:
			if _, _, _, _, err := r.streamsInfo(); err != nil {
				return err
			}
		case 0x05:
			if _, err := r.count(r.limit); err != nil {
				return err
			}
			for {
				p, err := r.byte()
				if err != nil {
					return err
				}
				if p == 0 {
					break
				}
				n, err := r.number()
				if err != nil {
					return err
				}
				if err := r.skip(n); err != nil {
					return err
				}
			}
		default:
			return fmt.Errorf("unexpected property %#x in header", id)
		}
	}
}

// precheck7z validates the archive header before the library parses it.
// It returns a finding ID and detail when the archive must not be handed
// to the library, or "" when it may.
func (w *walker) precheck7z() (string, string, error) {
	sh, err := w.readFull(0, 32)
	if err != nil {
		return "ARC-019", "7z signature header is truncated", nil
	}
	le := binary.LittleEndian
	if crc32.ChecksumIEEE(sh[12:32]) != le.Uint32(sh[8:]) {
		return "ARC-019", "7z start header CRC mismatch", nil
	}
	off, size := le.Uint64(sh[12:]), le.Uint64(sh[20:])
	if off > uint64(w.size-32) || size > uint64(w.size-32)-off {
		return "ARC-009", fmt.Sprintf("7z header (%d bytes at %d) lies outside the file", size, off+32), nil
	}
	if size > max7zHeader {
		return "ARC-019", fmt.Sprintf("7z header of %d bytes exceeds the %d-byte limit", size, max7zHeader), nil
	}
	hdr, err := w.readFull(int64(32+off), int(size))
	if err != nil {
		return "", "", err
	}
	if crc32.ChecksumIEEE(hdr) != le.Uint32(sh[28:]) {
		return "ARC-019", "7z header CRC mismatch", nil
	}
	limit := uint64(w.opts.MaxMembers)
	for round := 0; round < 4 && len(hdr) > 0; round++ {
		r := &sevenReader{b: hdr[1:], limit: limit}
		switch hdr[0] {
		case 0x01:
			if err := r.header(); err != nil {
				return classify7z(err)
			}
			return "", "", nil
		case 0x17: // encoded header: decode it ourselves under the limits
			folders, packPos, packSizes, unpack, err := r.streamsInfo()
			if err != nil {
				return classify7z(err)
			}
			if len(folders) != 1 || len(packSizes) < 1 || len(unpack) < 1 {
				return "ARC-019", "7z encoded header has an unexpected layout", nil
			}
			if packPos > uint64(w.size-32) || packSizes[0] > uint64(w.size-32)-packPos {
				return "ARC-009", "7z encoded header data lies outside the file", nil
			}
			if unpack[len(unpack)-1] > max7zHeader {
				return "ARC-019", fmt.Sprintf("7z header decodes to %d bytes, limit %d", unpack[len(unpack)-1], max7zHeader), nil
			}
			hdr, err = w.decode7zHeader(folders[0], int64(32+packPos), int64(packSizes[0]), int64(unpack[len(unpack)-1]))
			if err != nil {
				return "ARC-019", fmt.Sprintf("7z header: %v", err), nil
			}
			if hdr == nil {
				return "ARC-018", "7z header is compressed with a method llmfence does not decode (or encrypted)", nil
			}
		default:
			return "ARC-019", fmt.Sprintf("7z header starts with %#x", hdr[0]), nil
		}
	}
	return "ARC-019", "7z header is encoded too many times", nil
}

func classify7z(err error) (string, string, error) {
	if errors.Is(err, errBounds7z) {
		return "ARC-015", err.Error(), nil
	}
	return "ARC-019", fmt.Sprintf("7z header: %v", err), nil
}

// decode7zHeader decompresses an LZMA or LZMA2 encoded header; nil, nil
// for other methods.
func (w *walker) decode7zHeader(f folder7z, off, n, unpacked int64) ([]byte, error) {
	src := io.NewSectionReader(w.r, off, n)
	var rd io.Reader
	switch {
	case bytes.Equal(f.coderID, []byte{0x03, 0x01, 0x01}) && len(f.props) == 5:
		dict := binary.LittleEndian.Uint32(f.props[1:])
		if dict > maxDict {
			return nil, fmt.Errorf("dictionary of %d bytes", dict)
		}
		head := append(append([]byte(nil), f.props...), binary.LittleEndian.AppendUint64(nil, uint64(unpacked))...)
		lr, err := lzma.ReaderConfig{DictCap: maxDict}.NewReader(io.MultiReader(bytes.NewReader(head), src))
		if err != nil {
			return nil, err
		}
		rd = lr
	case bytes.Equal(f.coderID, []byte{0x21}) && len(f.props) == 1:
		lr, err := lzma.Reader2Config{DictCap: maxDict}.NewReader2(src)
		if err != nil {
			return nil, err
		}
		rd = lr
	default:
		return nil, nil
	}
	out := make([]byte, 0, min(unpacked, 1<<20))
	buf := bytes.NewBuffer(out)
	k, err := io.Copy(buf, io.LimitReader(rd, unpacked))
	if err != nil {
		return nil, err
	}
	if k != unpacked {
		return nil, fmt.Errorf("decoded %d of %d bytes", k, unpacked)
	}
	return buf.Bytes(), nil
}
