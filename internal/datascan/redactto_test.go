package datascan

import (
	"archive/tar"
	"archive/zip"
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/csv"
	"encoding/json"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cdx "github.com/CycloneDX/cyclonedx-go"
)

func treeHashes(t *testing.T, dir string) map[string][32]byte {
	out := map[string][32]byte{}
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			b, _ := os.ReadFile(p)
			out[p] = sha256.Sum256(b)
		}
		return nil
	})
	return out
}

const awsKey = "AKIAIOSFODNN7EXAMPLE"

func checkJSONL(t *testing.T, name string, b []byte) {
	t.Helper()
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) != len(rows) {
		t.Errorf("%s: %d lines, want %d", name, len(lines), len(rows))
	}
	for i, l := range lines {
		var m map[string]string
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Errorf("%s: line %d is not JSON: %v: %q", name, i, err, l)
			continue
		}
		if i == 0 && m["prompt"] != rows[0].Prompt {
			t.Errorf("%s: clean text changed: %q", name, m["prompt"])
		}
		if i == 4 && m["prompt"] != rows[4].Prompt {
			t.Errorf("%s: Japanese text changed: %q", name, m["prompt"])
		}
	}
	if bytes.Contains(b, []byte(awsKey)) || !bytes.Contains(b, []byte("[REDACTED:aws_access_key]")) {
		t.Errorf("%s: the key is not redacted:\n%s", name, b)
	}
}

// TestRedactTo: a redacted copy with the same layout and formats; the
// input tree is not touched; an output inside the input is refused.
func TestRedactTo(t *testing.T) {
	in := t.TempDir()
	jl := jsonlBytes(t)
	os.MkdirAll(filepath.Join(in, "sub"), 0o755)
	files := map[string][]byte{
		"a.jsonl":          jl,
		"sub/b.csv":        csvBytes(','),
		"c.md":             []byte("# Notes\n\nkey " + awsKey + " here\n"),
		"d.jsonl.gz":       gz(jl),
		"e.tar":            tarOf(map[string][]byte{"x/part.jsonl": jl}),
		"f.zip":            zipOf(map[string][]byte{"part.jsonl": jl}),
		"g.json":           jsonArrayBytes(),
		"h.jsonl.zst":      zst(jl),
		"sub/i.jsonl.xz":   xzb(jl),
		"weird-\u00e9.txt": []byte("plain text, nothing to hide\n"),
	}
	for name, b := range files {
		os.WriteFile(filepath.Join(in, name), b, 0o644)
	}
	before := treeHashes(t, in)
	out := filepath.Join(t.TempDir(), "clean")
	sink, st := scanPaths(t, Options{RedactTo: out}, in)
	if st.Errors != 0 || len(st.Warnings) != 0 {
		t.Errorf("errors %d, warnings %v: %+v", st.Errors, st.Warnings, sink.files)
	}
	after := treeHashes(t, in)
	if len(before) != len(after) {
		t.Fatalf("input tree changed: %d files, was %d", len(after), len(before))
	}
	for p, h := range before {
		if after[p] != h {
			t.Errorf("input %s changed", p)
		}
	}
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(out, name))
		if err != nil {
			t.Fatalf("redacted copy: %v", err)
		}
		return b
	}
	checkJSONL(t, "a.jsonl", read("a.jsonl"))
	zr, err := gzip.NewReader(bytes.NewReader(read("d.jsonl.gz")))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(zr)
	checkJSONL(t, "d.jsonl.gz", b)
	recs, err := csv.NewReader(bytes.NewReader(read("sub/b.csv"))).ReadAll()
	if err != nil || len(recs) != len(rows)+1 || recs[1][1] != rows[0].Completion || strings.Contains(recs[3][0], awsKey) {
		t.Errorf("csv copy: %v %q", err, recs)
	}
	if md := read("c.md"); bytes.Contains(md, []byte(awsKey)) || !bytes.HasPrefix(md, []byte("# Notes")) {
		t.Errorf("text copy: %q", md)
	}
	tr := tar.NewReader(bytes.NewReader(read("e.tar")))
	h, err := tr.Next()
	if err != nil || h.Name != "x/part.jsonl" {
		t.Fatalf("tar copy: %v %v", h, err)
	}
	b, _ = io.ReadAll(tr)
	checkJSONL(t, "e.tar!x/part.jsonl", b)
	zf, err := zip.NewReader(bytes.NewReader(read("f.zip")), int64(len(read("f.zip"))))
	if err != nil || len(zf.File) != 1 {
		t.Fatalf("zip copy: %v", err)
	}
	rc, _ := zf.File[0].Open()
	b, _ = io.ReadAll(rc)
	checkJSONL(t, "f.zip!part.jsonl", b)
	var arr []map[string]string
	if err := json.Unmarshal(read("g.json"), &arr); err != nil || len(arr) != len(rows) || strings.Contains(string(read("g.json")), awsKey) {
		t.Errorf("json array copy: %v %d", err, len(arr))
	}
	if _, err := os.Stat(filepath.Join(out, "weird-\u00e9.txt")); err != nil {
		t.Errorf("copy of a clean file: %v", err)
	}
	// Parquet (not rewritten) and binary files get no copy, and a warning.
	in2 := t.TempDir()
	os.WriteFile(filepath.Join(in2, "p.parquet"), parquetBytes(t), 0o644)
	os.WriteFile(filepath.Join(in2, "b.bin"), []byte{0, 1, 2, 3, 0, 0, 9}, 0o644)
	out2 := filepath.Join(t.TempDir(), "clean")
	_, st2 := scanPaths(t, Options{RedactTo: out2}, in2)
	for _, name := range []string{"p.parquet", "b.bin"} {
		if _, err := os.Stat(filepath.Join(out2, name)); err == nil {
			t.Errorf("%s copied", name)
		}
	}
	if len(st2.Warnings) != 2 {
		t.Errorf("warnings %q, want one per file not copied", st2.Warnings)
	}
	// Refused: output inside the input, or the input inside the output.
	s, _ := New(Options{RedactTo: filepath.Join(in, "out")})
	if _, err := s.Scan(t.Context(), []string{in}, &memSink{}); err == nil {
		t.Error("--redact-to inside the input accepted")
	}
	s, _ = New(Options{RedactTo: filepath.Dir(in)})
	if _, err := s.Scan(t.Context(), []string{in}, &memSink{}); err == nil {
		t.Error("--redact-to holding the input accepted")
	}
}

// TestManifest: one data component per file with hash, size, format,
// schema, record count, licence and finding counts; CycloneDX 1.6.
func TestManifest(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a.jsonl"), jsonlBytes(t), 0o644)
	os.WriteFile(filepath.Join(dir, "b.parquet"), parquetBytes(t), 0o644)
	sink, _ := scanPaths(t, Options{}, dir)
	var buf bytes.Buffer
	if err := WriteManifest(&buf, sink.files, ManifestOptions{ToolVersion: "test", Now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}); err != nil {
		t.Fatal(err)
	}
	var bom cdx.BOM
	if err := cdx.NewBOMDecoder(bytes.NewReader(buf.Bytes()), cdx.BOMFileFormatJSON).Decode(&bom); err != nil {
		t.Fatal(err)
	}
	if bom.SpecVersion != cdx.SpecVersion1_6 || bom.Components == nil || len(*bom.Components) != 2 {
		t.Fatalf("spec %v components %v", bom.SpecVersion, bom.Components)
	}
	for _, c := range *bom.Components {
		props := map[string]string{}
		for _, p := range *c.Properties {
			props[p.Name] = p.Value
		}
		if c.Type != cdx.ComponentTypeData || c.Hashes == nil || len((*c.Hashes)[0].Value) != 64 || props["llmfence:records"] != "5" ||
			props["llmfence:format"] == "" || props["llmfence:schema"] == "" || c.Licenses == nil {
			t.Errorf("component %s: %+v %v", c.Name, c, props)
		}
		if props["llmfence:findings:secret"] != "1" || !strings.Contains(props["llmfence:pii_secret_matches"], "aws_access_key_id=1") {
			t.Errorf("component %s: finding counts %v", c.Name, props)
		}
	}
}

// jsonlFromCopy is used by the fuzz test: a redacted copy of valid JSON
// Lines is valid JSON Lines with the same number of lines.
func jsonlLines(b []byte) (int, error) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 1<<16), 1<<24)
	n := 0
	for sc.Scan() {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var v any
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			return n, err
		}
		n++
	}
	return n, sc.Err()
}
