package report

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/llmfence/llmfence/internal/service"
	"github.com/llmfence/llmfence/internal/store"
)

// The diff cases' inputs are the store's (internal/store/testdata/diff:
// a.json, b.json per case); the text renderings are golden files here.
func TestDiffTextGolden(t *testing.T) {
	dirs, err := filepath.Glob(filepath.Join("..", "store", "testdata", "diff", "*"))
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no diff cases: %v", err)
	}
	load := func(path string) []service.Service {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var out []service.Service
		if err := json.Unmarshal(b, &out); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		return out
	}
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			d := store.DiffServices(load(filepath.Join(dir, "a.json")), load(filepath.Join(dir, "b.json")))
			d.From = store.Run{ID: "3", StartedAt: time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)}
			d.To = store.Run{ID: "5", StartedAt: time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)}
			var text strings.Builder
			if err := DiffText(&text, d); err != nil {
				t.Fatal(err)
			}
			golden(t, filepath.Join("diff", filepath.Base(dir)+".txt"), []byte(text.String()))
		})
	}
}

func TestDiffTextNeutralisesControlCharacters(t *testing.T) {
	a := []service.Service{{Host: "10.0.0.1", Port: 80, Product: "http", Version: "1"}}
	b := []service.Service{{Host: "10.0.0.1", Port: 80, Product: "http", Version: "\x1b]0;pwned\x07\x1b[2J", Hostname: "h\u009b31m"}}
	var out strings.Builder
	if err := DiffText(&out, store.DiffServices(a, b)); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"\x1b", "\x07", "\u009b"} {
		if strings.Contains(out.String(), bad) {
			t.Errorf("output contains control character %q:\n%q", bad, out.String())
		}
	}
	if !strings.Contains(out.String(), "\uFFFD]0;pwned") {
		t.Errorf("control characters should become U+FFFD:\n%q", out.String())
	}
}
