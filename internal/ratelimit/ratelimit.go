// Package ratelimit holds the program's keyed rate limits: login attempts
// per source address and per account (the API, the broker, the SSH
// console) and packets per device (the device adapters, the edge adapter).
//
// It lives under internal/ because those limits differ in what they count
// but not in what makes them safe to expose to the network: the keys come
// from whoever connects, so the table of keys is bounded, and when it is
// full the entries that no longer hold anything are swept before a new key
// is let in (table). What a full table of live keys means is each limit's
// own choice: Buckets shares one overflow bucket among the newcomers or
// refuses them, Interval refuses them.
//
// Every limit takes its clock as a func() time.Time (nil: time.Now), so
// tests move time with internal/testclock instead of sleeping.
package ratelimit

import (
	"time"

	"golang.org/x/time/rate"
)

// PerMinute is a rate of n events a minute.
func PerMinute(n int) rate.Limit { return rate.Limit(float64(n) / 60) }

// clock returns now, or time.Now where it is nil.
func clock(now func() time.Time) func() time.Time {
	if now == nil {
		return time.Now
	}
	return now
}
