package watch

import (
	"io/fs"
	"syscall"
)

// inode returns the inode and device numbers of fi, so a file replaced by another one of the
// same size and mtime still counts as changed.
func inode(fi fs.FileInfo) (ino, dev uint64) {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Ino, st.Dev
	}
	return 0, 0
}
