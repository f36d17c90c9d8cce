package guard

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/llmfence/llmfence/internal/guard/abuse"
	"github.com/llmfence/llmfence/internal/guard/limits"
	"github.com/llmfence/llmfence/internal/guard/meter"
	"github.com/llmfence/llmfence/internal/guard/spool"
	"github.com/llmfence/llmfence/internal/store"
)

// BenchmarkGatewayStream: one streamed /api/generate (20 token lines and
// a final done line) through the gateway with every feature on: key auth,
// in-process limits, the meter, the spooled audit log replayed into
// SQLite, and the abuse signals at their defaults. For profiling
// (-cpuprofile); the figures that count come from bench/guardbench.
func BenchmarkGatewayStream(b *testing.B) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/x-ndjson")
		buf := make([]byte, 0, 256)
		for i := range 20 {
			buf = append(buf[:0], `{"model":"bench:1b","created_at":"2026-11-23T19:27:01.1Z","response":" tok`...)
			buf = strconv.AppendInt(buf, int64(i), 10)
			buf = append(buf, `","done":false}`+"\n"...)
			w.Write(buf)
			w.(http.Flusher).Flush()
		}
		io.WriteString(w, `{"model":"bench:1b","response":"","done":true,"prompt_eval_count":10,"eval_count":20}`+"\n")
	}))
	defer up.Close()
	dir := b.TempDir()
	st, err := store.OpenGuard(context.Background(), filepath.Join(dir, "g.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	sp, err := spool.Open(filepath.Join(dir, "spool"), spool.Options{})
	if err != nil {
		b.Fatal(err)
	}
	det, err := abuse.New(abuse.DefaultConfig(), abuse.Options{Background: true})
	if err != nil {
		b.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Upstream = up.URL
	cfg.MaxConnsPerIP = 0
	lim := &limits.Limits{RPM: 100000000, TPM: 2000000000, Concurrent: 4096, Daily: 1 << 40, Monthly: 1 << 42}
	auth := fakeAuth{userKey: {ID: "u1", Name: "alice", Models: []string{"*"}, Limits: lim}}
	s, err := New(Options{Config: cfg, Auth: auth, Limiter: LimiterFrom(limits.NewMemory(limits.Options{}, nil)),
		Sink: st, Spool: sp, Abuse: det})
	if err != nil {
		b.Fatal(err)
	}
	ts := httptest.NewServer(s)
	defer ts.Close()
	defer s.Close(context.Background())
	body := []byte(`{"model":"bench:1b","prompt":"Why is the sky blue? Answer briefly.","stream":true,"options":{"num_predict":64}}`)
	client := ts.Client()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		var out bytes.Buffer
		for pb.Next() {
			req, _ := http.NewRequest("POST", ts.URL+"/api/generate", bytes.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+userKey)
			resp, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			out.Reset()
			out.ReadFrom(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || !bytes.Contains(out.Bytes(), []byte(`"done":true`)) {
				b.Errorf("status %d: %.200s", resp.StatusCode, out.Bytes())
				return
			}
		}
	})
}

// BenchmarkOutputWatch: what the output watch adds to relaying one token
// line (the meter alone, then the meter feeding the gibberish scorer).
func BenchmarkOutputWatch(b *testing.B) {
	line := []byte(`{"model":"bench:1b","created_at":"2026-11-23T19:27:01.1Z","response":" configuration","done":false}` + "\n")
	info := meter.RequestInfo{Kind: meter.KindOllama, Endpoint: meter.EndpointGenerate, Stream: true, Choices: 1}
	b.Run("meter", func(b *testing.B) {
		m := meter.NewMeter(info, meter.Unlimited, io.Discard, nil)
		b.ReportAllocs()
		for b.Loop() {
			m.Write(line)
		}
	})
	b.Run("meter+watch", func(b *testing.B) {
		w := newWatcher(nil, nil)
		ow := w.start(info)
		m := meter.NewMeter(info, meter.Unlimited, io.Discard, nil, meter.WithText(ow.feed))
		b.ReportAllocs()
		for b.Loop() {
			m.Write(line)
		}
	})
}
