package inspect

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"strings"
	"unicode/utf8"

	"github.com/llmfence/llmfence/internal/service"
	"github.com/llmfence/llmfence/internal/verdict"
)

// hashBufSize is the read size of the hashing pass.
const hashBufSize = 1 << 20

// Options tune an Inspector. Zero values take the defaults in brackets.
type Options struct {
	Workers int              // files inspected in parallel [GOMAXPROCS]
	FailOn  service.Severity // threshold for Summary.Failed [high]
	// MaxFileSize: larger files are hashed but not parsed (INS-004)
	// [0: no limit].
	MaxFileSize int64
	// MaxDepth bounds archive nesting: members of a container at this
	// depth are not opened (INS-005) [4].
	MaxDepth int
	// MaxMemberSize bounds one extracted archive member (INS-006) [4 GiB].
	MaxMemberSize int64
	// MemberMemory: members up to this size are held in memory, larger
	// ones spill to a temporary file [32 MiB].
	MemberMemory int64
	// MaxListed bounds the member list in an archive's metadata [200].
	MaxListed int
	// FollowSymlinks inspects link targets outside the walked directory
	// instead of reporting them (INS-007) [false].
	FollowSymlinks bool
	// TempDir for spilled archive members [os.TempDir()].
	TempDir string
	// Parsers to dispatch to [DefaultParsers()].
	Parsers *Parsers
	Logger  *slog.Logger // [discard]
}

// Inspector inspects files. It is safe for concurrent use.
type Inspector struct {
	opts Options
	p    Parsers
	cat  *verdict.Catalogue
	log  *slog.Logger
}

// New returns an Inspector with opts' zero values replaced by defaults.
func New(opts Options) (*Inspector, error) {
	cat, err := Catalogue()
	if err != nil {
		return nil, err
	}
	if opts.Workers <= 0 {
		opts.Workers = runtime.GOMAXPROCS(0)
	}
	if opts.FailOn == "" {
		opts.FailOn = service.SeverityHigh
	}
	if opts.MaxDepth <= 0 {
		opts.MaxDepth = 4
	}
	if opts.MaxMemberSize <= 0 {
		opts.MaxMemberSize = 4 << 30
	}
	if opts.MemberMemory <= 0 {
		opts.MemberMemory = 32 << 20
	}
	if opts.MaxListed <= 0 {
		opts.MaxListed = 200
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var p Parsers
	if opts.Parsers != nil {
		p = *opts.Parsers
	} else {
		p = DefaultParsers()
	}
	return &Inspector{opts: opts, p: p, cat: cat, log: log}, nil
}

// Options returns the options in effect (defaults filled in).
func (in *Inspector) Options() Options { return in.opts }

// hashingReader reads sequentially from r and feeds every byte to h.
type hashingReader struct {
	r io.Reader
	h hash.Hash
	n int64
}

func (hr *hashingReader) Read(p []byte) (int, error) {
	n, err := hr.r.Read(p)
	if n > 0 {
		hr.h.Write(p[:n])
		hr.n += int64(n)
	}
	return n, err
}

// drain reads the rest of hr with a 1 MiB buffer, checking ctx per chunk.
func (hr *hashingReader) drain(ctx context.Context) error {
	buf := make([]byte, hashBufSize)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		_, err := hr.Read(buf)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// InspectFile inspects one regular file. display is the path shown in the
// result (path if empty). The result's Error is set when the file could
// not be inspected.
func (in *Inspector) InspectFile(ctx context.Context, path, display string) *Result {
	if display == "" {
		display = path
	}
	res := &Result{Path: display, Format: FormatUnknown}
	defer res.finish()
	if st, err := os.Stat(path); err == nil && !st.Mode().IsRegular() {
		res.Error = fmt.Sprintf("refused: %s, not a regular file (not opened)", fileKind(st.Mode()))
		return res
	}
	// Non-blocking, so that a FIFO swapped in after the check above does
	// not hang the open; it is refused by the check after it.
	f, err := openNoBlock(path)
	if err != nil {
		res.Error = fmt.Sprintf("cannot open: %v", unwrapPathError(err))
		return res
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		res.Error = fmt.Sprintf("cannot stat: %v", unwrapPathError(err))
		return res
	}
	if !st.Mode().IsRegular() {
		res.Error = fmt.Sprintf("refused: %s, not a regular file", fileKind(st.Mode()))
		return res
	}
	size := st.Size()
	res.Size = size
	head, tail, err := headTail(f, size)
	if err != nil {
		res.Error = fmt.Sprintf("cannot read: %v", unwrapPathError(err))
		return res
	}
	// A plain wrapper hides *os.File's WriterTo so reads use our buffer.
	hr := &hashingReader{r: struct{ io.Reader }{f}, h: sha256.New()}
	c := &content{path: path, name: display, ra: f, size: size, head: head, tail: tail}
	var n *node
	if in.opts.MaxFileSize > 0 && size > in.opts.MaxFileSize {
		n = &node{format: sniff(head, tail, size, in.isPickle(ctx, c), in.p.DetectContainer)}
		n.add(in.cat.New("INS-004", fmt.Sprintf("%d bytes, limit %d", size, in.opts.MaxFileSize), -1))
	} else {
		c.stream = bufio.NewReaderSize(hr, hashBufSize)
		n, err = in.examine(ctx, c)
		if err != nil {
			res.Error = err.Error()
		}
	}
	if err := hr.drain(ctx); err != nil {
		res.Error = fmt.Sprintf("cannot read: %v", unwrapPathError(err))
	} else {
		res.SHA256 = hex.EncodeToString(hr.h.Sum(nil))
		if hr.n != size {
			n.add(in.cat.New("INS-019", fmt.Sprintf("%d bytes when opened, %d bytes read", size, hr.n), -1))
		}
	}
	res.Format = n.format
	res.Findings = n.findings
	res.Metadata = n.meta
	res.Model = n.model
	return res
}

// headTail reads the first and last bytes of the file for sniffing.
func headTail(r io.ReaderAt, size int64) (head, tail []byte, err error) {
	head = make([]byte, min(size, headSize))
	if _, err := r.ReadAt(head, 0); err != nil && err != io.EOF {
		return nil, nil, err
	}
	if size <= headSize {
		return head, head, nil
	}
	tail = make([]byte, headSize)
	if _, err := r.ReadAt(tail, size-headSize); err != nil && err != io.EOF {
		return nil, nil, err
	}
	return head, tail, nil
}

func unwrapPathError(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// content is one piece of content to examine: a file or an archive member.
type content struct {
	path   string // file system path of a top-level file ("" for members)
	member string // member path inside the top-level file ("" for the file)
	name   string // base name, for the extension check
	ra     io.ReaderAt
	size   int64
	head   []byte
	tail   []byte
	// stream, if set, reads the content sequentially from offset 0 (the
	// hashing pass); stream formats read it instead of ra.
	stream io.Reader
	depth  int
	// parent is the container kind a member comes from ("tar", "zip",
	// ...), "" for a file.
	parent string
}

// node is what examining one piece of content produced.
type node struct {
	format   string
	findings []verdict.Finding
	meta     map[string]any
	model    *ModelInfo
}

func (n *node) add(fs ...verdict.Finding) { n.findings = append(n.findings, fs...) }

func (n *node) addIn(member string, fs []verdict.Finding) {
	for _, f := range fs {
		if member != "" {
			if f.Member == "" {
				f.Member = member
			} else if !strings.HasPrefix(f.Member, member) {
				f.Member = member + "!" + f.Member
			}
		}
		n.findings = append(n.findings, f)
	}
}

func (n *node) setMeta(k string, v any) {
	if n.meta == nil {
		n.meta = map[string]any{}
	}
	n.meta[k] = v
}

func (n *node) mergeReport(member string, r Report) {
	n.addIn(member, r.Findings)
	for k, v := range r.Metadata {
		n.setMeta(k, v)
	}
	if r.Model != nil {
		n.model = r.Model
	}
}

// examine decides the format of c and dispatches it. The error is for the
// top-level file only (an I/O error reading it); member problems become
// findings.
func (in *Inspector) examine(ctx context.Context, c *content) (*node, error) {
	n := &node{format: sniff(c.head, c.tail, c.size, in.isPickle(ctx, c), in.p.DetectContainer)}
	var err error
	switch n.format {
	case FormatEmpty:
	case FormatGGUF:
		err = in.runFile(ctx, c, n, in.p.GGUF)
	case FormatSafetensors:
		err = in.runFile(ctx, c, n, in.p.Safetensors)
	case FormatONNX:
		err = in.runFile(ctx, c, n, in.p.ONNX)
	case FormatPickle:
		err = in.runPickle(ctx, c, n)
	case FormatUnknown:
		err = in.embeddedPickle(ctx, c, n)
	case FormatText:
		err = in.kerasJSON(ctx, c, n)
	default:
		if kind := archiveKind(n.format); kind != "" {
			err = in.walkArchive(ctx, c, n, kind)
		}
	}
	// A loader that opens this name tries formats in its own order
	// (torch.load: zip by its first bytes, else tar, else pickle; numpy:
	// zip, npy, else pickle; joblib: compressors, else pickle): whatever
	// the content was sniffed as, what such a loader would unpickle is
	// judged too.
	if err == nil && ctx.Err() == nil && loaderOpens(c.name) && alsoPickle(n.format, c.head) {
		err = in.alsoPickle(ctx, c, n)
	}
	if ext, bad := extensionDisagrees(c.name, n.format); bad {
		n.add(in.memberFinding(c, "INS-001", fmt.Sprintf("named %s, content is %s", ext, n.format)))
	}
	if err != nil && ctx.Err() != nil {
		return n, ctx.Err()
	}
	if err != nil {
		if c.member == "" {
			return n, fmt.Errorf("reading %s content: %w", n.format, err)
		}
		n.add(in.memberFinding(c, "INS-008", err.Error()))
	}
	return n, nil
}

// isPickle returns the pickle test for c: the parsers' SniffPickle over
// the whole content, else the built-in look at its head.
func (in *Inspector) isPickle(ctx context.Context, c *content) func() bool {
	return func() bool {
		if in.p.SniffPickle != nil {
			return in.p.SniffPickle(ctx, c.ra, c.size)
		}
		return looksPickleBuiltin(c.head)
	}
}

func (in *Inspector) memberFinding(c *content, id, detail string) verdict.Finding {
	f := in.cat.New(id, detail, -1)
	f.Member = c.member
	return f
}

// guard runs a parser and turns a panic into an INS-009 finding.
func (in *Inspector) guard(c *content, n *node, parser string, fn func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			in.log.Error("parser crashed", "parser", parser, "member", c.member, "panic", r)
			n.add(in.memberFinding(c, "INS-009", fmt.Sprintf("%s parser: %v", parser, r)))
			err = nil
		}
	}()
	return fn()
}

func (in *Inspector) notParsed(c *content, n *node) {
	n.add(in.memberFinding(c, "INS-008", fmt.Sprintf("no %s parser available; content not checked", n.format)))
}

func (in *Inspector) runFile(ctx context.Context, c *content, n *node, p FileScanner) error {
	if p == nil {
		in.notParsed(c, n)
		return nil
	}
	return in.guard(c, n, n.format, func() error {
		r, err := p.ScanFile(ctx, c.ra, c.size)
		n.mergeReport(c.member, r)
		in.checkExternal(c, n, r.External)
		return err
	})
}

func (in *Inspector) runPickle(ctx context.Context, c *content, n *node) error {
	if in.p.Pickle == nil {
		in.notParsed(c, n)
		return nil
	}
	var r io.Reader = c.stream
	if r == nil {
		r = bufio.NewReaderSize(io.NewSectionReader(c.ra, 0, c.size), 64<<10)
	}
	r = sizedReader{r, c.size, c.ra}
	var rep Report
	err := in.guard(c, n, n.format, func() error {
		var err error
		base := path.Base(c.member[strings.LastIndexByte(c.member, '!')+1:])
		if ls, ok := in.p.Pickle.(LayoutScanner); ok && c.parent == "tar" && (base == "storages" || base == "tensors") {
			// Legacy torch tar: pickles between raw storage data.
			rep, err = ls.ScanLayout(ctx, r, "torch-tar-"+base)
		} else {
			rep, err = in.p.Pickle.ScanStream(ctx, r)
		}
		n.mergeReport(c.member, rep)
		return err
	})
	if err == nil {
		in.openEmbedded(ctx, c, n, rep)
	}
	return err
}

// openEmbedded inspects the byte ranges a parser says a loader opens as
// files of their own (torch archives inside a pickle), as members named
// "<via@offset>", one level deeper.
func (in *Inspector) openEmbedded(ctx context.Context, c *content, n *node, rep Report) {
	for _, e := range rep.Embedded {
		if ctx.Err() != nil {
			return
		}
		name := fmt.Sprintf("<%s@%d>", e.Via, e.Offset)
		mpath := joinMember(c.member, name)
		if e.Offset < 0 || e.Length < 0 || e.Offset > c.size || e.Length > c.size-e.Offset {
			n.add(in.memberFinding(&content{member: mpath}, "INS-008", "embedded range lies outside the content"))
			continue
		}
		if c.depth+1 > in.opts.MaxDepth {
			n.add(in.memberFinding(&content{member: mpath}, "INS-005", fmt.Sprintf("embedded archive at nesting depth %d not opened (limit %d)", c.depth+1, in.opts.MaxDepth)))
			continue
		}
		var ra io.ReaderAt = io.NewSectionReader(c.ra, e.Offset, e.Length)
		size := e.Length
		var sum string
		if e.Encoding == "latin1-of-utf8" {
			mat, err := in.materialise(ctx, &latin1Reader{r: bufio.NewReader(io.NewSectionReader(c.ra, e.Offset, e.Length))})
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				n.add(in.memberFinding(&content{member: mpath}, "INS-008", err.Error()))
				continue
			}
			ra, size, sum = mat.ra, mat.size, mat.sum
			defer mat.close()
		}
		head, tail, err := headTail(ra, size)
		if err != nil {
			n.add(in.memberFinding(&content{member: mpath}, "INS-008", err.Error()))
			continue
		}
		sub, _ := in.examine(ctx, &content{member: mpath, name: name, ra: ra, size: size, head: head, tail: tail, depth: c.depth + 1})
		n.add(sub.findings...)
		n.setMeta("embedded", append(metaList(n.meta["embedded"]), memberEntry{Name: name, Size: size, Format: sub.format, SHA256: sum, Verdict: string(verdictOf(sub.findings))}))
	}
}

func metaList(v any) []memberEntry {
	l, _ := v.([]memberEntry)
	return l
}

// alsoPickle scans content of another format as the pickle a loader of
// its name would read from its first byte, and reports it when that
// pickle imports anything (INS-021 and the pickle's findings).
func (in *Inspector) alsoPickle(ctx context.Context, c *content, n *node) error {
	if in.p.Pickle == nil {
		return nil
	}
	var rep Report
	err := in.guard(c, n, "pickle", func() error {
		var err error
		rep, err = in.p.Pickle.ScanStream(ctx, io.NewSectionReader(c.ra, 0, c.size))
		return err
	})
	if err != nil {
		return err
	}
	imports := globalsOf(rep)
	if len(imports) == 0 {
		return nil
	}
	n.add(in.memberFinding(c, "INS-021", fmt.Sprintf("content sniffed as %s; read as a pickle it imports %s", n.format, strings.Join(firstN(imports, 5), ", "))))
	n.addIn(c.member, rep.Findings)
	in.openEmbedded(ctx, c, n, rep)
	return nil
}

// maxKerasJSON bounds the text files read to look for a Keras model.
const maxKerasJSON = 64 << 20

// kerasJSON checks a text file that is a serialized Keras model (the JSON
// keras.models.model_from_json builds, possibly a config.json taken out of
// a .keras archive): loading it runs what it names.
func (in *Inspector) kerasJSON(ctx context.Context, c *content, n *node) error {
	if in.p.Keras == nil || c.size > maxKerasJSON || !bytes.Contains(c.head, []byte("class_name")) {
		return nil
	}
	if c.parent != "" && c.name == "config.json" {
		return nil // the archive's own Keras check reads it
	}
	b := make([]byte, c.size)
	if _, err := c.ra.ReadAt(b, 0); err != nil && err != io.EOF {
		return err
	}
	if !in.looksKeras(b) {
		return nil
	}
	n.format = FormatKerasJSON
	fs, err := in.p.Keras.CheckKerasConfig(b)
	if err != nil {
		return err
	}
	n.addIn(c.member, fs)
	return ctx.Err()
}

// checkExternal reports external files that resolve (through symbolic
// links) outside the directory of the file that references them. Lexical
// escapes (absolute paths, "..") are the format parser's findings; only a
// file on disk has links to follow, so members are not checked.
func (in *Inspector) checkExternal(c *content, n *node, locs []string) {
	if c.path == "" || len(locs) == 0 {
		return
	}
	dir := filepath.Dir(c.path)
	realDir, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return
	}
	for i, loc := range locs {
		if i >= 1000 {
			break
		}
		if filepath.IsAbs(loc) || !filepath.IsLocal(filepath.FromSlash(loc)) {
			continue
		}
		target, err := filepath.EvalSymlinks(filepath.Join(dir, filepath.FromSlash(loc)))
		if err != nil {
			continue // missing external data is not a safety problem
		}
		if !within(realDir, target) {
			n.add(in.cat.New("INS-020", fmt.Sprintf("%s resolves to %s", loc, target), -1))
		}
	}
}

// latin1Reader turns a UTF-8 string whose characters are all below U+0100
// into those bytes: how protocols 0-2 pickle bytes objects.
type latin1Reader struct {
	r *bufio.Reader
}

func (l *latin1Reader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		r, size, err := l.r.ReadRune()
		if err != nil {
			if n > 0 && err == io.EOF {
				return n, nil
			}
			return n, err
		}
		if r > 0xFF || (r == utf8.RuneError && size == 1) {
			return n, fmt.Errorf("embedded bytes: character U+%04X is not a byte", r)
		}
		p[n] = byte(r)
		n++
	}
	return n, nil
}

// sizedReader tells a stream parser how many bytes the content has, and
// lets it read the content again from the start.
type sizedReader struct {
	io.Reader
	n  int64
	ra io.ReaderAt
}

func (s sizedReader) Size() int64 { return s.n }

func (s sizedReader) Reopen() io.Reader {
	return bufio.NewReaderSize(io.NewSectionReader(s.ra, 0, s.n), 64<<10)
}
