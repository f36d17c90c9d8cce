//go:build race

package meter

// raceEnabled: the race detector allocates on its own; allocation counts
// are only checked without it.
const raceEnabled = true
