// Package layering keeps the import graph in the shape docs/architecture.md
// describes. It has no code: its test lists every package of the module
// with `go list`, checks the layering rules below and keeps the generated
// import graph in docs/architecture.md current (go test ./internal/layering
// -update rewrites it).
//
// # Rules
//
//  1. Nothing under internal/ imports a command (cmd/...) or a benchmark
//     (bench/...): commands wire capabilities together, never the reverse.
//  2. Production code never imports a test helper (a package whose name
//     ends in "test", such as ollamatest or goldentest); only tests and
//     other test helpers do. Generators (package main) may.
//  3. The shared vocabulary imports nothing above it: service, version,
//     datafile and locale import no internal package, and verdict only
//     service and datafile.
//  4. Nothing below the judges and orchestrators imports them: risk, scan,
//     inspect, audit and guard are imported only by cmd, bench, the
//     renderers (report), each other in that direction (inspect and audit
//     may use risk; audit may use inspect; guard/authn may use guard) and
//     packages the rules do not place (new ones).
//  5. scan imports only service: fingerprinting and judging come in
//     through its own small interfaces.
//  6. cmd/llmfence parses flags and wires capabilities: no function there
//     is longer than 60 lines, save the few flag-registration
//     constructors funclen_test.go names, each with its reason.
package layering
