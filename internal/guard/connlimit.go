package guard

import (
	"net"
	"net/netip"
	"sync"
)

// perIPListener caps the number of open connections from one client IP.
// Connections over the cap are closed right after accept.
type perIPListener struct {
	net.Listener
	max     int
	onLimit func(ip netip.Addr)

	mu    sync.Mutex
	conns map[netip.Addr]int
}

// limitPerIP wraps l; max <= 0 returns l unchanged.
func limitPerIP(l net.Listener, max int, onLimit func(netip.Addr)) net.Listener {
	if max <= 0 {
		return l
	}
	return &perIPListener{Listener: l, max: max, onLimit: onLimit, conns: make(map[netip.Addr]int)}
}

func (l *perIPListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ip, ok := clientAddr(c.RemoteAddr().String())
		if !ok {
			return c, nil // not an IP connection (unix socket): no cap
		}
		l.mu.Lock()
		if l.conns[ip] >= l.max {
			l.mu.Unlock()
			c.Close()
			if l.onLimit != nil {
				l.onLimit(ip)
			}
			continue
		}
		l.conns[ip]++
		l.mu.Unlock()
		return &countedConn{Conn: c, release: func() { l.release(ip) }}, nil
	}
}

func (l *perIPListener) release(ip netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conns[ip] <= 1 {
		delete(l.conns, ip)
		return
	}
	l.conns[ip]--
}

// open reports the connections counted for ip (tests).
func (l *perIPListener) open(ip netip.Addr) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.conns[ip]
}

type countedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *countedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
