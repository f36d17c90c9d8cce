// Package meter provides token accounting and budget enforcement for the
// llmfence guard, on both sides of one proxied inference request, for
// Ollama's native API and for OpenAI-compatible servers (vLLM, llama.cpp,
// Ollama's /v1, TGI, LocalAI, ...).
//
// Request side, [PrepareRequest] validates the client's JSON body, extracts
// the model and whether the answer will stream, and rewrites the body the
// upstream will see:
//
//   - Ollama: options.num_predict is clamped to the caller's token limit
//     (absent, null, zero and negative values mean "unlimited" to Ollama and
//     are replaced by the limit).
//   - OpenAI: max_tokens is always set (and max_completion_tokens and
//     llama.cpp's n_predict, when present, clamped) to the limit divided by
//     the number of choices requested (n / best_of); for streams,
//     stream_options.include_usage is switched on so the upstream reports
//     usage, and RequestInfo.InjectedUsage records that the client did not
//     ask for it.
//
// The body is always re-encoded from the parsed top-level object, so the
// upstream sees exactly what the meter interpreted: duplicate keys and keys
// that differ from a field the meter reads only by letter case (which Go
// servers such as Ollama would accept as that field) are refused. Unknown
// fields are preserved verbatim, in their original order; only the fields
// the meter rewrites change (nested objects the meter edits, options and
// stream_options, keep their other members and order too).
//
// Response side, a [Meter] is the writer the proxy copies the upstream body
// through. It parses Ollama NDJSON lines, OpenAI server-sent events and
// non-streaming JSON bodies, relays each event to the client as soon as it
// is complete (flushing after every event), and counts the completion
// tokens relayed: from the upstream's own usage fields when present
// (Ollama's eval_count on the final done:true object, OpenAI usage chunks,
// vLLM's continuous usage), otherwise as a running estimate of one token per
// content-bearing chunk. When relaying the next chunk would exceed the
// budget, the meter withholds it, writes a final error event in the
// client's dialect, and reports that the upstream generation must be
// cancelled. A client that disconnects is billed for what was relayed.
// Lines and events are bounded (1 MiB by default), so whole streams are
// never buffered.
package meter
