package probe

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// JournalFormat identifies a probe journal.
const JournalFormat = "llmfence-probe-journal/1"

// Journal limits: a line holds one answer (at most the transport's answer
// cap plus log-probabilities), and a run has at most MaxPlan requests.
const (
	maxJournalLine = 8 << 20
	syncEvery      = time.Second
)

// Header is the first line of a journal: everything needed to plan the run
// again.
type Header struct {
	Kind     string    `json:"kind"` // "header"
	Format   string    `json:"format"`
	Started  time.Time `json:"started"`
	Tool     string    `json:"tool,omitempty"`
	Config   Config    `json:"config"`
	PlanHash string    `json:"plan_hash"`
	Requests int       `json:"requests"`
}

type journalLine struct {
	Kind string `json:"kind"` // "outcome"
	Outcome
}

// Journal appends outcomes to a JSON Lines file, so an interrupted run can
// resume. It is safe for concurrent use. The file is created with mode
// 0600: it holds the model's answers.
type Journal struct {
	path     string
	mu       sync.Mutex
	f        *os.File
	w        *bufio.Writer
	lastSync time.Time
}

// CreateJournal starts a new journal at path (which must not exist).
func CreateJournal(path string, h Header) (*Journal, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("cannot create the journal: %w", err)
	}
	h.Kind, h.Format = "header", JournalFormat
	j := &Journal{path: path, f: f, w: bufio.NewWriterSize(f, 64<<10), lastSync: time.Now()}
	if err := j.writeJSON(h); err != nil {
		f.Close()
		os.Remove(path)
		return nil, err
	}
	if err := j.sync(); err != nil {
		f.Close()
		return nil, err
	}
	return j, nil
}

// ErrNotJournal: the file is not a probe journal.
var ErrNotJournal = errors.New("not a probe journal")

// ReadJournal reads a journal's header and the outcomes it holds (the last
// outcome of a key wins). A torn last line (a crash mid-write) is ignored;
// valid reports the length of the intact prefix.
func ReadJournal(r io.Reader) (h Header, outs map[string]Outcome, valid int64, err error) {
	br := bufio.NewReaderSize(r, 64<<10)
	outs = map[string]Outcome{}
	for n := 1; ; n++ {
		line, rerr := readLine(br, maxJournalLine)
		if rerr != nil && !errors.Is(rerr, io.EOF) {
			return h, nil, 0, fmt.Errorf("journal line %d: %w", n, rerr)
		}
		complete := len(line) > 0 && line[len(line)-1] == '\n'
		if !complete {
			// EOF: an empty or torn last line.
			if n == 1 {
				return h, nil, 0, fmt.Errorf("%w: no header", ErrNotJournal)
			}
			return h, outs, valid, nil
		}
		if n == 1 {
			if err := json.Unmarshal(line, &h); err != nil || h.Kind != "header" || h.Format != JournalFormat {
				return h, nil, 0, fmt.Errorf("%w: first line is not a %s header", ErrNotJournal, JournalFormat)
			}
		} else {
			var jl journalLine
			if err := json.Unmarshal(line, &jl); err != nil || jl.Kind != "outcome" || jl.Key == "" {
				return h, nil, 0, fmt.Errorf("journal line %d is damaged: %.80q", n, line)
			}
			outs[jl.Key] = jl.Outcome
		}
		valid += int64(len(line))
		if rerr != nil {
			return h, outs, valid, nil
		}
	}
}

// readLine reads one line including its '\n', at most max bytes.
func readLine(br *bufio.Reader, max int) ([]byte, error) {
	var line []byte
	for {
		frag, err := br.ReadSlice('\n')
		if len(line)+len(frag) > max {
			return nil, fmt.Errorf("longer than %d bytes", max)
		}
		line = append(line, frag...)
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		return line, err
	}
}

// OpenJournal reads the journal at path and reopens it for appending,
// cutting off a torn last line.
func OpenJournal(path string) (*Journal, Header, map[string]Outcome, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, Header{}, nil, fmt.Errorf("cannot open the journal: %w", err)
	}
	h, outs, valid, err := ReadJournal(f)
	if err != nil {
		f.Close()
		return nil, Header{}, nil, fmt.Errorf("%s: %w", path, err)
	}
	if err := f.Truncate(valid); err != nil {
		f.Close()
		return nil, Header{}, nil, fmt.Errorf("cannot repair the journal: %w", err)
	}
	if _, err := f.Seek(valid, io.SeekStart); err != nil {
		f.Close()
		return nil, Header{}, nil, err
	}
	return &Journal{path: path, f: f, w: bufio.NewWriterSize(f, 64<<10), lastSync: time.Now()}, h, outs, nil
}

// Path is the journal's file.
func (j *Journal) Path() string { return j.path }

// Append records one outcome; it reaches the disk within a second.
func (j *Journal) Append(o Outcome) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if err := j.writeJSON(journalLine{Kind: "outcome", Outcome: o}); err != nil {
		return err
	}
	if time.Since(j.lastSync) >= syncEvery {
		return j.sync()
	}
	return j.w.Flush()
}

func (j *Journal) writeJSON(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if bytes.IndexByte(b, '\n') >= 0 {
		return errors.New("journal record contains a line break")
	}
	if _, err := j.w.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("writing the journal: %w", err)
	}
	return nil
}

func (j *Journal) sync() error {
	if err := j.w.Flush(); err != nil {
		return fmt.Errorf("writing the journal: %w", err)
	}
	j.lastSync = time.Now()
	if err := j.f.Sync(); err != nil {
		return fmt.Errorf("writing the journal: %w", err)
	}
	return nil
}

// Close flushes and closes the journal.
func (j *Journal) Close() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	err := j.sync()
	if cerr := j.f.Close(); err == nil {
		err = cerr
	}
	return err
}
