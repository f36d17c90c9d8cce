package route

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files")

// TestTrickyGolden decides every request in testdata/tricky_paths.txt and
// compares the decisions with testdata/tricky_paths.golden.
func TestTrickyGolden(t *testing.T) {
	in, err := os.ReadFile("testdata/tricky_paths.txt")
	if err != nil {
		t.Fatal(err)
	}
	tables := map[string]*Table{}
	var out bytes.Buffer
	sc := bufio.NewScanner(bytes.NewReader(in))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.SplitN(line, " ", 3)
		if len(f) != 3 {
			t.Fatalf("bad input line %q", line)
		}
		kind, method, raw := f[0], f[1], f[2]
		tb := tables[kind]
		if tb == nil {
			tb = mustTable(t, kind)
			tables[kind] = tb
		}
		d := tb.Decide(method, raw)
		fmt.Fprintf(&out, "%s %s %q\n  class=%s status=%d path=%q route=%q allow=%q preflight=%v\n  reason: %s\n",
			kind, method, raw, d.Class, d.Status, d.Path, d.Route, d.Allow, d.Preflight, d.Reason)
	}
	const golden = "testdata/tricky_paths.golden"
	if *update {
		if err := os.WriteFile(golden, out.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(out.Bytes(), want) {
		gl, wl := strings.Split(out.String(), "\n"), strings.Split(string(want), "\n")
		for i := 0; i < len(gl) && i < len(wl); i++ {
			if gl[i] != wl[i] {
				t.Fatalf("golden mismatch at line %d:\n got  %s\n want %s", i+1, gl[i], wl[i])
			}
		}
		t.Fatalf("golden mismatch: got %d lines, want %d", len(gl), len(wl))
	}
}
