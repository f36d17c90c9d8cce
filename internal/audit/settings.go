package audit

import (
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/llmfence/llmfence/internal/service"
)

// Sources of a setting's value.
const (
	fromEnvironment = "environment"
	fromCommandLine = "command line"
)

// maxSettingValue bounds a setting value kept in the report.
const maxSettingValue = 512

// value is one setting as read, before redaction.
type value struct {
	setting *Setting // nil for variables matched by prefix only
	name    string
	raw     string
	source  string          // where it was read, in English
	src     service.Message // the message source was written from
}

// facts is what a runtime's settings mean for the audit.
type facts struct {
	bindHost  string // "" = every interface
	bindPort  int
	bindFrom  service.Message // "OLLAMA_HOST=0.0.0.0 from the environment"; no ID for the default
	bindVal   *value          // the setting that decided the host, nil for the default
	listenAll bool

	public []string // settings that publish it beyond this machine

	originsAny     bool
	originsDefault bool // the runtime allows any origin unless told otherwise
	originsFrom    service.Message

	authSet  bool
	authFrom service.Message
	authOff  bool // the runtime's own login switched off

	cloudOff bool

	models []modelDir
}

// modelDir is a model store a setting names.
type modelDir struct {
	path, store string
	from        service.Message
}

// secretName reports whether an environment variable's name says its value
// is a credential.
// The words of a name are split at "-" and "_": HF_TOKEN and --api-key
// are secret, --tokenizer is not.
func secretName(name string) bool {
	for _, w := range strings.FieldsFunc(strings.ToUpper(name), func(r rune) bool { return r == '-' || r == '_' }) {
		switch w {
		case "KEY", "KEYS", "APIKEY", "TOKEN", "TOKENS", "SECRET", "PASSWORD", "PASSWD", "CREDENTIAL", "CREDENTIALS":
			return true
		}
	}
	return false
}

// shown is the value as the report shows it: secrets replaced, URL
// credentials removed, long values cut.
func (v value) shown() string {
	if (v.setting != nil && v.setting.Secret) || secretName(v.name) {
		if v.raw == "" {
			return "(empty)"
		}
		return "(set; value not shown)"
	}
	s := v.raw
	if strings.Contains(s, "://") {
		if u, err := url.Parse(s); err == nil && u.User != nil {
			u.User = url.User("REDACTED")
			s = u.String()
		}
	}
	if len(s) > maxSettingValue {
		s = s[:maxSettingValue] + "…"
	}
	return s
}

// readEnvSettings picks the spec's environment settings out of env.
func readEnvSettings(spec *RuntimeSpec, env map[string]string, source string) []value {
	var out []value
	seen := map[string]bool{}
	for i := range spec.Settings {
		s := &spec.Settings[i]
		if s.From != "env" {
			continue
		}
		if v, ok := env[s.Name]; ok {
			out = append(out, value{setting: s, name: s.Name, raw: v, source: source, src: sourceMsg(source)})
			seen[s.Name] = true
		}
	}
	var extra []string
	for k := range env {
		for _, p := range spec.EnvPrefixes {
			if strings.HasPrefix(k, p) && !seen[k] {
				extra = append(extra, k)
				seen[k] = true
			}
		}
	}
	sort.Strings(extra)
	for _, k := range extra {
		out = append(out, value{name: k, raw: env[k], source: source, src: sourceMsg(source)})
	}
	return out
}

// readFlagSettings picks the spec's command-line settings out of argv.
func readFlagSettings(spec *RuntimeSpec, argv []string) []value {
	var out []value
	for i := range spec.Settings {
		s := &spec.Settings[i]
		if s.From != "flag" {
			continue
		}
		if v, ok := flagValue(argv, s); ok {
			out = append(out, value{setting: s, name: s.Name, raw: v, source: fromCommandLine, src: sourceMsg(fromCommandLine)})
		}
	}
	return out
}

// flagValue finds a flag in argv (--name VALUE, --name=VALUE, or a bare
// bool flag); the last occurrence wins, as with most flag parsers.
func flagValue(argv []string, s *Setting) (string, bool) {
	names := append([]string{s.Name}, s.Aliases...)
	val, found := "", false
	for i := 1; i < len(argv); i++ {
		a := argv[i]
		if a == "--" {
			break
		}
		for _, n := range names {
			switch {
			case a == n && s.Bool:
				val, found = "true", true
			case a == n && i+1 < len(argv):
				val, found = argv[i+1], true
			case strings.HasPrefix(a, n+"="):
				val, found = a[len(n)+1:], true
			}
		}
	}
	return val, found
}

// derive works out what the settings mean, starting from the runtime's
// defaults; command-line values override environment ones.
func derive(spec *RuntimeSpec, vals []value, cwd string) (facts, error) {
	var f facts
	host, port, err := parseBind(spec.DefaultBind, "hostport")
	if err != nil {
		return f, err
	}
	f.bindHost, f.bindPort = host, port
	f.originsAny = spec.OriginsAnyByDefault
	f.originsDefault = f.originsAny
	// Environment first, then the command line, which overrides it.
	ordered := make([]value, 0, len(vals))
	for _, flags := range []bool{false, true} {
		for _, v := range vals {
			if (v.setting != nil && v.setting.From == "flag") == flags {
				ordered = append(ordered, v)
			}
		}
	}
	hostSet := false
	for _, v := range ordered {
		if v.setting == nil {
			continue
		}
		what := msg("audit.what.value", args([]string{"name", v.name, "value", v.shown()}, nest("source", sourcePhrase(v)))...)
		if v.setting.Bool {
			what = msg("audit.what.flag", args([]string{"name", v.name}, nest("source", sourcePhrase(v)))...)
		}
		switch v.setting.Role {
		case roleBind:
			h, p, err := parseBind(v.raw, v.setting.Syntax)
			if err != nil {
				continue
			}
			f.bindHost, f.bindPort, f.bindFrom, f.bindVal, hostSet = h, p, what, &v, true
		case roleBindHost:
			f.bindHost, f.bindFrom, f.bindVal, hostSet = normHost(strings.TrimSpace(v.raw)), what, &v, true
		case rolePort:
			if p, err := strconv.Atoi(strings.TrimSpace(v.raw)); err == nil && p > 0 && p < 65536 {
				f.bindPort = p
			}
		case roleListenAll:
			if truthy(v.raw) {
				f.listenAll = true
				if !hostSet {
					f.bindHost, f.bindFrom, f.bindVal = "", what, &v
				}
			}
		case rolePublic:
			if truthy(v.raw) {
				f.public = append(f.public, v.name)
			}
		case roleOrigins:
			f.originsAny, f.originsFrom, f.originsDefault = originsAllowAny(v.raw, v.setting.Syntax), what, false
		case roleAuth:
			if strings.TrimSpace(v.raw) != "" {
				f.authSet, f.authFrom = true, what
			}
		case roleAuthOff:
			if b, err := strconv.ParseBool(strings.TrimSpace(v.raw)); err == nil && !b {
				f.authOff = true
			}
		case roleCloudOff:
			f.cloudOff = truthy(v.raw)
		case roleModels:
			p := strings.TrimSpace(strings.Trim(strings.TrimSpace(v.raw), `"'`))
			if p == "" {
				continue
			}
			if v.setting.Suffix != "" {
				p = filepath.Join(p, v.setting.Suffix)
			}
			if !filepath.IsAbs(p) && cwd != "" {
				p = filepath.Join(cwd, p)
			}
			f.models = append(f.models, modelDir{path: filepath.Clean(p), store: v.setting.Store, from: what})
		}
	}
	if spec.AuthByDefault && !f.authOff && !f.authSet {
		f.authSet, f.authFrom = true, msg("audit.what.own_login", "runtime", spec.Name)
	}
	return f, nil
}

// truthy reads a boolean setting the way Go runtimes do: a parsable value
// counts as itself, any other non-empty value as true.
func truthy(s string) bool {
	s = strings.TrimSpace(strings.Trim(strings.TrimSpace(s), `"'`))
	if s == "" {
		return false
	}
	if b, err := strconv.ParseBool(s); err == nil {
		return b
	}
	return true
}

// originsAllowAny reports whether an origins setting admits every origin.
func originsAllowAny(raw, syntax string) bool {
	raw = strings.TrimSpace(raw)
	var list []string
	if syntax == "json" {
		if err := json.Unmarshal([]byte(raw), &list); err != nil {
			list = strings.Split(strings.Trim(raw, "[]"), ",")
		}
	} else {
		list = strings.Split(strings.Trim(raw, `"'`), ",")
	}
	for _, o := range list {
		if strings.Trim(strings.TrimSpace(o), `"'`) == "*" {
			return true
		}
	}
	return false
}

// parseBind reads a listen address. Syntax "ollama" follows OLLAMA_HOST:
// [scheme://]host[:port][/path], the port defaulting to 11434 (80 or 443
// with an explicit http or https scheme) and a missing host to 127.0.0.1;
// quotes and spaces around it are ignored. Syntax "hostport" is
// [host]:port, an empty host meaning every interface. The host "" is
// returned for every interface.
func parseBind(s, syntax string) (host string, port int, err error) {
	s = strings.TrimSpace(strings.Trim(strings.TrimSpace(s), `"'`))
	switch syntax {
	case "ollama":
		defPort := "11434"
		scheme, hostport, ok := strings.Cut(s, "://")
		switch {
		case !ok:
			hostport = s
		case scheme == "http":
			defPort = "80"
		case scheme == "https":
			defPort = "443"
		}
		hostport, _, _ = strings.Cut(hostport, "/")
		h, p, err := net.SplitHostPort(hostport)
		if err != nil {
			h, p = "127.0.0.1", defPort
			if ip := net.ParseIP(strings.Trim(hostport, "[]")); ip != nil {
				h = ip.String()
			} else if hostport != "" {
				h = hostport
			}
		}
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 || n > 65535 {
			n, _ = strconv.Atoi(defPort)
		}
		return normHost(h), n, nil
	case "hostport":
		h, p, err := net.SplitHostPort(s)
		if err != nil {
			return "", 0, fmt.Errorf("listen address %q: %w", s, err)
		}
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 || n > 65535 {
			return "", 0, fmt.Errorf("listen address %q: bad port", s)
		}
		return normHost(h), n, nil
	}
	return "", 0, fmt.Errorf("unknown listen-address syntax %q", syntax)
}

// normHost maps every spelling of "all interfaces" to "".
func normHost(h string) string {
	h = strings.Trim(h, "[]")
	if a, err := netip.ParseAddr(h); err == nil && a.IsUnspecified() {
		return ""
	}
	if h == "*" {
		return ""
	}
	return h
}

// Scopes of a listen address.
const (
	scopeAll      = "all-interfaces"
	scopeNetwork  = "network-address"
	scopeLoopback = "loopback"
)

// hostScope classifies a configured listen host ("" = every interface);
// host names other than localhost count as network addresses.
func hostScope(h string) string {
	if h == "" {
		return scopeAll
	}
	if strings.EqualFold(h, "localhost") {
		return scopeLoopback
	}
	if a, err := netip.ParseAddr(strings.Trim(h, "[]")); err == nil {
		return addrScope(a)
	}
	return scopeNetwork
}

// addrScope classifies a socket's local address.
func addrScope(a netip.Addr) string {
	a = a.Unmap()
	switch {
	case a.IsUnspecified():
		return scopeAll
	case a.IsLoopback():
		return scopeLoopback
	}
	return scopeNetwork
}

// sourceMsg is the message of a setting's source, for the sources the
// readers name ("" for one said later).
func sourceMsg(src string) service.Message {
	switch src {
	case fromEnvironment:
		return msg("audit.source.environment")
	case fromCommandLine:
		return msg("audit.source.command_line")
	}
	return service.Message{}
}

// sourcePhrase words a setting's source for a sentence ("the
// environment", "EnvironmentFile /etc/default/ollama").
func sourcePhrase(v value) service.Message {
	switch {
	case v.source == fromEnvironment:
		return msg("audit.from.environment")
	case v.source == fromCommandLine:
		return msg("audit.from.command_line")
	case v.src.ID != "":
		return v.src
	}
	return msg("audit.literal", "text", v.source)
}
