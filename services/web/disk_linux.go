package web

import "syscall"

// diskUsage reports the used and total bytes of the file system holding
// path.
func diskUsage(path string) (used, total uint64, ok bool) {
	if path == "" {
		return 0, 0, false
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return 0, 0, false
	}
	bs := uint64(st.Bsize)
	total = st.Blocks * bs
	return total - st.Bfree*bs, total, total > 0
}
