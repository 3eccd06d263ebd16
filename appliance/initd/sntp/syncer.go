package sntp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// stepThreshold is the offset above which the clock is set. Smaller
// offsets are left alone: stepping by less than this gains nothing that
// matters to TLS or logs, and every step makes time jump under running
// programs.
const stepThreshold = 128 * time.Millisecond

// Syncer keeps the system clock set from time servers. Configure the
// exported fields before Run; zero values take the defaults given. Synced
// and LastSync may be called from any goroutine while Run runs.
type Syncer struct {
	// Servers are tried in turn, "host" or "host:port".
	Servers []string
	// NotBefore is the earliest plausible time, normally the build time;
	// see Plausible. Zero turns off the plausibility checks and so the
	// fallback.
	NotBefore time.Time
	// FallbackAfter: if the clock is not plausible at Run's start and no
	// server has answered after this long, the clock is set to NotBefore
	// so that certificates and tokens issued before the build validate.
	// Zero means 10 s; negative disables the fallback.
	FallbackAfter time.Duration
	// Interval between synchronizations after a success; zero means
	// 15 min.
	Interval time.Duration
	// Retry caps the pause after a failed round, which starts at 1 s and
	// doubles; zero means 1 min. Starting short matters at boot, when the
	// first rounds fail while DHCP is still running.
	Retry time.Duration
	// Timeout bounds each query; zero means 5 s.
	Timeout time.Duration
	// Log receives the Syncer's messages; nil means slog.Default().
	Log *slog.Logger
	// SetClock sets the system clock; nil means clock_settime
	// (CLOCK_REALTIME). Tests replace it so as not to change the host's.
	SetClock func(time.Time) error

	// now reads the clock that SetClock sets; tests fake both together.
	now func() time.Time

	mu       sync.Mutex
	synced   bool
	lastSync time.Time
}

// Synced reports whether a server has answered since Run started (the
// clock was then set if it was off by more than 128 ms).
func (s *Syncer) Synced() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.synced
}

// LastSync returns the time, by the corrected clock, of the last
// successful synchronization; zero if none.
func (s *Syncer) LastSync() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastSync
}

// syncRun holds one Run's settings with defaults applied, so that Run
// never writes the exported fields that the caller owns.
type syncRun struct {
	*Syncer
	log                              *slog.Logger
	interval, retry, timeout, fbWait time.Duration
	now                              func() time.Time
	set                              func(time.Time) error
	// fallbackAt is when the fallback is due (monotonic); zero when none
	// is pending.
	fallbackAt time.Time
}

// Run synchronizes the clock until ctx ends. Call it once per Syncer.
func (s *Syncer) Run(ctx context.Context) {
	r := &syncRun{
		Syncer:   s,
		log:      s.Log,
		interval: s.Interval,
		retry:    s.Retry,
		timeout:  s.Timeout,
		fbWait:   s.FallbackAfter,
		now:      s.now,
		set:      s.SetClock,
	}
	if r.log == nil {
		r.log = slog.Default()
	}
	if r.interval <= 0 {
		r.interval = 15 * time.Minute
	}
	if r.retry <= 0 {
		r.retry = time.Minute
	}
	if r.timeout <= 0 {
		r.timeout = defaultQueryTimeout
	}
	if r.fbWait == 0 {
		r.fbWait = 10 * time.Second
	}
	if r.now == nil {
		r.now = time.Now
	}
	if r.set == nil {
		r.set = setSystemClock
	}
	if len(s.Servers) == 0 {
		r.log.Warn("sntp: no time servers configured")
	}
	if r.fbWait > 0 && !Plausible(r.now(), s.NotBefore) {
		r.fallbackAt = time.Now().Add(r.fbWait)
	}
	r.run(ctx)
}

func (r *syncRun) run(ctx context.Context) {
	failures := 0
	for {
		err := r.round(ctx)
		if ctx.Err() != nil {
			return
		}
		wait := r.interval
		if err != nil {
			if failures == 0 {
				// One loud line when synchronization starts failing, not one
				// per retry through a long outage.
				r.log.Warn("sntp: no usable time server; retrying", "err", err)
			} else {
				r.log.Debug("sntp: no usable time server", "err", err)
			}
			wait = min(time.Second<<min(failures, 30), r.retry)
			failures++
		} else {
			if failures > 0 {
				r.log.Info("sntp: time servers answer again")
			}
			failures = 0
		}
		if !r.fallbackAt.IsZero() {
			wait = max(min(wait, time.Until(r.fallbackAt)), 0)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		r.maybeFallback()
	}
}

// round tries the servers in turn until one gives a usable time.
func (r *syncRun) round(ctx context.Context) error {
	var errs []error
	for _, server := range r.Servers {
		r.maybeFallback()
		qctx, cancel := context.WithTimeout(ctx, r.timeout)
		if !r.fallbackAt.IsZero() {
			// Give up on a slow server when the fallback is due, so that
			// the fallback happens on time.
			qctx, cancel = context.WithDeadline(qctx, r.fallbackAt)
		}
		resp, at, err := query(qctx, server)
		cancel()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if err := r.apply(server, resp, at); err != nil {
			errs = append(errs, err)
			continue
		}
		return nil
	}
	if len(errs) == 0 {
		return errors.New("sntp: no servers")
	}
	return errors.Join(errs...)
}

// apply sets the clock from resp, received at at (monotonic).
func (r *syncRun) apply(server string, resp Response, at time.Time) error {
	// Carried forward by the monotonic clock rather than taken as
	// now+Offset: it stays right even if the wall clock moved meanwhile.
	target := resp.Time.Add(time.Since(at))
	if !Plausible(target, r.NotBefore) {
		return fmt.Errorf("sntp %s: implausible time %s", server, target.UTC().Format(time.RFC3339))
	}
	offset := target.Sub(r.now())
	first := !r.Synced()
	if offset.Abs() > stepThreshold {
		if err := r.set(target); err != nil {
			return fmt.Errorf("sntp: set clock: %w", err)
		}
		r.log.Info("sntp: clock set", "server", server, "offset", offset, "time", target.UTC(), "stratum", resp.Stratum, "rtt", resp.RTT)
	} else if first {
		r.log.Info("sntp: clock in sync", "server", server, "offset", offset, "stratum", resp.Stratum)
	} else {
		r.log.Debug("sntp: clock in sync", "server", server, "offset", offset, "rtt", resp.RTT)
	}
	r.fallbackAt = time.Time{}
	r.mu.Lock()
	r.synced = true
	r.lastSync = r.now()
	r.mu.Unlock()
	return nil
}

// maybeFallback sets the clock to NotBefore once the fallback is due.
func (r *syncRun) maybeFallback() {
	if r.fallbackAt.IsZero() || time.Now().Before(r.fallbackAt) {
		return
	}
	r.fallbackAt = time.Time{}
	if Plausible(r.now(), r.NotBefore) {
		return // set meanwhile by someone else
	}
	was := r.now()
	if err := r.set(r.NotBefore); err != nil {
		r.log.Error("sntp: clock implausible and no time server answered; cannot set it to the build time",
			"clock", was.UTC(), "err", err)
		return
	}
	r.log.Error("sntp: CLOCK NOT SYNCHRONIZED: no time server answered, clock set to the build time so that TLS and tokens work; it is behind the true time",
		"was", was.UTC(), "now", r.NotBefore.UTC(), "waited", r.fbWait)
}
