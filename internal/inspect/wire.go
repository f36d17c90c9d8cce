package inspect

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/llmfence/llmfence/internal/archive"
	"github.com/llmfence/llmfence/internal/gguf"
	"github.com/llmfence/llmfence/internal/pickle"
	"github.com/llmfence/llmfence/internal/verdict"
)

// DefaultParsers returns the real format parsers of llmfence.
func DefaultParsers() Parsers {
	p := Parsers{
		Pickle:      pickleScanner{},
		GGUF:        ggufScanner{},
		Archive:     archiveWalker{},
		Template:    templateChecker{},
		SniffPickle: pickle.Sniff,
		DetectContainer: func(head []byte) string {
			return string(archive.Detect(head))
		},
	}
	wireSafetensors(&p)
	return p
}

// maxListedGlobals bounds the imports listed in a pickle's metadata.
const maxListedGlobals = 100

type pickleScanner struct{}

func (pickleScanner) ScanStream(ctx context.Context, r io.Reader) (Report, error) {
	var opts pickle.Options
	if s, ok := r.(interface{ Size() int64 }); ok {
		opts.Size = s.Size()
	}
	if s, ok := r.(interface{ Reopen() io.Reader }); ok {
		opts.Reopen = s.Reopen
	}
	res, err := pickle.Scan(ctx, r, opts)
	return pickleReport(res, err)
}

func (pickleScanner) ScanLayout(ctx context.Context, r io.Reader, layout string) (Report, error) {
	res, err := pickle.ScanLayout(ctx, r, pickle.Layout(layout), pickle.Options{})
	return pickleReport(res, err)
}

func pickleReport(res *pickle.Result, err error) (Report, error) {
	if res == nil {
		return Report{}, err
	}
	names := make([]string, 0, len(res.Globals))
	for _, g := range res.Globals {
		names = append(names, g.Module+"."+g.Name)
	}
	globals := res.Globals
	meta := map[string]any{
		"pickle_protocol": res.Protocol,
		"pickle_streams":  res.Streams,
		"pickle_opcodes":  res.Opcodes,
		"pickle_complete": res.Complete,
		"globals":         names,
	}
	if len(globals) > maxListedGlobals {
		globals = globals[:maxListedGlobals]
		names = names[:maxListedGlobals]
		meta["globals"] = names
		meta["globals_truncated"] = true
	}
	meta["imports"] = globals
	rep := Report{Findings: res.Findings, Metadata: meta}
	for _, e := range res.Embedded {
		rep.Embedded = append(rep.Embedded, ByteRange{Offset: e.Offset, Length: e.Length, Via: e.Via, Encoding: e.Encoding})
	}
	return rep, err
}

type ggufScanner struct{}

func (ggufScanner) ScanFile(ctx context.Context, r io.ReaderAt, size int64) (Report, error) {
	f, fs, err := gguf.Scan(ctx, r, size, gguf.Options{})
	if f == nil {
		return Report{Findings: fs}, err
	}
	s := f.Summary
	meta := map[string]any{
		"gguf_version":  f.Version,
		"alignment":     f.Alignment,
		"kv_count":      len(f.KV),
		"tensor_count":  len(f.Tensors),
		"data_offset":   f.DataOffset,
		"gguf_complete": f.Complete,
		"summary":       s,
	}
	if s.ChatTemplate != "" {
		meta["chat_template_bytes"] = len(s.ChatTemplate)
	}
	model := &ModelInfo{
		Name: s.Name, Architecture: s.Architecture, Parameters: s.Parameters,
		Quantization: s.Quantization, ContextLength: s.ContextLength,
		License: s.License, BaseModel: s.BaseModel,
	}
	return Report{Findings: fs, Metadata: meta, Model: model}, err
}

type templateChecker struct{}

func (templateChecker) CheckTemplate(tmpl, arch string) ([]verdict.Finding, error) {
	return gguf.TemplateFindings(tmpl, arch)
}

type archiveWalker struct{}

func (archiveWalker) Walk(ctx context.Context, r io.ReaderAt, size int64, kind string, fn func(Member) error) ([]verdict.Finding, error) {
	return archive.Walk(ctx, r, size, archive.Kind(kind), archive.Options{}, func(m archive.Member) error {
		mm := Member{Name: m.Name, Size: m.Size}
		if m.Open != nil {
			mm.Open = func() (io.ReadCloser, error) {
				rc, err := m.Open()
				if err != nil {
					return nil, mapTooLarge(err)
				}
				return tooLargeReader{rc}, nil
			}
		}
		if m.Raw != nil {
			mm.Raw = m.Raw
		}
		return fn(mm)
	})
}

// mapTooLarge turns the archive package's size-limit error into ours.
func mapTooLarge(err error) error {
	if errors.Is(err, archive.ErrMemberTooLarge) {
		return fmt.Errorf("%w: %w", errMemberTooLarge, err)
	}
	return err
}

type tooLargeReader struct{ io.ReadCloser }

func (r tooLargeReader) Read(p []byte) (int, error) {
	n, err := r.ReadCloser.Read(p)
	if err != nil && err != io.EOF {
		err = mapTooLarge(err)
	}
	return n, err
}
