package spool

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/llmfence/llmfence/internal/store"
)

// memSink is a Sink that keeps records and positions like the store does:
// a batch and its position together, or neither.
type memSink struct {
	mu        sync.Mutex
	recs      []store.UsageRecord
	pos       map[string]store.SpoolPosition
	failAfter int // > 0: the failAfter-th AppendSpooled and later fail
	calls     int
}

func newMemSink() *memSink { return &memSink{pos: map[string]store.SpoolPosition{}} }

func (m *memSink) AppendSpooled(ctx context.Context, id string, recs []store.UsageRecord, next store.SpoolPosition) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls++
	if m.failAfter > 0 && m.calls >= m.failAfter {
		return errors.New("store down")
	}
	m.recs = append(m.recs, recs...)
	m.pos[id] = next
	return nil
}

func (m *memSink) SpoolPosition(ctx context.Context, id string) (store.SpoolPosition, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.pos[id], nil
}

func (m *memSink) all() []store.UsageRecord {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]store.UsageRecord(nil), m.recs...)
}

func rec(i int) store.UsageRecord {
	return store.UsageRecord{Time: time.Unix(1800000000, int64(i)).UTC(), KeyID: "k" + fmt.Sprint(i%3), KeyName: "alice",
		ClientIP: "192.0.2.7", Method: "POST", Route: "/api/chat", Model: "llama3", Status: 200,
		PromptTokens: int64(i), CompletionTokens: 2 * int64(i), LatencyMS: 5, BytesIn: 100, BytesOut: 2000}
}

func openT(t *testing.T, dir string, opts Options) *Spool {
	t.Helper()
	s, err := Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// checkExactlyOnce asserts sink holds records 0..n-1, each once.
func checkExactlyOnce(t *testing.T, sink *memSink, n int) {
	t.Helper()
	got := sink.all()
	seen := map[int64]int{}
	for _, r := range got {
		seen[r.PromptTokens]++
	}
	if len(got) != n || len(seen) != n {
		t.Fatalf("sink holds %d records (%d distinct), want %d exactly once", len(got), len(seen), n)
	}
}

func TestRoundTrip(t *testing.T) {
	full := store.UsageRecord{Time: time.Date(2026, 11, 23, 19, 27, 1, 123456789, time.UTC), KeyID: "AbCd1234",
		KeyName: "alice", ClientIP: "2001:db8::7", Method: "POST", Route: "/v1/chat/completions", Model: "qwen2.5:7b",
		Status: 200, PromptTokens: 26, CompletionTokens: 298, LatencyMS: 4210, BytesIn: 312, BytesOut: 40211,
		Truncated: true, ClientGone: true, Error: "token budget exhausted", ClientCert: "CN=ci", Requests: 7}
	for _, r := range []store.UsageRecord{full, {Time: time.Unix(0, 0).UTC(), Method: "GET", Route: "/", Status: 401}} {
		b := appendFrame(nil, &r)
		fl, err := frameLen(b)
		if err != nil || fl != len(b) {
			t.Fatalf("frameLen = %d, %v; frame is %d bytes", fl, err, len(b))
		}
		got, err := decodeFrame(b)
		if err != nil {
			t.Fatal(err)
		}
		a, _ := json.Marshal(got)
		w, _ := json.Marshal(r)
		if string(a) != string(w) {
			t.Errorf("round trip:\n got %s\nwant %s", a, w)
		}
		// Every single-byte change is caught.
		for i := range b {
			bad := append([]byte(nil), b...)
			bad[i] ^= 0x41
			if fl, err := frameLen(bad); err == nil && fl == len(bad) {
				if _, err := decodeFrame(bad); err == nil {
					t.Errorf("byte %d changed: frame still decodes", i)
				}
			}
		}
	}
}

func TestAppendAndReplayExactlyOnce(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir, Options{SegmentBytes: 4 << 10})
	sink := newMemSink()
	const n = 2000
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 8 {
				r := rec(i)
				if err := s.Append(&r); err != nil {
					t.Error(err)
					return
				}
				if i%97 == 0 {
					if _, err := s.Replay(context.Background(), sink, 50); err != nil {
						t.Error(err)
					}
				}
			}
		}()
	}
	wg.Wait()
	st, err := s.Replay(context.Background(), sink, 50)
	if err != nil {
		t.Fatal(err)
	}
	checkExactlyOnce(t, sink, n)
	if st.Lost != 0 {
		t.Errorf("lost %d bytes", st.Lost)
	}
	// Every segment but the one being written was deleted.
	segs, _ := s.segments()
	if len(segs) != 1 {
		t.Errorf("%d segments left, want 1: %v", len(segs), segs)
	}
	// Nothing new: a replay copies nothing.
	if st, err := s.Replay(context.Background(), sink, 0); err != nil || st.Records != 0 {
		t.Errorf("second replay = %+v, %v", st, err)
	}
}

// A store that fails part-way, and a process that stops and starts again,
// neither lose nor repeat a record.
func TestReplayResumesAfterFailuresAndRestarts(t *testing.T) {
	dir := t.TempDir()
	sink := newMemSink()
	total := 0
	for round := range 4 {
		s, err := Open(dir, Options{SegmentBytes: 2 << 10})
		if err != nil {
			t.Fatal(err)
		}
		recs := make([]store.UsageRecord, 150)
		for i := range recs {
			recs[i] = rec(total + i)
		}
		if err := s.AppendBatch(recs[:100]); err != nil {
			t.Fatal(err)
		}
		for i := 100; i < 150; i++ {
			if err := s.Append(&recs[i]); err != nil {
				t.Fatal(err)
			}
		}
		total += len(recs)
		sink.mu.Lock()
		sink.failAfter, sink.calls = 2+round, 0
		sink.mu.Unlock()
		if _, err := s.Replay(context.Background(), sink, 17); err == nil {
			t.Fatalf("round %d: replay against a failing store succeeded", round)
		}
		sink.mu.Lock()
		sink.failAfter = 0
		sink.mu.Unlock()
		if round%2 == 0 {
			// Stop without copying the rest: the next Open takes over.
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if _, err := s.Replay(context.Background(), sink, 17); err != nil {
			t.Fatal(err)
		}
		s.Close()
	}
	s := openT(t, dir, Options{})
	if _, err := s.Replay(context.Background(), sink, 0); err != nil {
		t.Fatal(err)
	}
	checkExactlyOnce(t, sink, total)
}

// A record torn by a power cut ends its segment's valid data; the records
// before it and every later segment are copied.
func TestTornAndDamagedSegments(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		r := rec(i)
		s.Append(&r)
	}
	s.Close()
	segs, _ := s.segments()
	path := filepath.Join(dir, segName(segs[0]))
	b, _ := os.ReadFile(path)
	frame := len(b) / 10
	// Cut the last record in half.
	if err := os.WriteFile(path, b[:len(b)-frame/2], 0o600); err != nil {
		t.Fatal(err)
	}

	s2, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := 10; i < 20; i++ {
		r := rec(i)
		s2.Append(&r)
	}
	s2.Close()
	segs2, _ := s2.segments()
	// Damage the 4th record of the second segment.
	path2 := filepath.Join(dir, segName(segs2[1]))
	b2, _ := os.ReadFile(path2)
	b2[3*frame+12] ^= 0xff
	os.WriteFile(path2, b2, 0o600)

	s3 := openT(t, dir, Options{})
	r := rec(20)
	s3.Append(&r)
	sink := newMemSink()
	st, err := s3.Replay(context.Background(), sink, 0)
	if err != nil {
		t.Fatal(err)
	}
	var got []int64
	for _, r := range sink.all() {
		got = append(got, r.PromptTokens)
	}
	want := []int64{0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 12, 20}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("copied %v, want %v", got, want)
	}
	if st.Lost != int64(frame-frame/2)+int64(7*frame) {
		t.Errorf("lost %d bytes, want %d", st.Lost, frame-frame/2+7*frame)
	}
}

func TestOneProcessPerSpool(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir, Options{})
	if _, err := Open(dir, Options{}); err == nil {
		t.Fatal("a second Open of a spool in use succeeded")
	}
	id := s.ID()
	s.Close()
	s2 := openT(t, dir, Options{})
	if s2.ID() != id || len(id) < 16 {
		t.Errorf("spool ID %q after reopening, was %q", s2.ID(), id)
	}
}

func TestFullSpoolRefusesAppends(t *testing.T) {
	s := openT(t, t.TempDir(), Options{MaxBytes: 4 << 10, SegmentBytes: 1 << 10})
	var err error
	n := 0
	for ; n < 1000 && err == nil; n++ {
		r := rec(n)
		err = s.Append(&r)
	}
	if !errors.Is(err, ErrFull) {
		t.Fatalf("after %d appends: %v, want ErrFull", n, err)
	}
	// Copying frees the room.
	if _, err := s.Replay(context.Background(), newMemSink(), 0); err != nil {
		t.Fatal(err)
	}
	r := rec(0)
	if err := s.Append(&r); err != nil {
		t.Errorf("after the replay: %v", err)
	}
}

func TestFsyncPolicies(t *testing.T) {
	for _, p := range []Fsync{FsyncAlways, FsyncInterval, FsyncNever} {
		t.Run(p.String(), func(t *testing.T) {
			s := openT(t, t.TempDir(), Options{Fsync: p, FsyncInterval: 10 * time.Millisecond, SegmentBytes: 1 << 10})
			var wg sync.WaitGroup
			for w := range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := w; i < 200; i += 4 {
						r := rec(i)
						if err := s.Append(&r); err != nil {
							t.Error(err)
						}
					}
				}()
			}
			wg.Wait()
			sink := newMemSink()
			if _, err := s.Replay(context.Background(), sink, 0); err != nil {
				t.Fatal(err)
			}
			checkExactlyOnce(t, sink, 200)
		})
	}
	var f Fsync
	if err := f.UnmarshalText([]byte("Always")); err != nil || f != FsyncAlways {
		t.Errorf("UnmarshalText(Always) = %v, %v", f, err)
	}
	if err := f.UnmarshalText([]byte("sometimes")); err == nil {
		t.Error("UnmarshalText(sometimes) succeeded")
	}
}

// Run copies in the background and a last time when stopped.
func TestRunCopiesInTheBackground(t *testing.T) {
	s := openT(t, t.TempDir(), Options{})
	sink := newMemSink()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx, sink, 5*time.Millisecond, 5*time.Second, nil); close(done) }()
	for i := range 50 {
		r := rec(i)
		s.Append(&r)
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(sink.all()) < 50 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if len(sink.all()) != 50 {
		t.Fatalf("background copy: %d records", len(sink.all()))
	}
	for i := 50; i < 60; i++ {
		r := rec(i)
		s.Append(&r)
	}
	cancel()
	<-done
	checkExactlyOnce(t, sink, 60)
}

// Append is the request path: it allocates nothing once warm.
func TestAppendDoesNotAllocate(t *testing.T) {
	s := openT(t, t.TempDir(), Options{Fsync: FsyncNever})
	r := rec(1)
	s.Append(&r)
	if n := testing.AllocsPerRun(200, func() { s.Append(&r) }); n > 0 {
		t.Errorf("Append allocates %.1f times per record", n)
	}
}

// The store's own AppendSpooled keeps the exactly-once promise too.
func TestReplayIntoSQLite(t *testing.T) {
	ctx := context.Background()
	st, err := store.OpenGuard(ctx, filepath.Join(t.TempDir(), "g.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	s := openT(t, t.TempDir(), Options{SegmentBytes: 8 << 10})
	for i := range 500 {
		r := rec(i)
		s.Append(&r)
	}
	if _, err := s.Replay(ctx, st, 64); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Replay(ctx, st, 64); err != nil {
		t.Fatal(err)
	}
	recs, err := st.QueryUsage(ctx, store.UsageFilter{})
	if err != nil || len(recs) != 500 {
		t.Fatalf("store holds %d records, %v; want 500", len(recs), err)
	}
	pos, _ := st.SpoolPosition(ctx, s.ID())
	if seg, off, _ := s.written(); pos.Segment != seg || pos.Offset != off {
		t.Errorf("stored position %+v, spool at %d/%d", pos, seg, off)
	}
}

func FuzzDecodeFrame(f *testing.F) {
	r := rec(3)
	r.Error, r.Requests, r.Truncated = "x", 4, true
	f.Add(appendFrame(nil, &r))
	f.Add([]byte{})
	f.Add([]byte{1, 0, 0, 0, 0, 0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		fl, err := frameLen(b)
		if err != nil || fl == 0 || fl > len(b) {
			return
		}
		got, err := decodeFrame(b[:fl])
		if err != nil {
			return
		}
		// What decodes survives another round trip unchanged.
		again, err := decodeFrame(appendFrame(nil, &got))
		a, _ := json.Marshal(again)
		w, _ := json.Marshal(got)
		if err != nil || string(a) != string(w) {
			t.Errorf("decoded %s re-encodes to %s, %v", w, a, err)
		}
	})
}
