//go:build linux

package scan

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"syscall"
	"time"
	"unsafe"
)

// connectTCP opens a TCP connection to addr with a non-blocking connect(2)
// and asks the kernel for the outcome at once, before involving the runtime
// poller.
//
// Why not net.Dialer: a sweep is almost all refused connects. Where the
// answer comes back within the connect call — loopback, and in practice
// most of a LAN's refusals — the kernel already knows the result when
// connect(2) returns EINPROGRESS, and getsockopt(SO_ERROR) reads it: four
// system calls (socket, connect, getsockopt, close) and no goroutine
// parking. net.Dialer always registers the socket with epoll, parks the
// goroutine, is woken by the poller, arms and disarms a deadline timer and
// removes the socket from epoll again: six system calls plus a scheduler
// round trip for each refused port. Measured on the 2-core development
// machine over 200,000 closed loopback ports with 64 in flight: 30–36k
// connects/s through net.Dialer, 72–84k/s this way (docs/benchmarks.md).
//
// A refused socket is not closed: connect(2) with AF_UNSPEC resets it to
// the unconnected state (a fresh ephemeral port is chosen next time) and
// the worker uses it for its next address (socketCache), which spares a
// socket(2) and a close(2) — most of the kernel's allocation work — per
// refused port (measured: 35 % less system time on the same sweep).
//
// Connects still pending after the first look (a remote network, an open
// port) fall back to the poller: the socket becomes an *os.File registered
// with it, the goroutine waits for writability up to timeout or ctx, and an
// established connection is handed over as a *net.TCPConn.
func connectTCP(ctx context.Context, addr netip.AddrPort, timeout time.Duration, cache *socketCache) (net.Conn, error) {
	ip := addr.Addr().Unmap()
	var sa syscall.Sockaddr
	family := syscall.AF_INET
	if ip.Is4() {
		sa = &syscall.SockaddrInet4{Port: int(addr.Port()), Addr: ip.As4()}
	} else {
		family = syscall.AF_INET6
		sa = &syscall.SockaddrInet6{Port: int(addr.Port()), Addr: ip.As16()}
	}
	cache.enter()
	fd, err := cache.take(family)
	if err != nil {
		cache.leave()
		return nil, dialError(addr, os.NewSyscallError("socket", err))
	}
	switch err := syscall.Connect(fd, sa); err {
	case nil, syscall.EINPROGRESS, syscall.EALREADY, syscall.EINTR:
	default:
		cache.giveBack(fd, family)
		cache.leave()
		return nil, refusal(addr, err)
	}
	// The outcome is often known already: refused (or unreachable) ports
	// end here without the poller.
	if v, err := syscall.GetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_ERROR); err == nil && v != 0 {
		cache.giveBack(fd, family)
		cache.leave()
		return nil, refusal(addr, syscall.Errno(v))
	}
	cache.leave()
	return waitConnected(ctx, addr, fd, timeout)
}

// socketCache is one connect worker's spare socket (see connectTCP). The
// zero value is empty; close releases the spare. Not safe for concurrent
// use: each worker has its own.
type socketCache struct {
	fd     int // valid when ok
	family int
	ok     bool
	// gate, when set, is shared by every worker of a scan and bounds the
	// workers inside the synchronous part of a connect (see enter).
	gate chan struct{}
}

// enter waits for a place in the gate. The synchronous part of a connect
// never parks, so each worker in it is runnable the whole time: with
// hundreds of workers (the adaptive limit grows for networks where connects
// wait), goroutines woken by the poller — fingerprints with a response in
// hand — would queue behind all of them. The gate keeps the runnable
// workers to a few per CPU; workers waiting on the poller hold no place.
func (c *socketCache) enter() {
	if c != nil && c.gate != nil {
		c.gate <- struct{}{}
	}
}

func (c *socketCache) leave() {
	if c != nil && c.gate != nil {
		<-c.gate
	}
}

// take returns the spare socket of family, or a new one.
func (c *socketCache) take(family int) (int, error) {
	if c != nil && c.ok {
		c.ok = false
		if c.family == family {
			return c.fd, nil
		}
		syscall.Close(c.fd)
	}
	return syscall.Socket(family, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, syscall.IPPROTO_TCP)
}

// giveBack keeps a socket whose connect failed for the next one, after
// resetting it with connect(AF_UNSPEC); a socket that will not reset is
// closed.
func (c *socketCache) giveBack(fd, family int) {
	if c == nil || c.ok || disconnect(fd) != nil {
		syscall.Close(fd)
		return
	}
	c.fd, c.family, c.ok = fd, family, true
}

func (c *socketCache) close() {
	if c != nil && c.ok {
		syscall.Close(c.fd)
		c.ok = false
	}
}

// disconnect is connect(fd, {AF_UNSPEC}): it returns a TCP socket to the
// unconnected state (tcp_disconnect), clearing the failed attempt.
func disconnect(fd int) error {
	var sa syscall.RawSockaddr // Family 0: AF_UNSPEC
	_, _, e := syscall.Syscall(syscall.SYS_CONNECT, uintptr(fd), uintptr(unsafe.Pointer(&sa)), unsafe.Sizeof(sa))
	if e != 0 {
		return e
	}
	return nil
}

// refusal is the error for a connect the kernel answered. Refused ports are
// the common case of a sweep and are returned as the bare errno (no
// allocation); the scanner only asks errors.Is of them.
func refusal(addr netip.AddrPort, errno error) error {
	if errno == syscall.ECONNREFUSED {
		return syscall.ECONNREFUSED
	}
	return dialError(addr, os.NewSyscallError("connect", errno))
}

func dialError(addr netip.AddrPort, err error) error {
	return &net.OpError{Op: "dial", Net: "tcp", Addr: net.TCPAddrFromAddrPort(addr), Err: err}
}

// waitConnected waits on the runtime poller for a connect in progress and
// returns the established connection.
func waitConnected(ctx context.Context, addr netip.AddrPort, fd int, timeout time.Duration) (net.Conn, error) {
	// os.NewFile sees the non-blocking flag and registers fd with the
	// poller; from here f owns fd.
	f := os.NewFile(uintptr(fd), "connect")
	defer f.Close()
	if timeout > 0 {
		if err := f.SetWriteDeadline(time.Now().Add(timeout)); err != nil {
			return nil, dialError(addr, err)
		}
	}
	stop := context.AfterFunc(ctx, func() { _ = f.SetWriteDeadline(time.Unix(1, 0)) })
	defer stop()
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, dialError(addr, err)
	}
	var connErr error
	werr := rc.Write(func(s uintptr) bool {
		v, err := syscall.GetsockoptInt(int(s), syscall.SOL_SOCKET, syscall.SO_ERROR)
		if err != nil {
			connErr = os.NewSyscallError("getsockopt", err)
			return true
		}
		switch e := syscall.Errno(v); e {
		case 0:
			// Writable and no error: connected — unless the poller woke
			// us early, in which case the peer is not known yet.
			if _, err := syscall.Getpeername(int(s)); err == nil {
				return true
			}
			return false
		case syscall.EINPROGRESS, syscall.EALREADY, syscall.EINTR:
			return false
		default:
			connErr = e
			return true
		}
	})
	if werr != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if errors.Is(werr, os.ErrDeadlineExceeded) {
			return nil, dialError(addr, timeoutError{})
		}
		return nil, dialError(addr, werr)
	}
	if connErr != nil {
		return nil, refusal(addr, connErr)
	}
	c, err := net.FileConn(f)
	if err != nil {
		return nil, dialError(addr, fmt.Errorf("adopting connected socket: %w", err))
	}
	return c, nil
}

// timeoutError is a connect that did not finish in time; like the net
// package's, it reports Timeout.
type timeoutError struct{}

func (timeoutError) Error() string   { return "i/o timeout" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }
