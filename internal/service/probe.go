package service

// ProbeDomain is the reserved domain (RFC 2606 .invalid: no site can be
// served from it) every origin llmfence probes with lives in.
const ProbeDomain = ".llmfence.invalid"

// CORSProbeOrigin is the foreign Origin the fingerprint sends to test
// cross-origin access; Service.CORS records what the service answered to
// it, and the judge reads a reflected probe origin (anything under
// ProbeDomain) as a service that allows whatever origin it is sent.
const CORSProbeOrigin = "https://cors-check" + ProbeDomain
