package route

import (
	"fmt"
	"strings"
)

// PathError says why a raw path was refused before any routing. The gateway
// answers it with 400 Bad Request.
type PathError struct {
	Raw    string
	Reason string
}

func (e *PathError) Error() string {
	return fmt.Sprintf("request path %q refused: %s", e.Raw, e.Reason)
}

func pathErr(raw, format string, args ...any) *PathError {
	return &PathError{Raw: raw, Reason: fmt.Sprintf(format, args...)}
}

// isPchar reports whether b may appear in a path segment as itself
// (RFC 3986 pchar without pct-encoded: unreserved, sub-delims, ':' and '@').
func isPchar(b byte) bool {
	switch {
	case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9':
		return true
	}
	switch b {
	case '-', '.', '_', '~', // unreserved
		'!', '$', '&', '\'', '(', ')', '*', '+', ',', ';', '=', // sub-delims
		':', '@':
		return true
	}
	return false
}

func unhex(b byte) (byte, bool) {
	switch {
	case '0' <= b && b <= '9':
		return b - '0', true
	case 'a' <= b && b <= 'f':
		return b - 'a' + 10, true
	case 'A' <= b && b <= 'F':
		return b - 'A' + 10, true
	}
	return 0, false
}

// Normalize turns a raw request path (as sent on the request line, e.g.
// r.URL.EscapedPath() or r.RequestURI) into the single path the gateway
// decides on and forwards. A query string, if present, is cut off and not
// part of the result.
//
// The path is percent-decoded exactly once. Refused outright (a *PathError):
//   - an empty path or one not starting with "/" (absolute or "*" forms)
//   - a fragment ("#")
//   - encoded "/" or "\" (%2f, %5c): upstreams disagree on whether they split
//   - encoded "." (%2e): it can only serve to hide a dot segment
//   - encoded "%" (%25): double encoding, for servers that decode twice
//   - raw backslashes, NUL and other control characters, non-ASCII bytes,
//     malformed escapes, and any other byte that is not a path character
//   - ".." that would climb above the root
//
// Then duplicate slashes collapse, "." segments drop, ".." removes the
// segment before it, and a trailing slash is dropped (gin and Starlette
// redirect /x/ to /x, so both name the same route). Case is kept: upstream
// routers are case-sensitive and Decide denies odd case.
func Normalize(raw string) (string, error) {
	if raw == "" {
		return "", pathErr(raw, "empty path")
	}
	if raw[0] != '/' {
		return "", pathErr(raw, "path must start with /")
	}
	p := raw
	if i := strings.IndexByte(p, '?'); i >= 0 {
		p = p[:i]
	}
	dec := make([]byte, 0, len(p))
	for i := 0; i < len(p); i++ {
		b := p[i]
		switch {
		case b == '/':
			dec = append(dec, b)
		case b == '%':
			if i+2 >= len(p) {
				return "", pathErr(raw, "truncated percent escape")
			}
			hi, ok1 := unhex(p[i+1])
			lo, ok2 := unhex(p[i+2])
			if !ok1 || !ok2 {
				return "", pathErr(raw, "malformed percent escape %q", p[i:i+3])
			}
			v := hi<<4 | lo
			switch {
			case v == '/' || v == '\\':
				return "", pathErr(raw, "encoded slash or backslash (%s)", p[i:i+3])
			case v == '.':
				return "", pathErr(raw, "encoded dot (%s)", p[i:i+3])
			case v == '%':
				return "", pathErr(raw, "double percent-encoding (%s)", p[i:i+3])
			case v < 0x20 || v == 0x7f:
				return "", pathErr(raw, "encoded control character (%s)", p[i:i+3])
			case v >= 0x80:
				return "", pathErr(raw, "encoded non-ASCII byte (%s)", p[i:i+3])
			case !isPchar(v):
				return "", pathErr(raw, "encoded character %q is not allowed in a path", rune(v))
			}
			dec = append(dec, v)
			i += 2
		case b == '\\':
			return "", pathErr(raw, "backslash in path")
		case b == '#':
			return "", pathErr(raw, "fragment in path")
		case b < 0x20 || b == 0x7f:
			return "", pathErr(raw, "control character in path")
		case b >= 0x80:
			return "", pathErr(raw, "non-ASCII byte in path")
		case !isPchar(b):
			return "", pathErr(raw, "character %q is not allowed in a path", rune(b))
		default:
			dec = append(dec, b)
		}
	}

	segs := make([]string, 0, 8)
	for _, s := range strings.Split(string(dec), "/") {
		switch s {
		case "", ".":
		case "..":
			if len(segs) == 0 {
				return "", pathErr(raw, "path climbs above the root")
			}
			segs = segs[:len(segs)-1]
		default:
			segs = append(segs, s)
		}
	}
	return "/" + strings.Join(segs, "/"), nil
}
