package fingerprint

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/llmfence/llmfence/internal/service"
)

// rawServer accepts connections on 127.0.0.1 and hands each to handle.
func rawServer(t *testing.T, handle func(net.Conn)) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { close(done); ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				go func() { <-done; c.Close() }()
				handle(c)
			}()
		}
	}()
	return netip.MustParseAddrPort(ln.Addr().String())
}

// readRequest consumes one request head so the client is not reset early.
func readRequest(c net.Conn) bool {
	br := bufio.NewReader(c)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return false
		}
		if line == "\r\n" {
			return true
		}
	}
}

type probeResult struct {
	s   *service.Service
	st  stats
	err error
}

// runProbe probes addr and fails the test if the probe does not return
// within a generous safety net; pass/fail never depends on timing otherwise.
func runProbe(t *testing.T, p *Prober, addr netip.AddrPort) probeResult {
	t.Helper()
	ch := make(chan probeResult, 1)
	go func() {
		s, st, err := p.probe(context.Background(), addr, "", false, nil)
		ch <- probeResult{s, st, err}
	}()
	select {
	case r := <-ch:
		return r
	case <-time.After(60 * time.Second):
		t.Fatal("probe did not return: the per-target budget was not enforced")
		return probeResult{}
	}
}

func hostileProber(t *testing.T) *Prober {
	return testProber(t, Options{Timeout: 300 * time.Millisecond, TargetBudget: 3 * time.Second, MaxBody: 64 << 10})
}

func TestHostileTarpit(t *testing.T) {
	addr := rawServer(t, func(c net.Conn) {
		readRequest(c)
		buf := make([]byte, 1024)
		for {
			if _, err := c.Read(buf); err != nil {
				return
			}
		}
	})
	r := runProbe(t, hostileProber(t), addr)
	if !errors.Is(r.err, ErrNotHTTP) {
		t.Fatalf("err = %v, want ErrNotHTTP", r.err)
	}
	if r.s != nil {
		t.Errorf("service = %+v, want nil", r.s)
	}
	if r.st.BytesRead != 0 {
		t.Errorf("read %d bytes from a silent server", r.st.BytesRead)
	}
	if r.st.Requests != 1 {
		t.Errorf("sent %d requests to a tarpit, want 1 (no TLS retry after a timeout)", r.st.Requests)
	}
}

func TestHostileSlowDrip(t *testing.T) {
	addr := rawServer(t, func(c net.Conn) {
		readRequest(c)
		if _, err := c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n")); err != nil {
			return
		}
		for {
			if _, err := c.Write([]byte("x")); err != nil {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
	r := runProbe(t, hostileProber(t), addr)
	if r.err != nil {
		t.Fatalf("err = %v; a dripping HTTP server is still HTTP", r.err)
	}
	if r.s.Product != "http" {
		t.Errorf("product = %q, want http", r.s.Product)
	}
	// Each request may read at most the header plus what dripped before its
	// timeout; anything near the body cap means the timeout did not hold.
	if max := r.st.Requests * 4096; r.st.BytesRead > max {
		t.Errorf("read %d bytes over %d requests, want <= %d", r.st.BytesRead, r.st.Requests, max)
	}
}

func TestHostileEndlessBody(t *testing.T) {
	chunk := bytes.Repeat([]byte("A"), 32<<10)
	var written atomic.Int64
	addr := rawServer(t, func(c net.Conn) {
		readRequest(c)
		if _, err := c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n")); err != nil {
			return
		}
		for {
			n, err := c.Write(chunk)
			written.Add(int64(n))
			if err != nil {
				return
			}
		}
	})
	p := hostileProber(t)
	r := runProbe(t, p, addr)
	if r.err != nil {
		t.Fatalf("err = %v", r.err)
	}
	// Per request: body cap + header + transport read buffer slack.
	perReq := p.opts.MaxBody + 64<<10
	if max := r.st.Requests * perReq; r.st.BytesRead > max {
		t.Errorf("read %d bytes over %d requests, want <= %d", r.st.BytesRead, r.st.Requests, max)
	}
	if r.st.BytesRead == 0 {
		t.Error("read nothing; the test server did not run")
	}
}

func gzipBomb(t *testing.T, size int) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	zero := make([]byte, 1<<20)
	for i := 0; i < size>>20; i++ {
		if _, err := zw.Write(zero); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestHostileGzipBomb(t *testing.T) {
	bomb := gzipBomb(t, 32<<20) // 32 MiB of zeros, ~32 KiB compressed: 500x the cap
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Encoding", "gzip")
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(bomb)
	}))
	defer srv.Close()
	addr := netip.MustParseAddrPort(srv.Listener.Addr().String())
	p := hostileProber(t)

	// One request: the decompressed body stops at the cap.
	tg := newTarget(&p.opts, addr, "", nil, p.opts.Logger)
	tg.setScheme(false)
	defer tg.close()
	resp := tg.fetch(context.Background(), Request{Method: http.MethodGet, Path: "/"})
	if !resp.OK() {
		t.Fatalf("fetch: %v", resp.Err)
	}
	if int64(len(resp.Body)) > p.opts.MaxBody || !resp.Truncated {
		t.Errorf("decompressed body = %d bytes (truncated %v), want <= %d and truncated", len(resp.Body), resp.Truncated, p.opts.MaxBody)
	}

	// A whole probe reads a bounded number of compressed bytes.
	r := runProbe(t, p, addr)
	if r.err != nil {
		t.Fatalf("err = %v", r.err)
	}
	if max := r.st.Requests * (p.opts.MaxBody + 64<<10); r.st.BytesRead > max {
		t.Errorf("read %d bytes over %d requests, want <= %d", r.st.BytesRead, r.st.Requests, max)
	}
}

func TestHostileRedirectNotFollowed(t *testing.T) {
	var elsewhere atomic.Int64
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		elsewhere.Add(1)
		_, _ = w.Write([]byte("Ollama is running"))
	}))
	defer other.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+r.URL.Path, http.StatusFound)
	}))
	defer srv.Close()
	r := runProbe(t, hostileProber(t), netip.MustParseAddrPort(srv.Listener.Addr().String()))
	if r.err != nil {
		t.Fatalf("err = %v", r.err)
	}
	if n := elsewhere.Load(); n != 0 {
		t.Errorf("followed a redirect off the target %d times", n)
	}
	if r.s.Product != "http" {
		t.Errorf("product = %q, want http (a redirect proves nothing)", r.s.Product)
	}
}

func TestHostileNotHTTP(t *testing.T) {
	cases := map[string][]byte{
		"ssh banner": []byte("SSH-2.0-OpenSSH_9.6p1 Ubuntu-3ubuntu13\r\n"),
		"binary":     {0x00, 0xff, 0x13, 0x37, 0x80, 0x01, 0x02, 0x03, 0xde, 0xad, 0xbe, 0xef, '\n', '\n'},
		"smtp":       []byte("220 mail.example.invalid ESMTP Postfix\r\n"),
		"close":      nil,
	}
	for name, banner := range cases {
		t.Run(name, func(t *testing.T) {
			addr := rawServer(t, func(c net.Conn) {
				if banner != nil {
					_, _ = c.Write(banner)
				}
			})
			r := runProbe(t, hostileProber(t), addr)
			if !errors.Is(r.err, ErrNotHTTP) {
				t.Fatalf("err = %v, want ErrNotHTTP", r.err)
			}
			if r.s != nil {
				t.Errorf("got a service for a non-HTTP endpoint: %+v", r.s)
			}
		})
	}
}

func TestHostileHugeHeaders(t *testing.T) {
	line := []byte("X-Junk: " + strings.Repeat("a", 1000) + "\r\n")
	addr := rawServer(t, func(c net.Conn) {
		readRequest(c)
		if _, err := c.Write([]byte("HTTP/1.1 200 OK\r\n")); err != nil {
			return
		}
		for {
			if _, err := c.Write(line); err != nil {
				return
			}
		}
	})
	r := runProbe(t, hostileProber(t), addr)
	if r.err == nil && r.s.Product != "http" {
		t.Errorf("product = %q for a header flood", r.s.Product)
	}
	if max := r.st.Requests * (maxHeaderBytes + 64<<10); r.st.BytesRead > max {
		t.Errorf("read %d bytes of headers over %d requests, want <= %d", r.st.BytesRead, r.st.Requests, max)
	}
}

func TestHostileInvalidJSON(t *testing.T) {
	c := &fakeCase{
		ExpectProduct: "ollama",
		Default:       &fakeRoute{Status: 404, Body: "404 page not found"},
		Routes: []fakeRoute{
			{Method: "GET", Path: "/", Status: 200, Body: "Ollama is running"},
			{Method: "GET", Path: "/api/version", Status: 200, Body: `{"version":`},
			{Method: "GET", Path: "/api/tags", Status: 200, Body: `{"models":[{"name":"a","size":"big","details":[1,2]},{"name":7},"x",{"name":"b:latest","digest":{"x":1}}]}`},
			{Method: "GET", Path: "/api/ps", Status: 200, Body: `{"models":"nope"}`},
			{Method: "POST", Path: "/api/show", Status: 200, Body: `{"license":[1,{"a":2}],"system":{"x":1},"modelfile":"SYSTEM \"\"\"never closed"}`},
		},
	}
	srv := serveCase(t, c, true)
	r := runProbe(t, hostileProber(t), srv.addrPort(t))
	if r.err != nil {
		t.Fatalf("err = %v", r.err)
	}
	if r.s.Product != "ollama" {
		t.Fatalf("product = %q", r.s.Product)
	}
	var names []string
	for _, m := range r.s.Models {
		names = append(names, m.Name)
	}
	// "7" is a number where a string belongs and is kept as text; "x" is not
	// an object and is dropped.
	if got, want := strings.Join(names, ","), "a,7,b:latest"; got != want {
		t.Errorf("models = %s, want %s", got, want)
	}
	if r.s.Version != "" {
		t.Errorf("version = %q from a broken body", r.s.Version)
	}
	if len(r.s.Loaded) != 0 {
		t.Errorf("loaded = %v from a broken body", r.s.Loaded)
	}
	if r.s.Models[0].SystemPrompt != "never closed" {
		t.Errorf("system prompt = %q, want the unterminated Modelfile block", r.s.Models[0].SystemPrompt)
	}
}

func TestTLSDetectedByTrying(t *testing.T) {
	c := loadCase(t, "testdata/cases/ollama-old.yaml")
	srv := httptest.NewUnstartedServer(nil)
	plain := serveCase(t, c, true)
	srv.Config.Handler = plain.Config.Handler
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	defer srv.Close()
	addr := netip.MustParseAddrPort(srv.Listener.Addr().String())
	for _, hint := range []bool{false, true} {
		t.Run(fmt.Sprintf("hint=%v", hint), func(t *testing.T) {
			p := testProber(t, Options{})
			s, err := p.Probe(context.Background(), addr, "", hint, nil)
			if err != nil {
				t.Fatal(err)
			}
			if !s.TLS || !strings.HasPrefix(s.URL, "https://") {
				t.Errorf("TLS = %v, URL = %s; want TLS", s.TLS, s.URL)
			}
			if s.Product != "ollama" {
				t.Errorf("product = %q over TLS", s.Product)
			}
			if s.Extra["tls_subject"] == nil || s.Extra["tls_not_after"] == nil {
				t.Errorf("certificate not recorded: %v", s.Extra)
			}
		})
	}
}

func TestPlainServerWithTLSHintFallsBack(t *testing.T) {
	c := loadCase(t, "testdata/cases/vllm.yaml")
	srv := serveCase(t, c, true)
	p := testProber(t, Options{})
	s, err := p.Probe(context.Background(), srv.addrPort(t), "", true, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s.TLS || s.Product != "vllm" {
		t.Errorf("TLS = %v product = %q; want plain vllm", s.TLS, s.Product)
	}
}

func TestClosedPortFailsFast(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := netip.MustParseAddrPort(ln.Addr().String())
	ln.Close()
	r := runProbe(t, hostileProber(t), addr)
	if !errors.Is(r.err, ErrNotHTTP) {
		t.Fatalf("err = %v, want ErrNotHTTP", r.err)
	}
	if r.st.Requests != 1 {
		t.Errorf("%d attempts on a closed port, want 1", r.st.Requests)
	}
}

// TestHostileSpeaksFirst: a server that sends bytes before any request (a
// tarpit dripping a status line, an SSH banner) is not HTTP. The probe ends
// at once, without a TLS attempt, and net/http never sees the bytes as an
// unsolicited response (which it would print through the standard logger).
func TestHostileSpeaksFirst(t *testing.T) {
	var logged bytes.Buffer
	log.SetOutput(&logged)
	t.Cleanup(func() { log.SetOutput(os.Stderr) })
	for _, banner := range []string{"H", "SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n", "220 mail.example.test ESMTP\r\n"} {
		t.Run(strings.Fields(banner)[0], func(t *testing.T) {
			sent := make(chan struct{}, 4)
			addr := rawServer(t, func(c net.Conn) {
				if _, err := c.Write([]byte(banner)); err != nil {
					return
				}
				sent <- struct{}{}
				buf := make([]byte, 1024)
				for {
					if _, err := c.Read(buf); err != nil {
						return
					}
				}
			})
			// As in a scan: the connection is made first, and the banner
			// is waiting when the probe starts.
			conn, err := net.Dial("tcp", addr.String())
			if err != nil {
				t.Fatal(err)
			}
			<-sent
			// Under load the kernel may deliver the banner a moment after
			// the server's write returns; the case under test is a banner
			// that has arrived before the probe writes.
			for deadline := time.Now().Add(5 * time.Second); !bytesWaiting(conn); {
				if time.Now().After(deadline) {
					t.Fatal("banner never arrived")
				}
				time.Sleep(time.Millisecond)
			}
			p := hostileProber(t)
			s, st, err := p.probe(context.Background(), addr, "", false, conn)
			if !errors.Is(err, ErrNotHTTP) {
				t.Fatalf("err = %v, want ErrNotHTTP", err)
			}
			if s != nil {
				t.Errorf("service = %+v, want nil", s)
			}
			if st.Requests != 1 {
				t.Errorf("sent %d requests, want 1 (no TLS attempt after a banner)", st.Requests)
			}
			if !strings.Contains(err.Error(), "before any request") {
				t.Errorf("err = %v; want it to say the server spoke first", err)
			}
		})
	}
	if strings.Contains(logged.String(), "Unsolicited") {
		t.Errorf("net/http logged the server's bytes: %s", logged.String())
	}
}
