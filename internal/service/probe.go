package service

import "time"

// ProbeDomain is the reserved domain (RFC 2606 .invalid: no site can be
// served from it) every origin llmfence probes with lives in.
const ProbeDomain = ".llmfence.invalid"

// CORSProbeOrigin is the foreign Origin the fingerprint sends to test
// cross-origin access; Service.CORS records what the service answered to
// it, and the judge reads a reflected probe origin (anything under
// ProbeDomain) as a service that allows whatever origin it is sent.
const CORSProbeOrigin = "https://cors-check" + ProbeDomain

// The defaults of talking to one service, in one place: the scanner's
// connect (scan.DefaultOptions), the fingerprint's requests
// (fingerprint.Options) and `llmfence scan --timeout/--target-budget`
// (scanrun.DefaultOptions) all take them from here.
const (
	// DefaultTimeout bounds one TCP connect or one HTTP request.
	DefaultTimeout = 3 * time.Second
	// DefaultTargetBudget bounds all the requests that fingerprint one
	// service.
	DefaultTargetBudget = 30 * time.Second
)
