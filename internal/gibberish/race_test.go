//go:build race

package gibberish

// raceEnabled: under the race detector (10x slower) the rate tests use a
// quarter of their samples.
const raceEnabled = true
