//go:build !unix

package spool

import "os"

// lockDir opens the lock file; without flock, one process per spool is
// the operator's promise.
func lockDir(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
}

func unlockDir(f *os.File) error {
	if f == nil {
		return nil
	}
	return f.Close()
}
