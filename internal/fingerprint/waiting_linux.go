package fingerprint

import (
	"net"
	"syscall"
)

// waiting reports whether bytes from the peer are already queued on c's
// socket: one recv(2) with MSG_PEEK|MSG_DONTWAIT, which neither consumes
// them nor blocks.
func waiting(c net.Conn) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	var found bool
	var b [1]byte
	// Control, not Read: net/http's reader may hold the read lock,
	// blocked until the response comes.
	_ = rc.Control(func(fd uintptr) {
		n, _, rerr := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		found = rerr == nil && n > 0
	})
	return found
}
