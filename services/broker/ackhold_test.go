package broker

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"syscall"
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

// An MQTT 5 client whose message could not be made durable gets a
// negative PUBACK (0x97 when the disk is full) and keeps its connection
// (issue 11, DoS 4); an MQTT 3.1.1 client has no such PUBACK and is
// disconnected instead (TestFailedHoldClosesTheConnection).
func TestFailedHoldIsANegativePubackForMQTT5(t *testing.T) {
	srv, cli := net.Pipe()
	got := collect(cli)
	w := &heldWriter{conn: srv}
	w.v5.Store(true)
	full, other := newGate(), newGate()
	w.HoldWrites(full)
	if _, err := w.write([]byte{0x40, 2, 0, 7}); err != nil { // PUBACK id 7, success
		t.Fatal(err)
	}
	w.HoldWrites(other)
	if _, err := w.write([]byte{0x40, 2, 0, 8}); err != nil {
		t.Fatal(err)
	}
	full.open(fmt.Errorf("journal: write segment: %w", syscall.ENOSPC))
	other.open(errors.New("fsync failed"))
	if _, err := w.write([]byte{0xD0, 0}); err != nil { // PINGRESP: still connected
		t.Fatal(err)
	}
	w.close()
	<-w.closed()
	want := []byte{0x40, 3, 0, 7, 0x97, 0x40, 3, 0, 8, 0x80, 0xD0, 0}
	if b := <-got; !bytes.Equal(b, want) {
		t.Fatalf("peer read % x, want % x", b, want)
	}
}
