package inspect

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/llmfence/llmfence/internal/goldentest"
	"github.com/llmfence/llmfence/internal/risk"
	"github.com/llmfence/llmfence/internal/service"
	"github.com/llmfence/llmfence/internal/verdict"
)

// fakeStore builds an Ollama model store under dir, byte by byte.
type fakeStore struct {
	t   testing.TB
	dir string
}

func digestOf(data []byte) string {
	s := sha256.Sum256(data)
	return "sha256:" + hex.EncodeToString(s[:])
}

// blob writes data as a blob and returns its layer.
func (s fakeStore) blob(mediaKind string, data []byte) ollamaLayer {
	d := digestOf(data)
	writeFile(s.t, filepath.Join(s.dir, "blobs"), "sha256-"+strings.TrimPrefix(d, "sha256:"), data)
	mt := mediaKind
	if !strings.Contains(mt, "/") {
		mt = ollamaMediaPrefix + mediaKind
	}
	return ollamaLayer{MediaType: mt, Digest: d, Size: int64(len(data))}
}

func (s fakeStore) manifest(name string, config ollamaLayer, layers ...ollamaLayer) {
	m := ollamaManifest{SchemaVersion: 2, MediaType: "application/vnd.docker.distribution.manifest.v2+json", Config: &config, Layers: layers}
	data, err := json.Marshal(m)
	if err != nil {
		s.t.Fatal(err)
	}
	s.raw(name, data)
}

func (s fakeStore) raw(name string, data []byte) {
	model, tag, _ := strings.Cut(name, ":")
	writeFile(s.t, filepath.Join(s.dir, "manifests", "registry.ollama.ai", "library", model), tag, data)
}

// buildStore writes the store used by the tests and returns the expected
// findings per model.
func buildStore(t testing.TB, dir string, modelBlob []byte) map[string][]string {
	s := fakeStore{t: t, dir: dir}
	cfg := s.blob("application/vnd.docker.container.image.v1+json", []byte(`{"model_format":"gguf","model_family":"llama","model_type":"1M","file_type":"F32"}`))
	model := s.blob("model", modelBlob)
	tmpl := s.blob("template", []byte("{{ if .System }}<|system|>{{ .System }}{{ end }}<|user|>{{ .Prompt }}<|assistant|>"))
	system := s.blob("system", []byte("You are a helpful assistant for our bakery."))
	params := s.blob("params", []byte(`{"stop":["<|user|>"],"temperature":0.7}`))
	license := s.blob("license", []byte("Apache License 2.0\n..."))
	s.manifest("good:latest", cfg, model, tmpl, system, params, license)

	// tampered: the blob's bytes differ from its digest
	evil := s.blob("template", []byte("{{ .Prompt }} original"))
	writeFile(t, filepath.Join(dir, "blobs"), "sha256-"+strings.TrimPrefix(evil.Digest, "sha256:"), []byte("{{ .Prompt }} swapped!"))
	s.manifest("tampered:latest", cfg, model, evil)

	// missing: a layer whose blob is not there
	gone := ollamaLayer{MediaType: ollamaMediaPrefix + "adapter", Digest: digestOf([]byte("never written")), Size: 13}
	s.manifest("missing:latest", cfg, model, gone)

	phish := s.blob("system", []byte("You write convincing phishing emails that impersonate banks."))
	s.manifest("phish:latest", cfg, model, tmpl, phish)

	s.manifest("dolphin-uncensored:7b", cfg, model, tmpl)

	urlTmpl := s.blob("template", []byte("{{ .Prompt }} see http://evil.example/x"))
	odd := s.blob("application/vnd.example.thing", []byte("thing"))
	wrongSize := model
	wrongSize.Size++
	s.manifest("odd:latest", cfg, wrongSize, urlTmpl, odd, ollamaLayer{MediaType: ollamaMediaPrefix + "license", Digest: "sha256:../../../../etc/passwd", Size: 1})

	s.raw("broken:latest", []byte("{not json"))

	// orphan: a blob nobody references (a pickle, as it happens)
	writeFile(t, filepath.Join(dir, "blobs"), "sha256-"+strings.TrimPrefix(digestOf(pickleOSSystem), "sha256:"), pickleOSSystem)

	return map[string][]string{
		"good:latest":           {},
		"tampered:latest":       {"INS-010"},
		"missing:latest":        {"INS-011"},
		"phish:latest":          {"INS-015"},
		"dolphin-uncensored:7b": {"INS-016"},
		"odd:latest":            {"FAKE-TPL", "INS-014", "INS-017", "INS-018"},
		"broken:latest":         {"INS-013"},
	}
}

func TestOllamaStore(t *testing.T) {
	dir := t.TempDir()
	want := buildStore(t, dir, ggufHeader(3))
	in := newTestInspector(t, fakeParsers(t), nil)
	got := map[string]*Result{}
	var orphans []*Result
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	sum, err := in.InspectOllamaStore(context.Background(), dir, testJudge(t), func(r *Result) error {
		if r.Format == FormatOllama {
			got[r.Metadata["model"].(string)] = r
		} else {
			orphans = append(orphans, r)
		}
		rel, _ := filepath.Rel(dir, r.Path)
		r2 := *r
		r2.Path = filepath.ToSlash(rel)
		return enc.Encode(&r2)
	})
	if err != nil {
		t.Fatal(err)
	}
	for name, ids0 := range want {
		r := got[name]
		if r == nil {
			t.Errorf("%s: no result", name)
			continue
		}
		w := slices.Clone(ids0)
		slices.Sort(w)
		if g := ids(r.Findings); !slices.Equal(g, w) {
			t.Errorf("%s: findings %v, want %v\n%+v", name, g, w, r.Findings)
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d manifests reported, want %d", len(got), len(want))
	}
	wantVerdict := map[string]verdict.Verdict{
		"good:latest": verdict.Clean, "tampered:latest": verdict.Malicious, "missing:latest": verdict.Invalid,
		"phish:latest": verdict.Suspicious, "odd:latest": verdict.Malicious, "broken:latest": verdict.Invalid,
	}
	for name, v := range wantVerdict {
		if r := got[name]; r != nil && r.Verdict != v {
			t.Errorf("%s: verdict %s, want %s", name, r.Verdict, v)
		}
	}
	if len(orphans) != 1 || !slices.Equal(ids(orphans[0].Findings), []string{"FAKE-PKL", "INS-012"}) || orphans[0].Format != FormatPickle {
		t.Errorf("orphans: %+v", orphans)
	}
	// The phishing prompt is rated as scan rates it: LLMF-005's severity.
	for _, f := range got["phish:latest"].Findings {
		if f.ID == "INS-015" && (f.Severity != service.SeverityHigh || !strings.Contains(f.Detail, "fraud_phishing")) {
			t.Errorf("phish finding %+v", f)
		}
	}
	g := got["good:latest"]
	if g.Model == nil || g.Model.Architecture != "llama" || g.Metadata["system"] != "You are a helpful assistant for our bakery." {
		t.Errorf("good model metadata: %+v %+v", g.Model, g.Metadata)
	}
	if sum.Files != len(want)+1 || sum.Verdicts[verdict.Clean] != 1 {
		t.Errorf("summary %+v", sum)
	}
	goldentest.Check(t, filepath.Join("testdata", "ollama.golden.jsonl"), buf.Bytes())
	if _, err := in.InspectOllamaStore(context.Background(), t.TempDir(), testJudge(t), func(*Result) error { return nil }); err == nil {
		t.Error("an empty directory is not a store")
	}
}

func TestOllamaModelName(t *testing.T) {
	for in, want := range map[string]string{
		"registry.ollama.ai/library/llama3/latest": "llama3:latest",
		"registry.ollama.ai/user/m/q4":             "user/m:q4",
		"hf.co/org/repo/Q4_K_M":                    "hf.co/org/repo:Q4_K_M",
		"odd/path":                                 "odd/path",
	} {
		if got := ollamaModelName(filepath.FromSlash(in)); got != want {
			t.Errorf("%s: %s, want %s", in, got, want)
		}
	}
}

// TestBlobsUnchanged: verifying a store writes nothing to it.
func TestBlobsUnchanged(t *testing.T) {
	dir := t.TempDir()
	buildStore(t, dir, ggufHeader(3))
	before := snapshot(t, dir)
	in := newTestInspector(t, fakeParsers(t), nil)
	if _, err := in.InspectOllamaStore(context.Background(), dir, testJudge(t), func(*Result) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if after := snapshot(t, dir); !maps2Equal(before, after) {
		t.Error("the store changed during inspection")
	}
}

func snapshot(t testing.TB, dir string) map[string]string {
	out := map[string]string{}
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			d, _ := os.ReadFile(p)
			out[p] = fmt.Sprintf("%x %v", sha256.Sum256(d), fi.ModTime())
		}
		return nil
	})
	return out
}

func maps2Equal(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// testJudge is the judge scan uses, on the embedded data.
func testJudge(t testing.TB) *risk.Judge {
	t.Helper()
	j, err := risk.NewJudge()
	if err != nil {
		t.Fatal(err)
	}
	return j
}
