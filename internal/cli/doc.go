// Package cli provides what every llmfence command shares at its edge: the
// one usage-error type, the one mapping from an error to the process exit
// status, and flag value types (durations with day and week units, fixed
// sets of words) that refuse bad input when the flag is parsed, naming the
// flag.
//
// # Exit status
//
// ExitCode is the only place an error becomes an exit status:
//
//	0    done; nothing at or above the --fail-on threshold
//	1    findings at or above --fail-on (a *FindingsError)
//	2    bad usage (a *UsageError), unreadable input, or any other failure
//	     that prevented a complete answer
//	130  interrupted by SIGINT (Ctrl-C)
//	143  interrupted by SIGTERM
//
// Long-running servers return nil after a graceful shutdown, so they exit 0.
// Commands never pick a number themselves: they return a *UsageError, a
// *FindingsError, or an ordinary error.
//
// # Durations
//
// ParseDuration accepts Go durations ("90s", "1h30m") plus "d" (24 hours)
// and "w" (7 days), alone or mixed ("1w2d", "1.5d"). A Duration flag value
// applies a Rule (Positive, NonNegative) at parse time, so "--since -5h" or
// "--target-budget 0" fail before the command runs.
package cli
