package probe

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"regexp"
	"strconv"
	"strings"
)

// ErrNotOneTarget: the target names more than one host (a CIDR, a range, a
// list or a pattern). probe tests one model server you run; it is never a
// scanner.
var ErrNotOneTarget = errors.New("probe takes exactly one named target (a URL or host:port), not a network, range or list")

// DefaultPort is used when a target gives no port: Ollama's.
const DefaultPort = "11434"

var (
	cidrLike  = regexp.MustCompile(`^\[?[0-9A-Fa-f:.]+\]?/\d{1,3}$`)
	pathCIDR  = regexp.MustCompile(`^/\d{1,3}/?$`)
	wildcards = "*?{}"
	hostName  = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9_-]{0,62}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9_-]{0,62}[A-Za-z0-9])?)*\.?$`)
)

// ParseTarget checks that s names one server and returns its base URL
// (scheme://host:port[/path], no query or fragment). A target without a
// scheme is http; without a port, 11434.
func ParseTarget(s string) (string, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return "", fmt.Errorf("no target: %w", ErrNotOneTarget)
	case s == "-" || strings.HasPrefix(s, "@") || strings.HasPrefix(s, "-"):
		return "", fmt.Errorf("target %q: probe reads no target lists: %w", s, ErrNotOneTarget)
	case strings.ContainsAny(s, " \t\n,;"):
		return "", fmt.Errorf("target %q looks like a list: %w", s, ErrNotOneTarget)
	case strings.ContainsAny(s, wildcards):
		return "", fmt.Errorf("target %q contains a pattern: %w", s, ErrNotOneTarget)
	case cidrLike.MatchString(s):
		return "", fmt.Errorf("target %q is a network: %w", s, ErrNotOneTarget)
	}
	raw := s
	if !strings.Contains(s, "://") {
		raw = "http://" + s
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("target %q is not a URL or host:port: %w", s, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", fmt.Errorf("target %q: scheme %q, want http or https", s, u.Scheme)
	}
	if u.User != nil {
		return "", fmt.Errorf("target %q: put credentials in --api-key, not in the URL", s)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("target %q: a base URL has no query or fragment", s)
	}
	host := u.Hostname()
	if host == "" {
		return "", fmt.Errorf("target %q has no host: %w", s, ErrNotOneTarget)
	}
	if addr, err := netip.ParseAddr(host); err == nil {
		if addr.IsUnspecified() || addr.IsMulticast() || addr == netip.MustParseAddr("255.255.255.255") {
			return "", fmt.Errorf("target %q is not one host: %w", s, ErrNotOneTarget)
		}
		if pathCIDR.MatchString(u.Path) {
			return "", fmt.Errorf("target %q looks like a network (%s%s): %w", s, host, u.Path, ErrNotOneTarget)
		}
	} else if !hostName.MatchString(host) {
		return "", fmt.Errorf("target %q: %q is not a host name", s, host)
	} else if before, _, ok := strings.Cut(host, "-"); ok {
		if _, err := netip.ParseAddr(before); err == nil {
			return "", fmt.Errorf("target %q is an address range: %w", s, ErrNotOneTarget)
		}
	}
	port := u.Port()
	if port == "" {
		port = DefaultPort
		if strings.Contains(s, "://") && u.Scheme == "https" {
			port = "443"
		} else if strings.Contains(s, "://") && u.Scheme == "http" && !strings.Contains(u.Host, ":") && !looksLikeAddr(host) {
			port = "80"
		}
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "", fmt.Errorf("target %q: port %q is not 1-65535", s, port)
	}
	u.Host = net.JoinHostPort(host, port)
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	return u.String(), nil
}

// looksLikeAddr reports whether host is an IP literal or localhost, where
// a bare target most likely means the Ollama default port.
func looksLikeAddr(host string) bool {
	_, err := netip.ParseAddr(host)
	return err == nil || host == "localhost"
}

// TargetHostPort splits a base URL from ParseTarget into host and port,
// for the store's link to the host that scan knows.
func TargetHostPort(base string) (string, int) {
	u, err := url.Parse(base)
	if err != nil {
		return "", 0
	}
	var port int
	fmt.Sscanf(u.Port(), "%d", &port)
	return u.Hostname(), port
}
