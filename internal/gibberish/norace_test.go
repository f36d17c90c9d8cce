//go:build !race

package gibberish

const raceEnabled = false
