package sntp

import (
	"time"

	"golang.org/x/sys/unix"
)

// setSystemClock steps CLOCK_REALTIME; it needs CAP_SYS_TIME.
func setSystemClock(t time.Time) error {
	ts := unix.NsecToTimespec(t.UnixNano())
	return unix.ClockSettime(unix.CLOCK_REALTIME, &ts)
}
