// Package audit provides `llmfence audit`: an inventory of the local LLM
// runtimes on the machine it runs on (Ollama, llama.cpp, vLLM, SGLang, TGI,
// LocalAI, LM Studio, text-generation-webui, KoboldCpp, Jan, GPT4All, Open
// WebUI), how they listen, with which settings, and the model stores on
// disk, rated with the same findings catalogue and CVE data as `llmfence
// scan` (internal/risk) plus the audit's own entries (LLMF-013..017).
//
// # Reading the machine
//
// Everything OS-specific is behind Reader; Linux is implemented (Linux:
// /proc, /etc/passwd, the systemd unit directories). Processes are
// identified from their command line and executable with the data in
// runtimes.yaml; helper processes (Ollama runners, TGI routers) are folded
// into their server with their sockets. Listening sockets are found per
// network namespace: the socket inodes a process holds open
// (/proc/<pid>/fd) are looked up in the TCP table of that process's own
// namespace (/proc/<pid>/net/tcp{,6}), read once per namespace, so runtimes
// in containers are seen with their own addresses, not the auditor's.
// Settings come from the process environment and command line; the
// runtime's systemd unit (found from its control group) fills in what an
// unreadable environment hides, and units of runtimes that are not running
// are reported too.
//
// # Invariants
//
//   - Nothing is written, signalled or traced. The only network traffic is
//     one read-only fingerprint (the scan's requests, internal/fingerprint)
//     per runtime, to the machine's own loopback, and only for runtimes in
//     the auditor's network namespace; a network address is never dialled.
//   - What could not be read is said, never guessed: unreadable fields
//     become notes, the record is marked incomplete, and an incomplete
//     record is never rated "none" (RiskUnknown). A process that exits while
//     it is read is dropped, not reported as unreadable.
//   - Model stores are sized from file metadata; no model file is opened
//     unless --inspect asks for it (Ollama manifests and config blobs, small
//     JSON, are the only files read). Walks never follow a symbolic link
//     into a directory already walked, count every file once, stop at a
//     depth and an entry bound (saying so), and refuse FIFOs.
//   - Every read of /proc, unit files and environment files is bounded; the
//     parsers of /proc/net/tcp and of unit files stream and have fuzz
//     targets. Secret values (API keys, tokens, URL credentials) never
//     reach the output.
//
// The /proc and unit parsers are hand-written rather than taken from
// prometheus/procfs: the audit needs per-field "could not read" reasons, a
// distinction between a process that exited and one that is hidden,
// namespace-aware socket tables, fixture trees for tests, and bounds on
// every read.
package audit
