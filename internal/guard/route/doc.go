// Package route provides the routing decision of the llmfence guard gateway:
// for one request (method and raw path) it says whether the request may reach
// the upstream LLM server, as which class (listing, inference or admin), and
// the exact normalised path to forward.
//
// The route table is data: routes.yaml (embedded, versioned) lists per
// upstream kind (ollama, vllm, llamacpp, openai) the routes a client may use,
// each citing the upstream source file that registers it. Anything not listed
// is denied.
//
// Decisions are made on the path the upstream will actually route, never on
// the raw one. Normalise percent-decodes once and refuses (400) encoded
// slashes, backslashes, dots and percent signs, raw backslashes, control
// characters, NUL, non-ASCII bytes, fragments and paths that climb above the
// root; it collapses duplicate slashes, resolves "." and "..", and drops a
// trailing slash (gin redirects /api/pull/ to /api/pull, Starlette does the
// same). Matching is case-sensitive like every upstream router; a path that
// matches a route only when case is ignored is denied rather than passed on.
// The proxy must forward Decision.Path (as URL.Path, letting net/url escape
// it), never the raw path.
//
// ModelAllowed applies per-key model globs and refuses Ollama cloud models
// (":cloud" or a "-cloud" tag suffix) unless the key allows them.
package route
