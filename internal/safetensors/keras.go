package safetensors

import (
	"bytes"
	"fmt"
	"slices"
	"strings"

	"github.com/llmfence/llmfence/internal/verdict"
)

// Bounds for Keras configs.
const (
	maxKerasConfig = 64 << 20
	maxKerasDepth  = 256
	maxKerasNodes  = 1_000_000
)

// ScanKerasConfig checks the config.json of a Keras v3 (.keras) archive (or
// the model_config JSON of a legacy model) for Lambda layers with code and
// objects loaded from modules outside Keras. The archive itself is opened by
// the caller (internal/archive). The error is for the embedded checks
// failing to load; a bad config is findings.
func ScanKerasConfig(cfg []byte) ([]verdict.Finding, error) {
	d, err := loaded()
	if err != nil {
		return nil, err
	}
	return scanKerasConfig(d, cfg), nil
}

func scanKerasConfig(d *data, cfg []byte) []verdict.Finding {
	fs := &findings{cat: d.keras}
	if len(cfg) > maxKerasConfig {
		fs.add("KERAS-005", fmt.Sprintf("config of %d bytes exceeds the %d-byte limit", len(cfg), maxKerasConfig), -1)
		return fs.list
	}
	// Keras reads config.json with json.loads on the member's bytes.
	root, err := parsePythonJSON(cfg, maxKerasDepth)
	if err != nil {
		fs.add("KERAS-005", err.Error(), -1)
		return fs.list
	}
	if root.kind != '{' {
		fs.add("KERAS-005", "config is not a JSON object", -1)
		return fs.list
	}
	k := &kerasScan{fs: fs, rules: d.rules}
	k.walk(root, "", 0)
	return fs.list
}

type kerasScan struct {
	fs    *findings
	rules *ruleSet
	nodes int
}

func (k *kerasScan) walk(v *jvalue, where string, depth int) {
	k.nodes++
	if v == nil || k.nodes > maxKerasNodes || depth > maxKerasDepth {
		return
	}
	switch v.kind {
	case '[':
		for _, it := range v.items {
			k.walk(it, where, depth+1)
		}
	case '{':
		here := where
		if name, ok := v.get("config").get("name").asString(); ok {
			here = name
		} else if name, ok := v.get("name").asString(); ok {
			here = name
		}
		if len(v.dups) > 0 {
			k.fs.add("KERAS-006", fmt.Sprintf("%s: %q appears more than once; json.loads keeps the last", orModel(here), v.dups[0]), -1)
		}
		k.object(v, here)
		// What json.loads builds: the last of repeated keys.
		_, vals := v.effective()
		for _, c := range vals {
			k.walk(c, here, depth+1)
		}
	}
}

// object checks one serialized Keras object.
func (k *kerasScan) object(v *jvalue, where string) {
	class, _ := v.get("class_name").asString()
	module, hasModule := v.get("module").asString()
	registered, _ := v.get("registered_name").asString()
	loc := where
	if loc == "" {
		loc = "model"
	}
	if class == "__lambda__" {
		k.fs.add("KERAS-001", fmt.Sprintf("%s: serialized lambda (code %s)", loc, codeHint(v.get("config").get("code"))), -1)
	}
	if class == "Lambda" || strings.HasSuffix(class, ".Lambda") {
		fn := v.get("config").get("function")
		ftype, _ := v.get("config").get("function_type").asString()
		switch {
		case fn != nil && fn.kind == '{' && hasClass(fn, "__lambda__"):
			// reported when the walk reaches the nested object
		case fn != nil && fn.kind == '[' || ftype == "lambda":
			// Keras 2 form: [base64 marshal bytecode, defaults, closure]
			k.fs.add("KERAS-001", fmt.Sprintf("%s: Lambda layer with marshalled bytecode", loc), -1)
		default:
			k.fs.add("KERAS-002", fmt.Sprintf("%s: Lambda layer calls %s", loc, describeFn(fn)), -1)
		}
	}
	if !hasModule {
		return
	}
	name := class
	if class == "function" {
		if s, ok := v.get("config").asString(); ok {
			name = s
		}
	}
	full := module + "." + name
	switch {
	case slices.Contains(k.rules.KerasDangerousCallables, full) || k.dangerousModule(module):
		k.fs.add("KERAS-004", fmt.Sprintf("%s: %s", loc, clip(full)), -1)
	case !k.kerasModule(module):
		detail := fmt.Sprintf("%s: %s", loc, clip(full))
		if registered != "" {
			detail += fmt.Sprintf(" (registered as %q)", clip(registered))
		}
		k.fs.add("KERAS-003", detail, -1)
	}
}

func hasClass(v *jvalue, class string) bool {
	c, _ := v.get("class_name").asString()
	return c == class
}

func codeHint(v *jvalue) string {
	s, ok := v.asString()
	if !ok {
		return "missing"
	}
	return fmt.Sprintf("%d base64 characters", len(s))
}

func describeFn(fn *jvalue) string {
	if s, ok := fn.asString(); ok {
		return fmt.Sprintf("%q", clip(s))
	}
	if m, ok := fn.get("module").asString(); ok {
		c, _ := fn.get("config").asString()
		return clip(m + "." + c)
	}
	return "an unnamed function"
}

func (k *kerasScan) kerasModule(m string) bool {
	for _, p := range k.rules.KerasModules {
		if m == p || strings.HasPrefix(m, p+".") {
			return true
		}
	}
	return false
}

func (k *kerasScan) dangerousModule(m string) bool {
	root, _, _ := strings.Cut(m, ".")
	return slices.Contains(k.rules.KerasDangerousModules, root)
}

func orModel(where string) string {
	if where == "" {
		return "model"
	}
	return where
}

// LooksKerasConfig reports whether cfg, read as Keras reads JSON, is a
// serialized Keras object: a JSON object with a string class_name (a
// .keras config.json, or the JSON model_from_json loads).
func LooksKerasConfig(cfg []byte) bool {
	if len(cfg) > maxKerasConfig || !bytes.Contains(cfg, []byte("class")) && !bytes.Contains(cfg, []byte{'c', 0}) {
		return false
	}
	root, err := parsePythonJSON(cfg, maxKerasDepth)
	if err != nil {
		return false
	}
	_, ok := root.get("class_name").asString()
	return ok
}
