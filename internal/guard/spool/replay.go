package spool

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/llmfence/llmfence/internal/store"
)

// Sink takes copied records. store.UsageStore implements it.
type Sink interface {
	// AppendSpooled stores recs and records next as the spool's position,
	// in one transaction.
	AppendSpooled(ctx context.Context, spoolID string, recs []store.UsageRecord, next store.SpoolPosition) error
	// SpoolPosition is the position stored for the spool (zero if none).
	SpoolPosition(ctx context.Context, spoolID string) (store.SpoolPosition, error)
}

// ReplayStats says what one Replay did.
type ReplayStats struct {
	Records  int   // copied into the sink
	Batches  int   // transactions
	Lost     int64 // bytes skipped as unreadable (torn or damaged frames)
	Segments int   // segment files deleted
}

// DefaultBatch is the most records Replay stores per transaction.
const DefaultBatch = 2000

// readChunk is how much of a segment Replay reads at once.
const readChunk = 256 << 10

// Replay copies every record appended so far and not yet in sink into it,
// at most batch records per transaction (DefaultBatch when batch <= 0),
// and deletes the segments it has wholly copied. It stops at the first
// error of the sink, having kept whatever it had copied; calling it again
// resumes.
func (s *Spool) Replay(ctx context.Context, sink Sink, batch int) (ReplayStats, error) {
	s.replayMu.Lock()
	defer s.replayMu.Unlock()
	var st ReplayStats
	if batch <= 0 {
		batch = DefaultBatch
	}
	pos, err := sink.SpoolPosition(ctx, s.id)
	if err != nil {
		return st, err
	}
	segs, err := s.segments()
	if err != nil {
		return st, fmt.Errorf("audit spool: %w", err)
	}
	curSeg, curOff, _ := s.written()
	for _, n := range segs {
		if n < pos.Segment {
			// Copied before a crash that came between the commit and the
			// delete.
			s.remove(n, &st)
			continue
		}
		if n > curSeg {
			break // cannot happen: this process writes the newest segment
		}
		from := int64(0)
		if n == pos.Segment {
			from = pos.Offset
		}
		limit := int64(-1) // a closed segment: to its end
		if n == curSeg {
			limit = curOff
		}
		end, err := s.replaySegment(ctx, sink, n, from, limit, batch, &st)
		if err != nil {
			return st, err
		}
		if n == curSeg {
			break
		}
		// A closed segment is done (up to end): move the position past it,
		// then delete it.
		_ = end
		if err := sink.AppendSpooled(ctx, s.id, nil, store.SpoolPosition{Segment: n + 1}); err != nil {
			return st, err
		}
		st.Batches++
		s.remove(n, &st)
	}
	return st, nil
}

func (s *Spool) remove(n int64, st *ReplayStats) {
	path := filepath.Join(s.dir, segName(n))
	fi, err := os.Stat(path)
	if err != nil {
		return
	}
	if err := os.Remove(path); err != nil {
		s.log.Warn("audit spool: cannot delete a copied segment", "segment", path, "err", err)
		return
	}
	s.mu.Lock()
	s.onDisk -= fi.Size()
	s.mu.Unlock()
	st.Segments++
}

// replaySegment copies the frames of segment n from offset from up to
// limit (-1: the end of the file), and returns the offset reached.
func (s *Spool) replaySegment(ctx context.Context, sink Sink, n, from, limit int64, batch int, st *ReplayStats) (int64, error) {
	f, err := os.Open(filepath.Join(s.dir, segName(n)))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return from, nil
		}
		return from, fmt.Errorf("audit spool: %w", err)
	}
	defer f.Close()
	if limit < 0 {
		fi, err := f.Stat()
		if err != nil {
			return from, fmt.Errorf("audit spool: %w", err)
		}
		limit = fi.Size()
	}
	off := from
	var (
		buf   []byte // unread bytes starting at bufOff
		chunk = make([]byte, readChunk)
		recs  []store.UsageRecord
		next  = from // position after the last decoded frame
	)
	bufOff := from
	flush := func() error {
		if len(recs) == 0 {
			return nil
		}
		if err := sink.AppendSpooled(ctx, s.id, recs, store.SpoolPosition{Segment: n, Offset: next}); err != nil {
			return err
		}
		st.Records += len(recs)
		st.Batches++
		recs = recs[:0]
		return nil
	}
	for {
		// Decode the whole frames in buf.
		for {
			fl, err := frameLen(buf)
			if err == nil && fl > 0 && fl > len(buf) {
				break // incomplete: read more
			}
			if err == nil && fl == 0 {
				break
			}
			var rec store.UsageRecord
			if err == nil {
				rec, err = decodeFrame(buf[:fl])
			}
			if err != nil {
				// A torn or damaged frame: nothing after it in this segment
				// can be trusted to be aligned.
				lost := limit - bufOff
				st.Lost += lost
				s.log.Warn("audit spool: unreadable record; the rest of the segment is skipped",
					"segment", segName(n), "offset", bufOff, "bytes_skipped", lost)
				next = limit
				if len(recs) == 0 {
					// Still move the position past the damage.
					if err := sink.AppendSpooled(ctx, s.id, nil, store.SpoolPosition{Segment: n, Offset: next}); err != nil {
						return bufOff, err
					}
					st.Batches++
					return next, nil
				}
				return next, flush()
			}
			recs = append(recs, rec)
			buf = buf[fl:]
			bufOff += int64(fl)
			next = bufOff
			if len(recs) >= batch {
				if err := flush(); err != nil {
					return bufOff, err
				}
			}
		}
		if off >= limit {
			break
		}
		want := min(int64(readChunk), limit-off)
		k, err := f.ReadAt(chunk[:want], off)
		if k > 0 {
			buf = append(buf, chunk[:k]...)
			off += int64(k)
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return next, fmt.Errorf("audit spool: reading %s: %w", segName(n), err)
		}
		if k == 0 {
			break
		}
	}
	if len(buf) > 0 {
		// Bytes after the last whole frame of a closed segment: a torn
		// write at a power cut. (In the segment being written, limit is
		// always at a frame boundary.)
		st.Lost += int64(len(buf))
		s.log.Warn("audit spool: incomplete record at the end of a segment is skipped",
			"segment", segName(n), "bytes_skipped", len(buf))
		next = limit
	}
	return next, flush()
}

// Run replays in the background until ctx ends: whenever records were
// appended, at most every interval (default 200ms), so that one
// transaction carries many records. A failed replay is retried with a
// back-off; the records stay in the spool meanwhile. onReplay, if not nil,
// gets each replay's outcome. Run replays a last time after ctx ends,
// within final (the caller's grace for shutdown).
func (s *Spool) Run(ctx context.Context, sink Sink, interval time.Duration, final time.Duration, onReplay func(ReplayStats, error)) {
	if interval <= 0 {
		interval = 200 * time.Millisecond
	}
	backoff := interval
	var copiedSeg, copiedOff int64 = -1, -1
	for {
		seg, off, next := s.written()
		if seg != copiedSeg || off != copiedOff {
			st, err := s.Replay(ctx, sink, 0)
			if onReplay != nil {
				onReplay(st, err)
			}
			if err != nil {
				if ctx.Err() != nil {
					break
				}
				s.log.Warn("audit spool: copying records into the store failed; they stay in the spool", "err", err, "retry_in", backoff)
				select {
				case <-ctx.Done():
				case <-time.After(backoff):
				}
				backoff = min(backoff*2, 30*time.Second)
				continue
			}
			backoff = interval
			copiedSeg, copiedOff = seg, off
		}
		select {
		case <-ctx.Done():
		case <-next:
			select {
			case <-ctx.Done():
			case <-time.After(interval):
			}
		}
		if ctx.Err() != nil {
			break
		}
	}
	fctx, cancel := context.WithTimeout(context.Background(), final)
	defer cancel()
	st, err := s.Replay(fctx, sink, 0)
	if onReplay != nil {
		onReplay(st, err)
	}
	if err != nil {
		s.log.Warn("audit spool: records left in the spool at shutdown; the next start copies them", "err", err)
	}
}
