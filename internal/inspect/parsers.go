package inspect

import (
	"context"
	"io"

	"github.com/llmfence/llmfence/internal/verdict"
)

// Report is what a format parser learned about one piece of content.
type Report struct {
	// Findings in the content; their Verdict fields decide the file verdict.
	Findings []verdict.Finding
	// Metadata is a format-specific summary for the JSON output. Keep it
	// bounded: no tensor data, no unbounded lists.
	Metadata map[string]any
	// Model describes the model the content holds, when known (BOM).
	Model *ModelInfo
	// External lists files the content references by a path relative to
	// its own directory (ONNX external tensor data). The orchestrator
	// checks that each one, links resolved, stays inside that directory.
	External []string
	// Embedded lists byte ranges of the content that a loader opens as
	// files of their own while loading it (a torch archive passed to
	// torch.storage._load_from_bytes inside a pickle). The orchestrator
	// inspects each one as a member; what they hold decides their verdict.
	Embedded []ByteRange
}

// ByteRange is a part of some content.
type ByteRange struct {
	Offset, Length int64
	Via            string // what opens it
	// Encoding: "" for the bytes as they are; "latin1-of-utf8" for a
	// UTF-8 string whose characters (all below U+0100) are the bytes.
	Encoding string
}

// ModelInfo is what a model file says about the model, for the BOM.
type ModelInfo struct {
	Name          string `json:"name,omitempty"`
	Architecture  string `json:"architecture,omitempty"`
	Parameters    uint64 `json:"parameters,omitempty"`
	Quantization  string `json:"quantization,omitempty"`
	ContextLength uint64 `json:"context_length,omitempty"`
	License       string `json:"license,omitempty"`
	BaseModel     string `json:"base_model,omitempty"`
}

// StreamScanner parses a format that is read front to back (pickle).
type StreamScanner interface {
	ScanStream(ctx context.Context, r io.Reader) (Report, error)
}

// LayoutScanner is implemented by a StreamScanner that also parses
// content a loader reads as pickles interleaved with raw data, by name:
// "torch-tar-storages" and "torch-tar-tensors" (members of a legacy torch
// tar checkpoint).
type LayoutScanner interface {
	ScanLayout(ctx context.Context, r io.Reader, layout string) (Report, error)
}

// FileScanner parses a format that needs random access (GGUF,
// safetensors, ONNX). size is the number of bytes readable from r.
// Malformed content is reported as findings; the error is for I/O only.
type FileScanner interface {
	ScanFile(ctx context.Context, r io.ReaderAt, size int64) (Report, error)
}

// Member is one entry of a container as an ArchiveWalker presents it.
type Member struct {
	Name string
	Size int64 // uncompressed size as far as known, -1 if unknown
	// Raw, if set, reads the member's bytes in place (stored members): no
	// extraction needed.
	Raw io.ReaderAt
	// Open returns the member's content, bounded by the walker's limits.
	Open func() (io.ReadCloser, error)
}

// ArchiveWalker lists the members of a container (zip, tar, 7z, npy,
// compressed stream) and reports container-level tricks as findings.
type ArchiveWalker interface {
	Walk(ctx context.Context, r io.ReaderAt, size int64, kind string, fn func(Member) error) ([]verdict.Finding, error)
}

// TemplateChecker rates a chat template (Jinja in GGUF, Go template in
// Ollama) for the architecture it belongs to. The error means the template
// could not be checked (the checker's own data did not load).
type TemplateChecker interface {
	CheckTemplate(tmpl, arch string) ([]verdict.Finding, error)
}

// KerasChecker rates a Keras v3 config.json. The error means the config
// could not be checked (the checker's own data did not load).
type KerasChecker interface {
	CheckKerasConfig(cfg []byte) ([]verdict.Finding, error)
}

// KerasSniffer is implemented by a KerasChecker that can tell a Keras
// config from other JSON (a JSON object with a class_name, read as
// Keras reads JSON).
type KerasSniffer interface {
	LooksKerasConfig(cfg []byte) bool
}

// Parsers are the format parsers the Inspector dispatches to. A nil parser
// leaves its format recognised but unparsed (the file is hashed and sniffed,
// and an INS-008 finding says it was not checked).
type Parsers struct {
	Pickle      StreamScanner
	GGUF        FileScanner
	Safetensors FileScanner
	ONNX        FileScanner
	Keras       KerasChecker
	Archive     ArchiveWalker
	Template    TemplateChecker
	// SniffPickle, if set, decides whether content (size bytes) is a
	// pickle stream as a loader would read it; it takes precedence over the
	// built-in look at the first bytes.
	SniffPickle func(ctx context.Context, r io.ReaderAt, size int64) bool
	// DetectContainer, if set, names compressed-stream kinds beyond the
	// built-in ones ("lzma", "zstd", "lz4").
	DetectContainer func(head []byte) string
}
