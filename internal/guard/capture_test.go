package guard

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/llmfence/llmfence/internal/redact"
	"github.com/llmfence/llmfence/internal/store"
)

// fakeCaptureSink records what reaches it. block, when set, holds
// AppendCaptures until it is closed; entered gets a value each time
// AppendCaptures starts.
type fakeCaptureSink struct {
	mu      sync.Mutex
	got     []store.Capture
	prunes  []time.Time
	pruneN  int64
	err     error
	block   chan struct{}
	entered chan struct{}
}

func (f *fakeCaptureSink) AppendCaptures(ctx context.Context, cs []store.Capture) error {
	if f.entered != nil {
		f.entered <- struct{}{}
	}
	if f.block != nil {
		<-f.block
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return f.err
	}
	f.got = append(f.got, cs...)
	return nil
}

func (f *fakeCaptureSink) PruneCaptures(ctx context.Context, before time.Time) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.prunes = append(f.prunes, before)
	return f.pruneN, nil
}

func (f *fakeCaptureSink) captures() []store.Capture {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]store.Capture(nil), f.got...)
}

func (f *fakeCaptureSink) pruneCalls() []time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Time(nil), f.prunes...)
}

var captureT0 = time.Date(2026, 11, 23, 16, 15, 0, 0, time.UTC)

func fixedNow() time.Time { return captureT0 }

func testRedactor(t *testing.T) *redact.Redactor {
	t.Helper()
	r, err := redact.New()
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// waitFor polls cond until it holds; it fails the test after a generous
// deadline (a hang, not a slow run).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func closeW(t *testing.T, w *CaptureWriter) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestCaptureConfig(t *testing.T) {
	for _, tc := range []struct {
		name    string
		in      CaptureConfig
		want    CaptureConfig
		wantErr string
	}{
		{"defaults", CaptureConfig{Enabled: true}, CaptureConfig{Enabled: true, Retention: 720 * time.Hour, MaxBytes: 64 << 10}, ""},
		{"set", CaptureConfig{Retention: time.Hour, MaxBytes: 100}, CaptureConfig{Retention: time.Hour, MaxBytes: 100}, ""},
		{"negative retention", CaptureConfig{Retention: -time.Hour}, CaptureConfig{Retention: -time.Hour, MaxBytes: 64 << 10}, "capture.retention"},
		{"negative max bytes", CaptureConfig{MaxBytes: -1}, CaptureConfig{Retention: 720 * time.Hour, MaxBytes: -1}, "capture.max_bytes"},
		{"huge max bytes", CaptureConfig{MaxBytes: 1 << 30}, CaptureConfig{Retention: 720 * time.Hour, MaxBytes: 1 << 30}, "capture.max_bytes"},
	} {
		got := tc.in.withDefaults()
		if got != tc.want {
			t.Errorf("%s: withDefaults = %+v, want %+v", tc.name, got, tc.want)
		}
		err := got.validate()
		if (err == nil) != (tc.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("%s: validate = %v, want %q", tc.name, err, tc.wantErr)
		}
	}
}

const (
	secretEmail = "maria.garcia@example.com"
	secretCard  = "4111 1111 1111 1111"
	secretKey   = "lf_AbCd1234_0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefg"
	secretJWT   = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJib2IifQ.c2lnbmF0dXJlLXNpZ25hdHVyZQ"
)

func piiCapture() store.Capture {
	return store.Capture{KeyID: "aliceid0", KeyName: "alice", ClientIP: "192.0.2.7", Route: "/api/chat",
		Model: "llama3.2:3b", Status: 200,
		Prompt:   "Mail " + secretEmail + " my card " + secretCard + "; my key is " + secretKey,
		Response: "Your token " + secretJWT + " was noted; write to " + secretEmail}
}

func TestCaptureWriterRedactsBeforeTheSink(t *testing.T) {
	sink := &fakeCaptureSink{}
	red := testRedactor(t)
	w := NewCaptureWriter(sink, CaptureConfig{Enabled: true}, red, nil, fixedNow)
	if !w.Submit(piiCapture()) {
		t.Fatal("Submit dropped the capture")
	}
	closeW(t, w)
	got := sink.captures()
	if len(got) != 1 {
		t.Fatalf("sink got %d captures", len(got))
	}
	c := got[0]
	for _, secret := range []string{secretEmail, secretCard, secretKey, secretJWT, "maria", "AbCd1234"} {
		if strings.Contains(c.Prompt, secret) || strings.Contains(c.Response, secret) {
			t.Errorf("stored text contains %q:\nprompt   %s\nresponse %s", secret, c.Prompt, c.Response)
		}
	}
	wantPrompt := "Mail [REDACTED:email] my card [REDACTED:card]; my key is [REDACTED:llmfence_key]"
	wantResponse := "Your token [REDACTED:jwt] was noted; write to [REDACTED:email]"
	if c.Prompt != wantPrompt || c.Response != wantResponse {
		t.Errorf("stored\nprompt   %q\nresponse %q\nwant\nprompt   %q\nresponse %q", c.Prompt, c.Response, wantPrompt, wantResponse)
	}
	wantRed := map[string]int{"email": 2, "payment_card": 1, "llmfence_api_key": 1, "jwt": 1}
	if fmt.Sprint(c.Redactions) != fmt.Sprint(wantRed) {
		t.Errorf("redactions = %v, want %v", c.Redactions, wantRed)
	}
	if c.RedactorVersion != red.Version() || !c.Time.Equal(captureT0) || c.KeyName != "alice" || c.Status != 200 ||
		c.PromptTruncated || c.ResponseTruncated {
		t.Errorf("capture = %+v", c)
	}
	if written, dropped, failed, _ := w.Stats(); written != 1 || dropped != 0 || failed != 0 {
		t.Errorf("stats: written %d dropped %d failed %d", written, dropped, failed)
	}
}

func TestCutText(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int
		want string
		cut  bool
	}{
		{"short", 10, "short", false},
		{"exactly10!", 10, "exactly10!", false},
		{"abcdefghijkl", 10, "abcdefghij", true},
		{"日本語のテキスト", 10, "日本語", true}, // 3 bytes each: 9 fit
		{"日本語のテキスト", 8, "日本", true},
		{"ab日本", 4, "ab", true},
		{"abc [REDACTED:email] def", 10, "abc ", true},
		{"abc [REDACTED:email] def", 20, "abc [REDACTED:email]", true},
		{"x\xff\xfe\xfd\xfcyz", 3, "x\xff\xfe", true}, // invalid bytes count as one-byte runes
	} {
		got, cut := cutText(tc.in, tc.n)
		if got != tc.want || cut != tc.cut {
			t.Errorf("cutText(%q, %d) = %q, %v; want %q, %v", tc.in, tc.n, got, cut, tc.want, tc.cut)
		}
	}
}

func TestCaptureWriterTruncates(t *testing.T) {
	sink := &fakeCaptureSink{}
	w := NewCaptureWriter(sink, CaptureConfig{Enabled: true, MaxBytes: 40}, testRedactor(t), nil, fixedNow)
	long := strings.Repeat("日本語", 10) // 90 bytes
	// The e-mail address straddles byte 40: it is redacted before the cut,
	// so no fragment of it survives.
	straddle := strings.Repeat("x", 30) + " " + secretEmail + " and more"
	w.Submit(store.Capture{Route: "/api/chat", Prompt: long, Response: straddle})
	w.Submit(store.Capture{Route: "/api/chat", Prompt: "short", Response: "", PromptTruncated: true})
	closeW(t, w)
	got := sink.captures()
	if len(got) != 2 {
		t.Fatalf("sink got %d captures", len(got))
	}
	c := got[0]
	if c.Prompt != string([]rune(long)[:13]) || !c.PromptTruncated || !utf8.ValidString(c.Prompt) {
		t.Errorf("prompt = %q (truncated %v), want the first 13 characters (39 bytes), cut at a rune boundary", c.Prompt, c.PromptTruncated)
	}
	if c.Response != strings.Repeat("x", 30)+" " || !c.ResponseTruncated {
		t.Errorf("response = %q (truncated %v)", c.Response, c.ResponseTruncated)
	}
	if c.Redactions["email"] != 1 {
		t.Errorf("redactions = %v: the straddling address was not redacted", c.Redactions)
	}
	// A caller's truncated flag is kept.
	if c := got[1]; !c.PromptTruncated || c.ResponseTruncated || c.Prompt != "short" {
		t.Errorf("second capture = %+v", c)
	}
}

func TestCaptureWriterPrecutsHugeText(t *testing.T) {
	sink := &fakeCaptureSink{}
	w := NewCaptureWriter(sink, CaptureConfig{Enabled: true, MaxBytes: 1000}, testRedactor(t), nil, fixedNow)
	huge := strings.Repeat("a", 1<<20) + secretEmail
	w.Submit(store.Capture{Route: "/api/generate", Prompt: huge})
	closeW(t, w)
	c := sink.captures()[0]
	if len(c.Prompt) != 1000 || !c.PromptTruncated || c.Redactions != nil {
		t.Errorf("prompt of %d bytes, truncated %v, redactions %v", len(c.Prompt), c.PromptTruncated, c.Redactions)
	}
}

func TestCaptureWriterCloseFlushes(t *testing.T) {
	sink := &fakeCaptureSink{}
	w := newCaptureWriter(sink, CaptureConfig{Enabled: true}, testRedactor(t), nil, fixedNow, captureOptions{Batch: 7})
	const n = 100
	for i := range n {
		if !w.Submit(store.Capture{Route: "/api/chat", Prompt: fmt.Sprintf("prompt %d", i)}) {
			t.Fatalf("capture %d dropped", i)
		}
	}
	closeW(t, w)
	got := sink.captures()
	if len(got) != n {
		t.Fatalf("after Close the sink has %d captures, want %d", len(got), n)
	}
	for i, c := range got {
		if c.Prompt != fmt.Sprintf("prompt %d", i) {
			t.Fatalf("capture %d = %q: order lost", i, c.Prompt)
		}
	}
	if w.Submit(store.Capture{Route: "/late"}) {
		t.Error("Submit after Close was accepted")
	}
	if written, dropped, _, _ := w.Stats(); written != n || dropped != 1 {
		t.Errorf("stats: written %d dropped %d; want %d, 1", written, dropped, n)
	}
	if err := w.Close(context.Background()); err != nil {
		t.Errorf("second Close = %v", err)
	}
}

func TestCaptureWriterFullQueueDropsWithoutBlocking(t *testing.T) {
	sink := &fakeCaptureSink{block: make(chan struct{}), entered: make(chan struct{}, 1)}
	const queue = 3
	w := newCaptureWriter(sink, CaptureConfig{Enabled: true}, testRedactor(t), nil, fixedNow, captureOptions{Queue: queue})
	w.Submit(store.Capture{Route: "/first"})
	<-sink.entered // the writer is now stuck in the sink with the first capture
	const more = 10
	accepted := 0
	for range more {
		if w.Submit(store.Capture{Route: "/more"}) {
			accepted++
		}
	}
	if accepted != queue {
		t.Errorf("%d of %d accepted while the writer was stuck, want %d (the queue)", accepted, more, queue)
	}
	sink.entered = nil
	close(sink.block)
	closeW(t, w)
	written, dropped, failed, _ := w.Stats()
	if written != 1+queue || dropped != more-queue || failed != 0 {
		t.Errorf("stats: written %d dropped %d failed %d; want %d, %d, 0", written, dropped, failed, 1+queue, more-queue)
	}
}

func TestCaptureWriterSinkFailure(t *testing.T) {
	sink := &fakeCaptureSink{err: errors.New("disk full")}
	w := newCaptureWriter(sink, CaptureConfig{Enabled: true}, testRedactor(t), nil, fixedNow, captureOptions{Retries: -1})
	for range 5 {
		w.Submit(store.Capture{Route: "/api/chat"})
	}
	closeW(t, w)
	if written, _, failed, _ := w.Stats(); written != 0 || failed != 5 {
		t.Errorf("stats: written %d failed %d; want 0, 5", written, failed)
	}
}

func TestCaptureWriterPrunesAtStartAndPeriodically(t *testing.T) {
	sink := &fakeCaptureSink{pruneN: 2}
	w := newCaptureWriter(sink, CaptureConfig{Enabled: true, Retention: 24 * time.Hour}, testRedactor(t), nil, fixedNow,
		captureOptions{PruneEvery: time.Millisecond})
	waitFor(t, "three prune runs", func() bool { return len(sink.pruneCalls()) >= 3 })
	closeW(t, w)
	calls := sink.pruneCalls()
	for _, before := range calls {
		if !before.Equal(captureT0.Add(-24 * time.Hour)) {
			t.Errorf("PruneCaptures(%v), want now - retention = %v", before, captureT0.Add(-24*time.Hour))
		}
	}
	if _, _, _, pruned := w.Stats(); pruned != 2*int64(len(calls)) {
		t.Errorf("pruned = %d after %d runs of 2", pruned, len(calls))
	}
	// Closed: no more runs.
	n := len(sink.pruneCalls())
	time.Sleep(5 * time.Millisecond)
	if len(sink.pruneCalls()) != n {
		t.Error("the pruner still runs after Close")
	}
}

func TestCaptureWriterWithSQLite(t *testing.T) {
	ctx := context.Background()
	st, err := store.OpenGuard(ctx, filepath.Join(t.TempDir(), "llmfence.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	seed := []store.Capture{
		{Time: captureT0.Add(-25 * time.Hour), KeyName: "alice", Route: "/api/chat", Prompt: "too old"},
		{Time: captureT0.Add(-24*time.Hour - time.Second), KeyName: "alice", Route: "/api/chat", Prompt: "just too old"},
		{Time: captureT0.Add(-23 * time.Hour), KeyName: "alice", Route: "/api/chat", Prompt: "recent"},
	}
	if err := st.AppendCaptures(ctx, seed); err != nil {
		t.Fatal(err)
	}
	w := NewCaptureWriter(st, CaptureConfig{Enabled: true, Retention: 24 * time.Hour}, testRedactor(t), nil, fixedNow)
	waitFor(t, "the first prune", func() bool { _, _, _, p := w.Stats(); return p >= 2 })
	w.Submit(piiCapture())
	closeW(t, w)
	got, err := st.QueryCaptures(ctx, store.CaptureFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[1].Prompt != "recent" {
		t.Fatalf("captures after prune and write: %+v", got)
	}
	c := got[0]
	for _, secret := range []string{secretEmail, secretCard, secretKey, secretJWT} {
		if strings.Contains(c.Prompt, secret) || strings.Contains(c.Response, secret) {
			t.Errorf("the store holds %q:\nprompt   %s\nresponse %s", secret, c.Prompt, c.Response)
		}
	}
	if c.Redactions["email"] != 2 || c.RedactorVersion < 1 || c.KeyName != "alice" || !c.Time.Equal(captureT0) {
		t.Errorf("stored capture = %+v", c)
	}
	if _, _, _, pruned := w.Stats(); pruned != 2 {
		t.Errorf("pruned = %d, want 2", pruned)
	}
}

func TestNilCaptureWriter(t *testing.T) {
	var w *CaptureWriter
	if w.Submit(store.Capture{}) {
		t.Error("nil writer accepted a capture")
	}
	if a, b, c, d := w.Stats(); a+b+c+d != 0 {
		t.Error("nil writer has stats")
	}
	if err := w.Close(context.Background()); err != nil {
		t.Error(err)
	}
}
