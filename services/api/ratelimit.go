package api

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// addrLimiter rate-limits by source address with a bounded table: when it
// is full, idle entries are dropped, and if none are idle the new address
// is limited by a shared overflow bucket, so memory never grows with the
// number of addresses an attacker can use.
type addrLimiter struct {
	mu       sync.Mutex
	every    rate.Limit
	burst    int
	max      int
	entries  map[string]*limEntry
	overflow *rate.Limiter
	now      func() time.Time
}

type limEntry struct {
	lim  *rate.Limiter
	seen time.Time
}

func newAddrLimiter(perMinute, burst, maxEntries int, now func() time.Time) *addrLimiter {
	r := rate.Limit(float64(perMinute) / 60)
	return &addrLimiter{
		every: r, burst: burst, max: maxEntries,
		entries:  map[string]*limEntry{},
		overflow: rate.NewLimiter(r, burst),
		now:      now,
	}
}

// allow reports whether addr may proceed, and if not, how long to wait.
func (l *addrLimiter) allow(addr string) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	e, ok := l.entries[addr]
	if !ok {
		if len(l.entries) >= l.max {
			l.evictIdle(now)
		}
		if len(l.entries) >= l.max {
			return reserve(l.overflow, now)
		}
		e = &limEntry{lim: rate.NewLimiter(l.every, l.burst)}
		l.entries[addr] = e
	}
	e.seen = now
	return reserve(e.lim, now)
}

func reserve(lim *rate.Limiter, now time.Time) (bool, time.Duration) {
	r := lim.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// evictIdle drops entries whose bucket has refilled: forgetting them loses
// nothing.
func (l *addrLimiter) evictIdle(now time.Time) {
	full := time.Duration(float64(l.burst) / float64(l.every) * float64(time.Second))
	for k, e := range l.entries {
		if now.Sub(e.seen) > full {
			delete(l.entries, k)
		}
	}
}
