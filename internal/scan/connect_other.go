//go:build !linux

package scan

import (
	"context"
	"net"
	"net/netip"
	"time"
)

// connectTCP opens a TCP connection with net.Dialer; the direct connect(2)
// path is Linux only (see connect_linux.go).
func connectTCP(ctx context.Context, addr netip.AddrPort, timeout time.Duration, _ *socketCache) (net.Conn, error) {
	d := net.Dialer{Timeout: timeout}
	return d.DialContext(ctx, "tcp", addr.String())
}

// socketCache keeps nothing here: net.Dialer makes every socket and parks
// the goroutine on every connect.
type socketCache struct{ gate chan struct{} }

func (*socketCache) close() {}
