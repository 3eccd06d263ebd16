package ingest

import (
	"fmt"
	"testing"
)

// JournalDepth counts what is acknowledged but not checkpointed, across a
// crash and the replay that follows, and drops to 0 once stored.
func TestJournalDepth(t *testing.T) {
	e := newEnv(t)
	ing := e.start(Config{}, func(i *Ingest) { i.noFlush = true })
	if !ing.Running() || ing.JournalDepth() != 0 {
		t.Fatalf("fresh: running %v, depth %d", ing.Running(), ing.JournalDepth())
	}
	e.things()
	for k := range 20 {
		publish(t, ing, "org/acme/T1/value", fmt.Sprint(k), 1)
	}
	if d := ing.JournalDepth(); d != 20 {
		t.Fatalf("depth before any flush = %d", d)
	}
	ing.crash()

	e.openCore()
	ing2 := e.start(Config{}, func(i *Ingest) { i.noFlush = true })
	if d := ing2.JournalDepth(); d != 20 {
		t.Fatalf("depth after replay = %d", d)
	}
	publish(t, ing2, "org/acme/T1/value", "21", 1)
	if d := ing2.JournalDepth(); d != 21 {
		t.Fatalf("depth after one more = %d", d)
	}
	ing2.crash()
	if ing2.Running() {
		t.Fatal("running after crash")
	}

	e.openCore()
	ing3 := e.start(Config{}, nil)
	eventually(t, func() bool { return ing3.JournalDepth() == 0 })
}
