// Package goldentest compares test output with golden files under
// testdata/, the one convention for every package's tests:
//
//	go test ./internal/pkg -run TestX -update   # rewrite the golden files, then review the diff
//
// It registers the -update flag of every test binary that imports it (a
// package that imports it must not define its own). Without -update a
// missing or different golden file fails the test and says how to
// refresh it; with -update the file is written (directories created) and
// the comparison skipped.
//
// It is for tests only.
package goldentest

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files from the current output (review the diff)")

// Updating reports whether the test binary runs with -update.
func Updating() bool { return *update }

// Check compares got with the golden file path, or writes it with -update.
func Check(t testing.TB, path string, got []byte) {
	t.Helper()
	if *update {
		write(t, path, got)
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the output (rerun with -update after checking the change):\n%s", path, LineDiff(string(want), string(got)))
	}
}

// maxDiffLines bounds the lines LineDiff reports.
const maxDiffLines = 40

// LineDiff lists the lines that differ between want and got, by line
// number (the first 40).
func LineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	n := 0
	for i := 0; i < len(w) || i < len(g); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl == gl {
			continue
		}
		if n++; n > maxDiffLines {
			b.WriteString("  ... and more\n")
			break
		}
		fmt.Fprintf(&b, "line %d:\n  want %q\n  got  %q\n", i+1, wl, gl)
	}
	return b.String()
}

// JSON checks v, marshalled as Marshal does, against the golden file path.
func JSON(t testing.TB, path string, v any) {
	t.Helper()
	b, err := Marshal(v, "  ")
	if err != nil {
		t.Fatal(err)
	}
	Check(t, path, b)
}

// Marshal is the JSON of golden files: indented by indent ("" for one
// line), HTML characters left as they are, a final newline.
func Marshal(v any, indent string) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", indent)
	err := enc.Encode(v)
	return buf.Bytes(), err
}

func write(t testing.TB, path string, b []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// Cases is one golden JSON file of named cases. Each case is compared on
// its own, so running a subset of subtests still checks what it ran; with
// -update the file is rewritten, by Write, from the cases that ran.
type Cases struct {
	path string
	want map[string]json.RawMessage
	got  map[string]any
}

// LoadCases reads the golden file of cases at path (it may be missing
// with -update).
func LoadCases(t testing.TB, path string) *Cases {
	t.Helper()
	g := &Cases{path: path, want: map[string]json.RawMessage{}, got: map[string]any{}}
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

// Check compares case name's output v with its golden value. Call it from
// one goroutine at a time.
func (g *Cases) Check(t testing.TB, name string, v any) {
	t.Helper()
	g.got[name] = v
	if *update {
		return
	}
	got, err := Marshal(v, "")
	if err != nil {
		t.Fatal(err)
	}
	var want bytes.Buffer
	if err := json.Compact(&want, g.want[name]); err != nil || !bytes.Equal(bytes.TrimSpace(got), want.Bytes()) {
		t.Errorf("output differs from %s[%q]:\n got %s\nwant %s\n(rerun with -update after checking the change)", g.path, name, got, want.Bytes())
	}
}

// Write rewrites the file from the cases checked, with -update.
func (g *Cases) Write(t testing.TB) {
	t.Helper()
	if !*update {
		return
	}
	b, err := Marshal(g.got, "  ")
	if err != nil {
		t.Fatal(err)
	}
	write(t, g.path, b)
}
