package route

import (
	"errors"
	"fmt"
	"path"
	"strings"
)

// Ollama's default registry host and namespace; a name that spells them out
// names the same model as the short form ("registry.ollama.ai/library/llama3"
// is "llama3"). Source: ollama/ollama types/model/name.go defaults.
const (
	defaultHost      = "registry.ollama.ai/"
	defaultNamespace = "library/"
	defaultTag       = "latest"
)

// NormalizeModel returns the canonical form of a model name as the gateway
// compares it: lower case, default host and namespace dropped, an implicit
// ":latest" tag made explicit, and cloud references in Ollama's legacy
// spelling ("gpt-oss:20b:cloud" becomes "gpt-oss:20b-cloud", "glm-4.6:cloud"
// stays). cloud reports whether Ollama would send the request to ollama.com:
// the part after the last ":" is "cloud" or ends in "-cloud" (any case),
// following ollama/ollama internal/modelref/modelref.go ParseRef. An explicit
// ":local" suffix is dropped. References by digest ("name@sha256:...") are
// refused: a digest can name any blob, whatever the name before it says.
func NormalizeModel(model string) (name string, cloud bool, err error) {
	m := strings.TrimSpace(model)
	if m == "" {
		return "", false, errors.New("model is required")
	}
	for i := 0; i < len(m); i++ {
		b := m[i]
		if b <= ' ' || b == 0x7f {
			return "", false, fmt.Errorf("model name %q contains spaces or control characters", model)
		}
		if b == '@' {
			return "", false, fmt.Errorf("model %q is referenced by digest; name it by name and tag instead", model)
		}
	}
	m = strings.ToLower(m)

	base, src, explicit := sourceSuffix(m)
	if explicit {
		if _, _, nested := sourceSuffix(base); nested {
			return "", false, fmt.Errorf("model %q names both :local and :cloud", model)
		}
	}
	cloud = src == "cloud"

	base = strings.TrimPrefix(base, defaultHost)
	base = strings.TrimPrefix(base, defaultNamespace)
	if base == "" || strings.HasPrefix(base, "/") || strings.HasSuffix(base, "/") || strings.Contains(base, "//") {
		return "", false, fmt.Errorf("model name %q is not valid", model)
	}
	hasTag := strings.LastIndex(base, ":") > strings.LastIndex(base, "/")
	if hasTag && strings.HasSuffix(base, ":") {
		return "", false, fmt.Errorf("model name %q has an empty tag", model)
	}
	switch {
	case cloud && hasTag:
		return base + "-cloud", true, nil
	case cloud:
		return base + ":cloud", true, nil
	case hasTag:
		return base, false, nil
	}
	return base + ":" + defaultTag, false, nil
}

// sourceSuffix splits an explicit source suffix off a lower-cased name:
// ":cloud", ":local" or a tag ending in "-cloud" (whose "-cloud" is removed,
// keeping the tag). src is "cloud", "local" or "".
func sourceSuffix(m string) (base, src string, explicit bool) {
	idx := strings.LastIndex(m, ":")
	if idx < 0 {
		return m, "", false
	}
	suffix := m[idx+1:]
	switch suffix {
	case "cloud":
		return m[:idx], "cloud", true
	case "local":
		return m[:idx], "local", true
	}
	if !strings.Contains(suffix, "/") && strings.HasSuffix(suffix, "-cloud") {
		return m[:idx+1] + strings.TrimSuffix(suffix, "-cloud"), "cloud", true
	}
	return m, "", false
}

// normalizeGlob brings a key's model glob into the same canonical form as
// NormalizeModel: lower case, default host and namespace dropped, and
// ":latest" added to a plain name without tag or wildcard.
func normalizeGlob(g string) string {
	g = strings.ToLower(strings.TrimSpace(g))
	g = strings.TrimPrefix(g, defaultHost)
	g = strings.TrimPrefix(g, defaultNamespace)
	last := g[strings.LastIndex(g, "/")+1:]
	if g != "" && !strings.Contains(last, ":") && !strings.ContainsAny(last, "*?[\\") {
		g += ":" + defaultTag
	}
	return g
}

// globMatch is path.Match in which "*" also crosses "/": both sides have
// "/" swapped for NUL, which model names never contain.
func globMatch(glob, name string) (bool, error) {
	return path.Match(strings.ReplaceAll(glob, "/", "\x00"), strings.ReplaceAll(name, "/", "\x00"))
}

// ValidateGlobs checks a key's model globs before they are stored.
func ValidateGlobs(globs []string) error {
	for _, g := range globs {
		n := normalizeGlob(g)
		if n == "" {
			return errors.New("empty model pattern")
		}
		if _, err := globMatch(n, ""); err != nil {
			return fmt.Errorf("model pattern %q is not valid: %w", g, err)
		}
	}
	return nil
}

// ModelAllowed decides whether a key with the given model globs may use
// model. Globs follow path.Match syntax ("*", "?", "[...]", "\\" escapes)
// on canonical names (see NormalizeModel), except that "*" matches any run
// of characters including "/" and ":": "llama3*" matches "llama3.2:3b", and
// "*" matches every model. A glob without tag or wildcard names one model
// ("llama3" is "llama3:latest"). A key with no globs may use no model.
// Ollama cloud models are refused unless allowCloud is set, whatever the
// globs say. The string explains the answer.
func ModelAllowed(model string, globs []string, allowCloud bool) (bool, string) {
	name, cloud, err := NormalizeModel(model)
	if err != nil {
		return false, err.Error()
	}
	if cloud && !allowCloud {
		return false, fmt.Sprintf("model %q runs on ollama.com with the server owner's account; this key may not use cloud models", model)
	}
	if len(globs) == 0 {
		return false, "this key is not allowed any model"
	}
	for _, g := range globs {
		n := normalizeGlob(g)
		if n == "" {
			continue
		}
		ok, err := globMatch(n, name)
		if err != nil {
			continue // a broken pattern grants nothing; ValidateGlobs reports it
		}
		if ok {
			return true, fmt.Sprintf("model %s allowed by pattern %q", name, g)
		}
	}
	return false, fmt.Sprintf("model %s is not among this key's models (%s)", name, strings.Join(globs, ", "))
}
