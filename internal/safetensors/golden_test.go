package safetensors

import (
	"bytes"
	"encoding/json"
	"os"
	"testing"
)

// golden holds one golden file of named cases. Each case is compared on
// its own, so running a subset of subtests still checks what it ran; with
// -update the file is rewritten from the cases that ran.
type golden struct {
	path string
	want map[string]json.RawMessage
	got  map[string]any
}

func loadGolden(t *testing.T, path string) *golden {
	g := &golden{path: path, want: map[string]json.RawMessage{}, got: map[string]any{}}
	b, err := os.ReadFile(path)
	if err != nil && !*update {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if err == nil {
		if err := json.Unmarshal(b, &g.want); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
	}
	return g
}

func (g *golden) check(t *testing.T, name string, v any) {
	t.Helper()
	g.got[name] = v
	if *update {
		return
	}
	got, err := marshal(v, "")
	if err != nil {
		t.Fatal(err)
	}
	var want bytes.Buffer
	if err := json.Compact(&want, g.want[name]); err != nil || !bytes.Equal(bytes.TrimSpace(got), want.Bytes()) {
		t.Errorf("output differs from %s[%q]:\n got %s\nwant %s\n(rerun with -update after checking the change)", g.path, name, got, want.Bytes())
	}
}

func (g *golden) write(t *testing.T) {
	if !*update {
		return
	}
	b, err := marshal(g.got, "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(g.path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func marshal(v any, indent string) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", indent)
	err := enc.Encode(v)
	return buf.Bytes(), err
}
