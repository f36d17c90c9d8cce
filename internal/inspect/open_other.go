//go:build !unix

package inspect

import "os"

// openNoBlock opens path read-only (see open_unix.go).
func openNoBlock(path string) (*os.File, error) { return os.Open(path) }
