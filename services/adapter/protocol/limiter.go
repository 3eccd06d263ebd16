package protocol

import (
	"sync"
	"time"
)

// limiter enforces a minimum interval between accepted packets of one
// device. It is safe for concurrent use and bounded: entries older than the
// interval carry no information and are swept when the table is full; if it
// is still full (more than max devices within one interval) new devices are
// refused rather than the table growing.
type limiter struct {
	mu       sync.Mutex
	interval time.Duration
	max      int
	last     map[string]time.Time
}

func newLimiter(interval time.Duration, max int) *limiter {
	return &limiter{interval: interval, max: max, last: map[string]time.Time{}}
}

// allow records an accepted packet of device at now, or reports how long to
// wait; full says the refusal is due to the table being full.
func (l *limiter) allow(device string, now time.Time) (ok bool, wait time.Duration, full bool) {
	if l.interval < 0 {
		return true, 0, false // disabled
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if t, seen := l.last[device]; seen {
		if d := now.Sub(t); d < l.interval {
			return false, l.interval - d, false
		}
		l.last[device] = now
		return true, 0, false
	}
	if len(l.last) >= l.max {
		for k, t := range l.last {
			if now.Sub(t) >= l.interval {
				delete(l.last, k)
			}
		}
		if len(l.last) >= l.max {
			return false, l.interval, true
		}
	}
	l.last[device] = now
	return true, 0, false
}
