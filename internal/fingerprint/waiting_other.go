//go:build !unix

package fingerprint

import "net"

// bytesWaiting cannot peek on this platform; the read-side check in
// countingConn.Read still catches most servers that speak first.
func bytesWaiting(net.Conn) bool { return false }
