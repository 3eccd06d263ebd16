package initd

import (
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// The watchdog resets the machine when the kernel or init stop running:
// an appliance far away must come back from a hang by itself, and on the
// trial boot of an update the reset spends one of the new slot's tries,
// so a version that hangs is rolled back like one that crashes
// (watchTrial covers piot run).
const (
	watchdogDev = "/dev/watchdog"
	// watchdogTimeout leaves room for a slow emulated or SD-card machine
	// to be busy for a while without being reset.
	watchdogTimeout = 60 * time.Second
	watchdogPet     = 10 * time.Second
)

// startWatchdog opens the hardware watchdog the image's modules found
// (i6300esb in QEMU and some servers, sp5100_tco on AMD boards; a board
// kernel has its own built in), or else the kernel's softdog, which
// covers a hung init but not a hung kernel. It returns what it armed, ""
// when nothing could be.
func (in *Init) startWatchdog() string {
	if _, err := os.Stat("/sys/class/watchdog/watchdog0"); err != nil {
		in.kmods.loadNamed("softdog")
	}
	// devtmpfs makes the node a moment after the driver registered.
	var f *os.File
	var err error
	for range 20 {
		if f, err = os.OpenFile(watchdogDev, os.O_WRONLY, 0); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		in.log.Warn("no watchdog: a hang needs a power cycle", "err", err)
		return ""
	}
	name := "watchdog"
	if info, err := unix.IoctlGetWatchdogInfo(int(f.Fd())); err == nil {
		name = strings.TrimRight(string(info.Identity[:]), "\x00")
	}
	// A device that cannot take our timeout keeps its own; petting every
	// watchdogPet is well inside any usual one.
	if err := unix.IoctlSetPointerInt(int(f.Fd()), unix.WDIOC_SETTIMEOUT, int(watchdogTimeout.Seconds())); err != nil {
		in.log.Warn("watchdog timeout not set", "watchdog", name, "err", err)
	}
	in.log.Info("watchdog armed", "watchdog", name, "timeout", watchdogTimeout)
	go func() {
		// f stays open (and referenced, or its finalizer would close it)
		// for as long as init runs.
		t := time.NewTicker(watchdogPet)
		for range t.C {
			if err := unix.IoctlWatchdogKeepalive(int(f.Fd())); err != nil {
				in.log.Error("watchdog keepalive", "err", err)
			}
		}
	}()
	return name
}
