//go:build !linux

package watch

import "io/fs"

// inode is not available here; fingerprints fall back to size, mtime and mode.
func inode(fs.FileInfo) (ino, dev uint64) { return 0, 0 }
