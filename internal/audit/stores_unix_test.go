//go:build unix

package audit

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestHugeStoreSizedFromMetadata: a store of hundreds of GB (sparse files)
// is sized from metadata; a FIFO among the blobs proves nothing is opened
// (reading it would block forever).
func TestHugeStoreSizedFromMetadata(t *testing.T) {
	root := t.TempDir()
	must(t, os.CopyFS(root, os.DirFS("testdata/stores/ollama")))
	const big = 300 << 30
	for i := range 3 {
		f, err := os.Create(filepath.Join(root, "blobs", "sha256-"+strings.Repeat(string(rune('a'+i)), 64)))
		must(t, err)
		must(t, f.Truncate(big))
		f.Close()
	}
	must(t, syscall.Mkfifo(filepath.Join(root, "blobs", "sha256-"+strings.Repeat("f", 64)), 0o644))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	done := make(chan *storeScan, 1)
	go func() { done <- scanStore(ctx, storeKind(t, "ollama"), root, 0) }()
	select {
	case s := <-done:
		if s.bytes < 3*big {
			t.Errorf("bytes %d, want at least %d", s.bytes, int64(3*big))
		}
		if s.models != 3 {
			t.Errorf("models %d", s.models)
		}
	case <-ctx.Done():
		t.Fatal("the scan blocked: it opened a blob instead of reading metadata")
	}
}

// TestOllamaConfigFIFO: a manifest whose config blob is a FIFO does not
// stall the scan.
func TestOllamaConfigFIFO(t *testing.T) {
	root := t.TempDir()
	must(t, os.CopyFS(root, os.DirFS("testdata/stores/ollama")))
	cfg := filepath.Join(root, "blobs", "sha256-"+strings.Repeat("e", 64))
	must(t, syscall.Mkfifo(cfg, 0o644))
	man := `{"config":{"digest":"sha256:` + strings.Repeat("e", 64) + `","size":10},"layers":[]}`
	must(t, os.MkdirAll(filepath.Join(root, "manifests", "registry.ollama.ai", "library", "trap"), 0o755))
	must(t, os.WriteFile(filepath.Join(root, "manifests", "registry.ollama.ai", "library", "trap", "latest"), []byte(man), 0o644))
	done := make(chan *storeScan, 1)
	go func() { done <- scanStore(context.Background(), storeKind(t, "ollama"), root, 0) }()
	select {
	case s := <-done:
		if s.models != 4 {
			t.Errorf("models %d", s.models)
		}
	case <-time.After(time.Minute):
		t.Fatal("the scan blocked on a FIFO config blob")
	}
}
