//go:build race

package datascan

const raceEnabled = true
