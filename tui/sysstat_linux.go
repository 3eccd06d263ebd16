package tui

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// diskUsage reports the used and total bytes of the file system holding
// path.
func diskUsage(path string) (used, total uint64, ok bool) {
	if path == "" {
		path = "/"
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return 0, 0, false
	}
	bs := uint64(st.Bsize)
	total = st.Blocks * bs
	return total - st.Bfree*bs, total, total > 0
}

// memoryUsage reports the machine's used and total memory from
// /proc/meminfo (used = total - available).
func memoryUsage() (used, total uint64, ok bool) {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0, 0, false
	}
	defer f.Close()
	var avail uint64
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 {
			continue
		}
		n, err := strconv.ParseUint(fields[1], 10, 64)
		if err != nil {
			continue
		}
		switch fields[0] {
		case "MemTotal:":
			total = n * 1024
		case "MemAvailable:":
			avail = n * 1024
		}
	}
	if total == 0 || avail > total {
		return 0, 0, false
	}
	return total - avail, total, true
}
