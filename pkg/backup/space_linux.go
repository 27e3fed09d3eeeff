package backup

import "golang.org/x/sys/unix"

// freeSpace is the room an unprivileged writer has on the volume holding
// dir, and its block size; ok is false when it cannot be told.
func freeSpace(dir string) (free, block int64, ok bool) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil || st.Bsize <= 0 {
		return 0, 0, false
	}
	return int64(st.Bavail) * st.Bsize, st.Bsize, true
}
