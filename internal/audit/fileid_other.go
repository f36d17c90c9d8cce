//go:build !unix

package audit

import "io/fs"

// fileID identifies a file across links; without inode numbers links are
// not told apart (loops are still bounded by the walker's depth limit).
type fileID struct{ dev, ino uint64 }

func idOf(fs.FileInfo) (fileID, bool) { return fileID{}, false }

func ownerOf(fs.FileInfo) (int, bool) { return -1, false }
