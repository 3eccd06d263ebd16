package sshserver

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// addrLimiter is a token bucket per source address. Idle buckets are
// forgotten so a scan from many addresses cannot grow it without bound.
type addrLimiter struct {
	limit rate.Limit
	burst int

	mu      sync.Mutex
	buckets map[string]*bucket
	swept   time.Time
}

type bucket struct {
	lim  *rate.Limiter
	seen time.Time
}

const (
	limiterIdle = 10 * time.Minute
	limiterMax  = 4096
)

func newAddrLimiter(limit rate.Limit, burst int) *addrLimiter {
	return &addrLimiter{limit: limit, burst: burst, buckets: map[string]*bucket{}, swept: time.Now()}
}

func (l *addrLimiter) allow(addr string) bool {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.buckets) >= limiterMax || now.Sub(l.swept) > limiterIdle {
		for k, b := range l.buckets {
			if now.Sub(b.seen) > limiterIdle {
				delete(l.buckets, k)
			}
		}
		l.swept = now
		if len(l.buckets) >= limiterMax {
			// Still full of active addresses: refuse newcomers rather than
			// forget (and so reset) the limits of busy ones.
			return false
		}
	}
	b, ok := l.buckets[addr]
	if !ok {
		b = &bucket{lim: rate.NewLimiter(l.limit, l.burst)}
		l.buckets[addr] = b
	}
	b.seen = now
	return b.lim.AllowN(now, 1)
}
