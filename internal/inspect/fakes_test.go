package inspect

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"testing"

	"github.com/llmfence/llmfence/internal/verdict"
)

// The fakes stand in for the real parsers so that the orchestration is
// tested on its own: what they report is simple and fully predictable.

const fakeCatalogueYAML = `
version: 1
findings:
  - {id: FAKE-PKL, severity: critical, verdict: malicious, title: dangerous import, why: test, fix: test}
  - {id: FAKE-GGUF, severity: high, verdict: invalid, title: bad gguf version, why: test, fix: test}
  - {id: FAKE-ARC, severity: medium, verdict: suspicious, title: container trick, why: test, fix: test}
  - {id: FAKE-TPL, severity: high, verdict: suspicious, title: template url, why: test, fix: test}
  - {id: FAKE-KERAS, severity: high, verdict: malicious, title: lambda layer, why: test, fix: test}
`

func fakeCatalogue(t testing.TB) *verdict.Catalogue {
	t.Helper()
	c, err := verdict.LoadCatalogue("fake.yaml", []byte(fakeCatalogueYAML), "FAKE-")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

var fakeGlobal = regexp.MustCompile(`c([a-z_][a-z0-9_.]*)\n([A-Za-z_][A-Za-z0-9_]*)\n`)

// fakePickle reports protocol-0 GLOBAL lines found in the first readLimit
// bytes (so that the hashing pass is exercised with a partial read); os.* is
// dangerous. A stream containing "PANIC" makes it panic.
type fakePickle struct {
	cat       *verdict.Catalogue
	readLimit int64
}

func (p fakePickle) ScanStream(ctx context.Context, r io.Reader) (Report, error) {
	lim := p.readLimit
	if lim == 0 {
		lim = 1 << 20
	}
	data, err := io.ReadAll(io.LimitReader(r, lim))
	if err != nil {
		return Report{}, err
	}
	if bytes.Contains(data, []byte("PANIC")) {
		panic("fake pickle parser crashed")
	}
	var rep Report
	var globals []string
	for _, m := range fakeGlobal.FindAllSubmatchIndex(data, -1) {
		mod, name := string(data[m[2]:m[3]]), string(data[m[4]:m[5]])
		globals = append(globals, mod+"."+name)
		if mod == "os" || mod == "posix" {
			rep.Findings = append(rep.Findings, p.cat.New("FAKE-PKL", mod+"."+name, int64(m[0])))
		}
	}
	if globals != nil {
		rep.Metadata = map[string]any{"globals": globals}
	}
	return rep, nil
}

// fakeGGUF accepts version 3 and says the model is a llama. If grow is set,
// it appends to that file while the file is inspected.
type fakeGGUF struct {
	cat  *verdict.Catalogue
	grow string
}

func (g fakeGGUF) ScanFile(ctx context.Context, r io.ReaderAt, size int64) (Report, error) {
	hdr := make([]byte, 8)
	if _, err := r.ReadAt(hdr, 0); err != nil {
		return Report{}, err
	}
	if g.grow != "" {
		f, err := os.OpenFile(g.grow, os.O_APPEND|os.O_WRONLY, 0)
		if err == nil {
			f.Write([]byte("more bytes"))
			f.Close()
		}
	}
	if hdr[4] != 3 {
		return Report{Findings: []verdict.Finding{g.cat.New("FAKE-GGUF", fmt.Sprintf("version %d", hdr[4]), 4)}}, nil
	}
	return Report{
		Metadata: map[string]any{"gguf_version": 3},
		Model:    &ModelInfo{Name: "tiny", Architecture: "llama", Parameters: 1234, Quantization: "F32"},
	}, nil
}

// fakeST counts the bytes of a safetensors file.
type fakeST struct{}

func (fakeST) ScanFile(ctx context.Context, r io.ReaderAt, size int64) (Report, error) {
	return Report{Metadata: map[string]any{"tensors": 1}}, nil
}

// fakeTemplate flags URLs.
type fakeTemplate struct{ cat *verdict.Catalogue }

func (t fakeTemplate) CheckTemplate(tmpl, arch string) ([]verdict.Finding, error) {
	if i := bytes.Index([]byte(tmpl), []byte("http")); i >= 0 {
		return []verdict.Finding{t.cat.New("FAKE-TPL", "url in template for "+arch, int64(i))}, nil
	}
	return nil, nil
}

type fakeKeras struct{ cat *verdict.Catalogue }

func (k fakeKeras) CheckKerasConfig(cfg []byte) ([]verdict.Finding, error) {
	if bytes.Contains(cfg, []byte("Lambda")) {
		return []verdict.Finding{k.cat.New("FAKE-KERAS", "Lambda layer", -1)}, nil
	}
	return nil, nil
}

// fakeArchive walks zip, tar and gzip with the standard library. A zip
// member named "unopenable" fails to open; a zip comment "TRICK" yields a
// container finding.
type fakeArchive struct{ cat *verdict.Catalogue }

func (a fakeArchive) Walk(ctx context.Context, r io.ReaderAt, size int64, kind string, fn func(Member) error) ([]verdict.Finding, error) {
	switch kind {
	case "zip":
		zr, err := zip.NewReader(r, size)
		if err != nil {
			return nil, err
		}
		var fs []verdict.Finding
		if zr.Comment == "TRICK" {
			fs = append(fs, a.cat.New("FAKE-ARC", "comment trick", -1))
		}
		for _, f := range zr.File {
			m := Member{Name: f.Name, Size: int64(f.UncompressedSize64), Open: func() (io.ReadCloser, error) { return f.Open() }}
			if f.Name == "unopenable" {
				m.Open = func() (io.ReadCloser, error) { return nil, errors.New("bad local header") }
			}
			if err := fn(m); err != nil {
				return fs, err
			}
		}
		return fs, nil
	case "tar":
		tr := tar.NewReader(io.NewSectionReader(r, 0, size))
		for {
			h, err := tr.Next()
			if err == io.EOF {
				return nil, nil
			}
			if err != nil {
				return nil, err
			}
			if err := fn(Member{Name: h.Name, Size: h.Size, Open: func() (io.ReadCloser, error) { return io.NopCloser(tr), nil }}); err != nil {
				return nil, err
			}
		}
	case "gzip":
		zr, err := gzip.NewReader(io.NewSectionReader(r, 0, size))
		if err != nil {
			return nil, err
		}
		return nil, fn(Member{Name: "(gzip stream)", Size: -1, Open: func() (io.ReadCloser, error) { return zr, nil }})
	case "npy", "7z":
		return nil, nil
	}
	return nil, fmt.Errorf("fake archive: kind %s not supported", kind)
}

func fakeParsers(t testing.TB) *Parsers {
	cat := fakeCatalogue(t)
	return &Parsers{
		Pickle:      fakePickle{cat: cat, readLimit: 100},
		GGUF:        fakeGGUF{cat: cat},
		Safetensors: fakeST{},
		Archive:     fakeArchive{cat: cat},
		Template:    fakeTemplate{cat: cat},
		Keras:       fakeKeras{cat: cat},
	}
}

// fakeONNX reports every "loc=<path>\n" in the content as external data.
type fakeONNX struct{}

var fakeLoc = regexp.MustCompile(`loc=([^\n]+)\n`)

func (fakeONNX) ScanFile(ctx context.Context, r io.ReaderAt, size int64) (Report, error) {
	data, err := io.ReadAll(io.NewSectionReader(r, 0, size))
	if err != nil {
		return Report{}, err
	}
	var rep Report
	for _, m := range fakeLoc.FindAllSubmatch(data, -1) {
		rep.External = append(rep.External, string(m[1]))
	}
	return rep, nil
}
