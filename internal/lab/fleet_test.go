package lab

import (
	"bufio"
	"compress/gzip"
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func labClient() *http.Client {
	return &http.Client{
		Timeout: 20 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig:        &tls.Config{InsecureSkipVerify: true}, // the lab's cert is self-signed by design
			MaxResponseHeaderBytes: 64 << 10,
			DisableCompression:     true,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// discoveryPath is one read-only route per stack that answers 200 without
// credentials.
var discoveryPath = map[string]string{
	StackOllama: "/api/tags", StackVLLM: "/v1/models", StackLlamaCpp: "/props", StackLMStudio: "/api/v0/models",
	StackLocalAI: "/v1/models", StackTGI: "/info", StackTextGenWebUI: "/v1/internal/model/info",
	StackOpenWebUI: "/api/models", StackKoboldCpp: "/api/extra/version", StackSGLang: "/get_model_info",
	StackLiteLLM: "/model/info", StackXinference: "/v1/models", StackGPT4All: "/v1/models", StackJan: "/v1/models",
	StackOpenAICompatible: "/v1/models",
}

func TestFleetServesPersonas(t *testing.T) {
	ps, err := Generate(Config{Seed: 11, Prefix: netip.MustParsePrefix("127.77.0.0/16"), Live: 60, TLSFraction: 0.3})
	if err != nil {
		t.Fatal(err)
	}
	f, err := Start(context.Background(), ps)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	c := labClient()
	var sawTLS, sawAuth bool
	for _, p := range f.GroundTruth() {
		resp, err := c.Get(p.URL() + discoveryPath[p.Stack])
		if err != nil {
			t.Fatalf("%s %s: %v", p.Stack, p.URL(), err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		want := http.StatusOK
		// KoboldCpp's password guards generation only.
		if p.AuthRequired && p.Stack != StackKoboldCpp {
			want = http.StatusUnauthorized
			sawAuth = true
		}
		if resp.StatusCode != want {
			t.Errorf("%s %s%s = %d, want %d", p.Stack, p.URL(), discoveryPath[p.Stack], resp.StatusCode, want)
		}
		if p.TLS != (resp.TLS != nil) {
			t.Errorf("%s: TLS=%v but connection TLS=%v", p.URL(), p.TLS, resp.TLS != nil)
		}
		sawTLS = sawTLS || p.TLS
		hits := f.Hits(p.AddrPort())
		if len(hits) != 1 || hits[0].Path != discoveryPath[p.Stack] || hits[0].Count != 1 || hits[0].Write {
			t.Errorf("%s hits = %+v", p.URL(), hits)
		}
	}
	if !sawTLS || !sawAuth {
		t.Errorf("fleet lacked variety: tls=%v auth=%v", sawTLS, sawAuth)
	}
	if w := f.WriteHits(); len(w) != 0 {
		t.Errorf("read-only scan produced write hits: %v", w)
	}
	// A write route is recorded against the persona that received it.
	p := ps[0]
	resp, err := c.Post(p.URL()+"/v1/chat/completions", "application/json", strings.NewReader(`{"model":"x"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if w := f.WriteHits()[p.AddrPort()]; p.Stack != StackOpenWebUI && len(w) != 1 {
		t.Errorf("write to %s (%s) not recorded: %v", p.URL(), p.Stack, f.WriteHits())
	}
}

func TestStartRefusesNonLoopback(t *testing.T) {
	ps := []Persona{{Addr: netip.MustParseAddr("10.1.2.3"), Port: 11434, Stack: StackOllama}}
	if _, err := Start(context.Background(), ps); err == nil {
		t.Fatal("Start listened outside loopback")
	}
}

func TestFleetScale(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 2000 listeners")
	}
	ps, err := Generate(Config{Seed: 5, Prefix: netip.MustParsePrefix("127.128.0.0/10"), Live: 2000, HostileFraction: 0.02})
	if err != nil {
		t.Fatal(err)
	}
	f, err := Start(context.Background(), ps)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// Spot-check a few well-behaved personas across the fleet.
	c := labClient()
	checked := 0
	for i := 0; i < len(ps) && checked < 20; i += 97 {
		p := ps[i]
		if p.Hostile != "" {
			continue
		}
		resp, err := c.Get(p.URL() + discoveryPath[p.Stack])
		if err != nil {
			t.Fatalf("%s: %v", p.URL(), err)
		}
		resp.Body.Close()
		checked++
	}
	if checked == 0 {
		t.Fatal("nothing checked")
	}
}

func hostileFleet(t *testing.T) (*Fleet, map[string]Persona) {
	t.Helper()
	byKind := map[string]Persona{}
	var ps []Persona
	for i, k := range HostileKinds() {
		p := Persona{Addr: netip.AddrFrom4([4]byte{127, 66, 0, byte(10 + i)}), Port: 11434, Stack: StackOllama, Version: "0.5.7", Hostile: k}
		ps = append(ps, p)
		byKind[k] = p
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	f, err := Start(ctx, ps)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	return f, byKind
}

func TestHostilePersonas(t *testing.T) {
	f, byKind := hostileFleet(t)
	c := labClient()

	t.Run("redirect", func(t *testing.T) {
		resp, err := c.Get(byKind[HostileRedirect].URL() + "/api/tags")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		loc, err := resp.Location()
		if err != nil || resp.StatusCode != http.StatusFound {
			t.Fatalf("status %d location %v", resp.StatusCode, err)
		}
		if a, err := netip.ParseAddr(loc.Hostname()); err != nil || !a.IsLoopback() {
			t.Fatalf("redirect leaves loopback: %s", loc)
		}
	})
	t.Run("invalid-json", func(t *testing.T) {
		resp, err := c.Get(byKind[HostileInvalidJSON].URL() + "/api/tags")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var v any
		if resp.StatusCode != 200 || json.NewDecoder(resp.Body).Decode(&v) == nil {
			t.Fatal("invalid-json persona sent valid JSON")
		}
	})
	t.Run("huge-body", func(t *testing.T) {
		resp, err := c.Get(byKind[HostileHugeBody].URL() + "/api/tags")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		const limit = 8 << 20
		n, err := io.Copy(io.Discard, io.LimitReader(resp.Body, limit))
		if err != nil || n != limit || resp.ContentLength != -1 {
			t.Fatalf("read %d bytes (err %v, length %d); want an endless body", n, err, resp.ContentLength)
		}
	})
	t.Run("gzip-bomb", func(t *testing.T) {
		resp, err := c.Get(byKind[HostileGzipBomb].URL() + "/api/tags")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.Header.Get("Content-Encoding") != "gzip" || resp.ContentLength <= 0 || resp.ContentLength > 8<<20 {
			t.Fatalf("encoding %q length %d", resp.Header.Get("Content-Encoding"), resp.ContentLength)
		}
		zr, err := gzip.NewReader(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		const limit = 64 << 20
		n, err := io.Copy(io.Discard, io.LimitReader(zr, limit))
		if err != nil || n != limit {
			t.Fatalf("inflated %d bytes, err %v", n, err)
		}
		if HostileBombInflated < 1<<30 || HostileBombInflated/resp.ContentLength < 500 {
			t.Fatalf("bomb ratio too small: %d from %d", HostileBombInflated, resp.ContentLength)
		}
	})
	t.Run("garbage", func(t *testing.T) {
		resp, err := c.Get(byKind[HostileGarbage].URL() + "/")
		if err == nil {
			resp.Body.Close()
			t.Fatalf("garbage persona parsed as HTTP %d", resp.StatusCode)
		}
	})
	t.Run("endless-headers", func(t *testing.T) {
		resp, err := c.Get(byKind[HostileEndlessHeaders].URL() + "/")
		if err == nil {
			resp.Body.Close()
			t.Fatal("endless headers ended")
		}
	})
	t.Run("tarpit", func(t *testing.T) {
		conn, err := net.Dial("tcp", byKind[HostileTarpit].AddrPort().String())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		b := make([]byte, 1)
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.ReadFull(conn, b); err != nil || b[0] != 'H' {
			t.Fatalf("first byte %q, err %v", b, err)
		}
		// The response never completes: a bounded reader gives up.
		_ = conn.SetReadDeadline(time.Now().Add(1500 * time.Millisecond))
		if resp, err := http.ReadResponse(bufio.NewReader(conn), nil); err == nil {
			resp.Body.Close()
			t.Fatalf("tarpit completed a response: %d", resp.StatusCode)
		}
	})
	for _, k := range []string{HostileGarbage, HostileTarpit} {
		if hits := f.Hits(byKind[k].AddrPort()); len(hits) == 0 || hits[0].Method != "TCP" {
			t.Errorf("%s connections not recorded: %v", k, hits)
		}
	}
	// Close returns although clients were left hanging.
	done := make(chan struct{})
	go func() { f.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("Close hung on hostile connections")
	}
}
