package targets

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
)

// ErrBadSpec is the error for a target that is none of the accepted forms.
var ErrBadSpec = errors.New("not an IP address, CIDR, range, host name or URL")

// SpecKind says which form a target spec has.
type SpecKind uint8

const (
	KindAddr   SpecKind = iota + 1 // one address: 127.0.0.1, ::1, [::1]:11434
	KindPrefix                     // CIDR: 10.0.0.0/8, fd00::/120
	KindRange                      // range: 10.0.0.1-10.0.0.50, 10.0.0.1-50
	KindHost                       // host name: db.internal, db.internal:11434
)

// Spec is one parsed target or exclusion spec. IPv4-mapped IPv6 addresses
// (::ffff:a.b.c.d) are stored as plain IPv4; prefixes are normalised to
// their network address.
type Spec struct {
	Kind   SpecKind
	Addr   netip.Addr   // KindAddr: the address; KindRange: the first address
	Last   netip.Addr   // KindRange: the last address (inclusive)
	Prefix netip.Prefix // KindPrefix, masked
	Host   string       // KindHost: the name as given
	Port   uint16       // 0 when the spec named no port
	// Scheme is "http" or "https" for URL specs and "" otherwise. URL specs
	// always carry a port (the scheme's default when the URL had none).
	Scheme string
}

// String renders s in a form ParseSpec reads back to an equal Spec.
func (s Spec) String() string {
	var host string
	switch s.Kind {
	case KindAddr:
		host = s.Addr.String()
	case KindHost:
		host = s.Host
	case KindPrefix:
		return s.Prefix.String()
	case KindRange:
		return s.Addr.String() + "-" + s.Last.String()
	default:
		return ""
	}
	if s.Scheme != "" {
		return s.Scheme + "://" + net.JoinHostPort(host, strconv.Itoa(int(s.Port))) + "/"
	}
	if s.Port != 0 {
		return net.JoinHostPort(host, strconv.Itoa(int(s.Port)))
	}
	return host
}

// interval returns the address interval of an address, prefix or range spec.
func (s Spec) interval() interval {
	switch s.Kind {
	case KindAddr:
		a := fromAddr(s.Addr)
		return interval{a, a}
	case KindRange:
		return interval{fromAddr(s.Addr), fromAddr(s.Last)}
	case KindPrefix:
		lo := fromAddr(s.Prefix.Addr())
		host := s.Prefix.Addr().BitLen() - s.Prefix.Bits()
		return interval{lo, lo.or(lowOnes(host))}
	}
	return interval{}
}

// ParseSpec parses one target spec: an IPv4 or IPv6 address with an
// optional port (127.0.0.1, 127.0.0.1:8000, ::1, [::1]:11434), a CIDR
// (10.0.0.0/16, fd00::/120; host bits are cleared), a range
// (10.0.0.1-10.0.0.50, the short form 10.0.0.1-50, fd00::1-fd00::ff), a host
// name with an optional port (db.internal, db.internal:11434) or an http or
// https URL (the path is ignored; the port defaults to 80 or 443). An IPv6
// address with a port needs brackets: fd00::1:8000 is an address, not
// fd00::1 on port 8000.
func ParseSpec(s string) (Spec, error) {
	switch {
	case s == "":
		return Spec{}, errors.New("empty target")
	case strings.Contains(s, "://"):
		return parseURL(s)
	case strings.Contains(s, "/"):
		return parsePrefix(s)
	case s[0] == '[':
		return parseBracketed(s)
	}
	if i := strings.IndexByte(s, '-'); i > 0 {
		if first, err := netip.ParseAddr(s[:i]); err == nil {
			return parseRange(first, s[i+1:])
		}
	}
	if strings.Count(s, ":") > 1 {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return Spec{}, ErrBadSpec
		}
		return addrSpec(a, 0)
	}
	host, portStr, hasPort := strings.Cut(s, ":")
	var port uint16
	if hasPort {
		p, err := parsePort(portStr)
		if err != nil {
			return Spec{}, err
		}
		port = p
	}
	if a, err := netip.ParseAddr(host); err == nil {
		return addrSpec(a, port)
	}
	if err := checkHostname(host); err != nil {
		return Spec{}, err
	}
	return Spec{Kind: KindHost, Host: host, Port: port}, nil
}

func addrSpec(a netip.Addr, port uint16) (Spec, error) {
	if a.Zone() != "" {
		return Spec{}, fmt.Errorf("IPv6 zones (%%%s) are not supported", a.Zone())
	}
	return Spec{Kind: KindAddr, Addr: a.Unmap(), Port: port}, nil
}

func parseBracketed(s string) (Spec, error) {
	end := strings.IndexByte(s, ']')
	if end < 0 {
		return Spec{}, ErrBadSpec
	}
	a, err := netip.ParseAddr(s[1:end])
	if err != nil {
		return Spec{}, ErrBadSpec
	}
	rest := s[end+1:]
	if rest == "" {
		return addrSpec(a, 0)
	}
	if rest[0] != ':' {
		return Spec{}, ErrBadSpec
	}
	port, err := parsePort(rest[1:])
	if err != nil {
		return Spec{}, err
	}
	return addrSpec(a, port)
}

func parsePrefix(s string) (Spec, error) {
	addrStr, bitsStr, _ := strings.Cut(s, "/")
	a, err := netip.ParseAddr(addrStr)
	if err != nil {
		return Spec{}, ErrBadSpec
	}
	if a.Zone() != "" {
		return Spec{}, fmt.Errorf("IPv6 zones (%%%s) are not supported", a.Zone())
	}
	if bitsStr == "" || len(bitsStr) > 3 || strings.TrimLeft(bitsStr, "0123456789") != "" {
		return Spec{}, fmt.Errorf("prefix length %q is not a number", bitsStr)
	}
	n, _ := strconv.Atoi(bitsStr)
	if n > a.BitLen() {
		fam := "IPv4"
		if a.Is6() {
			fam = "IPv6"
		}
		return Spec{}, fmt.Errorf("prefix length %d is out of range for %s (0-%d)", n, fam, a.BitLen())
	}
	if a.Is4In6() && n >= 96 {
		a, n = a.Unmap(), n-96
	}
	p, err := a.Prefix(n)
	if err != nil {
		return Spec{}, fmt.Errorf("bad prefix: %w", err)
	}
	return Spec{Kind: KindPrefix, Prefix: p}, nil
}

func parseRange(first netip.Addr, rest string) (Spec, error) {
	if first.Zone() != "" {
		return Spec{}, fmt.Errorf("IPv6 zones (%%%s) are not supported", first.Zone())
	}
	first = first.Unmap()
	var last netip.Addr
	if rest != "" && len(rest) <= 3 && strings.TrimLeft(rest, "0123456789") == "" {
		if !first.Is4() {
			return Spec{}, fmt.Errorf("range end %q: the short form (10.0.0.1-50) is for IPv4 only", rest)
		}
		n, _ := strconv.Atoi(rest)
		if n > 255 {
			return Spec{}, fmt.Errorf("range end %q is not an octet (0-255)", rest)
		}
		b := first.As4()
		b[3] = byte(n)
		last = netip.AddrFrom4(b)
	} else {
		a, err := netip.ParseAddr(rest)
		if err != nil {
			return Spec{}, fmt.Errorf("range end %q is not an IP address", rest)
		}
		if a.Zone() != "" {
			return Spec{}, fmt.Errorf("IPv6 zones (%%%s) are not supported", a.Zone())
		}
		last = a.Unmap()
	}
	if first.Is4() != last.Is4() {
		return Spec{}, errors.New("range mixes IPv4 and IPv6")
	}
	if last.Less(first) {
		return Spec{}, errors.New("range ends before it starts")
	}
	return Spec{Kind: KindRange, Addr: first, Last: last}, nil
}

func parseURL(s string) (Spec, error) {
	u, err := url.Parse(s)
	if err != nil {
		return Spec{}, fmt.Errorf("not a valid URL: %w", errors.Unwrap(err))
	}
	var port uint16
	switch u.Scheme {
	case "http":
		port = 80
	case "https":
		port = 443
	default:
		return Spec{}, fmt.Errorf("URL scheme %q is not supported (use http or https)", u.Scheme)
	}
	if u.User != nil {
		return Spec{}, errors.New("URLs with credentials are not accepted")
	}
	host := u.Hostname()
	if host == "" {
		return Spec{}, errors.New("URL has no host")
	}
	if p := u.Port(); p != "" {
		if port, err = parsePort(p); err != nil {
			return Spec{}, err
		}
	}
	if a, err := netip.ParseAddr(host); err == nil {
		sp, err := addrSpec(a, port)
		sp.Scheme = u.Scheme
		return sp, err
	}
	if strings.HasPrefix(u.Host, "[") {
		return Spec{}, fmt.Errorf("URL host %q is not an IPv6 address", host)
	}
	if err := checkHostname(host); err != nil {
		return Spec{}, err
	}
	return Spec{Kind: KindHost, Host: host, Port: port, Scheme: u.Scheme}, nil
}

// checkHostname accepts DNS names: dot-separated labels of 1-63 letters,
// digits, hyphens and underscores, not starting or ending with a hyphen, at
// most 253 characters, one trailing dot allowed. A name whose last label is
// all digits is refused: that is a mistyped IPv4 address (10.0.0.300), not a
// name.
func checkHostname(h string) error {
	name := strings.TrimSuffix(h, ".")
	if name == "" || len(name) > 253 {
		return ErrBadSpec
	}
	labels := strings.Split(name, ".")
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return ErrBadSpec
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return ErrBadSpec
			}
		}
	}
	if strings.TrimLeft(labels[len(labels)-1], "0123456789") == "" {
		return ErrBadSpec
	}
	return nil
}
