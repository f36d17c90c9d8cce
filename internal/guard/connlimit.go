package guard

import (
	"net"
	"net/netip"
	"sync"
)

// connLimitListener caps the open connections from one client IP and in
// total. Connections over a cap are closed right after accept, so a flood
// of connections costs the guard an accept and a close, never a goroutine
// waiting on a slow client.
type connLimitListener struct {
	net.Listener
	perIP   int // 0: no per-IP cap
	total   int // 0: no total cap
	onLimit func(reason string, ip netip.Addr)

	mu    sync.Mutex
	open  int
	conns map[netip.Addr]int
}

// limitConns wraps l; with both caps 0 it returns l unchanged.
func limitConns(l net.Listener, perIP, total int, onLimit func(reason string, ip netip.Addr)) net.Listener {
	if perIP <= 0 && total <= 0 {
		return l
	}
	return &connLimitListener{Listener: l, perIP: max(perIP, 0), total: max(total, 0), onLimit: onLimit,
		conns: make(map[netip.Addr]int)}
}

func (l *connLimitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ip, ok := clientAddr(c.RemoteAddr().String())
		l.mu.Lock()
		reason := ""
		switch {
		case l.total > 0 && l.open >= l.total:
			reason = "conn_limit_total"
		case ok && l.perIP > 0 && l.conns[ip] >= l.perIP:
			reason = "conn_limit"
		}
		if reason != "" {
			l.mu.Unlock()
			c.Close()
			if l.onLimit != nil {
				l.onLimit(reason, ip)
			}
			continue
		}
		l.open++
		if ok {
			l.conns[ip]++
		}
		l.mu.Unlock()
		return &countedConn{Conn: c, release: func() { l.release(ip, ok) }}, nil
	}
}

func (l *connLimitListener) release(ip netip.Addr, counted bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.open--
	if !counted {
		return
	}
	if l.conns[ip] <= 1 {
		delete(l.conns, ip)
		return
	}
	l.conns[ip]--
}

// counts reports the connections counted for ip and in total (tests).
func (l *connLimitListener) counts(ip netip.Addr) (perIP, total int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.conns[ip], l.open
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
