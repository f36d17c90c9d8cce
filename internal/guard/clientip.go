package guard

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// Who the client is when the guard sits behind reverse proxies of its own
// (trusted_proxies), and what the upstream is told about it.

// maxForwardedHops bounds the X-Forwarded-For entries read.
const maxForwardedHops = 32

// trusts reports whether a is one of the trusted proxies.
func (rc *runtimeConfig) trusts(a netip.Addr) bool {
	for _, p := range rc.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// clientIP is the TCP peer or, when the peer is a trusted proxy, the last
// address in X-Forwarded-For that is not a trusted proxy itself (all of
// them trusted: the first). An entry that is not an address ends the walk:
// the client is then the nearest trusted hop after it. ok is false only
// when the peer address itself cannot be read.
func (rc *runtimeConfig) clientIP(r *http.Request) (ip netip.Addr, ok bool) {
	peer, ok := clientAddr(r.RemoteAddr)
	if !ok || len(rc.trusted) == 0 || !rc.trusts(peer) {
		return peer, ok
	}
	hops := forwardedFor(r.Header)
	ip = peer
	for i := len(hops) - 1; i >= 0 && i >= len(hops)-maxForwardedHops; i-- {
		a, ok := clientAddr(hops[i])
		if !ok {
			return ip, true
		}
		ip = a
		if !rc.trusts(a) {
			return ip, true
		}
	}
	return ip, true
}

// forwardedFor splits every X-Forwarded-For header into its entries.
func forwardedFor(h http.Header) []string {
	var out []string
	for _, v := range h.Values("X-Forwarded-For") {
		for _, e := range strings.Split(v, ",") {
			if e = strings.TrimSpace(e); e != "" {
				out = append(out, e)
			}
		}
	}
	return out
}

// upstreamForwardedFor is the X-Forwarded-For the upstream gets: the
// chain a trusted proxy sent plus the peer, or the peer alone (a client's
// own X-Forwarded-For is not passed on).
func (rc *runtimeConfig) upstreamForwardedFor(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	peer, ok := clientAddr(r.RemoteAddr)
	if !ok || len(rc.trusted) == 0 || !rc.trusts(peer) {
		return host
	}
	hops := forwardedFor(r.Header)
	if len(hops) > maxForwardedHops {
		hops = hops[len(hops)-maxForwardedHops:]
	}
	return strings.Join(append(hops, host), ", ")
}
