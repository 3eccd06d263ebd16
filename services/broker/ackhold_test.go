package broker

import (
	"bytes"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// gate is a write hold released by the test.
type gate struct {
	once sync.Once
	c    chan struct{}
	err  error
}

func newGate() *gate { return &gate{c: make(chan struct{})} }

func (g *gate) open(err error) { g.once.Do(func() { g.err = err; close(g.c) }) }
func (g *gate) Ready() bool {
	select {
	case <-g.c:
		return g.err == nil
	default:
		return false
	}
}
func (g *gate) Wait() error { <-g.c; return g.err }

// collect reads what arrives on c until it is closed.
func collect(c net.Conn) <-chan []byte {
	out := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(c)
		out <- b
	}()
	return out
}

func TestHeldWritesWaitAndKeepOrder(t *testing.T) {
	srv, cli := net.Pipe()
	got := collect(cli)
	w := &heldWriter{conn: srv}

	must := func(p string) {
		t.Helper()
		if n, err := w.write([]byte(p)); err != nil || n != len(p) {
			t.Fatalf("write %q: %d, %v", p, n, err)
		}
	}
	must("a") // no hold: written at once
	g1, g2 := newGate(), newGate()
	w.HoldWrites(g1)
	must("b") // waits for g1
	must("c") // behind b
	w.HoldWrites(g2)
	must("d") // waits for g2
	time.Sleep(20 * time.Millisecond)
	g2.open(nil) // d's hold is ready, but b's is not: nothing may pass b
	time.Sleep(20 * time.Millisecond)
	w.mu.Lock()
	queued := len(w.queue)
	w.mu.Unlock()
	if queued != 3 {
		t.Fatalf("%d writes queued before the first hold opened, want 3", queued)
	}
	g1.open(nil)
	for {
		w.mu.Lock()
		idle := !w.flushing
		w.mu.Unlock()
		if idle {
			break
		}
		time.Sleep(time.Millisecond)
	}
	must("e") // nothing pending: written by a new flush
	w.close() // still writes what is queued
	<-w.closed()
	if b := <-got; !bytes.Equal(b, []byte("abcde")) {
		t.Fatalf("peer read %q, want abcde", b)
	}
}

func TestFailedHoldClosesTheConnection(t *testing.T) {
	srv, cli := net.Pipe()
	got := collect(cli)
	w := &heldWriter{conn: srv}
	g := newGate()
	w.HoldWrites(g)
	if _, err := w.write([]byte("puback")); err != nil {
		t.Fatal(err)
	}
	g.open(errors.New("fsync failed"))
	if b := <-got; len(b) != 0 {
		t.Fatalf("the acknowledgement of an unwritten record went out: %q", b)
	}
	if _, err := w.write([]byte("x")); err == nil {
		t.Fatal("write after a failed hold succeeded")
	}
}
