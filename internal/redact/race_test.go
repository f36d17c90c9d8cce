//go:build race

package redact

// raceEnabled: under the race detector the differential tests compare less text.
const raceEnabled = true
