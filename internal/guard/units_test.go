package guard

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/llmfence/llmfence/internal/guard/limits"
	"github.com/llmfence/llmfence/internal/store"
)

func TestParseConfig(t *testing.T) {
	cases := []struct {
		name, yaml string
		check      func(Config) bool
		wantErr    string
	}{
		{"empty file keeps defaults", "", func(c Config) bool { return c.MaxBodyBytes == DefaultConfig().MaxBodyBytes }, ""},
		{"fields and durations", "upstream: http://127.0.0.1:8000\nkind: vllm\ndeny: [10.0.0.0/8]\ndefault_limits: {rpm: 5, daily_tokens: 100}\ntimeouts: {upstream_header: 90s}\n",
			func(c Config) bool {
				return c.Kind == "vllm" && c.DefaultLimits.RPM == 5 && c.DefaultLimits.Daily == 100 &&
					c.Timeouts.UpstreamHeader == 90*time.Second && c.Timeouts.ReadHeader == DefaultConfig().Timeouts.ReadHeader
			}, ""},
		{"unknown field", "upstreem: x\n", nil, "upstreem"},
		{"bad cidr", "allow: [nonsense]\n", nil, "allow list"},
		{"bad kind", "kind: tgi-ish\n", nil, "kind"},
		{"bad body cap", "max_body_bytes: 0\n", nil, "max_body_bytes"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := ParseConfig([]byte(c.yaml), DefaultConfig())
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("error %v, want %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !c.check(cfg) {
				t.Errorf("config %+v", cfg)
			}
		})
	}
}

func TestIPFilter(t *testing.T) {
	allow, _ := parsePrefixes([]string{"10.0.0.0/8", "::1"})
	deny, _ := parsePrefixes([]string{"10.9.0.0/16"})
	f := ipFilter{allow: allow, deny: deny}
	for ip, want := range map[string]bool{
		"10.1.2.3": true, "10.9.1.1": false, "192.168.1.1": false, "::1": true, "::ffff:10.1.2.3": true,
	} {
		if got := f.permits(netip.MustParseAddr(ip)); got != want {
			t.Errorf("%s: %v, want %v", ip, got, want)
		}
	}
	if !(ipFilter{}).permits(netip.MustParseAddr("8.8.8.8")) {
		t.Error("empty lists must admit")
	}
}

func TestConnectionCaps(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := make(chan string, 10)
	l := limitConns(ln, 2, 3, func(reason string, _ netip.Addr) { refused <- reason }).(*connLimitListener)
	defer l.Close()
	accepted := make(chan net.Conn, 10)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	dial := func(from string) net.Conn {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
		c, err := d.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	one, two := netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("127.0.0.2")
	dial("127.0.0.1")
	dial("127.0.0.1")
	a1, a2 := <-accepted, <-accepted
	dial("127.0.0.1") // a third from one address: over the per-IP cap
	if r := <-refused; r != "conn_limit" {
		t.Fatalf("refused for %q, want conn_limit", r)
	}
	dial("127.0.0.2")
	a3 := <-accepted
	dial("127.0.0.2") // a fourth in all: over the total cap
	if r := <-refused; r != "conn_limit_total" {
		t.Fatalf("refused for %q, want conn_limit_total", r)
	}
	if p, total := l.counts(one); p != 2 || total != 3 {
		t.Fatalf("counted %d from 127.0.0.1, %d in all", p, total)
	}
	a1.Close()
	a1.Close() // double close releases once
	if p, total := l.counts(one); p != 1 || total != 2 {
		t.Fatalf("after close: %d, %d", p, total)
	}
	dial("127.0.0.2")
	a4 := <-accepted
	if p, total := l.counts(two); p != 2 || total != 3 {
		t.Fatalf("after reconnect: %d, %d", p, total)
	}
	a2.Close()
	a3.Close()
	a4.Close()
}

func TestAuthThrottleBoundedAndForgetting(t *testing.T) {
	clock := &fakeClock{t: time.Unix(0, 0)}
	th := newAuthThrottle(clock.now, 3)
	cfg := AuthBackoff{Free: 0, Base: time.Second, Max: 4 * time.Second, Forget: time.Minute}
	ip := keylessBucket(netip.MustParseAddr("192.0.2.1"))
	var got []time.Duration
	for range 5 {
		got = append(got, th.fail(ip, cfg))
	}
	want := []time.Duration{1, 2, 4, 4, 4}
	for i := range want {
		if got[i] != want[i]*time.Second {
			t.Fatalf("back-off sequence %v", got)
		}
	}
	clock.add(2 * time.Minute)
	if _, b := th.blocked(ip, cfg); b {
		t.Error("still blocked after the quiet period")
	}
	if d := th.fail(ip, cfg); d != time.Second {
		t.Errorf("after forgetting, back-off restarts at base; got %v", d)
	}
	for i := range 10 {
		th.fail(keylessBucket(netip.AddrFrom4([4]byte{198, 51, 100, byte(i)})), cfg)
		th.fail(bucket{kind: bucketKeyID, id: fmt.Sprint(i)}, cfg)
	}
	if n := th.size(); n > 3 {
		t.Errorf("%d buckets tracked, cap 3", n)
	}
}

type flakySink struct {
	mu    sync.Mutex
	fails int
	got   []store.UsageRecord
	calls int
}

func (f *flakySink) AppendUsage(ctx context.Context, recs []store.UsageRecord) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.fails > 0 {
		f.fails--
		return errors.New("database locked")
	}
	f.got = append(f.got, recs...)
	return nil
}

func TestAuditWriter(t *testing.T) {
	t.Run("flushes on close and retries", func(t *testing.T) {
		sink := &flakySink{fails: 1}
		m := newMetrics()
		a := newAuditWriter(sink, AuditOptions{Batch: 10, Retries: 2}, nil, m)
		for i := range 25 {
			if !a.Submit(store.UsageRecord{Status: 200 + i}) {
				t.Fatal("dropped")
			}
		}
		if err := a.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		if len(sink.got) != 25 || sink.got[24].Status != 224 {
			t.Fatalf("wrote %d records", len(sink.got))
		}
		if testutil.ToFloat64(m.audit.WithLabelValues("written")) != 25 {
			t.Errorf("written counter %v", testutil.ToFloat64(m.audit.WithLabelValues("written")))
		}
		if a.Submit(store.UsageRecord{}) {
			t.Error("accepted after close")
		}
	})
	t.Run("Record returns once its batch is committed", func(t *testing.T) {
		sink := &flakySink{fails: 1} // the first write fails and is retried
		m := newMetrics()
		a := newAuditWriter(sink, AuditOptions{Retries: 2}, nil, m)
		defer a.Close(context.Background())
		var wg sync.WaitGroup
		for i := range 20 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := a.Record(store.UsageRecord{Status: 200, KeyName: fmt.Sprint(i)}); err != nil {
					t.Errorf("Record: %v", err)
					return
				}
				// Committed before Record returned: the sink holds it now.
				sink.mu.Lock()
				defer sink.mu.Unlock()
				if !slices.ContainsFunc(sink.got, func(r store.UsageRecord) bool { return r.KeyName == fmt.Sprint(i) }) {
					t.Errorf("Record %d returned before the sink had the record", i)
				}
			}()
		}
		wg.Wait()
	})
	t.Run("Record reports a sink that keeps failing", func(t *testing.T) {
		sink := &flakySink{fails: 100}
		a := newAuditWriter(sink, AuditOptions{Retries: 1}, nil, newMetrics())
		defer a.Close(context.Background())
		if err := a.Record(store.UsageRecord{}); err == nil {
			t.Error("Record returned nil though the sink refused every write")
		}
	})
	t.Run("Record stops waiting after Wait and counts it", func(t *testing.T) {
		block := make(chan struct{})
		sink := &blockingSink{block: block}
		m := newMetrics()
		a := newAuditWriter(sink, AuditOptions{Wait: 20 * time.Millisecond}, nil, m)
		err := a.Record(store.UsageRecord{})
		close(block)
		a.Close(context.Background())
		if !errors.Is(err, errUnconfirmed) || testutil.ToFloat64(m.audit.WithLabelValues("unconfirmed")) != 1 ||
			testutil.ToFloat64(m.audit.WithLabelValues("written")) != 1 {
			t.Errorf("Record = %v; counters unconfirmed %v written %v", err,
				testutil.ToFloat64(m.audit.WithLabelValues("unconfirmed")), testutil.ToFloat64(m.audit.WithLabelValues("written")))
		}
	})
	t.Run("full queue drops and counts", func(t *testing.T) {
		block := make(chan struct{})
		sink := &blockingSink{block: block}
		m := newMetrics()
		a := newAuditWriter(sink, AuditOptions{Queue: 2, Batch: 1}, nil, m)
		dropped := 0
		for range 10 {
			if !a.Submit(store.UsageRecord{}) {
				dropped++
			}
		}
		close(block)
		a.Close(context.Background())
		if dropped == 0 || testutil.ToFloat64(m.audit.WithLabelValues("dropped")) != float64(dropped) || testutil.ToFloat64(m.audit.WithLabelValues("written")) != float64(10-dropped) {
			t.Errorf("dropped %d", dropped)
		}
	})
	t.Run("sink that always fails counts failed", func(t *testing.T) {
		sink := &flakySink{fails: 100}
		m := newMetrics()
		a := newAuditWriter(sink, AuditOptions{Retries: -1}, nil, m)
		a.Submit(store.UsageRecord{})
		a.Close(context.Background())
		if testutil.ToFloat64(m.audit.WithLabelValues("failed")) != 1 || sink.calls != 1 {
			t.Errorf("failed counter %v, calls %d", testutil.ToFloat64(m.audit.WithLabelValues("failed")), sink.calls)
		}
	})
}

type blockingSink struct{ block chan struct{} }

func (b *blockingSink) AppendUsage(ctx context.Context, recs []store.UsageRecord) error {
	<-b.block
	return nil
}

// TestWithRealLimiter runs the gateway with the in-process limiter of
// package limits: a daily budget of 5 tokens cuts the first stream at 5 and
// refuses the next request.
func TestWithRealLimiter(t *testing.T) {
	up := ndjsonUpstream(t, 10, nil, nil)
	g := newGateway(t, up, func(o *Options) {
		o.Limiter = LimiterFrom(limits.NewMemory(limits.Options{}, nil))
		// 15 tokens a day: the prompt "x" reserves 9 (1 byte, plus 8 for
		// the template around it), which leaves 6 to generate.
		o.Config.DefaultLimits = limits.Limits{Daily: 15}
	})
	resp, body := g.do(t, "POST", "/api/generate", userKey, `{"model":"tiny","prompt":"x"}`)
	if resp.StatusCode != 200 || !strings.Contains(string(body), "token budget exhausted") ||
		strings.Count(string(body), `"done":false`) != 6 {
		t.Fatalf("first request: %d\n%s", resp.StatusCode, body)
	}
	if np := jsonField(t, up.seen()[0].Body, "options", "num_predict"); np != float64(6) {
		t.Errorf("num_predict %v, want 6", np)
	}
	// Prompt tokens are estimated and charged too, so the budget is spent.
	resp, _ = g.do(t, "POST", "/api/generate", userKey, `{"model":"tiny","prompt":"x"}`)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("second request: %d Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if n := len(up.seen()); n != 1 {
		t.Errorf("upstream saw %d requests", n)
	}
}

// Listing and admin routes count against requests per minute too, but not
// against token budgets: a key whose tokens are spent may still list.
func TestListingAndAdminRoutesAreRateLimited(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request, body []byte) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"models":[]}`))
	})
	g := newGateway(t, up, func(o *Options) {
		o.Limiter = LimiterFrom(limits.NewMemory(limits.Options{}, nil))
		o.Config.DefaultLimits = limits.Limits{RPM: 3, Daily: 1}
	})
	for i, tt := range []struct {
		method, path, key string
		want              int
	}{
		{"GET", "/api/tags", userKey, 200},
		{"GET", "/api/ps", userKey, 200},
		{"GET", "/v1/models", userKey, 200},
		{"GET", "/api/tags", userKey, http.StatusTooManyRequests},
		{"DELETE", "/api/delete", adminKey, 200}, // the admin key has its own minute
		{"DELETE", "/api/delete", adminKey, 200},
		{"DELETE", "/api/delete", adminKey, 200},
		{"DELETE", "/api/delete", adminKey, http.StatusTooManyRequests},
	} {
		body := ""
		if tt.method == "DELETE" {
			body = `{"model":"tiny"}`
		}
		resp, b := g.do(t, tt.method, tt.path, tt.key, body)
		if resp.StatusCode != tt.want {
			t.Errorf("request %d %s %s: %d, want %d: %s", i, tt.method, tt.path, resp.StatusCode, tt.want, b)
		}
	}
	if n := len(up.seen()); n != 6 {
		t.Errorf("upstream saw %d requests, want 6", n)
	}
}

// An admin's model-file upload (POST /api/blobs/sha256:…) is streamed to the
// upstream whole, past max_body_bytes; a normal key is refused before any
// byte is read.
func TestBlobUploadIsStreamedForAdmins(t *testing.T) {
	var got int
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request, body []byte) {
		got = len(body)
		w.WriteHeader(http.StatusCreated)
	})
	g := newGateway(t, up, func(o *Options) { o.Config.MaxBodyBytes = 1024 })
	blob := strings.Repeat("G", 300<<10)
	path := "/api/blobs/sha256:" + strings.Repeat("ab", 32)
	resp, b := g.do(t, "POST", path, adminKey, blob)
	if resp.StatusCode != http.StatusCreated || got != len(blob) {
		t.Fatalf("admin upload: %d %s; upstream got %d bytes, want %d", resp.StatusCode, b, got, len(blob))
	}
	resp, _ = g.do(t, "POST", path, userKey, blob)
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("user upload: %d, want 403", resp.StatusCode)
	}
	// Other admin routes keep the body cap.
	resp, _ = g.do(t, "POST", "/api/create", adminKey, `{"model":"x","modelfile":"`+strings.Repeat("a", 2048)+`"}`)
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized /api/create: %d, want 413", resp.StatusCode)
	}
	var in int64
	for _, r := range g.records(t) {
		if r.Route == path && r.Status == http.StatusCreated {
			in = r.BytesIn
		}
	}
	if in != int64(len(blob)) {
		t.Errorf("audit bytes_in %d, want %d", in, len(blob))
	}
}
