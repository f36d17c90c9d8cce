// Package scanrun runs one scan from start to end as a recorded run: it
// validates the request before the first packet, creates the run in the
// store, scans (internal/scan) with fingerprinting (internal/fingerprint)
// and judging (internal/risk), saves results in batches, keeps the run's
// heartbeat, tracks the worst risk, and ends the run as finished, failed or
// interrupted. `llmfence scan`, `llmfence demo`, the workers of `llmfence
// serve` and tests call it; nothing here draws a table or picks an exit
// status.
//
// # Nothing acknowledged is lost
//
// Every service handed to OnService (the JSON Lines output) is saved to the
// store before Run returns, also when the scan is interrupted: batches are
// written with a context that survives the caller's cancellation, and a
// batch the store refuses (the database went away) is retried with backoff
// for up to Options.SaveRetryFor, holding the scan back meanwhile, before
// the run fails. The run is then ended as interrupted (Ctrl-C, SIGTERM, or
// another process marked it so), failed (an error) or finished.
//
// # Before the first packet
//
// Prepare checks the options and every target, leaves out the reserved
// ranges of the scope guard (unless Options.AllowReserved), refuses host
// names under Options.NoDNS, and refuses a target set with nothing left to
// scan; all of these are *UsageError (internal/cli's one usage-error type).
// Plan is the dry run: the set's size, ranges and ports, what the guard
// left out, and bounds on the connect sweep's duration (Estimate), with
// nothing sent and no store.
//
// # Defaults
//
// DefaultOptions holds every default in one place; flags, serve's
// schedules and tests start from it.
package scanrun
