package main

import (
	"fmt"
	"io"
)

// cpioWriter writes the "newc" cpio format the kernel unpacks as its
// initramfs. Device nodes can be written without privileges, which is why
// the image is built with this instead of a file tree and cpio(1).
type cpioWriter struct {
	w     io.Writer
	ino   uint32
	wrote int64
}

const (
	modeDir  = 0o040000
	modeFile = 0o100000
	modeLink = 0o120000
	modeChr  = 0o020000
)

func (c *cpioWriter) header(name string, mode, size, rdevMajor, rdevMinor uint32) error {
	c.ino++
	nlink := uint32(1)
	if mode&0o170000 == modeDir {
		nlink = 2
	}
	// uid, gid 0 (root), mtime 0: the archive is reproducible.
	h := fmt.Sprintf("070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		c.ino, mode, 0, 0, nlink, 0, size, 0, 0, rdevMajor, rdevMinor, len(name)+1, 0)
	if err := c.write([]byte(h + name + "\x00")); err != nil {
		return err
	}
	return c.pad()
}

func (c *cpioWriter) write(b []byte) error {
	n, err := c.w.Write(b)
	c.wrote += int64(n)
	return err
}

func (c *cpioWriter) pad() error {
	if r := c.wrote % 4; r != 0 {
		return c.write(make([]byte, 4-r))
	}
	return nil
}

func (c *cpioWriter) dir(name string) error { return c.header(name, modeDir|0o755, 0, 0, 0) }

func (c *cpioWriter) file(name string, perm uint32, data []byte) error {
	if err := c.header(name, modeFile|perm, uint32(len(data)), 0, 0); err != nil {
		return err
	}
	if err := c.write(data); err != nil {
		return err
	}
	return c.pad()
}

func (c *cpioWriter) symlink(name, target string) error {
	if err := c.header(name, modeLink|0o777, uint32(len(target)), 0, 0); err != nil {
		return err
	}
	if err := c.write([]byte(target)); err != nil {
		return err
	}
	return c.pad()
}

func (c *cpioWriter) charDev(name string, perm, major, minor uint32) error {
	return c.header(name, modeChr|perm, 0, major, minor)
}

func (c *cpioWriter) close() error { return c.header("TRAILER!!!", 0, 0, 0, 0) }
