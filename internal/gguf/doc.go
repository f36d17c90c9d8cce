// Package gguf provides a strict, streaming checker for GGUF model files
// (versions 2 and 3) and an analyser for the Jinja chat templates they carry.
//
// Scan reads the header, the metadata key/value pairs and the tensor
// descriptions of a file through an io.ReaderAt and reports every deviation
// from the GGUF specification as a verdict.Finding from the package's own
// embedded catalogue (IDs GGUF-nnn, findings.yaml): malformed files get
// findings with verdict invalid, known exploit shapes (the integer and
// dimension overflows behind llama.cpp's GGUF CVEs, nested-array bombs,
// chat-template sandbox escapes) verdict malicious. It also summarises what
// the model is: architecture, parameter count, quantisation, context length,
// licence, base model and lineage.
//
// The parser is hand-written rather than built on an existing GGUF library
// because its input is hostile: every count and length is checked against
// the bytes that are really left in the file before anything is read or
// allocated, arithmetic is overflow-checked, offsets are never trusted,
// array nesting is bounded and tensor data is never read. A file that claims
// 2^40 tensors costs kilobytes of memory, not terabytes. Nothing
// in the file is loaded, executed or rendered, and the file is only read.
//
// Format facts (ggml types, file types, keys with fixed types) and
// chat-template knowledge (family fingerprints, instruction patterns) are
// versioned data in tables.yaml and templates.yaml.
package gguf
