// Package safetensors checks tensor-file formats that are meant to be
// code-free — safetensors, Keras v3 (.keras) configs and ONNX models — for
// the ways a crafted file still hurts: parser confusion, out-of-bounds
// offsets, hidden bytes, and the code-execution hooks these formats do have
// (Keras Lambda layers and custom objects, ONNX external data paths).
//
// The parsers are hand-written on purpose: the input is hostile, so every
// length and count is bounded by the bytes actually present (the safetensors
// header is capped at 100 MB like the reference implementation), JSON is
// walked token by token to catch duplicate keys that encoding/json silently
// merges, nesting depth is bounded, and the ONNX protobuf is read field by
// field from a stream, skipping tensor payloads without buffering them.
// Nothing is loaded, executed or written.
//
// Findings come from embedded, versioned catalogues: findings.yaml (ST-),
// keras.yaml (KERAS-), onnx.yaml (ONNX-); tables (dtypes, Keras module
// allow/deny lists, ONNX domains) are in rules.yaml.
//
// Not covered: legacy Keras HDF5 (.h5) files (their model_config attribute
// can be passed to ScanKerasConfig once extracted by an HDF5 reader);
// the Keras weights file inside .keras; ONNX custom operator libraries
// themselves (only their domains are reported); ONNX functions and
// sparse-tensor value checks; symlinks in external data paths (the
// orchestrator resolves those against the file system).
package safetensors
