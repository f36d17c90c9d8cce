package inspect

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/llmfence/llmfence/internal/ggufmodeltest"
	"github.com/llmfence/llmfence/internal/verdict"
)

// Real-parser cases: the orchestrator wired to internal/pickle, gguf,
// safetensors and archive. Expectations are verdicts and finding-ID
// prefixes, so that the parsers' own catalogues may evolve.

// evilPickle2 is a protocol 2 pickle calling posix.system("id").
var evilPickle2 = []byte("\x80\x02cposix\nsystem\nq\x00X\x02\x00\x00\x00idq\x01\x85q\x02Rq\x03.")

// okPickle2 is a protocol 2 pickle of collections.OrderedDict().
var okPickle2 = []byte("\x80\x02ccollections\nOrderedDict\nq\x00)Rq\x01.")

func tinyGGUF(t testing.TB) []byte {
	var buf bytes.Buffer
	if _, err := ggufmodeltest.Write(&buf, ggufmodeltest.Options{Name: "tiny"}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestRealParsers(t *testing.T) {
	cases := []struct {
		name    string
		data    func(t testing.TB) []byte
		format  string
		verdict verdict.Verdict
		want    []string // ID prefixes that must appear
		member  string   // a finding must name this member
	}{
		{"tiny.gguf", tinyGGUF, FormatGGUF, verdict.Clean, nil, ""},
		{"evil0.pkl", func(testing.TB) []byte { return pickleOSSystem }, FormatPickle, verdict.Malicious, []string{"PKL-"}, ""},
		{"notes.md", func(testing.TB) []byte { return []byte("config\nvalue\n(this is a note).\n") }, FormatText, verdict.Clean, nil, ""},
		{"ok.pkl", func(testing.TB) []byte { return okPickle2 }, FormatPickle, verdict.Clean, nil, ""},
		{"evil.pkl", func(testing.TB) []byte { return evilPickle2 }, FormatPickle, verdict.Malicious, []string{"PKL-"}, ""},
		{"pytorch_model.bin", func(t testing.TB) []byte {
			return zipFile(t, "", zmember{"archive/data.pkl", evilPickle2}, zmember{"archive/version", []byte("3\n")})
		}, FormatPyTorchZip, verdict.Malicious, []string{"PKL-"}, "archive/data.pkl"},
		{"nested.zip", func(t testing.TB) []byte { return nestedZip(t, evilPickle2, 3) }, FormatZip, verdict.Malicious, []string{"PKL-", "INS-001"}, "inner.zip!inner.zip!inner.zip"},
		{"dump.joblib", func(testing.TB) []byte { return gzipBytes(evilPickle2) }, FormatGzip, verdict.Malicious, []string{"PKL-"}, ""},
		{"arrays.npz", func(t testing.TB) []byte { return zipFile(t, "", zmember{"a.npy", npyFile()}) }, FormatNPZ, verdict.Clean, nil, ""},
		{"model.safetensors", func(testing.TB) []byte { return safetensorsFile() }, FormatSafetensors, verdict.Clean, nil, ""},
		{"short.safetensors", func(testing.TB) []byte { b := safetensorsFile(); return b[:len(b)-4] }, FormatSafetensors, verdict.Invalid, []string{"ST-"}, ""},
		{"model.keras", func(t testing.TB) []byte {
			cfg := `{"class_name":"Functional","config":{"layers":[{"class_name":"Lambda","config":{"name":"l","function":{"class_name":"__lambda__","config":{"code":"4wEAAAAAAAAA"}}}}]}}`
			return zipFile(t, "", zmember{"config.json", []byte(cfg)}, zmember{"metadata.json", []byte(`{"keras_version":"3.0.0"}`)})
		}, FormatKeras, verdict.Malicious, []string{"KERAS-"}, "config.json"},
		{"polyglot.png", func(testing.TB) []byte {
			return append(append([]byte("\x89PNG\r\n\x1a\n"), randomBytes(500, 3)...), evilPickle2...)
		}, FormatUnknown, verdict.Malicious, []string{"INS-003", "PKL-"}, ""},
		{"prepended.zip", func(t testing.TB) []byte {
			return append([]byte("#!/bin/sh\necho hi\n"), zipFile(t, "", zmember{"archive/data.pkl", evilPickle2})...)
		}, FormatPyTorchZip, verdict.Malicious, []string{"PKL-", "ARC-"}, ""},
	}
	in, err := New(Options{Workers: 2, TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := writeFile(t, dir, c.name, c.data(t))
			r := in.InspectFile(context.Background(), p, "")
			if r.Format != c.format || r.Verdict != c.verdict || r.Error != "" {
				t.Errorf("format %s verdict %s error %q; want %s %s\n%+v", r.Format, r.Verdict, r.Error, c.format, c.verdict, r.Findings)
			}
			for _, w := range c.want {
				found := false
				for _, f := range r.Findings {
					found = found || strings.HasPrefix(f.ID, w)
				}
				if !found {
					t.Errorf("no %s finding in %+v", w, r.Findings)
				}
			}
			if c.member != "" {
				found := false
				for _, f := range r.Findings {
					found = found || f.Member == c.member
				}
				if !found {
					t.Errorf("no finding in member %s: %+v", c.member, r.Findings)
				}
			}
			for _, f := range r.Findings {
				if f.ID == "INS-009" {
					t.Errorf("parser crashed: %s", f.Detail)
				}
			}
		})
	}
}

func TestRealGGUFModelInfo(t *testing.T) {
	p := writeFile(t, t.TempDir(), "m.gguf", tinyGGUF(t))
	in, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	r := in.InspectFile(context.Background(), p, "")
	if r.Model == nil || r.Model.Architecture != "llama" || r.Model.Parameters == 0 || r.Model.Name != "tiny" {
		t.Errorf("model info %+v", r.Model)
	}
}
