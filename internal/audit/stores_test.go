package audit

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/llmfence/llmfence/internal/service"
)

func storeKind(t *testing.T, id string) *StoreSpec {
	t.Helper()
	k, ok := catalog(t).Store(id)
	if !ok {
		t.Fatalf("no store kind %s", id)
	}
	return k
}

func TestScanStoreFixtures(t *testing.T) {
	ctx := context.Background()
	o := scanStore(ctx, storeKind(t, "ollama"), "testdata/stores/ollama", 0)
	if o.models != 3 || !o.complete || len(o.notes) != 0 {
		t.Errorf("ollama: %d models, complete %v, notes %q", o.models, o.complete, o.notes)
	}
	if !slices.Equal(o.cloud, []string{"gpt-oss:120b-cloud"}) {
		t.Errorf("cloud models %q", o.cloud)
	}
	l := o.largest()
	if len(l) != 3 || l[0].Name != "llama3.1:70b" || l[0].Bytes < 42_000_000_000 {
		t.Errorf("largest %+v: sizes come from the manifests", l)
	}
	var onDisk int64
	ents, _ := os.ReadDir("testdata/stores/ollama/blobs")
	for _, e := range ents {
		fi, _ := e.Info()
		onDisk += fi.Size()
	}
	if o.bytes < onDisk || o.bytes > onDisk+4096 {
		t.Errorf("bytes %d, blobs hold %d (plus three small manifests)", o.bytes, onDisk)
	}

	hf := scanStore(ctx, storeKind(t, "huggingface"), "testdata/stores/hf", 0)
	if hf.models != 1 || hf.perModel["Qwen/Qwen2.5-0.5B"] != 3500+8 || hf.bytes != 3500+8+100 {
		t.Errorf("hf: models %d, per model %v, bytes %d (snapshot links must not count twice)", hf.models, hf.perModel, hf.bytes)
	}
	lm := scanStore(ctx, storeKind(t, "lmstudio"), "testdata/stores/lmstudio", 0)
	if lm.models != 2 || lm.largest()[0].Name != "lmstudio-community/Qwen2.5-7B-GGUF" {
		t.Errorf("lmstudio: %d models, %+v", lm.models, lm.largest())
	}
	g := scanStore(ctx, storeKind(t, "gpt4all"), "testdata/stores/gpt4all", 0)
	if g.models != 1 || g.perModel["orca-mini-3b-gguf2-q4_0.gguf"] != 700 {
		t.Errorf("gpt4all: %+v", g.perModel)
	}
}

// TestStoreSymlinkLoops: loops and aliases in a model folder end, every
// file counts once, and the loop is named in a note.
func TestStoreSymlinkLoops(t *testing.T) {
	dir := t.TempDir()
	pub := filepath.Join(dir, "pub", "model")
	must(t, os.MkdirAll(pub, 0o755))
	must(t, os.WriteFile(filepath.Join(pub, "m.gguf"), make([]byte, 1000), 0o644))
	must(t, os.Symlink("..", filepath.Join(pub, "up")))         // a loop through the parent
	must(t, os.Symlink(dir, filepath.Join(dir, "pub", "root"))) // a loop to the top
	must(t, os.Symlink("self", filepath.Join(dir, "self")))     // a link to itself (ELOOP)
	must(t, os.Symlink("b", filepath.Join(dir, "a")))           // a → b → a
	must(t, os.Symlink("a", filepath.Join(dir, "b")))
	must(t, os.Symlink("pub/model/m.gguf", filepath.Join(dir, "alias.gguf"))) // the same file again
	must(t, os.Symlink("missing", filepath.Join(dir, "dangling.gguf")))

	done := make(chan *storeScan)
	go func() { done <- scanStore(context.Background(), storeKind(t, "gpt4all"), dir, 0) }()
	var s *storeScan
	select {
	case s = <-done:
	case <-time.After(time.Minute):
		t.Fatal("the walk did not end: a symlink loop was followed")
	}
	if s.bytes != 1000 || s.models != 1 {
		t.Errorf("bytes %d models %d %v: the one file must count once", s.bytes, s.models, s.perModel)
	}
	joined := strings.Join(englishNotes(t, s.notes), "\n")
	if !strings.Contains(joined, "already counted") || !strings.Contains(joined, "too many levels of symbolic links") {
		t.Errorf("notes should name the loops:\n%s", joined)
	}

	// A store that is itself a loop.
	loop := filepath.Join(t.TempDir(), "models")
	must(t, os.Symlink(loop, loop))
	s = scanStore(context.Background(), storeKind(t, "gpt4all"), loop, 0)
	if s.complete || !strings.Contains(strings.Join(englishNotes(t, s.notes), " "), "symbolic links") {
		t.Errorf("a looping store: complete %v notes %q", s.complete, s.notes)
	}
}

func TestStoreWritableByOthersAndLimits(t *testing.T) {
	dir := t.TempDir()
	must(t, os.MkdirAll(filepath.Join(dir, "models", "pub", "m"), 0o755))
	must(t, os.WriteFile(filepath.Join(dir, "models", "pub", "m", "x.gguf"), []byte("x"), 0o644))
	must(t, os.Chmod(filepath.Join(dir, "models", "pub"), 0o777))
	sticky := filepath.Join(dir, "models", "shared-tmp")
	must(t, os.Mkdir(sticky, 0o755))
	must(t, os.Chmod(sticky, 0o777|os.ModeSticky))
	s := scanStore(context.Background(), storeKind(t, "lmstudio"), filepath.Join(dir, "models"), 0)
	if s.nWrite != 1 || !strings.HasSuffix(s.writable[0], "/models/pub") {
		t.Errorf("writable %d %q: the o+w directory, not the sticky one", s.nWrite, s.writable)
	}
	// A world-writable parent exposes the store as well.
	must(t, os.Chmod(filepath.Join(dir, "models", "pub"), 0o755))
	must(t, os.Chmod(dir, 0o777))
	s = scanStore(context.Background(), storeKind(t, "lmstudio"), filepath.Join(dir, "models"), 0)
	if s.nWrite != 1 || s.writable[0] != dir {
		t.Errorf("parent: %d %q", s.nWrite, s.writable)
	}

	// The entry bound makes the counts lower bounds, said in a note.
	for i := range 20 {
		must(t, os.WriteFile(filepath.Join(dir, "models", "pub", "m", strings.Repeat("y", i+1)+".gguf"), []byte("y"), 0o644))
	}
	s = scanStore(context.Background(), storeKind(t, "lmstudio"), filepath.Join(dir, "models"), 10)
	if s.complete || !strings.Contains(strings.Join(englishNotes(t, s.notes), " "), "lower bounds") {
		t.Errorf("bounded walk: complete %v notes %q", s.complete, s.notes)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// englishNotes says notes as the records keep them.
func englishNotes(t *testing.T, notes []service.Message) []string {
	t.Helper()
	w, err := newWords()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, n := range notes {
		out = append(out, w.english(n))
	}
	return out
}
