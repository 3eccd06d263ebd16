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

// packet is an MQTT packet of the given first byte with a body of n bytes.
func packet(first byte, n int) []byte {
	p := []byte{first}
	for l := n; ; l /= 128 {
		if l < 128 {
			p = append(p, byte(l))
			break
		}
		p = append(p, byte(l%128)|0x80)
	}
	return append(p, bytes.Repeat([]byte{first}, n)...)
}

// mochi batches several packets into one write. Beyond half the queue
// only the QoS 0 deliveries of such a write are dropped, each counted:
// the PUBACK and the QoS 1 delivery written with them are kept, in order.
func TestQueueDropsOnlyTheQoS0PacketsOfAWrite(t *testing.T) {
	srv, cli := net.Pipe()
	var dropped int
	w := &heldWriter{conn: srv, limit: 1000, dropped: func(n int) { dropped += n }}
	big := packet(0x32, 600) // a QoS 1 delivery: over half the queue, not read yet
	qos0 := packet(0x30, 8)
	puback := []byte{0x40, 2, 0, 7}
	qos1 := packet(0x32, 200)
	var mixed []byte
	for _, p := range [][]byte{qos0, puback, qos0, qos1, qos0} {
		mixed = append(mixed, p...)
	}
	for _, p := range [][]byte{big, mixed, qos0} {
		if n, err := w.write(p); err != nil || n != len(p) {
			t.Fatalf("write of %d bytes: %d, %v", len(p), n, err)
		}
	}
	if dropped != 4 {
		t.Errorf("%d QoS 0 deliveries counted as dropped, want 4", dropped)
	}
	if q, want := w.queuedBytes(), len(big)+len(puback)+len(qos1); q != want {
		t.Errorf("%d bytes queued, want %d", q, want)
	}
	got := collect(cli)
	_ = w.close()
	want := append(append(append([]byte(nil), big...), puback...), qos1...)
	if b := <-got; !bytes.Equal(b, want) {
		t.Errorf("the peer read %d bytes, want %d: the big delivery, the PUBACK, the QoS 1 delivery", len(b), len(want))
	}
	// A whole write of QoS 0 deliveries below half is kept as it is.
	if others, n := splitQoS0(mixed[:len(qos0)]); n != 1 || len(others) != 0 {
		t.Errorf("split of one QoS 0 packet: %d others, %d QoS 0", len(others), n)
	}
	if others, n := splitQoS0(puback); n != 0 || !bytes.Equal(others, puback) {
		t.Errorf("split of a PUBACK: % x, %d QoS 0", others, n)
	}
}
