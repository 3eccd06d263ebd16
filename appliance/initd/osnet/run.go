package osnet

import (
	"context"
	"log/slog"
	"time"
)

// runner keeps an interface configured from DHCP. Its steps are funcs so
// that the lease life cycle (renew at T1, re-acquire on NAK or expiry) is
// tested with short fake leases; Run plugs in the real ones.
type runner struct {
	log     *slog.Logger
	ifname  string
	acquire func(context.Context) (Lease, error)
	renew   func(context.Context, Lease) (Lease, error)
	apply   func(Lease) error
	// unconfigure removes the address of a lost lease: RFC 2131 §4.4.5
	// says to stop using it at expiry.
	unconfigure func() error
	onLease     func(Lease)
	// retry bounds the pause after a failed acquire or apply; it grows
	// from retry to maxRetry so a persistent fault does not spin or flood
	// the log.
	retry, maxRetry time.Duration
}

func (r *runner) run(ctx context.Context) error {
	var (
		cur   Lease
		have  bool
		pause = r.retry
	)
	backoff := func() error {
		err := sleep(ctx, jitter(pause))
		pause = min(2*pause, r.maxRetry)
		return err
	}
	for {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !have {
			l, err := r.acquire(ctx)
			if err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				r.log.Warn("dhcp: no lease", "interface", r.ifname, "err", err)
				if err := backoff(); err != nil {
					return err
				}
				continue
			}
			if err := r.apply(l); err != nil {
				r.log.Error("dhcp: cannot apply lease", "interface", r.ifname, "address", l.Address, "err", err)
				if err := backoff(); err != nil {
					return err
				}
				continue
			}
			r.logLease("dhcp: lease acquired", l)
			cur, have, pause = l, true, r.retry
			r.notify(l)
			continue
		}

		// Bound: renew at T1. Deadlines derive from Acquired's monotonic
		// reading, so a clock step by SNTP does not move them.
		if err := sleep(ctx, time.Until(cur.Acquired.Add(cur.T1))); err != nil {
			return err
		}
		rctx, cancel := context.WithDeadline(ctx, cur.Expiry())
		l, err := r.renew(rctx, cur)
		cancel()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			r.log.Warn("dhcp: lease lost, acquiring anew", "interface", r.ifname, "address", cur.Address, "err", err)
			if err := r.unconfigure(); err != nil {
				r.log.Error("dhcp: cannot remove address of lost lease", "interface", r.ifname, "err", err)
			}
			have = false
			continue
		}
		if err := r.apply(l); err != nil {
			// The address is most likely still in place from the last
			// apply; keep the lease and try again at the next renewal.
			r.log.Error("dhcp: cannot apply renewed lease", "interface", r.ifname, "address", l.Address, "err", err)
		}
		if l.sameConfig(cur) {
			r.log.Debug("dhcp: lease renewed", "interface", r.ifname, "address", l.Address, "duration", l.Duration)
		} else {
			r.logLease("dhcp: lease changed", l)
		}
		cur = l
		r.notify(l)
	}
}

func (r *runner) notify(l Lease) {
	if r.onLease != nil {
		r.onLease(l)
	}
}

func (r *runner) logLease(msg string, l Lease) {
	r.log.Info(msg, "interface", r.ifname, "address", l.Address, "gateway", l.Gateway,
		"dns", l.DNS, "server", l.Server, "duration", l.Duration)
}
