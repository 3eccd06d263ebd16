package api

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestInflightSharesAndTotal(t *testing.T) {
	f := newInflight(3, 2, 50*time.Millisecond)
	ctx := context.Background()
	var held []func()
	take := func(key string, want error) {
		t.Helper()
		rel, err := f.acquire(ctx, key)
		if !errors.Is(err, want) {
			t.Fatalf("%s: got %v, want %v", key, err, want)
		}
		if err == nil {
			held = append(held, rel)
		}
	}
	take("a", nil)
	take("a", nil)
	take("a", errTooMany) // a's share is used up, b still gets in
	take("b", nil)
	take("c", errBusy) // c's share is free but the total is not
	// A request waiting for its share gets it when an earlier one ends.
	released := make(chan struct{})
	go func() { time.Sleep(10 * time.Millisecond); held[0](); close(released) }()
	take("a", nil)
	<-released // release gives the share back before it forgets the key
	for _, rel := range held[1:] {
		rel()
	}
	if len(f.slots) != 0 || len(f.byKey) != 0 {
		t.Fatalf("left over: %d slots, %d keys", len(f.slots), len(f.byKey))
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := f.acquire(cctx, "d"); !errors.Is(err, errCancelled) {
		t.Fatalf("cancelled: %v", err)
	}
}
