package goldentest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// recorder is a testing.TB that records failures instead of failing.
type recorder struct {
	testing.TB
	failed bool
	msg    string
}

func (r *recorder) Helper() {}
func (r *recorder) Errorf(format string, a ...any) {
	r.failed = true
	r.msg = format
}
func (r *recorder) Fatalf(format string, a ...any) {
	r.failed = true
	r.msg = format
	panic(r)
}
func (r *recorder) Fatal(a ...any) { r.failed = true; panic(r) }

func run(f func(r *recorder)) (r *recorder) {
	r = &recorder{}
	defer func() {
		if p := recover(); p != nil && p != r {
			panic(p)
		}
	}()
	f(r)
	return r
}

func TestCheck(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "a.golden")
	if err := os.WriteFile(p, []byte("same\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := run(func(r *recorder) { Check(r, p, []byte("same\n")) }); r.failed {
		t.Error("equal output failed")
	}
	if r := run(func(r *recorder) { Check(r, p, []byte("other\n")) }); !r.failed || !strings.Contains(r.msg, "-update") {
		t.Errorf("different output: failed %v, message %q", r.failed, r.msg)
	}
	if r := run(func(r *recorder) { Check(r, filepath.Join(dir, "missing"), nil) }); !r.failed || !strings.Contains(r.msg, "-update") {
		t.Errorf("missing file: failed %v, message %q", r.failed, r.msg)
	}
}

func TestUpdateWrites(t *testing.T) {
	*update = true
	t.Cleanup(func() { *update = false })
	p := filepath.Join(t.TempDir(), "sub", "b.golden.json")
	JSON(t, p, map[string]string{"x": "<y>"})
	b, err := os.ReadFile(p)
	if err != nil || string(b) != "{\n  \"x\": \"<y>\"\n}\n" {
		t.Errorf("written %q, %v", b, err)
	}
	c := LoadCases(t, filepath.Join(t.TempDir(), "cases.json"))
	c.Check(t, "one", []int{1})
	c.Write(t)
	*update = false
	c2 := LoadCases(t, c.path)
	if r := run(func(r *recorder) { c2.Check(r, "one", []int{1}) }); r.failed {
		t.Error("rewritten case does not match")
	}
	if r := run(func(r *recorder) { c2.Check(r, "one", []int{2}) }); !r.failed {
		t.Error("changed case passed")
	}
}
