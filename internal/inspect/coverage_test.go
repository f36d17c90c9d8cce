package inspect

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func onnxWith(locs ...string) []byte {
	b := []byte{0x08, 0x07, 0x12, 0x04, 't', 'e', 's', 't'}
	for _, l := range locs {
		b = append(b, "loc="+l+"\n"...)
	}
	return b
}

func TestONNXExternalData(t *testing.T) {
	outside := t.TempDir()
	writeFile(t, outside, "id_rsa", []byte("secret"))
	dir := t.TempDir()
	writeFile(t, dir, "weights.bin", []byte("tensor data"))
	if err := os.Symlink(filepath.Join(outside, "id_rsa"), filepath.Join(dir, "data.bin")); err != nil {
		t.Skip("symlinks not supported:", err)
	}
	ps := fakeParsers(t)
	ps.ONNX = fakeONNX{}
	in := newTestInspector(t, ps, nil)
	cases := []struct {
		name string
		locs []string
		want []string
	}{
		{"local file", []string{"weights.bin"}, []string{}},
		{"missing file", []string{"absent.bin"}, []string{}},
		{"link leaving the directory", []string{"weights.bin", "data.bin"}, []string{"INS-020"}},
		{"lexical escape is the parser's", []string{"../x", "/etc/passwd"}, []string{}},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := writeFile(t, dir, "m"+string(rune('0'+i))+".onnx", onnxWith(c.locs...))
			r := in.InspectFile(context.Background(), p, "")
			if g := ids(r.Findings); !slices.Equal(g, c.want) {
				t.Errorf("findings %v, want %v", g, c.want)
			}
		})
	}
}

// TestEveryFindingExercised: every INS- catalogue entry is produced by at
// least one scenario built in these tests.
func TestEveryFindingExercised(t *testing.T) {
	seen := map[string]bool{}
	note := func(r *Result) error {
		for _, f := range r.Findings {
			seen[f.ID] = true
		}
		return nil
	}
	ctx := context.Background()
	ps := fakeParsers(t)
	ps.ONNX = fakeONNX{}

	dir := t.TempDir()
	for _, c := range corpus() {
		writeFile(t, dir, c.name, c.data(t))
	}
	outside := t.TempDir()
	secret := writeFile(t, outside, "secret", []byte("x"))
	os.Symlink(secret, filepath.Join(dir, "link"))
	os.Symlink(secret, filepath.Join(dir, "ext.bin"))
	writeFile(t, dir, "model.onnx", onnxWith("ext.bin"))
	in := newTestInspector(t, ps, nil)
	if _, err := in.Inspect(ctx, []string{dir}, note); err != nil {
		t.Fatal(err)
	}
	store := t.TempDir()
	buildStore(t, store, ggufHeader(3))
	if _, err := in.InspectOllamaStore(ctx, store, testJudge(t), note); err != nil {
		t.Fatal(err)
	}
	small := newTestInspector(t, ps, func(o *Options) { o.MaxFileSize = 5 })
	note(small.InspectFile(ctx, filepath.Join(dir, "model.gguf"), ""))
	grow := writeFile(t, t.TempDir(), "g.gguf", ggufHeader(3))
	gp := fakeParsers(t)
	gp.GGUF = fakeGGUF{cat: fakeCatalogue(t), grow: grow}
	note(newTestInspector(t, gp, nil).InspectFile(ctx, grow, ""))

	cat, _ := Catalogue()
	for _, e := range cat.Findings {
		if !seen[e.ID] {
			t.Errorf("%s (%s) is produced by no test scenario", e.ID, e.Title)
		}
	}
}
