package datascan

import (
	"archive/tar"
	"archive/zip"
	"bufio"
	"bytes"
	"compress/bzip2"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"unicode/utf8"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// Formats, as decided from content.
const (
	FormatJSONL   = "jsonl"
	FormatJSON    = "json"
	FormatCSV     = "csv"
	FormatTSV     = "tsv"
	FormatText    = "text"
	FormatParquet = "parquet"
	FormatGzip    = "gzip"
	FormatZstd    = "zstd"
	FormatBzip2   = "bzip2"
	FormatXz      = "xz"
	FormatTar     = "tar"
	FormatZip     = "zip"
	FormatBinary  = "binary"
	FormatEmpty   = "empty"
)

const headSize = 64 << 10

var (
	magicGzip    = []byte{0x1f, 0x8b}
	magicZstd    = []byte{0x28, 0xb5, 0x2f, 0xfd}
	magicBzip2   = []byte("BZh")
	magicXz      = []byte{0xfd, '7', 'z', 'X', 'Z', 0}
	magicZip     = []byte("PK\x03\x04")
	magicZipE    = []byte("PK\x05\x06")
	magicParquet = []byte("PAR1")
)

// detect decides the format of data from its first bytes.
func detect(head []byte) string {
	switch {
	case len(head) == 0:
		return FormatEmpty
	case bytes.HasPrefix(head, magicGzip):
		return FormatGzip
	case bytes.HasPrefix(head, magicZstd):
		return FormatZstd
	case bytes.HasPrefix(head, magicXz):
		return FormatXz
	case bytes.HasPrefix(head, magicBzip2) && len(head) >= 4 && head[3] >= '1' && head[3] <= '9':
		return FormatBzip2
	case bytes.HasPrefix(head, magicZip), bytes.HasPrefix(head, magicZipE):
		return FormatZip
	case bytes.HasPrefix(head, magicParquet):
		return FormatParquet
	case len(head) >= 262 && string(head[257:262]) == "ustar":
		return FormatTar
	}
	if looksBinary(head) {
		return FormatBinary
	}
	t := bytes.TrimLeft(head, " \t\r\n\ufeff")
	t = bytes.TrimPrefix(t, []byte("\xef\xbb\xbf"))
	switch {
	case len(t) > 0 && t[0] == '[':
		return FormatJSON
	case len(t) > 0 && t[0] == '{':
		// One object per line, or one document.
		line, _, more := bytes.Cut(t, []byte("\n"))
		next := bytes.TrimLeft(func() []byte {
			if more {
				_, r, _ := bytes.Cut(t, []byte("\n"))
				return r
			}
			return nil
		}(), " \t\r\n")
		if !more || bytes.HasSuffix(bytes.TrimSpace(line), []byte("}")) && (len(next) == 0 || next[0] == '{') {
			// No line end in the head: a huge first record; JSON Lines
			// reading takes one document as well.
			return FormatJSONL
		}
		return FormatJSON
	}
	if d := delimiter(t); d == ',' {
		return FormatCSV
	} else if d == '\t' {
		return FormatTSV
	}
	return FormatText
}

// looksBinary: NUL bytes, or much invalid UTF-8 or control characters.
func looksBinary(head []byte) bool {
	if bytes.IndexByte(head, 0) >= 0 {
		return true
	}
	bad := 0
	for i := 0; i < len(head); {
		r, n := utf8.DecodeRune(head[i:])
		if r == utf8.RuneError && n == 1 && len(head)-i >= utf8.UTFMax {
			bad++
		} else if r < 0x20 && r != '\n' && r != '\r' && r != '\t' && r != '\f' {
			bad++
		}
		i += n
	}
	return bad*10 > len(head)
}

// delimiter returns ',' or '\t' when the first lines of t look like a
// table with that delimiter (the same number of them on each of at least
// three lines, outside quotes), else 0.
func delimiter(t []byte) byte {
	lines := bytes.SplitN(t, []byte("\n"), 12)
	if len(lines) > 1 && len(lines) == 12 {
		lines = lines[:11] // the last may be cut
	} else if len(lines) > 1 {
		lines = lines[:len(lines)-1]
	}
	if len(lines) < 3 {
		return 0
	}
	for _, d := range []byte{'\t', ','} {
		n := -1
		ok := true
		for _, l := range lines {
			c := countOutsideQuotes(l, d)
			if c == 0 || n >= 0 && c != n {
				ok = false
				break
			}
			n = c
		}
		if ok {
			return d
		}
	}
	return 0
}

func countOutsideQuotes(l []byte, d byte) int {
	n, q := 0, false
	for _, c := range l {
		switch {
		case c == '"':
			q = !q
		case c == d && !q:
			n++
		}
	}
	return n
}

// source is one file to scan: a file on disk or a member of an archive.
type source struct {
	name  string // as reported (member paths joined with "!")
	rel   string // path relative to its input root (for --redact-to)
	root  string // the input it came from
	size  int64
	depth int
	// open returns the raw bytes; readerAt is set for files on disk.
	open     func() (io.ReadCloser, error)
	readerAt func() (io.ReaderAt, io.Closer, int64, error)
	// license/source declared by a dataset card above the file.
	card *cardInfo
}

// cardInfo is what a dataset card (README.md front matter) declares.
type cardInfo struct {
	license string
	source  string
}

// expand turns the paths the user named into sources: files, and the
// files under directories (sorted, hidden entries and symbolic links
// skipped). A path that cannot be read is returned as an error source.
func expand(paths []string) ([]*source, []FileInfo) {
	var out []*source
	var bad []FileInfo
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			bad = append(bad, FileInfo{Path: p, Format: "", Error: fmt.Sprintf("cannot read: %v", errors.Unwrap(err))})
			continue
		}
		if !st.IsDir() {
			out = append(out, fileSource(p, filepath.Base(p), p, st.Size(), nil))
			continue
		}
		cards := map[string]*cardInfo{}
		err = filepath.WalkDir(p, func(fp string, d os.DirEntry, err error) error {
			if err != nil {
				bad = append(bad, FileInfo{Path: fp, Error: fmt.Sprintf("cannot read: %v", err)})
				return nil
			}
			name := d.Name()
			if fp != p && strings.HasPrefix(name, ".") {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
			if d.IsDir() {
				if c := readCard(filepath.Join(fp, "README.md")); c != nil {
					cards[fp] = c
				}
				return nil
			}
			if !d.Type().IsRegular() {
				return nil // symbolic links and devices are not followed
			}
			info, err := d.Info()
			if err != nil {
				bad = append(bad, FileInfo{Path: fp, Error: fmt.Sprintf("cannot read: %v", err)})
				return nil
			}
			rel, _ := filepath.Rel(p, fp)
			out = append(out, fileSource(fp, rel, p, info.Size(), nearestCard(cards, filepath.Dir(fp), p)))
			return nil
		})
		if err != nil {
			bad = append(bad, FileInfo{Path: p, Error: err.Error()})
		}
	}
	return out, bad
}

func nearestCard(cards map[string]*cardInfo, dir, root string) *cardInfo {
	for {
		if c, ok := cards[dir]; ok {
			return c
		}
		if dir == root || dir == "." || dir == "/" {
			return nil
		}
		dir = filepath.Dir(dir)
	}
}

// readCard reads the YAML front matter of a Hugging Face-style dataset
// card for its license and source fields (a few lines, bounded).
func readCard(p string) *cardInfo {
	f, err := os.Open(p)
	if err != nil {
		return nil
	}
	defer f.Close()
	sc := bufio.NewScanner(io.LimitReader(f, 64<<10))
	if !sc.Scan() || strings.TrimSpace(sc.Text()) != "---" {
		return nil
	}
	c := &cardInfo{}
	for sc.Scan() {
		line := sc.Text()
		if strings.TrimSpace(line) == "---" {
			break
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		v = strings.Trim(strings.TrimSpace(v), `"'`)
		switch strings.TrimSpace(k) {
		case "license":
			c.license = v
		case "source", "source_datasets", "homepage":
			if c.source == "" {
				c.source = v
			}
		}
	}
	if c.license == "" && c.source == "" {
		return nil
	}
	return c
}

func fileSource(p, rel, root string, size int64, card *cardInfo) *source {
	return &source{
		name: p, rel: rel, root: root, size: size, card: card,
		open: func() (io.ReadCloser, error) { return os.Open(p) },
		readerAt: func() (io.ReaderAt, io.Closer, int64, error) {
			f, err := os.Open(p)
			if err != nil {
				return nil, nil, 0, err
			}
			st, err := f.Stat()
			if err != nil {
				f.Close()
				return nil, nil, 0, err
			}
			return f, f, st.Size(), nil
		},
	}
}

// errBomb reports a decompression bomb.
var errBomb = errors.New("decompressed data exceeds the limits (compression bomb?)")

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// bombGuard fails a decompressed stream that grows past max, or past
// ratio times the compressed bytes read once it is large.
type bombGuard struct {
	ctx   context.Context
	r     io.Reader
	in    *countingReader
	out   int64
	max   int64
	ratio int64
}

func (b *bombGuard) Read(p []byte) (int, error) {
	if err := b.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := b.r.Read(p)
	b.out += int64(n)
	// The ratio is judged once the output is past a floor (64 MiB, or a
	// quarter of the limit when that is smaller): small files compress
	// well without being bombs.
	if b.out > b.max || b.out > min(64<<20, b.max/4) && b.out > b.ratio*max(b.in.n, 1) {
		return n, fmt.Errorf("%w: %d bytes from %d compressed", errBomb, b.out, b.in.n)
	}
	return n, err
}

// decompress wraps r (the raw stream of a compressed format) in its
// decompressor, bounded against bombs.
func decompress(ctx context.Context, format string, r io.Reader, o *Options) (io.Reader, func(), error) {
	in := &countingReader{r: r}
	var (
		d     io.Reader
		close = func() {}
	)
	switch format {
	case FormatGzip:
		zr, err := gzip.NewReader(in)
		if err != nil {
			return nil, nil, fmt.Errorf("gzip: %w", err)
		}
		d, close = zr, func() { zr.Close() }
	case FormatZstd:
		zr, err := zstd.NewReader(in, zstd.WithDecoderMaxMemory(256<<20), zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, nil, fmt.Errorf("zstd: %w", err)
		}
		d, close = zr, zr.Close
	case FormatBzip2:
		d = bzip2.NewReader(in)
	case FormatXz:
		xr, err := xz.ReaderConfig{DictCap: 64 << 20}.NewReader(in)
		if err != nil {
			return nil, nil, fmt.Errorf("xz: %w", err)
		}
		d = xr
	default:
		return nil, nil, fmt.Errorf("%s is not a compressed format", format)
	}
	return &bombGuard{ctx: ctx, r: d, in: in, max: o.MaxDecompressed, ratio: o.MaxRatio}, close, nil
}

// hashingReader hashes what is read through it.
type hashingReader struct {
	r io.Reader
	h hash.Hash
	n int64
}

func newHashingReader(r io.Reader) *hashingReader { return &hashingReader{r: r, h: sha256.New()} }

func (h *hashingReader) Read(p []byte) (int, error) {
	n, err := h.r.Read(p)
	h.h.Write(p[:n])
	h.n += int64(n)
	return n, err
}

func (h *hashingReader) sum() string { return hex.EncodeToString(h.h.Sum(nil)) }

// members lists the members of a tar stream as sources for fn, in order;
// member data is read from the stream as fn consumes it.
func tarMembers(ctx context.Context, parent *source, r io.Reader, fn func(*source, io.Reader) error) error {
	tr := tar.NewReader(r)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("tar: %w", err)
		}
		if h.Typeflag != tar.TypeReg && h.Typeflag != tar.TypeRegA {
			continue
		}
		name := path.Clean("/" + h.Name)[1:]
		m := &source{name: parent.name + "!" + name, rel: memberRel(parent.rel, name), root: parent.root, size: h.Size, depth: parent.depth + 1, card: parent.card}
		if err := fn(m, tr); err != nil {
			return err
		}
	}
}

// memberRel is where a member's redacted copy goes: inside the archive's
// own copy, so this is only its name within the archive.
func memberRel(_ string, name string) string { return name }

// zipMembers calls fn for each file of a zip archive read from ra.
func zipMembers(ctx context.Context, parent *source, ra io.ReaderAt, size int64, o *Options, fn func(*source, io.Reader, *zip.FileHeader) error) error {
	zr, err := zip.NewReader(ra, size)
	if err != nil {
		return fmt.Errorf("zip: %w", err)
	}
	if len(zr.File) > 1_000_000 {
		return fmt.Errorf("zip: %d members, more than the 1,000,000 read", len(zr.File))
	}
	for _, f := range zr.File {
		if err := ctx.Err(); err != nil {
			return err
		}
		if f.FileInfo().IsDir() {
			continue
		}
		name := path.Clean("/" + f.Name)[1:]
		rc, err := f.Open()
		m := &source{name: parent.name + "!" + name, rel: name, root: parent.root, size: int64(f.UncompressedSize64), depth: parent.depth + 1, card: parent.card}
		if err != nil {
			if ferr := fn(m, &errReader{fmt.Errorf("zip member: %w", err)}, &f.FileHeader); ferr != nil {
				return ferr
			}
			continue
		}
		guard := &bombGuard{ctx: ctx, r: rc, in: &countingReader{n: int64(f.CompressedSize64) + 1}, max: o.MaxDecompressed, ratio: o.MaxRatio}
		err = fn(m, guard, &f.FileHeader)
		rc.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

type errReader struct{ err error }

func (e *errReader) Read([]byte) (int, error) { return 0, e.err }

// spool copies r into a temporary file (at most max bytes) for formats
// that need random access.
func spool(r io.Reader, dir string, limit int64) (*os.File, int64, error) {
	f, err := os.CreateTemp(dir, "llmfence-datascan-*")
	if err != nil {
		return nil, 0, err
	}
	os.Remove(f.Name()) // unlinked: gone when closed
	n, err := io.Copy(f, io.LimitReader(r, limit+1))
	if err != nil {
		f.Close()
		return nil, n, err
	}
	if n > limit {
		f.Close()
		return nil, n, fmt.Errorf("more than %d bytes to copy for random access (--max-spool)", limit)
	}
	return f, n, nil
}
