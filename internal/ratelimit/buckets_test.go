package ratelimit

import (
	"fmt"
	"testing"
	"time"

	"github.com/piot-appliance/piot/internal/testclock"
)

func newTestBuckets(clk *testclock.Clock, maxKeys int, whenFull WhenFull) *Buckets {
	// 60 a minute, 2 at once: a token a second, empty to full in 2s.
	return NewBuckets(BucketsConfig{Rate: PerMinute(60), Burst: 2, MaxKeys: maxKeys, WhenFull: whenFull, Now: clk.Now})
}

func TestBucketsBurstThenRate(t *testing.T) {
	clk := testclock.New(time.Unix(0, 0))
	b := newTestBuckets(clk, 10, Share)
	for i := range 2 {
		if ok, _ := b.Allow("a"); !ok {
			t.Fatalf("event %d of the burst refused", i+1)
		}
	}
	if ok, wait := b.Allow("a"); ok || wait != time.Second {
		t.Fatalf("third event: ok %v wait %v", ok, wait)
	}
	if ok, _ := b.Allow("b"); !ok {
		t.Fatal("another key is limited by the first")
	}
	clk.Advance(time.Second)
	if ok, _ := b.Allow("a"); !ok {
		t.Fatal("event after a token refilled refused")
	}
}

func TestBucketsCheckAndBlockedCountNothing(t *testing.T) {
	clk := testclock.New(time.Unix(0, 0))
	b := newTestBuckets(clk, 10, Share)
	for range 5 {
		if ok, _ := b.Check("a"); !ok || b.Blocked("a") {
			t.Fatal("asking counted an event")
		}
	}
	b.Allow("a")
	b.Allow("a")
	if !b.Blocked("a") {
		t.Fatal("not blocked after the burst")
	}
	clk.Advance(250 * time.Millisecond)
	if ok, wait := b.Check("a"); ok || wait != 750*time.Millisecond {
		t.Fatalf("Check: ok %v wait %v", ok, wait)
	}
}

// TestBucketsFullTableShares: newcomers to a table full of live keys share
// one overflow bucket; once a key's bucket has refilled it is forgotten
// and a newcomer gets a bucket of its own.
func TestBucketsFullTableShares(t *testing.T) {
	clk := testclock.New(time.Unix(0, 0))
	b := newTestBuckets(clk, 2, Share)
	b.Allow("a")
	b.Allow("b")
	for i, key := range []string{"c", "d"} {
		if ok, _ := b.Allow(key); !ok {
			t.Fatalf("newcomer %d refused with the overflow bucket not empty", i+1)
		}
	}
	if ok, _ := b.Allow("e"); ok || !b.Blocked("f") {
		t.Fatal("newcomers beyond the overflow burst let through")
	}
	if ok, _ := b.Allow("a"); !ok {
		t.Fatal("a known key is limited by the overflow bucket")
	}
	clk.Advance(2*time.Second + time.Millisecond)
	b.Allow("a")
	if ok, _ := b.Allow("g"); !ok {
		t.Fatal("a newcomer refused after b was forgotten")
	}
	if len(b.entries.entries) > 2 {
		t.Fatalf("table grew to %d", len(b.entries.entries))
	}
}

// TestBucketsFullTableRefuses: with Refuse, newcomers to a table full of
// live keys are turned away, and the known keys keep their limits.
func TestBucketsFullTableRefuses(t *testing.T) {
	clk := testclock.New(time.Unix(0, 0))
	b := newTestBuckets(clk, 2, Refuse)
	b.Allow("a")
	b.Allow("b")
	if ok, _ := b.Allow("c"); ok || !b.Blocked("c") {
		t.Fatal("a newcomer let into a full table")
	}
	if ok, _ := b.Check("c"); ok {
		t.Fatal("Check lets a newcomer into a full table")
	}
	if ok, _ := b.Allow("a"); !ok {
		t.Fatal("a known key refused while the table is full")
	}
	if ok, _ := b.Allow("a"); ok {
		t.Fatal("a known key's limit was reset")
	}
	clk.Advance(2*time.Second + time.Millisecond)
	b.Allow("a")
	if ok, _ := b.Allow("c"); !ok {
		t.Fatal("a newcomer refused after b was forgotten")
	}
}

func TestBucketsManyKeysBounded(t *testing.T) {
	clk := testclock.New(time.Unix(0, 0))
	b := newTestBuckets(clk, 100, Refuse)
	for i := range 1000 {
		b.Allow(fmt.Sprint(i))
		clk.Advance(10 * time.Millisecond)
	}
	if n := len(b.entries.entries); n > 100 {
		t.Fatalf("table grew to %d", n)
	}
}
