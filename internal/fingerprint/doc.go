// Package fingerprint identifies which self-hosted LLM server stack answers
// on one open TCP endpoint and reads everything that is safe to read from it,
// producing a *service.Service.
//
// Identification is data driven: fingerprints.yaml (embedded, versioned)
// lists per product the read-only requests to make and what the real server
// answers. A small matcher engine evaluates those rules against responses
// that are cached per target, so products share requests. After a product is
// identified, Go code per product enriches the record (models, loaded
// models, system prompts, templates, licences, limits).
//
// The prober is built for hostile targets: every body is capped, compressed
// bodies are bounded after decompression, response headers are capped,
// redirects are never followed, every request has a timeout and the whole
// target has a budget, and connections only ever go to the target address.
// It is passive unless Options.Active is set: it never calls routes that
// pull, push, create, copy, delete or generate.
package fingerprint
