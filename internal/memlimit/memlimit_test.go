package memlimit

import (
	"context"
	"math"
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

func TestLimit(t *testing.T) {
	for _, c := range []struct{ budget, live, other, want uint64 }{
		{128 << 20, 40 << 20, 8 << 20, 128 << 20},  // room enough: the budget
		{128 << 20, 100 << 20, 8 << 20, 208 << 20}, // live outgrew it: twice the live heap
		{0, 10, 5, 25},
	} {
		if got := Limit(c.budget, c.live, c.other); got != c.want {
			t.Errorf("Limit(%d, %d, %d) = %d, want %d", c.budget, c.live, c.other, got, c.want)
		}
	}
}

// The limit follows the live heap up past the budget and back down to
// it, and Run removes it when it ends.
func TestGovernorFollowsTheLiveHeap(t *testing.T) {
	defer debug.SetMemoryLimit(math.MaxInt64)
	g := New(1) // a budget below any heap: the limit is the floor
	runtime.GC()
	base := g.Update()
	if got := debug.SetMemoryLimit(-1); uint64(got) != base {
		t.Fatalf("limit set %d, Update said %d", got, base)
	}

	const grown = 64 << 20
	held := make([][]byte, 64)
	for k := range held {
		held[k] = make([]byte, grown/64)
		for j := range held[k] {
			held[k][j] = byte(j)
		}
	}
	runtime.GC()
	up := g.Update()
	if up < base+2*grown*9/10 {
		t.Fatalf("with %d MiB more live the limit went from %d to %d MiB", grown>>20, base>>20, up>>20)
	}
	runtime.KeepAlive(held)
	held = nil
	runtime.GC()
	if down := g.Update(); down > up-grown {
		t.Fatalf("after the %d MiB were freed the limit is %d MiB (was %d)", grown>>20, down>>20, up>>20)
	}

	big := New(1 << 40)
	if got := big.Update(); got != 1<<40 {
		t.Fatalf("a budget above the floor: limit %d", got)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { big.Run(ctx); close(done) }()
	time.Sleep(2 * Interval)
	if got := debug.SetMemoryLimit(-1); got != 1<<40 {
		t.Fatalf("while running: limit %d", got)
	}
	cancel()
	<-done
	if got := debug.SetMemoryLimit(-1); got != math.MaxInt64 {
		t.Fatalf("after Run: limit %d, want none", got)
	}
}
