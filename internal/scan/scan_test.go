package scan

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/llmfence/llmfence/internal/service"
)

type sliceWalker []Target

func (w sliceWalker) Count() uint64 { return uint64(len(w)) }
func (w sliceWalker) Walk(ctx context.Context, fn func(Target) error) error {
	for _, t := range w {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(t); err != nil {
			return err
		}
	}
	return nil
}

// echoProber names every open port "ollama" unless told the port is plain
// HTTP; it records the most probes it saw in flight at once.
type echoProber struct {
	inFlight, maxInFlight atomic.Int64
	httpOnly              map[netip.AddrPort]bool
	fenced                map[netip.AddrPort]bool // http behind a recognised gateway
	delay                 time.Duration
}

func (p *echoProber) Probe(ctx context.Context, addr netip.AddrPort, host string, tlsHint bool, conn net.Conn) (*service.Service, error) {
	if conn != nil {
		conn.Close()
	}
	n := p.inFlight.Add(1)
	defer p.inFlight.Add(-1)
	for {
		m := p.maxInFlight.Load()
		if n <= m || p.maxInFlight.CompareAndSwap(m, n) {
			break
		}
	}
	if p.delay > 0 {
		time.Sleep(p.delay)
	}
	product, gateway := "ollama", ""
	if p.httpOnly[addr] {
		product = "http"
	}
	if p.fenced[addr] {
		product, gateway = "http", "nginx"
	}
	return &service.Service{Host: addr.Addr().String(), Port: int(addr.Port()), Hostname: host, Product: product, Gateway: gateway}, nil
}

// listeners opens n listeners on distinct loopback addresses and returns
// their addresses plus as many closed ones.
func listeners(t *testing.T, n int) (open, closed []netip.AddrPort) {
	t.Helper()
	for i := 0; i < n; i++ {
		ip := netip.AddrFrom4([4]byte{127, 0, 3, byte(10 + i)})
		ln, err := net.Listen("tcp", netip.AddrPortFrom(ip, 0).String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				c.Close()
			}
		}()
		ap := netip.MustParseAddrPort(ln.Addr().String())
		open = append(open, ap)
		// A closed port: bind, note, close.
		l2, err := net.Listen("tcp", netip.AddrPortFrom(ip, 0).String())
		if err != nil {
			t.Fatal(err)
		}
		closed = append(closed, netip.MustParseAddrPort(l2.Addr().String()))
		l2.Close()
	}
	return open, closed
}

func TestRunFindsEveryOpenPortOnce(t *testing.T) {
	open, closed := listeners(t, 12)
	var w sliceWalker
	for i := range open {
		w = append(w, Target{Addr: open[i], Hostname: "h"}, Target{Addr: closed[i]})
	}
	p := &echoProber{httpOnly: map[netip.AddrPort]bool{open[0]: true}, delay: 5 * time.Millisecond}
	s, err := New(Options{Concurrency: 4, Fingerprints: 4, DialTimeout: time.Second}, p, annotatorFunc(func(svc *service.Service) {
		svc.Risk = service.SeverityHigh
	}))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var got []string
	st, err := s.Run(context.Background(), w, func(svc *service.Service) error {
		mu.Lock()
		defer mu.Unlock()
		if svc.Risk != service.SeverityHigh {
			t.Errorf("%s emitted before annotation", svc.Key())
		}
		got = append(got, svc.Key())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, ap := range open[1:] {
		want = append(want, ap.String())
	}
	sort.Strings(got)
	sort.Strings(want)
	if len(got) != len(want) {
		t.Fatalf("found %d services, want %d: %v", len(got), len(want), got)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("services = %v, want %v", got, want)
		}
	}
	if st.Total != 24 || st.Done != 24 || st.Open != 12 || st.Services != 11 || st.OtherHTTP != 1 || st.Unidentified != 1 || st.Fenced != 0 {
		t.Errorf("stats = %+v", st)
	}
	if m := p.maxInFlight.Load(); m > 4 {
		t.Errorf("%d probes in flight at once, the fingerprint pool is 4", m)
	}
}

type annotatorFunc func(*service.Service)

func (f annotatorFunc) Annotate(s *service.Service) { f(s) }

func TestRunStopsWhenEmitFails(t *testing.T) {
	open, _ := listeners(t, 6)
	var w sliceWalker
	for _, ap := range open {
		w = append(w, Target{Addr: ap})
	}
	s, _ := New(Options{Concurrency: 1}, &echoProber{}, nil)
	boom := errors.New("disk full")
	calls := 0
	_, err := s.Run(context.Background(), w, func(*service.Service) error {
		calls++
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want %v", err, boom)
	}
	if calls != 1 {
		t.Errorf("emit called %d times after failing", calls)
	}
}

func TestRunHonoursCancel(t *testing.T) {
	// A walker that never ends: cancellation must still return.
	ctx, cancel := context.WithCancel(context.Background())
	endless := walkerFunc(func(ctx context.Context, fn func(Target) error) error {
		for i := 0; ; i++ {
			if err := fn(Target{Addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 4, byte(i)}), 1)}); err != nil {
				return err
			}
		}
	})
	s, _ := New(Options{Concurrency: 8, Progress: func(st Stats) {
		if st.Done > 50 {
			cancel()
		}
	}, ProgressEvery: time.Millisecond}, &echoProber{}, nil)
	done := make(chan error, 1)
	go func() {
		_, err := s.Run(ctx, endless, func(*service.Service) error { return nil })
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

type walkerFunc func(ctx context.Context, fn func(Target) error) error

func (f walkerFunc) Count() uint64                                         { return 0 }
func (f walkerFunc) Walk(ctx context.Context, fn func(Target) error) error { return f(ctx, fn) }

func TestRetriesOnlyTimeouts(t *testing.T) {
	var calls atomic.Int64
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		calls.Add(1)
		return nil, &net.OpError{Op: "dial", Err: timeoutErr{}}
	}
	s, _ := New(Options{Concurrency: 1, Retries: 2, Dial: dial}, &echoProber{}, nil)
	st, err := s.Run(context.Background(), sliceWalker{{Addr: netip.MustParseAddrPort("127.0.0.1:9")}}, func(*service.Service) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	if calls.Load() != 3 {
		t.Errorf("dialled %d times, want 1 + 2 retries", calls.Load())
	}
	if st.Errors != 1 {
		t.Errorf("errors = %d, want 1", st.Errors)
	}
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

// TestRunKeepsFencedAndCountsUnidentified: an HTTP service behind a
// recognised gateway is reported even without KeepHTTP; plain HTTP and
// non-HTTP ports are counted as open but unidentified.
func TestRunKeepsFencedAndCountsUnidentified(t *testing.T) {
	open, _ := listeners(t, 4)
	var w sliceWalker
	for _, ap := range open {
		w = append(w, Target{Addr: ap})
	}
	p := &echoProber{httpOnly: map[netip.AddrPort]bool{open[0]: true}, fenced: map[netip.AddrPort]bool{open[1]: true}}
	s, err := New(Options{Concurrency: 2}, notHTTPFor(open[2], p), nil)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	st, err := s.Run(context.Background(), w, func(svc *service.Service) error {
		got = append(got, svc.Key()+" "+svc.Product+" "+svc.Gateway)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(got)
	want := []string{open[1].String() + " http nginx", open[3].String() + " ollama "}
	sort.Strings(want)
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("reported %q, want %q", got, want)
	}
	if st.Open != 4 || st.Services != 1 || st.Fenced != 1 || st.OtherHTTP != 1 || st.NotHTTP != 1 || st.Unidentified != 2 {
		t.Errorf("stats = %+v", st)
	}
	if st.Services+st.Fenced+st.Unidentified != st.Open {
		t.Errorf("open %d != services %d + fenced %d + unidentified %d", st.Open, st.Services, st.Fenced, st.Unidentified)
	}
}

// notHTTPFor wraps a prober so that one address answers like a non-HTTP
// port.
func notHTTPFor(addr netip.AddrPort, p Prober) Prober {
	return proberFunc(func(ctx context.Context, a netip.AddrPort, host string, tlsHint bool, conn net.Conn) (*service.Service, error) {
		if a == addr {
			if conn != nil {
				conn.Close()
			}
			return nil, errors.New("endpoint does not speak HTTP")
		}
		return p.Probe(ctx, a, host, tlsHint, conn)
	})
}

type proberFunc func(ctx context.Context, addr netip.AddrPort, host string, tlsHint bool, conn net.Conn) (*service.Service, error)

func (f proberFunc) Probe(ctx context.Context, addr netip.AddrPort, host string, tlsHint bool, conn net.Conn) (*service.Service, error) {
	return f(ctx, addr, host, tlsHint, conn)
}

// TestRunReportsRateWait: when --rate is what holds the walk back, the
// stats say how long it waited.
func TestRunReportsRateWait(t *testing.T) {
	_, closed := listeners(t, 10)
	var w sliceWalker
	for _, ap := range closed {
		w = append(w, Target{Addr: ap})
	}
	s, _ := New(Options{Concurrency: 4, Rate: 200}, &echoProber{}, nil)
	st, err := s.Run(context.Background(), w, func(*service.Service) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	// Burst 1 at 200/s: every pair after the first waits for its slot.
	if st.RateWait <= 0 || st.RateWait > st.Sweep {
		t.Errorf("rate wait %v with sweep %v; want 0 < wait <= sweep", st.RateWait, st.Sweep)
	}
	s, _ = New(Options{Concurrency: 4}, &echoProber{}, nil)
	if st, _ := s.Run(context.Background(), w, func(*service.Service) error { return nil }); st.RateWait != 0 {
		t.Errorf("unlimited scan waited %v on the rate", st.RateWait)
	}
}

// TestSlowFingerprintsDoNotHoldDiscovery: with one fingerprint slot held by
// a prober that does not return until every target has been connected to,
// discovery still ends — open ports queue for a slot instead of holding
// the connect workers — and every queued port is fingerprinted afterwards,
// on a connection of the prober's own.
func TestSlowFingerprintsDoNotHoldDiscovery(t *testing.T) {
	open, closed := listeners(t, 8)
	var w sliceWalker
	for i := range open {
		w = append(w, Target{Addr: open[i]}, Target{Addr: closed[i]})
	}
	var dials atomic.Int64
	swept := make(chan struct{})
	d := &net.Dialer{}
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		if dials.Add(1) == int64(len(w)) {
			close(swept)
		}
		return c, err
	}
	var withConn, withoutConn atomic.Int64
	p := proberFunc(func(ctx context.Context, a netip.AddrPort, host string, tlsHint bool, conn net.Conn) (*service.Service, error) {
		if conn != nil {
			withConn.Add(1)
			conn.Close()
		} else {
			withoutConn.Add(1)
		}
		select {
		case <-swept:
		case <-time.After(30 * time.Second):
			return nil, errors.New("the sweep never finished: discovery waited for fingerprints")
		}
		return &service.Service{Host: a.Addr().String(), Port: int(a.Port()), Product: "ollama"}, nil
	})
	s, err := New(Options{Concurrency: 1, MinConcurrency: 1, Fingerprints: 1, Dial: dial}, p, nil)
	if err != nil {
		t.Fatal(err)
	}
	found := 0
	st, err := s.Run(context.Background(), w, func(*service.Service) error { found++; return nil })
	if err != nil {
		t.Fatal(err)
	}
	if found != len(open) || st.Services != uint64(len(open)) {
		t.Errorf("found %d services (stats %+v), want %d", found, st, len(open))
	}
	if st.Queued != uint64(len(open)-1) || withoutConn.Load() != int64(st.Queued) || withConn.Load() != 1 {
		t.Errorf("queued %d; probes with a connection %d, without %d; want %d queued", st.Queued, withConn.Load(), withoutConn.Load(), len(open)-1)
	}
}
