package audit

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
)

// Limits of the /proc/net/tcp reader. A busy server has hundreds of
// thousands of sockets; the file is streamed line by line and only
// listening sockets are kept.
const (
	maxNetLine   = 1024    // longer lines are not socket entries
	maxListeners = 1 << 16 // listening sockets kept per namespace and family
)

// tcpListen is the kernel's TCP_LISTEN state as /proc/net/tcp prints it.
const tcpListen = "0A"

// errTooManyListeners is returned, with the listeners read so far, when a
// namespace has more listening sockets than the reader keeps.
var errTooManyListeners = errors.New("more listening sockets than the audit keeps")

// parseProcNetTCP streams one /proc/<pid>/net/tcp or tcp6 file and returns
// its listening sockets. Malformed lines are skipped; the addresses are
// decoded as the kernel prints them (each 32-bit word in host byte order).
func parseProcNetTCP(ctx context.Context, r io.Reader, v6 bool) ([]Listener, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 512), maxNetLine)
	var out []Listener
	n := 0
	for {
		if !sc.Scan() {
			err := sc.Err()
			if errors.Is(err, bufio.ErrTooLong) {
				return out, fmt.Errorf("a line longer than %d bytes: not a /proc/net/tcp file", maxNetLine)
			}
			return out, err
		}
		if n++; n%4096 == 0 && ctx.Err() != nil {
			return out, ctx.Err()
		}
		l, ok := parseTCPLine(sc.Text(), v6)
		if !ok {
			continue
		}
		if len(out) == maxListeners {
			return out, errTooManyListeners
		}
		out = append(out, l)
	}
}

// parseTCPLine decodes one socket line, returning ok only for a
// well-formed listening socket.
func parseTCPLine(line string, v6 bool) (Listener, bool) {
	f := strings.Fields(line)
	// sl local rem st tx:rx tr:when retrnsmt uid timeout inode ...
	if len(f) < 10 || !strings.HasSuffix(f[0], ":") || f[3] != tcpListen {
		return Listener{}, false
	}
	host, port, ok := strings.Cut(f[1], ":")
	if !ok {
		return Listener{}, false
	}
	addr, ok := decodeProcAddr(host, v6)
	if !ok {
		return Listener{}, false
	}
	p, err := strconv.ParseUint(port, 16, 16)
	if err != nil || len(port) != 4 {
		return Listener{}, false
	}
	uid, err := strconv.ParseUint(f[7], 10, 32)
	if err != nil {
		return Listener{}, false
	}
	inode, err := strconv.ParseUint(f[9], 10, 64)
	if err != nil {
		return Listener{}, false
	}
	return Listener{Addr: netip.AddrPortFrom(addr, uint16(p)), Inode: inode, UID: int(uid)}, true
}

// decodeProcAddr decodes the hex address of /proc/net/tcp{,6}: 8 (IPv4) or
// 32 (IPv6) hex digits, each group of 8 a 32-bit word in host byte order.
func decodeProcAddr(s string, v6 bool) (netip.Addr, bool) {
	want := 8
	if v6 {
		want = 32
	}
	if len(s) != want {
		return netip.Addr{}, false
	}
	raw, err := hex.DecodeString(s)
	if err != nil {
		return netip.Addr{}, false
	}
	b := make([]byte, len(raw))
	for i := 0; i < len(raw); i += 4 {
		binary.NativeEndian.PutUint32(b[i:], binary.BigEndian.Uint32(raw[i:]))
	}
	if v6 {
		return netip.AddrFrom16([16]byte(b)), true
	}
	return netip.AddrFrom4([4]byte(b)), true
}
