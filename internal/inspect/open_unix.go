//go:build unix

package inspect

import (
	"os"
	"syscall"
)

// openNoBlock opens path read-only without blocking on a FIFO or a
// device that waits for a peer (O_NONBLOCK), and without making a terminal
// the controlling one (O_NOCTTY). Regular files read as usual.
func openNoBlock(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
}
