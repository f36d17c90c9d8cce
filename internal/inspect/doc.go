// Package inspect provides the orchestrator behind `llmfence inspect`: it
// walks files and directories, hashes every file once (SHA-256, streamed with
// a 1 MiB buffer so memory does not grow with file size), decides each file's
// format from its bytes — never from its name — and dispatches it to the
// format parsers (pickle, GGUF, safetensors, ONNX, Keras, archives). Archive
// members are inspected recursively up to a depth limit; every finding says
// which member it is in. The result per file is one Result: path, format,
// size, sha256, verdict, findings and a format-specific metadata summary.
//
// It also verifies a local Ollama model store (manifests, blob digests,
// missing and orphaned blobs) and rates each model's system prompt and
// lineage with the same judge `llmfence scan` uses, and writes a CycloneDX
// ML-BOM of what it inspected.
//
// The parsers are consumed through small interfaces defined here (Parsers),
// so the orchestration is testable with fakes and independent of any one
// parser's API. Nothing inspected is ever loaded, executed or modified: files
// are opened read-only and parsed by hand-written, bounded parsers, because
// the input is hostile by assumption.
//
// Unknown formats: plain UTF-8 text (READMEs, JSON configs, tokenizer
// files) is format "text", clean, without findings. A binary file no parser
// recognises is reported clean with an info finding (INS-002), unless a pickle stream that imports Python
// callables is found starting within its first megabyte; then it is
// suspicious (INS-003) and the pickle's own findings are added. Random bytes
// rarely form such a stream, while polyglot files that hide a pickle behind
// another header are a known scanner bypass.
package inspect
