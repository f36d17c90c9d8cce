package spool

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/llmfence/llmfence/internal/store"
)

// Fsync is when appended records are forced to stable storage.
type Fsync int

// Fsync policies.
const (
	// FsyncInterval syncs in the background every Options.FsyncInterval:
	// a power cut loses at most that much; a killed process loses nothing.
	FsyncInterval Fsync = iota
	// FsyncAlways syncs before Append returns (concurrent appends share
	// one fsync).
	FsyncAlways
	// FsyncNever leaves writing back to the kernel.
	FsyncNever
)

var fsyncNames = [...]string{"interval", "always", "never"}

func (f Fsync) String() string {
	if f >= 0 && int(f) < len(fsyncNames) {
		return fsyncNames[f]
	}
	return "fsync(" + strconv.Itoa(int(f)) + ")"
}

// MarshalText implements encoding.TextMarshaler.
func (f Fsync) MarshalText() ([]byte, error) { return []byte(f.String()), nil }

// UnmarshalText reads "always", "interval" or "never".
func (f *Fsync) UnmarshalText(b []byte) error {
	i := slices.Index(fsyncNames[:], strings.ToLower(strings.TrimSpace(string(b))))
	if i < 0 {
		return fmt.Errorf("fsync %q: want always, interval or never", string(b))
	}
	*f = Fsync(i)
	return nil
}

// Options configure a Spool; zero fields take the defaults shown.
type Options struct {
	Fsync         Fsync
	FsyncInterval time.Duration // 1s
	// SegmentBytes is the size past which appends go to a new segment
	// (16 MiB).
	SegmentBytes int64
	// MaxBytes bounds the spool on disk (1 GiB): when records cannot be
	// copied into the store (it is down) and the spool reaches it, Append
	// fails rather than fill the disk.
	MaxBytes int64
	Logger   *slog.Logger
}

// ErrFull is returned by Append when the spool holds MaxBytes.
var ErrFull = errors.New("audit spool full (the store has not taken records for a while)")

// ErrInUse is returned by Open when another process holds the spool.
var ErrInUse = errors.New("in use by another guard process (give each one its own audit.spool)")

// ErrClosed is returned by Append after Close.
var ErrClosed = errors.New("audit spool closed")

// Spool is an open spool directory. Its methods are safe for concurrent
// use.
type Spool struct {
	dir  string
	id   string
	opts Options
	log  *slog.Logger
	lock *os.File

	mu      sync.Mutex
	f       *os.File // current segment
	seg     int64    // its number
	off     int64    // bytes in it (whole frames only)
	onDisk  int64    // bytes in every segment, as far as Append knows
	closed  bool
	notify  chan struct{} // gets a token (capacity 1) when records are appended
	scratch []byte

	replayMu sync.Mutex // one Replay at a time

	syncMu     sync.Mutex
	syncedSeg  int64 // with syncedOff: everything before it is synced
	syncedOff  int64
	stopSync   chan struct{}
	syncerDone chan struct{}
}

const segSuffix = ".seg"

func segName(n int64) string { return fmt.Sprintf("%016d%s", n, segSuffix) }

// Open opens (creating it if needed) the spool directory dir and starts a
// new segment. Only one process may hold a spool: a second Open of the same
// directory fails.
func Open(dir string, opts Options) (*Spool, error) {
	if opts.FsyncInterval <= 0 {
		opts.FsyncInterval = time.Second
	}
	if opts.SegmentBytes <= 0 {
		opts.SegmentBytes = 16 << 20
	}
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = 1 << 30
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("audit spool: cannot create %s: %w", dir, err)
	}
	lock, err := lockDir(filepath.Join(dir, "lock"))
	if err != nil {
		return nil, fmt.Errorf("audit spool %s: %w", dir, err)
	}
	s := &Spool{dir: dir, opts: opts, log: log, lock: lock, notify: make(chan struct{}, 1)}
	fail := func(err error) (*Spool, error) {
		unlockDir(lock)
		return nil, fmt.Errorf("audit spool %s: %w", dir, err)
	}
	if s.id, err = readOrCreateID(filepath.Join(dir, "id")); err != nil {
		return fail(err)
	}
	segs, err := s.segments()
	if err != nil {
		return fail(err)
	}
	next := int64(1)
	for _, n := range segs {
		next = n + 1
		if fi, err := os.Stat(filepath.Join(dir, segName(n))); err == nil {
			s.onDisk += fi.Size()
		}
	}
	if err := s.openSegment(next); err != nil {
		return fail(err)
	}
	s.syncedSeg = s.seg
	if opts.Fsync == FsyncInterval {
		s.stopSync, s.syncerDone = make(chan struct{}), make(chan struct{})
		go s.syncer()
	}
	return s, nil
}

// ID is the spool's random identity: the store keeps its position under it.
func (s *Spool) ID() string { return s.id }

// Dir is the spool directory.
func (s *Spool) Dir() string { return s.dir }

func readOrCreateID(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		id := strings.TrimSpace(string(b))
		if len(id) < 16 || strings.ContainsAny(id, " \t\n/") {
			return "", fmt.Errorf("spool ID file %s is damaged", path)
		}
		return id, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	var r [12]byte
	if _, err := rand.Read(r[:]); err != nil {
		return "", err
	}
	id := hex.EncodeToString(r[:])
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(id+"\n"), 0o600); err != nil {
		return "", err
	}
	if err := syncFile(tmp); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, path); err != nil {
		return "", err
	}
	return id, syncFile(filepath.Dir(path))
}

func syncFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// segments lists the segment numbers present, ascending.
func (s *Spool) segments() ([]int64, error) {
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, err
	}
	var out []int64
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), segSuffix)
		if !ok || e.IsDir() {
			continue
		}
		n, err := strconv.ParseInt(name, 10, 64)
		if err != nil || n <= 0 {
			continue
		}
		out = append(out, n)
	}
	slices.Sort(out)
	return out, nil
}

// openSegment makes segment n the one appended to (s.mu held, or during
// Open).
func (s *Spool) openSegment(n int64) error {
	f, err := os.OpenFile(filepath.Join(s.dir, segName(n)), os.O_CREATE|os.O_EXCL|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("new segment: %w", err)
	}
	if s.opts.Fsync != FsyncNever {
		// The directory entry must survive a power cut too.
		if err := syncFile(s.dir); err != nil {
			f.Close()
			return fmt.Errorf("new segment: %w", err)
		}
	}
	s.f, s.seg, s.off = f, n, 0
	return nil
}

// Append writes one record with one write(2). When it returns nil the
// record survives the process being killed (and, with FsyncAlways, a
// power cut).
func (s *Spool) Append(rec *store.UsageRecord) error {
	return s.append(func(b []byte) []byte { return appendFrame(b, rec) })
}

// AppendBatch writes several records with one write(2).
func (s *Spool) AppendBatch(recs []store.UsageRecord) error {
	if len(recs) == 0 {
		return nil
	}
	return s.append(func(b []byte) []byte {
		for i := range recs {
			b = appendFrame(b, &recs[i])
		}
		return b
	})
}

func (s *Spool) append(encode func([]byte) []byte) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	buf := encode(s.scratch[:0])
	if cap(buf) <= 64<<10 {
		s.scratch = buf
	} else {
		s.scratch = nil
	}
	if s.onDisk+int64(len(buf)) > s.opts.MaxBytes {
		s.mu.Unlock()
		return ErrFull
	}
	if s.off > 0 && s.off+int64(len(buf)) > s.opts.SegmentBytes {
		if err := s.rotate(); err != nil {
			s.mu.Unlock()
			return err
		}
	}
	n, err := s.f.Write(buf)
	if err != nil {
		if n > 0 {
			// A partial frame would hide every later one in this segment:
			// continue in a fresh segment; the reader stops at the torn
			// frame and moves on.
			s.off += int64(n)
			s.onDisk += int64(n)
			if rerr := s.rotate(); rerr != nil {
				s.log.Error("audit spool: cannot start a new segment after a failed write", "err", rerr)
			}
		}
		s.mu.Unlock()
		return fmt.Errorf("audit spool: writing a record: %w", err)
	}
	s.off += int64(n)
	s.onDisk += int64(n)
	seg, off := s.seg, s.off
	s.mu.Unlock()
	select {
	case s.notify <- struct{}{}:
	default:
	}
	if s.opts.Fsync == FsyncAlways {
		return s.syncTo(seg, off)
	}
	return nil
}

// rotate closes the current segment (synced unless FsyncNever) and opens
// the next (s.mu held).
func (s *Spool) rotate() error {
	old := s.f
	if s.opts.Fsync != FsyncNever {
		if err := old.Sync(); err != nil {
			return fmt.Errorf("audit spool: sync before a new segment: %w", err)
		}
	}
	if err := s.openSegment(s.seg + 1); err != nil {
		return fmt.Errorf("audit spool: %w", err)
	}
	old.Close()
	return nil
}

// syncTo makes sure everything up to (seg, off) is synced: one fsync
// serves every append waiting at that moment.
func (s *Spool) syncTo(seg, off int64) error {
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	if s.syncedSeg > seg || (s.syncedSeg == seg && s.syncedOff >= off) {
		return nil
	}
	return s.syncNow()
}

// syncNow syncs the current segment (s.syncMu held). Earlier segments were
// synced when they were closed.
func (s *Spool) syncNow() error {
	s.mu.Lock()
	f, seg, off := s.f, s.seg, s.off
	s.mu.Unlock()
	if err := f.Sync(); err != nil {
		if errors.Is(err, os.ErrClosed) {
			return nil // rotated meanwhile: rotate synced it
		}
		return fmt.Errorf("audit spool: fsync: %w", err)
	}
	s.syncedSeg, s.syncedOff = seg, off
	return nil
}

func (s *Spool) syncer() {
	defer close(s.syncerDone)
	t := time.NewTicker(s.opts.FsyncInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stopSync:
			return
		case <-t.C:
			s.mu.Lock()
			seg, off := s.seg, s.off
			s.mu.Unlock()
			if err := s.syncTo(seg, off); err != nil {
				s.log.Warn("audit spool: background fsync failed", "err", err)
			}
		}
	}
}

// written returns where appends have got to, and a channel that receives
// a token after appends.
func (s *Spool) written() (seg, off int64, next <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.seg, s.off, s.notify
}

// Close syncs and closes the current segment and releases the directory.
// Records stay in the spool until they are replayed (by this process
// before Close, or by the next one to open the directory).
func (s *Spool) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	if s.stopSync != nil {
		close(s.stopSync)
		<-s.syncerDone
	}
	var errs []error
	if s.opts.Fsync != FsyncNever {
		errs = append(errs, s.f.Sync())
	}
	errs = append(errs, s.f.Close(), unlockDir(s.lock))
	return errors.Join(errs...)
}
