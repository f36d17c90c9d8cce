package scan

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"runtime"
	"syscall"
	"testing"
	"time"
)

// greeter listens on network/addr and writes "hello" to every connection.
func greeter(t *testing.T, network, addr string) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Skipf("cannot listen on %s %s: %v", network, addr, err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("hello"))
			c.Close()
		}
	}()
	return netip.MustParseAddrPort(ln.Addr().String())
}

// closedPort returns a loopback port nothing listens on.
func closedPort(t *testing.T, network, addr string) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Skipf("cannot listen on %s %s: %v", network, addr, err)
	}
	ap := netip.MustParseAddrPort(ln.Addr().String())
	ln.Close()
	return ap
}

func TestConnectTCPOpenAndRefused(t *testing.T) {
	for _, tc := range []struct{ network, addr string }{
		{"tcp4", "127.0.0.1:0"},
		{"tcp6", "[::1]:0"},
	} {
		t.Run(tc.network, func(t *testing.T) {
			open := greeter(t, tc.network, tc.addr)
			c, err := connectTCP(context.Background(), open, time.Second, nil)
			if err != nil {
				t.Fatalf("connect to listening %s: %v", open, err)
			}
			b, err := io.ReadAll(c)
			c.Close()
			if err != nil || string(b) != "hello" {
				t.Fatalf("read %q, %v; want hello", b, err)
			}
			if got := netip.MustParseAddrPort(c.RemoteAddr().String()); got != open {
				t.Errorf("remote address %s, want %s", got, open)
			}

			closed := closedPort(t, tc.network, tc.addr)
			c, err = connectTCP(context.Background(), closed, time.Second, nil)
			if err == nil {
				c.Close()
				t.Fatalf("connect to closed %s succeeded", closed)
			}
			if !errors.Is(err, syscall.ECONNREFUSED) || !isClosed(err) {
				t.Fatalf("connect to closed %s: %v, want connection refused", closed, err)
			}
		})
	}
}

// fullBacklog returns a loopback address whose listener accepts nothing and
// whose accept queue is already full, so a further connect stays pending:
// the kernel drops the SYN.
func fullBacklog(t *testing.T) netip.AddrPort {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("relies on Linux dropping SYNs to a full accept queue")
	}
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 5, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	ap := netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 5, 1}), uint16(sa.(*syscall.SockaddrInet4).Port))
	// Fill the queue (backlog 0 admits one) with connections nobody
	// accepts.
	for i := 0; i < 2; i++ {
		c, err := net.DialTimeout("tcp", ap.String(), 200*time.Millisecond)
		if err != nil {
			break
		}
		t.Cleanup(func() { c.Close() })
	}
	return ap
}

func TestConnectTCPPendingTimesOutAndCancels(t *testing.T) {
	ap := fullBacklog(t)
	c, err := connectTCP(context.Background(), ap, 150*time.Millisecond, nil)
	if err == nil {
		c.Close()
		t.Skip("the kernel accepted a connection past a full backlog; cannot test a pending connect here")
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("pending connect: %v, want a timeout", err)
	}
	if isClosed(err) {
		t.Errorf("a timeout was taken for a closed port: %v", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	c, err = connectTCP(ctx, ap, time.Minute, nil)
	if err == nil {
		c.Close()
		t.Fatal("pending connect succeeded")
	}
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled connect: %v, want context.Canceled", err)
	}
}

// TestConnectTCPReusesRefusedSockets: a worker's socket, reset after a
// refusal, answers the next address correctly — refused, open, another
// family — and is kept only after a refusal.
func TestConnectTCPReusesRefusedSockets(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the socket cache is Linux only")
	}
	open4 := greeter(t, "tcp4", "127.0.0.1:0")
	closed4 := closedPort(t, "tcp4", "127.0.0.1:0")
	open6 := greeter(t, "tcp6", "[::1]:0")
	closed6 := closedPort(t, "tcp6", "[::1]:0")
	var cache socketCache
	defer cache.close()
	for i, tc := range []struct {
		addr netip.AddrPort
		open bool
	}{
		{closed4, false}, {closed4, false}, {open4, true}, {closed4, false}, {closed6, false},
		{open6, true}, {closed6, false}, {closed4, false}, {open4, true},
	} {
		kept := cache.ok
		c, err := connectTCP(context.Background(), tc.addr, time.Second, &cache)
		if tc.open {
			if err != nil {
				t.Fatalf("%d: %s open, reused socket %v: %v", i, tc.addr, kept, err)
			}
			b, _ := io.ReadAll(c)
			c.Close()
			if string(b) != "hello" || netip.MustParseAddrPort(c.RemoteAddr().String()) != tc.addr {
				t.Fatalf("%d: connected to %s, read %q", i, c.RemoteAddr(), b)
			}
			if cache.ok {
				t.Errorf("%d: a connected socket was kept as a spare", i)
			}
			continue
		}
		if err == nil {
			c.Close()
			t.Fatalf("%d: %s is closed but the connect succeeded (reused socket %v)", i, tc.addr, kept)
		}
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("%d: %s: %v, want refused", i, tc.addr, err)
		}
		if !cache.ok {
			t.Errorf("%d: a refused socket was not kept", i)
		}
	}
}
