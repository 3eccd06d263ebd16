package ratelimit

import (
	"testing"
	"time"

	"github.com/piot-appliance/piot/internal/testclock"
)

func TestIntervalBounded(t *testing.T) {
	clk := testclock.New(time.Unix(0, 0))
	l := NewInterval(time.Second, 2, clk.Now)
	if ok, _, _ := l.Allow("a"); !ok {
		t.Fatal("a")
	}
	if ok, _, _ := l.Allow("b"); !ok {
		t.Fatal("b")
	}
	if ok, _, full := l.Allow("c"); ok || !full {
		t.Fatal("c should be refused while the table is full")
	}
	clk.Advance(time.Second)
	if ok, _, _ := l.Allow("c"); !ok {
		t.Fatal("c after sweep")
	}
	if len(l.last.entries) > 2 {
		t.Fatalf("table grew to %d", len(l.last.entries))
	}
}

func TestIntervalPerKey(t *testing.T) {
	clk := testclock.New(time.Unix(0, 0))
	l := NewInterval(time.Second, 10, clk.Now)
	if ok, _, _ := l.Allow("a"); !ok {
		t.Fatal("first packet refused")
	}
	clk.Advance(300 * time.Millisecond)
	if ok, wait, full := l.Allow("a"); ok || full || wait != 700*time.Millisecond {
		t.Fatalf("second packet within the interval: ok %v wait %v full %v", ok, wait, full)
	}
	if ok, _, _ := l.Allow("b"); !ok {
		t.Fatal("another key is limited by the first")
	}
	clk.Advance(700 * time.Millisecond)
	if ok, _, _ := l.Allow("a"); !ok {
		t.Fatal("packet after the interval refused")
	}
}

func TestIntervalDisabled(t *testing.T) {
	l := NewInterval(-1, 1, nil)
	for range 3 {
		if ok, _, _ := l.Allow("a"); !ok {
			t.Fatal("a negative interval limits")
		}
	}
}
