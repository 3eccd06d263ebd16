package journal

import (
	"errors"
	"os"
	"syscall"
)

// datasync makes f's data durable. fdatasync skips the timestamps an
// fsync would also write (the file size, which a reader needs, is still
// flushed), which saves the file system work on every batch.
func datasync(f *os.File) error {
	conn, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := conn.Control(func(fd uintptr) {
		for {
			serr = syscall.Fdatasync(int(fd))
			if !errors.Is(serr, syscall.EINTR) {
				return
			}
		}
	}); err != nil {
		return err
	}
	return serr
}
