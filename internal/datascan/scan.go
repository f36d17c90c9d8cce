package datascan

import (
	"archive/tar"
	"archive/zip"
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"

	"github.com/llmfence/llmfence/internal/gibberish"
	"github.com/llmfence/llmfence/internal/redact"
	"github.com/llmfence/llmfence/internal/service"
)

// Sink receives what a scan finds, as it finds it. Calls are serialised.
type Sink interface {
	Finding(Finding) error
	Summary(Summary) error
	File(FileInfo) error
}

// Stats sums up a scan.
type Stats struct {
	Files    int
	Errors   int
	Records  int64
	Bytes    int64
	Findings map[string]int
	// Max is the highest severity of any finding.
	Max service.Severity
	// Warnings are limits the scan ran into (they do not fail it).
	Warnings []string
}

// Scanner scans training data. It is safe for concurrent use.
type Scanner struct {
	o     Options
	model *gibberish.Model
	red   *redact.Redactor
	inj   *injections
}

// New returns a Scanner.
func New(o Options) (*Scanner, error) {
	for _, d := range o.Detect {
		if !slices.Contains(AllDetectors, d) {
			return nil, fmt.Errorf("unknown detector %q (want %s)", d, strings.Join(AllDetectors, ", "))
		}
	}
	red, err := redact.New()
	if err != nil {
		return nil, err
	}
	inj, err := loadInjections(injectionYAML)
	if err != nil {
		return nil, err
	}
	return &Scanner{o: o.withDefaults(), model: gibberish.Default(), red: red, inj: inj}, nil
}

// run is the state of one Scan.
type run struct {
	s       *Scanner
	ctx     context.Context
	sink    Sink
	mu      sync.Mutex // sink, stats
	err     error
	stats   Stats
	records atomic.Int64
	bytes   atomic.Int64
	jobs    chan *batch

	turned   *turnedSet
	bg       *background
	dups     *dupTracker
	instr    *instrTracker
	builders []*gibberish.Builder
	bmu      sync.Mutex
}

func (s *Scanner) newRun(ctx context.Context, sink Sink, workers int) *run {
	return &run{s: s, ctx: ctx, sink: sink, jobs: make(chan *batch, 2*workers),
		turned: newTurnedSet(s.o.MaxTurned), bg: newBackground(5_000), dups: newDupTracker(), instr: newInstrTracker()}
}

func (s *Scanner) workers() int {
	if s.o.Workers > 0 {
		return s.o.Workers
	}
	return runtime.GOMAXPROCS(0)
}

func (r *run) emit(f Finding) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.count(f.Kind, f.Severity)
	if r.err == nil {
		r.err = r.sink.Finding(f)
	}
}

func (r *run) emitAll(fs []Finding) {
	if len(fs) == 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, f := range fs {
		r.count(f.Kind, f.Severity)
		if r.err == nil {
			r.err = r.sink.Finding(f)
		}
	}
}

func (r *run) count(kind string, sev service.Severity) {
	if r.stats.Findings == nil {
		r.stats.Findings = map[string]int{}
	}
	r.stats.Findings[kind]++
	if sev.Rank() > r.stats.Max.Rank() {
		r.stats.Max = sev
	}
}

func (r *run) warn(format string, a ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	msg := fmt.Sprintf(format, a...)
	for _, w := range r.stats.Warnings {
		if w == msg {
			return
		}
	}
	r.stats.Warnings = append(r.stats.Warnings, msg)
}

// Scan scans the named files and directories. Findings about single
// records (pii, secret, prompt_injection) reach sink while the scan runs;
// those that need the whole corpus (backdoor triggers, instruction
// backdoors, duplicate clusters) and the summaries follow at the end. A
// file that cannot be read is reported through sink.File with its error
// and the scan goes on; the returned error is for cancellation and for
// failures of sink or of --redact-to.
func (s *Scanner) Scan(ctx context.Context, paths []string, sink Sink) (Stats, error) {
	workers := s.workers()
	r := s.newRun(ctx, sink, workers)
	if s.o.RedactTo != "" {
		if err := checkRedactTo(s.o.RedactTo, paths); err != nil {
			return r.stats, err
		}
	}
	sources, bad := expand(paths)
	for _, fi := range bad {
		r.fileDone(fi)
	}
	waitWorkers := r.startWorkers(workers)
	// Readers: as many as workers, each reading whole files (a file's
	// batches go to every worker).
	files := make(chan *source)
	var readers sync.WaitGroup
	for range workers {
		readers.Add(1)
		go func() {
			defer readers.Done()
			rd := &reader{r: r}
			for src := range files {
				rd.scanTop(src)
			}
		}()
	}
feed:
	for _, src := range sources {
		select {
		case files <- src:
		case <-ctx.Done():
			break feed
		}
	}
	close(files)
	readers.Wait()
	close(r.jobs)
	waitWorkers()
	r.stats.Records = r.records.Load()
	r.stats.Bytes = r.bytes.Load()
	if err := ctx.Err(); err != nil {
		return r.stats, err
	}
	r.finish()
	if r.turned.dropped > 0 {
		r.warn("%d records turned into gibberish beyond the %d kept for grouping (--max-turned); triggers were looked for in the first ones", r.turned.dropped, s.o.MaxTurned)
	}
	return r.stats, r.err
}

// ScanReader scans one stream (standard input, a pipe) named name, as
// Scan scans a file: the format is decided from its content. Corpus-wide
// findings are reported at the end, as by Scan.
func (s *Scanner) ScanReader(ctx context.Context, name string, rd io.Reader, sink Sink) (Stats, error) {
	if s.o.RedactTo != "" {
		return Stats{}, errors.New("--redact-to needs files, not a stream")
	}
	workers := s.workers()
	r := s.newRun(ctx, sink, workers)
	waitWorkers := r.startWorkers(workers)
	rr := &reader{r: r}
	src := &source{name: name, rel: name, size: -1}
	hr := newHashingReader(rd)
	info := rr.scanStream(src, hr, nil, nil)
	io.Copy(io.Discard, hr)
	info.SHA256, info.Size = hr.sum(), hr.n
	r.fileDone(info)
	close(r.jobs)
	waitWorkers()
	r.stats.Records = r.records.Load()
	r.stats.Bytes = r.bytes.Load()
	if err := ctx.Err(); err != nil {
		return r.stats, err
	}
	r.finish()
	return r.stats, r.err
}

// checkRedactTo refuses an output directory inside an input or holding one:
// nothing is ever written into the input tree.
func checkRedactTo(dir string, paths []string) error {
	out, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	for _, p := range paths {
		in, err := filepath.Abs(p)
		if err != nil {
			return err
		}
		if out == in || strings.HasPrefix(out+string(filepath.Separator), in+string(filepath.Separator)) ||
			strings.HasPrefix(in+string(filepath.Separator), out+string(filepath.Separator)) {
			return fmt.Errorf("--redact-to %s overlaps the input %s: the redacted copy must go elsewhere", dir, p)
		}
	}
	return nil
}

func (r *run) fileDone(fi FileInfo) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stats.Files++
	if fi.Error != "" {
		r.stats.Errors++
	}
	if r.err == nil {
		r.err = r.sink.File(fi)
	}
}

// worker runs the per-record detectors on batches; each detector
// goroutine has its own.
type worker struct {
	r       *run
	builder *gibberish.Builder
}

func (r *run) newWorker() *worker {
	// The corpus model needs the common bigrams and words, not all: a
	// bounded sample (maps of at most 131,072 entries, a few MB each).
	return &worker{r: r, builder: gibberish.NewBuilder(gibberish.BuilderOptions{MaxPairs: 1 << 17, MaxWords: 1 << 17})}
}

// reader reads files and archive members and hands their records on;
// each reading goroutine has its own.
type reader struct {
	r *run
}

func (r *run) redactText(s string) string {
	out, _ := r.s.red.Redact(s)
	return out
}

// fileScan is the reading of one file (or archive member).
type fileScan struct {
	ctx  context.Context
	o    *Options
	run  *run
	src  *source
	info *FileInfo
	bad  int64
	hash uint64

	// The batches (see pipeline.go): the one being filled, the next
	// sequence number, those handed on and not yet done, and the commit
	// of their findings in order.
	cur       *batch
	nextSeq   int
	pending   sync.WaitGroup
	mu        sync.Mutex
	waiting   map[int]*batch
	committed int
}

func (r *run) newFileScan(src *source, info *FileInfo) *fileScan {
	return &fileScan{ctx: r.ctx, o: &r.s.o, run: r, src: src, info: info, hash: strHash(src.name)}
}

// nameHash is a hash of the file's name (for recordKey).
func (fs *fileScan) nameHash() uint64 { return fs.hash }

func (fs *fileScan) badRecord(rec int64, off int64, err error) {
	fs.bad++
	if fs.info.Error == "" {
		fs.info.Error = fmt.Sprintf("record %d: %v", rec, err)
		fs.info.ErrorAt = off
	}
}

// scanTop scans one input file: hashes it, opens the redacted copy's
// file, and reads it by format.
func (w *reader) scanTop(src *source) {
	var out *os.File
	dst := ""
	if w.r.s.o.RedactTo != "" {
		dst = filepath.Join(w.r.s.o.RedactTo, src.rel)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err == nil {
			out, _ = os.Create(dst)
		}
		if out == nil {
			w.r.warn("--redact-to: cannot write %s", dst)
		}
	}
	f, err := src.open()
	if err != nil {
		w.r.fileDone(FileInfo{Path: src.name, Size: src.size, Error: fmt.Sprintf("cannot read: %v", err)})
		return
	}
	defer f.Close()
	hr := newHashingReader(f)
	var ra func() (io.ReaderAt, io.Closer, int64, error)
	if src.readerAt != nil {
		ra = src.readerAt
	}
	var ow io.Writer
	if out != nil {
		ow = out
	}
	info := w.scanStream(src, hr, ra, ow)
	// Hash what the readers did not read (after an error).
	io.Copy(io.Discard, hr)
	info.SHA256 = hr.sum()
	info.Size = hr.n
	if out != nil {
		if err := out.Close(); err != nil {
			w.r.warn("--redact-to: %v", err)
		}
		// What could not be rewritten is not copied at all: a verbatim
		// copy would carry what it may hold.
		if f := info.Format; f == FormatBinary || strings.HasPrefix(f, FormatParquet) || info.Error != "" && info.Records == 0 {
			os.Remove(dst)
			w.r.warn("--redact-to: %s has no redacted copy (%s)", src.name, cmpOr(info.Error, f))
		}
	}
	w.r.fileDone(info)
}

// scanStream reads one file or member from r (its raw bytes). ra, when
// set, opens the same bytes for random access. out receives the redacted
// copy (nil: none). Members of archives are reported through fileDone
// themselves; the returned FileInfo is the container's.
func (w *reader) scanStream(src *source, r io.Reader, ra func() (io.ReaderAt, io.Closer, int64, error), out io.Writer) FileInfo {
	o := &w.r.s.o
	info := FileInfo{Path: src.name, Size: src.size}
	if src.card != nil {
		addValue(&info.Licenses, src.card.license)
		addValue(&info.Sources, src.card.source)
	}
	br := bufio.NewReaderSize(r, 256<<10)
	head, err := br.Peek(headSize)
	if err != nil && err != io.EOF && err != bufio.ErrBufferFull {
		info.Error = fmt.Sprintf("cannot read: %v", err)
		return info
	}
	info.Format = detect(head)
	fail := func(err error) FileInfo {
		if info.Error == "" {
			info.Error = err.Error()
			var se *errSyntax
			if errors.As(err, &se) {
				info.ErrorAt = se.off
			}
		}
		return info
	}
	if src.depth > o.MaxDepth {
		return fail(fmt.Errorf("nested more than %d levels deep", o.MaxDepth))
	}
	switch info.Format {
	case FormatGzip, FormatZstd, FormatBzip2, FormatXz:
		d, closeD, err := decompress(w.r.ctx, info.Format, br, o)
		if err != nil {
			return fail(err)
		}
		defer closeD()
		var cw io.WriteCloser
		if out != nil {
			cw = compressor(info.Format, out)
			defer cw.Close()
		}
		inner := *src
		inner.depth++
		var iw io.Writer
		if cw != nil {
			iw = cw
		}
		sub := w.scanStream(&inner, d, nil, iw)
		sub.Path, sub.Size = info.Path, info.Size
		sub.Format = sub.Format + "+" + info.Format
		return sub
	case FormatTar:
		var tw *tar.Writer
		if out != nil {
			tw = tar.NewWriter(out)
			defer tw.Close()
		}
		err := tarMembers(w.r.ctx, src, br, func(m *source, mr io.Reader) error {
			return w.member(m, mr, func(fn func(io.Writer)) error {
				if tw == nil {
					fn(nil)
					return nil
				}
				// The header needs the size: the redacted member goes
				// through a temporary file.
				tmp, err := os.CreateTemp(o.TempDir, "llmfence-redact-*")
				if err != nil {
					return err
				}
				defer os.Remove(tmp.Name())
				defer tmp.Close()
				fn(tmp)
				n, _ := tmp.Seek(0, io.SeekCurrent)
				tmp.Seek(0, io.SeekStart)
				name := strings.TrimPrefix(m.name, src.name+"!")
				if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: n, Typeflag: tar.TypeReg}); err != nil {
					return err
				}
				_, err = io.Copy(tw, tmp)
				return err
			})
		})
		info.Schema = "archive"
		if err != nil {
			return fail(err)
		}
		return info
	case FormatZip:
		rat, closer, size, err := w.randomAccess(br, ra)
		if err != nil {
			return fail(err)
		}
		defer closer.Close()
		var zw *zip.Writer
		if out != nil {
			zw = zip.NewWriter(out)
			defer zw.Close()
		}
		err = zipMembers(w.r.ctx, src, rat, size, o, func(m *source, mr io.Reader, h *zip.FileHeader) error {
			return w.member(m, mr, func(fn func(io.Writer)) error {
				if zw == nil {
					fn(nil)
					return nil
				}
				fw, err := zw.CreateHeader(&zip.FileHeader{Name: h.Name, Method: zip.Deflate, Modified: h.Modified})
				if err != nil {
					return err
				}
				fn(fw)
				return nil
			})
		})
		info.Schema = "archive"
		if err != nil {
			return fail(err)
		}
		return info
	case FormatParquet:
		rat, closer, size, err := w.randomAccess(br, ra)
		if err != nil {
			return fail(err)
		}
		defer closer.Close()
		fs := w.r.newFileScan(src, &info)
		err = fs.readParquet(rat, size)
		fs.wait()
		if err != nil {
			return fail(err)
		}
		return info
	case FormatBinary:
		return fail(errors.New("binary data, not a text or data format datascan reads"))
	case FormatEmpty:
		return info
	}
	var bw *bufio.Writer
	if out != nil {
		bw = bufio.NewWriterSize(out, 256<<10)
		defer bw.Flush()
	}
	fs := w.r.newFileScan(src, &info)
	switch info.Format {
	case FormatJSONL:
		err = fs.readJSONL(br, bw)
	case FormatJSON:
		err = fs.readJSON(br, bw)
	case FormatCSV:
		err = fs.readCSV(br, bw, ',')
	case FormatTSV:
		err = fs.readCSV(br, bw, '\t')
	default:
		err = fs.readText(br, bw)
	}
	fs.wait()
	if fs.bad > 0 {
		info.Error = fmt.Sprintf("%s (%d bad records in all)", info.Error, fs.bad)
	}
	if err != nil {
		return fail(err)
	}
	return info
}

// member scans one archive member and reports it; write gives the member's
// redacted copy a writer (nil: none) for the duration of fn.
func (w *reader) member(m *source, r io.Reader, write func(fn func(io.Writer)) error) error {
	if err := w.r.ctx.Err(); err != nil {
		return err
	}
	hr := newHashingReader(r)
	var info FileInfo
	err := write(func(out io.Writer) {
		info = w.scanStream(m, hr, nil, out)
	})
	io.Copy(io.Discard, hr)
	info.SHA256, info.Size = hr.sum(), hr.n
	w.r.fileDone(info)
	if err != nil {
		return fmt.Errorf("--redact-to: %w", err)
	}
	return w.r.ctx.Err()
}

// randomAccess returns the file itself for random access, or a temporary
// copy of the stream.
func (w *reader) randomAccess(br *bufio.Reader, ra func() (io.ReaderAt, io.Closer, int64, error)) (io.ReaderAt, io.Closer, int64, error) {
	if ra != nil {
		rat, c, n, err := ra()
		if err == nil {
			io.Copy(io.Discard, br) // the stream is hashed as it is read
			return rat, c, n, nil
		}
	}
	f, n, err := spool(br, w.r.s.o.TempDir, w.r.s.o.MaxSpool)
	if err != nil {
		return nil, nil, 0, err
	}
	return f, f, n, nil
}

// compressor returns a writer compressing into out in format (bzip2, for
// which Go has no compressor, is written uncompressed).
func compressor(format string, out io.Writer) io.WriteCloser {
	switch format {
	case FormatGzip:
		return gzipWriter(out)
	case FormatZstd:
		zw, err := zstd.NewWriter(out, zstd.WithEncoderConcurrency(1))
		if err == nil {
			return zw
		}
	case FormatXz:
		xw, err := xz.NewWriter(out)
		if err == nil {
			return xw
		}
	}
	return nopCloser{out}
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func addValue(list *[]string, v string) {
	v = strings.TrimSpace(v)
	if v == "" || len(*list) >= 5 {
		return
	}
	for _, x := range *list {
		if x == v {
			return
		}
	}
	*list = append(*list, v)
	sort.Strings(*list)
}
