package ratelimit

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// WhenFull is what Buckets gives a new key while its table is full of keys
// that are still limited.
type WhenFull int

const (
	// Share limits all newcomers together with one overflow bucket: an
	// attacker with many addresses is slowed down as one, and a legitimate
	// newcomer still gets through once in a while (the API's and the
	// broker's login limits).
	Share WhenFull = iota
	// Refuse turns newcomers away rather than forget (and so reset) the
	// limits of the busy keys (the SSH console's).
	Refuse
)

// BucketsConfig configures Buckets.
type BucketsConfig struct {
	// Rate and Burst are each key's token bucket: Burst events at once,
	// then Rate events a second.
	Rate  rate.Limit
	Burst int
	// MaxKeys bounds the table.
	MaxKeys int
	// WhenFull is what a new key gets while the table is full.
	WhenFull WhenFull
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Buckets is a token bucket per key (a source address, an account name).
// A key's entry is forgotten once its bucket has refilled, which loses
// nothing; see WhenFull for a table full of keys that are still limited.
type Buckets struct {
	mu       sync.Mutex
	every    rate.Limit
	burst    int
	refill   time.Duration // from empty to full
	entries  table[bucket]
	overflow *rate.Limiter // nil: Refuse
	now      func() time.Time
}

type bucket struct {
	lim  *rate.Limiter
	seen time.Time
}

// NewBuckets builds the limit.
func NewBuckets(cfg BucketsConfig) *Buckets {
	b := &Buckets{
		every:  cfg.Rate,
		burst:  cfg.Burst,
		refill: time.Duration(float64(cfg.Burst) / float64(cfg.Rate) * float64(time.Second)),
		now:    clock(cfg.Now),
	}
	b.entries = newTable(cfg.MaxKeys, func(e *bucket, now time.Time) bool { return now.Sub(e.seen) > b.refill })
	if cfg.WhenFull == Share {
		b.overflow = rate.NewLimiter(cfg.Rate, cfg.Burst)
	}
	return b
}

// Allow counts an event of key and reports whether it may proceed, and
// if not, how long to wait.
func (b *Buckets) Allow(key string) (bool, time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	lim := b.limiter(key, now)
	if lim == nil {
		return false, b.wait(0)
	}
	return reserve(lim, now)
}

// Blocked reports, without counting anything, whether key has used up
// its events; callers that count only failures ask this first and call
// Allow after a failure.
func (b *Buckets) Blocked(key string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	lim, fresh := b.peek(key)
	if fresh {
		return false
	}
	return lim == nil || lim.TokensAt(b.now()) < 1
}

// Check reports, without counting anything, whether key may have an
// event now, and if not, how long until it may.
func (b *Buckets) Check(key string) (bool, time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	lim, fresh := b.peek(key)
	if fresh {
		return true, 0
	}
	if lim == nil {
		return false, b.wait(0)
	}
	tokens := lim.TokensAt(b.now())
	if tokens >= 1 {
		return true, 0
	}
	return false, b.wait(tokens)
}

// wait is how long a bucket holding tokens takes to hold one.
func (b *Buckets) wait(tokens float64) time.Duration {
	return time.Duration((1 - tokens) / float64(b.every) * float64(time.Second))
}

// peek returns the bucket an event of key would be counted in, without
// creating or sweeping anything: key's own, or none and fresh when a new
// one would be made, or the overflow bucket (nil with Refuse) when the
// table is full. Callers hold mu.
func (b *Buckets) peek(key string) (lim *rate.Limiter, fresh bool) {
	if e := b.entries.lookup(key); e != nil {
		return e.lim, false
	}
	if !b.entries.full() {
		return nil, true
	}
	return b.overflow, false
}

// limiter returns key's bucket, creating it, or the overflow bucket (nil
// with Refuse) when the table is full of live keys; callers hold mu.
func (b *Buckets) limiter(key string, now time.Time) *rate.Limiter {
	e := b.entries.lookup(key)
	if e == nil {
		if e = b.entries.admit(key, now); e == nil {
			return b.overflow
		}
		e.lim = rate.NewLimiter(b.every, b.burst)
	}
	e.seen = now
	return e.lim
}

// reserve takes a token if one is there now; otherwise it takes nothing
// and says how long until one is.
func reserve(lim *rate.Limiter, now time.Time) (bool, time.Duration) {
	r := lim.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}
