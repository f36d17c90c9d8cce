package archive

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"github.com/llmfence/llmfence/internal/verdict"
)

// Options bounds what Walk does. Zero fields take the defaults of
// DefaultOptions.
type Options struct {
	// MaxMembers is the most members enumerated per archive.
	MaxMembers int
	// MaxMemberSize is the most decompressed bytes read from one member,
	// by Walk's own checks and by a Member's Open reader.
	MaxMemberSize int64
	// MaxTotal is the most decompressed bytes Walk itself produces while
	// verifying all members of one archive (CRC and real-size checks).
	MaxTotal int64
	// MaxRatio is the decompressed/compressed ratio above which a member
	// of at least 1 MiB counts as a compression bomb.
	MaxRatio int64
	// MaxDepth is the deepest nesting Walk agrees to open; Depth is the
	// nesting of this call (0 for a file on disk). A caller recursing into
	// a member passes Depth+1.
	MaxDepth int
	Depth    int
	// NoVerify skips reading member data to check CRCs and real sizes
	// (faster on multi-gigabyte checkpoints, blind to CRC games).
	NoVerify bool
}

// DefaultOptions are the limits used for zero Options fields.
func DefaultOptions() Options {
	return Options{
		MaxMembers:    100_000,
		MaxMemberSize: 64 << 30,
		MaxTotal:      256 << 30,
		MaxRatio:      200,
		MaxDepth:      4,
	}
}

func (o Options) withDefaults() Options {
	d := DefaultOptions()
	if o.MaxMembers <= 0 {
		o.MaxMembers = d.MaxMembers
	}
	if o.MaxMemberSize <= 0 {
		o.MaxMemberSize = d.MaxMemberSize
	}
	if o.MaxTotal <= 0 {
		o.MaxTotal = d.MaxTotal
	}
	if o.MaxRatio <= 0 {
		o.MaxRatio = d.MaxRatio
	}
	if o.MaxDepth <= 0 {
		o.MaxDepth = d.MaxDepth
	}
	return o
}

// Member is one file inside a container.
type Member struct {
	// Name is the member's name as the directory records it, or a
	// pseudo-name in angle brackets: "<pickle>" for the object data of an
	// .npy file, and "<prepended>", "<appended>", "<gap@OFFSET>" for bytes
	// of a zip or tar that no member covers (handed over so that a payload
	// hidden there is inspected too). It is "" for the single stream of a
	// compressed file.
	Name string
	// Size is the declared decompressed size, -1 when unknown.
	Size int64
	// Offset is where the member's data starts in the container, -1 when
	// it has no single position (compressed streams, 7z solid blocks).
	Offset int64
	// Raw is non-nil when the member's bytes are stored verbatim in the
	// container: a ReaderAt view that needs no temporary file.
	Raw *io.SectionReader
	// Open returns a fresh reader over the decompressed member. It yields
	// at most Options.MaxMemberSize bytes and then fails with
	// ErrMemberTooLarge; reads honour the Walk context.
	Open func() (io.ReadCloser, error)
}

// Errors a Member reader can return.
var (
	ErrMemberTooLarge = errors.New("archive member exceeds the size limit")
	ErrUnsupported    = errors.New("archive member uses an unsupported compression method")
)

// Walk enumerates the members of the container r (size bytes, format kind),
// calls fn for each one in directory order, and returns the container-level
// findings. Structural problems are findings, not errors; the error is for
// I/O failures, cancellation and errors returned by fn (which stop the walk).
// Finding.Member names the member a finding concerns.
func Walk(ctx context.Context, r io.ReaderAt, size int64, kind Kind, opts Options, fn func(Member) error) ([]verdict.Finding, error) {
	opts = opts.withDefaults()
	cat, err := Catalogue()
	if err != nil {
		return nil, err
	}
	w := &walker{ctx: ctx, r: r, size: size, opts: opts, cat: cat, fn: fn, budget: opts.MaxTotal}
	if opts.Depth > opts.MaxDepth {
		w.add("ARC-028", "", fmt.Sprintf("nesting depth %d exceeds the limit of %d", opts.Depth, opts.MaxDepth), -1)
		return w.findings, nil
	}
	switch kind {
	case Zip:
		err = w.zip()
	case Tar:
		err = w.tar()
	case SevenZip:
		err = w.sevenZip()
	case Npy:
		err = w.npy()
	case Gzip, Zlib, Xz, Lzma, Bzip2, JoblibZ:
		err = w.stream(kind)
	case Zstd, Lz4:
		w.add("ARC-018", "", fmt.Sprintf("%s streams are recognised but not decompressed", kind), 0)
	default:
		return nil, fmt.Errorf("inspect archive: unknown container kind %q", kind)
	}
	return w.findings, err
}

// walker is the state of one Walk call.
type walker struct {
	ctx       context.Context
	r         io.ReaderAt
	size      int64
	opts      Options
	cat       *verdict.Catalogue
	fn        func(Member) error
	findings  []verdict.Finding
	budget    int64 // bytes Walk may still decompress for verification
	budgetHit bool
	seen      map[string]int // finding key -> count, to keep reports short
	hidden    []Member       // unclaimed byte ranges, handed over last
}

// maxHidden bounds the unclaimed ranges handed to the callback.
const maxHidden = 16

// hide records an unclaimed byte range to hand to the callback.
func (w *walker) hide(name string, off, n int64) {
	if n <= 0 || len(w.hidden) >= maxHidden {
		return
	}
	w.hidden = append(w.hidden, Member{Name: name, Size: n, Offset: off, Raw: io.NewSectionReader(w.r, off, n), Open: func() (io.ReadCloser, error) {
		return w.bounded(io.NewSectionReader(w.r, off, n), nil), nil
	}})
}

func (w *walker) callHidden() error {
	for _, m := range w.hidden {
		if err := w.call(m); err != nil {
			return err
		}
	}
	return nil
}

// maxSameFinding caps how many findings with one ID one archive reports.
const maxSameFinding = 20

func (w *walker) add(id, member, detail string, off int64) {
	if w.seen == nil {
		w.seen = map[string]int{}
	}
	w.seen[id]++
	if w.seen[id] > maxSameFinding {
		if w.seen[id] == maxSameFinding+1 {
			f := w.cat.New(id, "further findings of this kind not listed", -1)
			w.findings = append(w.findings, f)
		}
		return
	}
	f := w.cat.New(id, detail, off)
	f.Member = member
	w.findings = append(w.findings, f)
}

// call hands one member to the callback.
func (w *walker) call(m Member) error {
	if err := w.ctx.Err(); err != nil {
		return err
	}
	if w.fn == nil {
		return nil
	}
	if err := w.fn(m); err != nil {
		return fmt.Errorf("archive member %q: %w", m.Name, err)
	}
	return nil
}

// checkName reports names that escape an extraction directory.
func (w *walker) checkName(name string, off int64) {
	if reason := unsafeName(name); reason != "" {
		w.add("ARC-014", name, reason, off)
	}
}

// unsafeName says why a member name is unsafe to extract, "" if it is not.
func unsafeName(name string) string {
	n := strings.ReplaceAll(name, "\\", "/")
	switch {
	case strings.HasPrefix(n, "/"):
		return "absolute path"
	case len(n) >= 2 && n[1] == ':' && (n[0]|0x20) >= 'a' && (n[0]|0x20) <= 'z':
		return "drive-letter path"
	}
	for _, part := range strings.Split(n, "/") {
		if part == ".." {
			return "parent-directory ('..') component"
		}
	}
	if c := path.Clean("/" + n); strings.HasPrefix(c, "/..") {
		return "parent-directory ('..') component"
	}
	return ""
}

// limitedReader yields at most limit bytes of r and then fails with
// ErrMemberTooLarge (not io.EOF) if more remain; it honours ctx.
type limitedReader struct {
	ctx   context.Context
	r     io.Reader
	c     io.Closer
	limit int64
	n     int64
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if err := l.ctx.Err(); err != nil {
		return 0, err
	}
	if l.n >= l.limit {
		// Probe for one more byte to tell "exactly at limit" from "over".
		var one [1]byte
		k, err := l.r.Read(one[:])
		if k > 0 {
			return 0, ErrMemberTooLarge
		}
		if err == nil {
			return 0, nil
		}
		return 0, err
	}
	if int64(len(p)) > l.limit-l.n {
		p = p[:l.limit-l.n]
	}
	k, err := l.r.Read(p)
	l.n += int64(k)
	return k, err
}

func (l *limitedReader) Close() error {
	if l.c != nil {
		return l.c.Close()
	}
	return nil
}

func (w *walker) bounded(r io.Reader, c io.Closer) io.ReadCloser {
	return &limitedReader{ctx: w.ctx, r: r, c: c, limit: w.opts.MaxMemberSize}
}

// Spool copies a member into a new temporary file in dir ("" for the
// system default) so it can be read with io.ReaderAt, reading at most max
// bytes. The caller must close and remove the file. It fails with
// ErrMemberTooLarge when the member is bigger than max.
func Spool(ctx context.Context, m Member, dir string, max int64) (*os.File, int64, error) {
	rc, err := m.Open()
	if err != nil {
		return nil, 0, fmt.Errorf("open archive member %q: %w", m.Name, err)
	}
	defer rc.Close()
	f, err := os.CreateTemp(dir, "llmfence-member-*")
	if err != nil {
		return nil, 0, fmt.Errorf("spool archive member %q: %w", m.Name, err)
	}
	lr := &limitedReader{ctx: ctx, r: rc, limit: max}
	n, err := io.Copy(f, lr)
	if err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, n, fmt.Errorf("spool archive member %q: %w", m.Name, err)
	}
	return f, n, nil
}
