package inspect

import (
	"bytes"
	"encoding/binary"
	"path/filepath"
	"strings"
	"unicode/utf8"
)

// Format names, as they appear in Result.Format.
const (
	FormatGGUF        = "gguf"
	FormatSafetensors = "safetensors"
	FormatPickle      = "pickle"
	FormatPyTorchZip  = "pytorch-zip"
	FormatKeras       = "keras"
	FormatKerasJSON   = "keras-json"
	FormatNPZ         = "npz"
	FormatZip         = "zip"
	FormatTar         = "tar"
	FormatPyTorchTar  = "pytorch-tar"
	Format7z          = "7z"
	FormatNPY         = "npy"
	FormatONNX        = "onnx"
	FormatGzip        = "gzip"
	FormatZlib        = "zlib"
	FormatXZ          = "xz"
	FormatBzip2       = "bzip2"
	FormatLZMA        = "lzma"
	FormatZstd        = "zstd"
	FormatLZ4         = "lz4"
	FormatJoblibZ     = "joblib-zfile"
	FormatText        = "text"
	FormatUnknown     = "unknown"
	FormatEmpty       = "empty"
	FormatOllama      = "ollama-manifest"
)

// headSize is how much of the start of a file the sniffer sees.
const headSize = 64 << 10

// archiveKind maps a sniffed container format to the kind passed to the
// ArchiveWalker ("" for formats that are not containers).
func archiveKind(format string) string {
	switch format {
	case FormatZip, FormatPyTorchZip, FormatKeras, FormatNPZ:
		return "zip"
	case FormatTar, FormatPyTorchTar:
		return "tar"
	case Format7z:
		return "7z"
	case FormatNPY:
		return "npy"
	case FormatGzip:
		return "gzip"
	case FormatZlib:
		return "zlib"
	case FormatXZ:
		return "xz"
	case FormatBzip2:
		return "bzip2"
	case FormatLZMA:
		return "lzma"
	case FormatZstd:
		return "zstd"
	case FormatLZ4:
		return "lz4"
	case FormatJoblibZ:
		return "joblib-zfile"
	}
	return ""
}

// sniff decides the format from the first bytes of the content (head) and
// its last bytes (tail, for a zip whose start was prepended with junk).
// isPickle decides whether the content is a pickle stream (it decodes the
// content the way CPython's unpickler would); container, when non-nil,
// names container kinds the archive walker recognises beyond the magic
// numbers checked here (lzma, zstd, lz4, v7 tar).
func sniff(head, tail []byte, size int64, isPickle func() bool, container func([]byte) string) string {
	switch {
	case size == 0:
		return FormatEmpty
	case bytes.HasPrefix(head, []byte("GGUF")):
		return FormatGGUF
	case bytes.HasPrefix(head, []byte("PK\x03\x04")), bytes.HasPrefix(head, []byte("PK\x05\x06")), bytes.HasPrefix(head, []byte("PK\x07\x08PK\x03\x04")):
		return FormatZip
	case bytes.HasPrefix(head, []byte("7z\xbc\xaf\x27\x1c")):
		return Format7z
	case bytes.HasPrefix(head, []byte("\x93NUMPY")):
		return FormatNPY
	case bytes.HasPrefix(head, []byte{0x1f, 0x8b}):
		return FormatGzip
	case bytes.HasPrefix(head, []byte("\xfd7zXZ\x00")):
		return FormatXZ
	case bytes.HasPrefix(head, []byte("BZh")) && len(head) > 3 && head[3] >= '1' && head[3] <= '9':
		return FormatBzip2
	case looksJoblibZFile(head):
		return FormatJoblibZ
	case len(head) >= 262 && bytes.Equal(head[257:262], []byte("ustar")):
		return FormatTar
	case container != nil && container(head) == "tar":
		return FormatTar
	case looksSafetensors(head, size):
		return FormatSafetensors
	}
	if isPickle != nil && isPickle() {
		return FormatPickle
	}
	switch {
	case looksZlib(head):
		return FormatZlib
	case looksONNX(head):
		return FormatONNX
	case container != nil && container(head) == "lzma":
		return FormatLZMA
	case container != nil && container(head) == "zstd":
		return FormatZstd
	case container != nil && container(head) == "lz4":
		return FormatLZ4
	case looksZipTail(tail):
		// Something was prepended to a zip: loaders that search for the end
		// of central directory still open it.
		return FormatZip
	case looksText(head):
		return FormatText
	}
	return FormatUnknown
}

// looksJoblibZFile: joblib's pre-0.10 compressed format, "ZF", the
// uncompressed length in hex padded to 19 bytes, then a zlib stream
// (joblib.load still reads it).
func looksJoblibZFile(head []byte) bool {
	if len(head) < 23 || !bytes.HasPrefix(head, []byte("ZF0x")) {
		return false
	}
	return looksZlib(head[21:])
}

// looksText: the head is UTF-8 text (a README, a JSON config, a
// tokenizer vocabulary) without control characters other than white
// space. A rune cut off at the end of the head is allowed.
func looksText(head []byte) bool {
	for i := 0; i < len(head); {
		r, n := utf8.DecodeRune(head[i:])
		if r == utf8.RuneError && n <= 1 {
			return len(head)-i < utf8.UTFMax && !utf8.FullRune(head[i:])
		}
		if r < 0x20 && r != '\t' && r != '\n' && r != '\r' && r != '\f' || r == 0x7f {
			return false
		}
		i += n
	}
	return true
}

// looksSafetensors: 8-byte little-endian header length, then a JSON
// object. The length is not checked here: a file that is a safetensors
// header in every other respect but claims an absurd length is a
// safetensors file, and an invalid one (ST-002, ST-003).
func looksSafetensors(head []byte, size int64) bool {
	if len(head) < 10 {
		return false
	}
	n := binary.LittleEndian.Uint64(head)
	if n < 2 {
		return false
	}
	i := 8
	for i < len(head) && (head[i] == ' ' || head[i] == '\t' || head[i] == '\n' || head[i] == '\r') {
		i++
	}
	if i >= len(head) || head[i] != '{' {
		return false
	}
	// '{' then a key, the end of the object, or white space.
	i++
	for i < len(head) && (head[i] == ' ' || head[i] == '\t' || head[i] == '\n' || head[i] == '\r') {
		i++
	}
	return i >= len(head) || head[i] == '"' || head[i] == '}'
}

// looksPickleBuiltin: protocol 2+ starts with PROTO (0x80) and a protocol
// number; protocols 0 and 1 are recognised by a plausible first opcode
// sequence (a GLOBAL line "c<module>\n<name>\n", or MARK/EMPTY_LIST/
// EMPTY_DICT/EMPTY_TUPLE followed by another opcode).
func looksPickleBuiltin(head []byte) bool {
	if len(head) < 2 {
		return false
	}
	if head[0] == 0x80 {
		return head[1] >= 2 && head[1] <= 5
	}
	switch head[0] {
	case 'c':
		return looksGlobalLine(head[1:])
	case '(', ']', '}', ')':
		if len(head) < 3 {
			return false
		}
		return strings.IndexByte("(]})cdlqrtKMJIFSVUXNGabehjgpuso.\x88\x89\x8c\x94\x95", head[1]) >= 0 && looksOpcodeTail(head)
	}
	return false
}

// looksGlobalLine: "<module>\n<name>\n" with identifier characters.
func looksGlobalLine(b []byte) bool {
	lines := 0
	n := 0
	for _, c := range b {
		switch {
		case c == '\n':
			if n == 0 {
				return false
			}
			lines++
			n = 0
			if lines == 2 {
				return true
			}
		case c == '_' || c == '.' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9':
			n++
			if n > 256 {
				return false
			}
		default:
			return false
		}
	}
	return false
}

// looksOpcodeTail requires a STOP opcode somewhere in the head or a binary
// opcode byte early on, so that a text file starting with "(" is not taken
// for a pickle.
func looksOpcodeTail(head []byte) bool {
	if bytes.IndexByte(head, '.') < 0 {
		return false
	}
	// Text pickles (protocol 0) have newline-terminated arguments; binary
	// ones (protocol 1) have bytes outside printable ASCII.
	return bytes.IndexByte(head, '\n') >= 0 || bytes.ContainsFunc(head[:min(len(head), 64)], func(r rune) bool { return r < 0x20 || r >= 0x7f })
}

// looksZlib: a zlib header (CM 8, window ≤ 32K, FCHECK valid).
func looksZlib(head []byte) bool {
	if len(head) < 2 {
		return false
	}
	cmf, flg := head[0], head[1]
	if cmf&0x0f != 8 || cmf>>4 > 7 {
		return false
	}
	if flg&0x20 != 0 { // preset dictionary: not what joblib writes
		return false
	}
	return (uint16(cmf)<<8|uint16(flg))%31 == 0
}

// looksONNX: a protobuf ModelProto normally starts with ir_version (field 1,
// varint, small) followed by another ModelProto field with a valid wire type.
func looksONNX(head []byte) bool {
	if len(head) < 4 || head[0] != 0x08 {
		return false
	}
	v, n := binary.Uvarint(head[1:])
	if n <= 0 || v == 0 || v > 64 {
		return false
	}
	i := 1 + n
	if i >= len(head) {
		return false
	}
	tag, m := binary.Uvarint(head[i:])
	if m <= 0 {
		return false
	}
	field, wire := tag>>3, tag&7
	// ModelProto: 2 producer_name, 3 producer_version, 4 domain, 6
	// doc_string, 7 graph, 8 opset_import, 14 metadata_props, 20
	// training_info, 25 functions: all length-delimited. 5 model_version is
	// a varint.
	switch field {
	case 2, 3, 4, 6, 7, 8, 14, 20, 25:
		return wire == 2
	case 5:
		return wire == 0
	}
	return false
}

// looksZipTail finds an end-of-central-directory record in the tail.
func looksZipTail(tail []byte) bool {
	i := bytes.LastIndex(tail, []byte("PK\x05\x06"))
	return i >= 0 && len(tail)-i >= 22
}

// extFormats lists the formats a file extension promises. An extension not
// listed promises nothing.
var extFormats = map[string][]string{
	".gguf":        {FormatGGUF},
	".safetensors": {FormatSafetensors},
	".pt":          {FormatPyTorchZip, FormatPickle, FormatPyTorchTar, FormatZip},
	".pth":         {FormatPyTorchZip, FormatPickle, FormatPyTorchTar, FormatZip},
	".ckpt":        {FormatPyTorchZip, FormatPickle, FormatPyTorchTar, FormatZip},
	".bin":         {FormatPyTorchZip, FormatPickle, FormatPyTorchTar, FormatZip, FormatUnknown, FormatText, FormatGGUF, FormatSafetensors},
	".pkl":         {FormatPickle},
	".pickle":      {FormatPickle},
	".joblib":      {FormatPickle, FormatGzip, FormatZlib, FormatXZ, FormatBzip2, FormatLZMA, FormatZstd, FormatLZ4},
	".npy":         {FormatNPY},
	".npz":         {FormatNPZ, FormatZip},
	".keras":       {FormatKeras, FormatZip},
	".onnx":        {FormatONNX},
	".zip":         {FormatZip, FormatPyTorchZip, FormatKeras, FormatNPZ},
	".tar":         {FormatTar, FormatPyTorchTar},
	".7z":          {Format7z},
	".gz":          {FormatGzip},
	".xz":          {FormatXZ},
	".bz2":         {FormatBzip2},
	".json":        {FormatText, FormatUnknown, FormatKerasJSON},
	".txt":         {FormatText, FormatUnknown},
	".md":          {FormatText, FormatUnknown},
}

// extensionDisagrees reports the extension and whether it promises a
// different format than the content has.
func extensionDisagrees(name, format string) (string, bool) {
	ext := strings.ToLower(filepath.Ext(name))
	want, ok := extFormats[ext]
	if !ok || format == FormatEmpty {
		return ext, false
	}
	for _, f := range want {
		if f == format {
			return ext, false
		}
	}
	return ext, true
}

// loaderExts are the extensions ML loaders open with pickle somewhere in
// their search order (torch.load, joblib.load, pickle.load, numpy.load
// with allow_pickle, pandas.read_pickle), by framework convention.
var loaderExts = map[string]bool{
	".bin": true, ".pt": true, ".pth": true, ".ckpt": true, ".pkl": true,
	".pickle": true, ".joblib": true, ".dat": true, ".npy": true, ".npz": true,
	".sav": true, ".p": true, ".pk": true, ".data": true, ".model": true,
	".mdl": true, ".tar": true,
}

// loaderOpens reports whether a loader might open a file or member of
// this name: a loader extension, or no extension at all (blobs in model
// stores and caches, archive members).
func loaderOpens(name string) bool {
	ext := strings.ToLower(filepath.Ext(name))
	return ext == "" || loaderExts[ext]
}

// alsoPickle reports whether a loader opening content of this sniffed
// format could still unpickle it from its first byte: everything but a
// pickle (already parsed as one) and a zip that starts with a local
// header (torch.load and numpy.load open those as zips).
func alsoPickle(format string, head []byte) bool {
	switch format {
	case FormatPickle, FormatEmpty:
		return false
	case FormatZip, FormatPyTorchZip, FormatKeras, FormatNPZ:
		return !bytes.HasPrefix(head, []byte("PK\x03\x04"))
	}
	return true
}
