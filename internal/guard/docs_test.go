package guard

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/llmfence/llmfence/internal/guard/abuse"
)

// docs/guard.md shows every configuration field in one YAML block: it must
// parse with unknown fields refused, validate, and name every field of
// Config, so the documentation cannot drift from the code.
func TestGuardDocConfigExample(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "docs", "guard.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	start := strings.Index(doc, "```yaml\n")
	end := strings.Index(doc[start+8:], "```")
	if start < 0 || end < 0 {
		t.Fatal("docs/guard.md has no ```yaml block")
	}
	block := doc[start+8 : start+8+end]
	cfg, err := ParseConfig([]byte(block), DefaultConfig())
	if err != nil {
		t.Fatalf("the example in docs/guard.md does not load: %v", err)
	}
	// A few values, to be sure the block was read and not ignored.
	if cfg.DefaultLimits.RPM != 60 || cfg.Capture.Retention != 720*time.Hour ||
		len(cfg.TrustedProxies) != 1 || cfg.Abuse.PromptAbuse.Action != abuse.Alert ||
		cfg.AuthFail.Max != 15*time.Minute {
		t.Errorf("example read as %+v", cfg)
	}
	// Every YAML key of Config and its nested structs appears in the block.
	var missing []string
	var walk func(t reflect.Type, prefix string)
	walk = func(typ reflect.Type, prefix string) {
		for i := range typ.NumField() {
			f := typ.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if name == "" || name == "-" {
				continue
			}
			if !strings.Contains(block, name+":") {
				missing = append(missing, prefix+name)
			}
			if f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeOf(time.Time{}) && prefix == "" &&
				f.Type.PkgPath() == reflect.TypeOf(Config{}).PkgPath() {
				walk(f.Type, name+".")
			}
		}
	}
	walk(reflect.TypeOf(Config{}), "")
	if len(missing) > 0 {
		t.Errorf("docs/guard.md does not show these settings: %s", strings.Join(missing, ", "))
	}
}
