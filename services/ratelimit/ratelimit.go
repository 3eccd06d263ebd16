// Package ratelimit limits events per source address with a bounded table.
package ratelimit

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Addr rate-limits by source address with a bounded table: when it is
// full, idle entries are dropped, and if none are idle the new address is
// limited by a shared overflow bucket, so memory never grows with the
// number of addresses an attacker can use.
type Addr struct {
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

// NewAddr allows perMinute events per address, burst at once, tracking at
// most maxEntries addresses; now is the clock (nil: time.Now).
func NewAddr(perMinute, burst, maxEntries int, now func() time.Time) *Addr {
	if now == nil {
		now = time.Now
	}
	r := rate.Limit(float64(perMinute) / 60)
	return &Addr{
		every: r, burst: burst, max: maxEntries,
		entries:  map[string]*limEntry{},
		overflow: rate.NewLimiter(r, burst),
		now:      now,
	}
}

// Allow counts an event of addr and reports whether it may proceed, and
// if not, how long to wait.
func (l *Addr) Allow(addr string) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	return reserve(l.limiter(addr, now), now)
}

// Blocked reports, without counting anything, whether addr has used up
// its events; callers that count only failures ask this first and call
// Allow after a failure.
func (l *Addr) Blocked(addr string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	e, ok := l.entries[addr]
	if !ok {
		return len(l.entries) >= l.max && l.overflow.TokensAt(l.now()) < 1
	}
	return e.lim.TokensAt(l.now()) < 1
}

// Check reports, without counting anything, whether addr may have an
// event now, and if not, how long until it may.
func (l *Addr) Check(addr string) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	lim := l.overflow
	if e, ok := l.entries[addr]; ok {
		lim = e.lim
	} else if len(l.entries) < l.max {
		return true, 0
	}
	tokens := lim.TokensAt(now)
	if tokens >= 1 {
		return true, 0
	}
	return false, time.Duration((1 - tokens) / float64(l.every) * float64(time.Second))
}

// limiter returns addr's bucket, creating it; callers hold mu.
func (l *Addr) limiter(addr string, now time.Time) *rate.Limiter {
	e, ok := l.entries[addr]
	if !ok {
		if len(l.entries) >= l.max {
			l.evictIdle(now)
		}
		if len(l.entries) >= l.max {
			return l.overflow
		}
		e = &limEntry{lim: rate.NewLimiter(l.every, l.burst)}
		l.entries[addr] = e
	}
	e.seen = now
	return e.lim
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
func (l *Addr) evictIdle(now time.Time) {
	full := time.Duration(float64(l.burst) / float64(l.every) * float64(time.Second))
	for k, e := range l.entries {
		if now.Sub(e.seen) > full {
			delete(l.entries, k)
		}
	}
}
