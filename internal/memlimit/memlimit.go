// Package memlimit keeps the Go heap of a loaded appliance within a
// memory budget, without letting the collector thrash once the live data
// itself outgrows the budget.
//
// A fixed soft limit (GOMEMLIMIT) does the first but not the second: with
// the live heap near the limit the collector runs back to back, up to half
// the CPU, which is what 10 000 things do to a limit sized for 1 000. The
// governor raises the limit to twice the live heap (Go's default pace,
// GOGC=100) plus the runtime's own memory whenever that is more than the
// budget, so the heap stays within the budget while it can and grows at
// the default pace when it cannot.
package memlimit

import (
	"context"
	"math"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// Interval is how often the governor looks at the heap: a live heap that
// jumps past the budget makes the collector work hard for at most this
// long.
const Interval = 100 * time.Millisecond

// floorRatio is the heap, in multiples of the live heap, the limit always
// leaves room for.
const floorRatio = 2

// Limit is the soft memory limit for a budget when the live heap is live
// bytes and the runtime's memory outside the heap (stacks, metadata) is
// other bytes.
func Limit(budget, live, other uint64) uint64 {
	return max(budget, floorRatio*live+other)
}

// Governor sets the runtime's soft memory limit from a budget.
type Governor struct {
	budget  uint64
	samples []metrics.Sample
}

// New returns a governor for a budget of bytes.
func New(budget uint64) *Governor {
	names := []string{
		"/gc/heap/live:bytes",
		"/memory/classes/total:bytes",
		// The heap's classes; the rest of total is the runtime's own.
		"/memory/classes/heap/free:bytes",
		"/memory/classes/heap/objects:bytes",
		"/memory/classes/heap/released:bytes",
		"/memory/classes/heap/unused:bytes",
	}
	g := &Governor{budget: budget, samples: make([]metrics.Sample, len(names))}
	for k, n := range names {
		g.samples[k].Name = n
	}
	return g
}

// Update sets the limit for the heap as it is now and returns it.
func (g *Governor) Update() uint64 {
	metrics.Read(g.samples)
	v := func(k int) uint64 {
		if g.samples[k].Value.Kind() != metrics.KindUint64 {
			return 0
		}
		return g.samples[k].Value.Uint64()
	}
	live, total := v(0), v(1)
	heap := v(2) + v(3) + v(4) + v(5)
	other := uint64(0)
	if total > heap {
		other = total - heap
	}
	l := Limit(g.budget, live, other)
	debug.SetMemoryLimit(int64(min(l, math.MaxInt64)))
	return l
}

// Run updates the limit every Interval until ctx ends, and then removes
// it.
func (g *Governor) Run(ctx context.Context) {
	defer debug.SetMemoryLimit(math.MaxInt64)
	t := time.NewTicker(Interval)
	defer t.Stop()
	for {
		g.Update()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
