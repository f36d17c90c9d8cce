//go:build unix

package fingerprint

import (
	"net"
	"syscall"
)

// bytesWaiting reports whether the peer has already sent bytes that sit
// unread in c's receive buffer. It peeks without consuming or blocking.
func bytesWaiting(c net.Conn) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	var n int
	// Control, not Read: net/http's read loop may be blocked in Read on
	// this connection, holding its read lock. MSG_DONTWAIT keeps the peek
	// from blocking; only bytes already there count.
	rc.Control(func(fd uintptr) {
		var b [1]byte
		n, _, _ = syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	})
	return n > 0
}
