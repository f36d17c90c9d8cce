// Package credential removes secrets from command lines, URLs and text
// before they are stored or shown: URL userinfo (postgres://user:PASSWORD@…),
// secret-bearing query parameters (?token=…, &password=…), the values of
// secret-bearing flags (--token X, --password=X, --api-key X) and
// Authorization-style "Bearer …" tokens.
//
// Redaction is idempotent (redacting twice equals redacting once) and keeps
// everything that is not a secret, so a stored command line still says what
// was run. The replacement is the fixed string Mask.
package credential

import (
	"net/url"
	"regexp"
	"strings"
)

// Mask replaces every secret.
const Mask = "xxxxx"

// secretWords name flags, query parameters and key=value settings whose
// value is a secret. Matching is by substring of the lower-cased name, so
// "--db-password", "api_key" and "X-Api-Token" all count.
var secretWords = []string{"password", "passwd", "pwd", "secret", "token", "apikey", "api-key", "api_key", "auth", "credential", "private-key", "private_key", "session", "cookie"}

func isSecretName(name string) bool {
	n := strings.ToLower(strings.TrimLeft(name, "-"))
	if n == "" {
		return false
	}
	for _, w := range secretWords {
		if strings.Contains(n, w) {
			return true
		}
	}
	return false
}

// Args returns a copy of a command line with secrets masked: the values of
// secret-bearing flags (in "--flag value" and "--flag=value" form), URL
// userinfo and secret query parameters anywhere in an argument.
func Args(args []string) []string {
	if args == nil {
		return nil
	}
	out := make([]string, len(args))
	maskNext := false
	for i, a := range args {
		switch {
		case maskNext:
			maskNext = false
			if a != Mask {
				a = Mask
			}
		case strings.HasPrefix(a, "-") && !strings.HasPrefix(a, "--") && len(a) > 1 && len(a) <= 3:
			// short flags carry no secrets in llmfence
		case strings.HasPrefix(a, "--"):
			name, value, hasValue := strings.Cut(a, "=")
			if isSecretName(name) {
				if hasValue {
					a = name + "=" + Mask
				} else {
					maskNext = true
				}
			} else if hasValue {
				a = name + "=" + Text(value)
			}
		default:
			a = Text(a)
		}
		out[i] = a
	}
	return out
}

// urlRe finds URL-like substrings: scheme://rest-up-to-whitespace.
var urlRe = regexp.MustCompile(`[A-Za-z][A-Za-z0-9+.-]*://[^\s"'<>]+`)

// bearerRe finds "Bearer <token>" and "Basic <token>".
var bearerRe = regexp.MustCompile(`(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}`)

// kvRe finds key=value settings whose key names a secret (libpq-style
// "password=…", environment assignments, query fragments outside URLs).
var kvRe = regexp.MustCompile(`(?i)\b([A-Za-z0-9_.-]*(?:password|passwd|pwd|secret|token|apikey|api_key|api-key|credential)[A-Za-z0-9_.-]*)=("[^"]*"|'[^']*'|[^\s&;]+)`)

// Text masks secrets in free text: URLs (userinfo and secret query
// parameters), bearer/basic tokens and key=value secrets.
func Text(s string) string {
	if s == "" {
		return s
	}
	s = urlRe.ReplaceAllStringFunc(s, URL)
	s = bearerRe.ReplaceAllStringFunc(s, func(m string) string {
		scheme, _, _ := strings.Cut(m, " ")
		if i := strings.IndexAny(m, " \t"); i > 0 {
			scheme = m[:i]
		}
		return scheme + " " + Mask
	})
	s = kvRe.ReplaceAllStringFunc(s, func(m string) string {
		k, v, _ := strings.Cut(m, "=")
		if v == Mask {
			return m
		}
		return k + "=" + Mask
	})
	return s
}

// URL masks the password of a URL's userinfo (the user name stays: it says
// who connected, which is not a secret) and the values of secret query
// parameters. A string that does not parse as a URL is masked textually:
// anything between "://" and the last "@" before the path is replaced.
func URL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" {
		return maskUserinfoText(raw)
	}
	changed := false
	if u.User != nil {
		if pw, has := u.User.Password(); has {
			if pw != Mask {
				u.User = url.UserPassword(u.User.Username(), Mask)
				changed = true
			}
		} else if isTokenLike(u.User.Username()) {
			u.User = url.User(Mask)
			changed = true
		}
	}
	if u.RawQuery != "" {
		q := u.Query()
		for k, vs := range q {
			if !isSecretName(k) {
				continue
			}
			for i := range vs {
				if vs[i] != Mask {
					vs[i] = Mask
					changed = true
				}
			}
		}
		if changed {
			u.RawQuery = q.Encode()
		}
	}
	if !changed {
		return raw
	}
	out := u.String()
	// url.String lower-cases the scheme; keep the text as it was written
	// (a second pass must find nothing to change).
	if len(out) >= len(u.Scheme) && len(raw) >= len(u.Scheme) && strings.EqualFold(raw[:len(u.Scheme)], u.Scheme) {
		out = raw[:len(u.Scheme)] + out[len(u.Scheme):]
	}
	// url.String escapes the mask's neighbours consistently; keep the
	// mask readable.
	return strings.ReplaceAll(out, url.QueryEscape(Mask), Mask)
}

// isTokenLike says whether a bare userinfo name looks like a credential
// (https://TOKEN@host/): long and without separators people use in names.
func isTokenLike(u string) bool {
	if len(u) < 20 {
		return false
	}
	return !strings.ContainsAny(u, " .@")
}

func maskUserinfoText(raw string) string {
	i := strings.Index(raw, "://")
	if i < 0 {
		return raw
	}
	rest := raw[i+3:]
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	at := strings.LastIndex(rest[:end], "@")
	if at < 0 {
		return raw
	}
	user, _, hasPw := strings.Cut(rest[:at], ":")
	if !hasPw {
		if isTokenLike(user) {
			return raw[:i+3] + Mask + rest[at:]
		}
		return raw
	}
	return raw[:i+3] + user + ":" + Mask + rest[at:]
}
