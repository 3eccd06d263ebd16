package initd

import "golang.org/x/sys/unix"

func ioctlGetTermios(fd int) (*unix.Termios, error) { return unix.IoctlGetTermios(fd, unix.TCGETS) }
