package ratelimit

import (
	"sync"
	"time"
)

// Interval enforces a minimum interval between accepted events of one key
// (a device's packets). An entry older than the interval carries no
// information, so it is what a full table sweeps; if the table is still
// full (more than MaxKeys keys within one interval) new keys are refused
// rather than the table growing.
type Interval struct {
	mu       sync.Mutex
	interval time.Duration
	last     table[time.Time]
	now      func() time.Time
}

// NewInterval accepts one event per key every interval (a negative
// interval disables the limit), tracking at most maxKeys keys; now is the
// clock (nil: time.Now).
func NewInterval(interval time.Duration, maxKeys int, now func() time.Time) *Interval {
	return &Interval{
		interval: interval,
		last:     newTable(maxKeys, func(t *time.Time, now time.Time) bool { return now.Sub(*t) >= interval }),
		now:      clock(now),
	}
}

// Allow records an accepted event of key, or reports how long to wait;
// full says the refusal is due to the table being full.
func (l *Interval) Allow(key string) (ok bool, wait time.Duration, full bool) {
	if l.interval < 0 {
		return true, 0, false // disabled
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if t := l.last.lookup(key); t != nil {
		if d := now.Sub(*t); d < l.interval {
			return false, l.interval - d, false
		}
		*t = now
		return true, 0, false
	}
	t := l.last.admit(key, now)
	if t == nil {
		return false, l.interval, true
	}
	*t = now
	return true, 0, false
}
