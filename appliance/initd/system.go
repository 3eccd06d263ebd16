package initd

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// mountEssentials mounts the kernel's file systems; the initramfs has
// only empty directories for them.
func mountEssentials() error {
	for _, m := range []struct {
		src, dst, typ string
		flags         uintptr
		data          string
	}{
		{"proc", "/proc", "proc", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, ""},
		{"sysfs", "/sys", "sysfs", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, ""},
		{"devtmpfs", "/dev", "devtmpfs", unix.MS_NOSUID, "mode=0755"},
		{"devpts", "/dev/pts", "devpts", unix.MS_NOSUID | unix.MS_NOEXEC, "gid=5,mode=0620,ptmxmode=0666"},
		{"tmpfs", "/run", "tmpfs", unix.MS_NOSUID | unix.MS_NODEV, "mode=0755,size=32m"},
		{"tmpfs", "/tmp", "tmpfs", unix.MS_NOSUID | unix.MS_NODEV, "mode=1777,size=64m"},
	} {
		if err := os.MkdirAll(m.dst, 0o755); err != nil {
			return err
		}
		err := unix.Mount(m.src, m.dst, m.typ, m.flags, m.data)
		if err != nil && !errors.Is(err, unix.EBUSY) {
			return fmt.Errorf("mount %s: %w", m.dst, err)
		}
	}
	// The boot counter and slot marks of A/B updates live in EFI
	// variables; absent on BIOS and the Pi.
	if _, err := os.Stat("/sys/firmware/efi/efivars"); err == nil {
		_ = unix.Mount("efivarfs", "/sys/firmware/efi/efivars", "efivarfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "")
	}
	return os.MkdirAll(runDir, 0o755)
}

// quietKernel keeps kernel messages below errors off the console, where
// the banner and the local console live.
func quietKernel() {
	_ = os.WriteFile("/proc/sys/kernel/printk", []byte("3 4 1 3"), 0o644)
	// Ctrl-Alt-Del becomes SIGINT to init, which reboots cleanly.
	_ = unix.Reboot(unix.LINUX_REBOOT_CMD_CAD_OFF)
}

// setHostname sets the kernel's host name.
func setHostname(name string) error {
	if err := unix.Sethostname([]byte(name)); err != nil {
		return fmt.Errorf("sethostname: %w", err)
	}
	return nil
}
