package archive

import (
	"bytes"
	"encoding/binary"
	"io"
)

// Kind is a container format, decided by content.
type Kind string

// Container kinds Walk understands (or at least recognises).
const (
	Unknown  Kind = ""
	Zip      Kind = "zip"
	Tar      Kind = "tar"
	SevenZip Kind = "7z"
	Npy      Kind = "npy"
	Gzip     Kind = "gzip"
	Zlib     Kind = "zlib"
	Xz       Kind = "xz"
	Lzma     Kind = "lzma"
	Bzip2    Kind = "bzip2"
	JoblibZ  Kind = "joblib-zfile" // joblib < 0.10: "ZF", hex length, zlib
	Zstd     Kind = "zstd"         // recognised, not decompressed
	Lz4      Kind = "lz4"          // recognised, not decompressed
)

// HeadSize is how many leading bytes Detect wants to see (tar's magic sits
// at offset 257 and its checksum covers the first 512 bytes).
const HeadSize = 512

var (
	magicZipLocal = []byte("PK\x03\x04")
	magicZipEnd   = []byte("PK\x05\x06")
	magicZipSpan  = []byte("PK\x07\x08PK\x03\x04") // split-archive marker before the first header
	magic7z       = []byte{'7', 'z', 0xBC, 0xAF, 0x27, 0x1C}
	magicNpy      = []byte("\x93NUMPY")
	magicGzip     = []byte{0x1f, 0x8b, 0x08}
	magicXz       = []byte{0xFD, '7', 'z', 'X', 'Z', 0x00}
	magicZstd     = []byte{0x28, 0xB5, 0x2F, 0xFD}
	magicLz4      = []byte{0x04, 0x22, 0x4D, 0x18}
)

// Detect names the container format of a file from its first bytes (give it
// up to HeadSize bytes). It returns Unknown for anything else, including
// zips with prepended data: use DetectReader to find those too.
func Detect(head []byte) Kind {
	switch {
	case bytes.HasPrefix(head, magicZipLocal), bytes.HasPrefix(head, magicZipEnd), bytes.HasPrefix(head, magicZipSpan):
		return Zip
	case bytes.HasPrefix(head, magic7z):
		return SevenZip
	case bytes.HasPrefix(head, magicNpy):
		return Npy
	case bytes.HasPrefix(head, magicGzip):
		return Gzip
	case bytes.HasPrefix(head, magicXz):
		return Xz
	case bytes.HasPrefix(head, magicZstd):
		return Zstd
	case bytes.HasPrefix(head, magicLz4):
		return Lz4
	case len(head) >= 4 && head[0] == 'B' && head[1] == 'Z' && head[2] == 'h' && head[3] >= '1' && head[3] <= '9':
		return Bzip2
	case len(head) >= 2 && head[0] == 0x78 && (head[1] == 0x01 || head[1] == 0x5E || head[1] == 0x9C || head[1] == 0xDA):
		return Zlib
	case isLzmaAlone(head):
		return Lzma
	case isJoblibZFile(head):
		return JoblibZ
	case isTarHeader(head):
		return Tar
	}
	return Unknown
}

// DetectReader is Detect plus a look at the end of the file: a zip whose
// end-of-central-directory record is found within the last 64 KiB is a zip
// even when other bytes were prepended (torch.load and Python's zipfile
// accept such polyglots).
func DetectReader(r io.ReaderAt, size int64) (Kind, error) {
	head := make([]byte, min(size, HeadSize))
	if _, err := r.ReadAt(head, 0); err != nil && err != io.EOF {
		return Unknown, err
	}
	if k := Detect(head); k != Unknown {
		return k, nil
	}
	if size < eocdLen {
		return Unknown, nil
	}
	n := min(size, eocdLen+0xFFFF)
	tail := make([]byte, n)
	if _, err := r.ReadAt(tail, size-n); err != nil && err != io.EOF {
		return Unknown, err
	}
	if findEOCD(tail, size-n) >= 0 {
		return Zip, nil
	}
	return Unknown, nil
}

// isLzmaAlone recognises the legacy .lzma ("LZMA alone") header joblib
// writes: properties byte 0x5D and a power-of-two-ish dictionary size.
func isLzmaAlone(h []byte) bool {
	if len(h) < 13 || h[0] != 0x5D {
		return false
	}
	dict := binary.LittleEndian.Uint32(h[1:5])
	return dict >= 1<<12 && dict <= 1<<30
}

// isTarHeader checks the ustar magic or, for old v7 archives, the header
// checksum of the first 512-byte block.
func isTarHeader(h []byte) bool {
	if len(h) < 512 {
		return false
	}
	if bytes.Equal(h[257:262], []byte("ustar")) {
		return tarChecksumOK(h[:512])
	}
	// v7: name must be printable and non-empty, checksum must hold.
	if h[0] == 0 {
		return false
	}
	return tarChecksumOK(h[:512])
}

func tarChecksumOK(b []byte) bool {
	field := bytes.TrimRight(bytes.TrimLeft(b[148:156], " \x00"), " \x00")
	if len(field) == 0 {
		return false
	}
	var want int64
	for _, c := range field {
		if c < '0' || c > '7' {
			return false
		}
		want = want*8 + int64(c-'0')
	}
	var sum int64
	for i, c := range b {
		if i >= 148 && i < 156 {
			c = ' '
		}
		sum += int64(c)
	}
	return sum == want
}

// isJoblibZFile recognises joblib's pre-0.10 compressed file: "ZF", the
// uncompressed length as hex padded with spaces to 19 bytes, then a zlib
// stream.
func isJoblibZFile(h []byte) bool {
	if len(h) < joblibZHeader+2 || !bytes.HasPrefix(h, []byte("ZF0x")) {
		return false
	}
	z := h[joblibZHeader:]
	return z[0]&0x0f == 8 && z[0]>>4 <= 7 && (uint16(z[0])<<8|uint16(z[1]))%31 == 0
}

// joblibZHeader is the length of the ZF header before the zlib stream.
const joblibZHeader = 2 + 19
