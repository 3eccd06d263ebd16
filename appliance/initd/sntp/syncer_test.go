package sntp

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"
)

// fakeClock stands in for CLOCK_REALTIME: it runs at the host's pace from
// wherever it was last set, so the host's clock is never touched.
type fakeClock struct {
	mu   sync.Mutex
	base time.Time // the clock's reading at since
	// since is a host time with monotonic reading.
	since time.Time
	sets  []time.Time
	err   error
}

func newFakeClock(t time.Time) *fakeClock { return &fakeClock{base: t, since: time.Now()} }

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.base.Add(time.Since(c.since))
}

func (c *fakeClock) set(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return c.err
	}
	c.base, c.since = t, time.Now()
	c.sets = append(c.sets, t)
	return nil
}

func (c *fakeClock) setCalls() []time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Time(nil), c.sets...)
}

var build = time.Date(2026, 1, 15, 0, 0, 0, 0, time.UTC)

func testSyncer(t *testing.T, clock *fakeClock, servers ...string) *Syncer {
	return &Syncer{
		Servers:       servers,
		NotBefore:     build,
		FallbackAfter: 300 * time.Millisecond,
		Interval:      100 * time.Millisecond,
		Retry:         50 * time.Millisecond,
		Timeout:       200 * time.Millisecond,
		Log:           slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug})),
		SetClock:      clock.set,
		now:           clock.now,
	}
}

// start runs s until the test ends, with readers hammering Synced and
// LastSync as initd's status page would, for the race detector.
func start(t *testing.T, s *Syncer) {
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	wg.Go(func() { s.Run(ctx) })
	for range 2 {
		wg.Go(func() {
			for ctx.Err() == nil {
				if s.Synced() && s.LastSync().IsZero() {
					t.Error("Synced without LastSync")
				}
				time.Sleep(time.Millisecond)
			}
		})
	}
	t.Cleanup(func() { cancel(); wg.Wait() })
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestSyncerSetsClockAndRepeats(t *testing.T) {
	r := newResponder(t)
	r.set(2*time.Hour, nil)
	clock := newFakeClock(time.Now())
	// The first server refuses, the second is silent: the third answers.
	silent := newResponder(t)
	silent.silent.Store(true)
	s := testSyncer(t, clock, refusedAddr(t), silent.addr(), r.addr())
	start(t, s)

	waitFor(t, "sync", s.Synced)
	sets := clock.setCalls()
	if len(sets) != 1 {
		t.Fatalf("clock set %d times, want once", len(sets))
	}
	if d := sets[0].Sub(time.Now().Add(2 * time.Hour)).Abs(); d > 500*time.Millisecond {
		t.Errorf("clock set %v off the server's time", d)
	}
	if d := s.LastSync().Sub(clock.now()).Abs(); d > time.Second {
		t.Errorf("LastSync %v, clock %v", s.LastSync(), clock.now())
	}
	// Every Interval the servers are asked again; the clock now agrees, so
	// it is not set again.
	n := r.queries.Load()
	waitFor(t, "two more rounds", func() bool { return r.queries.Load() >= n+2 })
	if got := len(clock.setCalls()); got != 1 {
		t.Errorf("clock set %d times while in sync", got)
	}
	if silent.queries.Load() < 2 {
		t.Errorf("silent server asked %d times, want it tried every round", silent.queries.Load())
	}
}

func TestSyncerLeavesSmallOffset(t *testing.T) {
	r := newResponder(t)
	r.set(50*time.Millisecond, nil)
	clock := newFakeClock(time.Now())
	s := testSyncer(t, clock, r.addr())
	start(t, s)
	waitFor(t, "sync", s.Synced)
	if sets := clock.setCalls(); len(sets) != 0 {
		t.Errorf("clock set for a 50 ms offset: %v", sets)
	}
}

func TestSyncerFallback(t *testing.T) {
	r := newResponder(t)
	r.silent.Store(true)
	clock := newFakeClock(time.Unix(0, 0)) // booted without RTC
	s := testSyncer(t, clock, refusedAddr(t), r.addr())
	// Long Retry: the fallback must come on time even while Run waits.
	s.Retry = time.Hour
	began := time.Now()
	start(t, s)

	waitFor(t, "fallback", func() bool { return len(clock.setCalls()) > 0 })
	if el := time.Since(began); el < 300*time.Millisecond || el > 2*time.Second {
		t.Errorf("fallback after %v, want 300 ms", el)
	}
	if sets := clock.setCalls(); !sets[0].Equal(build) {
		t.Errorf("fallback set %v, want the build time %v", sets[0], build)
	}
	if s.Synced() || !s.LastSync().IsZero() {
		t.Error("fallback counted as a sync")
	}
	if !Plausible(clock.now(), build) {
		t.Errorf("clock %v still implausible", clock.now())
	}
}

func TestSyncerFallbackThenSync(t *testing.T) {
	r := newResponder(t)
	r.silent.Store(true)
	clock := newFakeClock(time.Unix(0, 0))
	s := testSyncer(t, clock, r.addr())
	start(t, s)
	waitFor(t, "fallback", func() bool { return len(clock.setCalls()) == 1 })
	r.silent.Store(false) // the network came up
	waitFor(t, "sync", s.Synced)
	sets := clock.setCalls()
	if len(sets) != 2 || time.Until(sets[1]).Abs() > 500*time.Millisecond {
		t.Errorf("clock sets %v, want build time then now", sets)
	}
}

func TestSyncerNoFallbackWhenPlausible(t *testing.T) {
	r := newResponder(t)
	r.silent.Store(true)
	clock := newFakeClock(build.AddDate(0, 2, 0)) // an RTC that kept time
	s := testSyncer(t, clock, r.addr())
	start(t, s)
	time.Sleep(600 * time.Millisecond)
	if sets := clock.setCalls(); len(sets) != 0 {
		t.Errorf("plausible clock set to %v", sets)
	}
}

func TestSyncerNoFallbackWhenServerAnswers(t *testing.T) {
	r := newResponder(t)
	clock := newFakeClock(time.Unix(0, 0))
	s := testSyncer(t, clock, r.addr())
	start(t, s)
	waitFor(t, "sync", s.Synced)
	synced := time.Now()
	time.Sleep(500 * time.Millisecond) // past FallbackAfter
	sets := clock.setCalls()
	if len(sets) != 1 || sets[0].Sub(synced).Abs() > 500*time.Millisecond {
		t.Errorf("clock sets %v, want only the server's time", sets)
	}
}

func TestSyncerRejectsImplausibleServer(t *testing.T) {
	r := newResponder(t)
	// A server whose own clock lost power: 1970.
	r.set(-time.Since(time.Unix(100, 0)), nil)
	clock := newFakeClock(build.AddDate(0, 1, 0))
	s := testSyncer(t, clock, r.addr())
	start(t, s)
	waitFor(t, "two queries", func() bool { return r.queries.Load() >= 2 })
	if s.Synced() || len(clock.setCalls()) != 0 {
		t.Errorf("believed a server in 1970: synced %v, sets %v", s.Synced(), clock.setCalls())
	}
}

func TestSyncerSetClockFails(t *testing.T) {
	r := newResponder(t)
	r.set(time.Hour, nil)
	clock := newFakeClock(time.Now())
	clock.err = errors.New("EPERM")
	s := testSyncer(t, clock, r.addr())
	start(t, s)
	waitFor(t, "retries", func() bool { return r.queries.Load() >= 3 })
	if s.Synced() {
		t.Error("synced although the clock could not be set")
	}
}

func TestSyncerRunEndsWithContext(t *testing.T) {
	// A server that never answers and long timeouts: cancellation must
	// still end Run at once.
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s := &Syncer{Servers: []string{c.LocalAddr().String()}, SetClock: func(time.Time) error { return nil }, FallbackAfter: -1,
		Log: slog.New(slog.DiscardHandler)}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	time.Sleep(100 * time.Millisecond)
	cancel()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("Run did not end")
	}
}
