package broker

import (
	"bytes"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/piot-appliance/piot/services/core"
	"github.com/piot-appliance/piot/services/durable"
)

// A write hold is what a connection's outgoing bytes wait for: the ingest
// journal's durability of the last publish read from it (durable.Hold).
type writeHold = durable.Hold

// errSlowClient ends a connection whose peer does not read fast enough.
var errSlowClient = errors.New("mqtt client too slow: outbound queue full")

// lingerTime bounds how long a closing connection still writes what is
// queued (a DISCONNECT with its reason, say) and waits for the peer to
// close its side, so that the peer reads the reason before the socket
// goes.
const lingerTime = 2 * time.Second

// heldWriter is a connection's outbound queue. mochi writes each packet
// while holding the client's lock, which publishers delivering to that
// client take too; a write that blocked on a peer that stopped reading
// would stall every publisher in its organisation. So nothing here blocks:
// a write is queued, and a goroutine per busy connection writes the queue
// out.
//
// The queue is bounded (limit bytes). Beyond half of it, QoS 0 deliveries
// are dropped (dropped is called) and whatever else the same write holds
// is kept: mochi batches several packets into one write, acknowledgements
// and QoS 1 deliveries among them. A write that would pass the limit ends
// the connection as too slow (slow is called). QoS 1 and 2 deliveries lost
// that way are still in the session's inflight store and are sent again
// when a persistent session reconnects. Beyond a quarter, the queue is
// congested and the publishers feeding it wait for it (pace.go).
//
// Writes can also wait behind write holds, so that the broker can go on
// reading a client's next publishes while the previous ones are being
// made durable, and a PUBACK still leaves only after its message is on
// disk: mochi writes the acknowledgement right after the OnPublish hook
// returns; without holds the hook would have to block for the fsync, and
// a client would get one fsync per message however many it keeps in
// flight. Every write made while a hold is pending waits, in order,
// behind it (PUBACKs, but also deliveries and PINGRESPs, whose order
// relative to the acknowledgements must not change). A hold that fails
// closes the connection: the client did not get the acknowledgement and
// resends.
type heldWriter struct {
	conn    net.Conn    // the stream written to
	v5      atomic.Bool // the client speaks MQTT 5: a failed hold can be a negative PUBACK
	limit   int         // queued bytes; 0 means unbounded (tests)
	dropped func(n int) // n QoS 0 deliveries were dropped
	slow    func()      // the connection is being closed as too slow

	mu       sync.Mutex
	hold     writeHold // the newest hold not known ready
	queue    []heldWrite
	queued   int   // bytes queued or being written
	flushing bool  // a goroutine is writing the queue
	closing  bool  // Close was called: write out, linger, close
	err      error // sticky: the connection is unusable
	done     chan struct{}

	// Congestion (pace.go): set when QoS 0 deliveries pass a quarter of
	// the limit, cleared when the queue drains to an eighth; changed
	// under mu, read without it.
	congested atomic.Bool
	progress  atomic.Int64  // unix ns of the last write to the peer, or of the congestion's start
	room      chan struct{} // closed when the congestion ends; made by a waiter, under mu
}

type heldWrite struct {
	data []byte
	hold writeHold // nil: ready once the writes before it are
}

// HoldWrites makes the writes that follow wait until h is ready. The
// ingest hook calls it from OnPublish, before mochi writes the PUBACK.
func (w *heldWriter) HoldWrites(h durable.Hold) {
	w.mu.Lock()
	w.hold = h
	w.mu.Unlock()
}

// queuedBytes is how much is written but not yet sent to the peer.
func (w *heldWriter) queuedBytes() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.queued
}

// qos0Publish reports whether p starts with a QoS 0 PUBLISH.
func qos0Publish(p []byte) bool {
	return len(p) > 0 && p[0]>>4 == 3 && p[0]&0x06 == 0
}

// packetLen is the length of the whole packet at the start of p, and
// whether p holds all of it.
func packetLen(p []byte) (int, bool) {
	if len(p) < 2 {
		return 0, false
	}
	length, lenBytes, err := packets.DecodeLength(bytes.NewReader(p[1:]))
	if err != nil {
		return 0, false
	}
	n := 1 + lenBytes + length
	return n, n <= len(p)
}

// splitQoS0 counts the QoS 0 PUBLISH packets in p, a run of whole packets
// as mochi writes them, and returns the other packets (p itself when
// there is no QoS 0 PUBLISH). Bytes that are not whole packets are kept.
func splitQoS0(p []byte) (others []byte, qos0 int) {
	for i := 0; i < len(p); {
		n, ok := packetLen(p[i:])
		if !ok {
			n = len(p) - i
		}
		if ok && qos0Publish(p[i:]) {
			if qos0 == 0 {
				others = append([]byte(nil), p[:i]...)
			}
			qos0++
		} else if qos0 > 0 {
			others = append(others, p[i:i+n]...)
		}
		i += n
	}
	if qos0 == 0 {
		return p, 0
	}
	return others, qos0
}

func (w *heldWriter) write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return 0, w.err
	}
	if w.closing {
		return 0, net.ErrClosed
	}
	written := len(p)
	if w.limit > 0 && w.queued+len(p) > w.limit/4 {
		others, qos0 := splitQoS0(p)
		switch {
		case qos0 > 0 && w.queued+len(p) > w.limit/2:
			if w.dropped != nil {
				w.dropped(qos0)
			}
			if len(others) == 0 {
				return written, nil
			}
			p = others
		case qos0 > 0 && !w.congested.Load():
			w.progress.Store(time.Now().UnixNano())
			w.congested.Store(true)
		}
		if w.queued+len(p) > w.limit {
			w.err = errSlowClient
			if w.slow != nil {
				w.slow()
			}
			_ = w.conn.Close()
			return 0, w.err
		}
	}
	if w.hold != nil && w.hold.Ready() {
		w.hold = nil
	}
	w.queue = append(w.queue, heldWrite{data: append([]byte(nil), p...), hold: w.hold})
	w.queued += len(p)
	w.hold = nil // the queued write carries it; later writes queue behind it
	if !w.flushing {
		w.flushing = true
		go w.flush()
	}
	return written, nil
}

// flush writes the queue out as its holds become ready, coalescing what
// is ready into one write.
func (w *heldWriter) flush() {
	var buf []byte
	for {
		w.mu.Lock()
		if len(w.queue) == 0 || w.err != nil {
			w.flushing = false
			w.queue = nil
			closing := w.closing
			w.mu.Unlock()
			if closing {
				w.linger()
			}
			return
		}
		head := w.queue[0].hold
		w.mu.Unlock()

		if head != nil {
			if err := head.Wait(); err != nil && !w.nack(err) {
				w.fail(err)
				continue
			}
		}
		w.mu.Lock()
		buf = buf[:0]
		k := 0
		for ; k < len(w.queue); k++ {
			e := w.queue[k]
			if k > 0 && (len(buf)+len(e.data) > maxWriteChunk || (e.hold != nil && !e.hold.Ready())) {
				break
			}
			buf = append(buf, e.data...)
		}
		w.queue = w.queue[k:]
		w.mu.Unlock()

		_, err := w.conn.Write(buf)
		if w.congested.Load() {
			w.progress.Store(time.Now().UnixNano())
		}
		w.mu.Lock()
		w.queued -= len(buf)
		if w.queued <= w.limit/8 {
			w.uncongest()
		}
		w.mu.Unlock()
		if err != nil {
			w.fail(err)
		}
	}
}

// nack turns the PUBACK waiting on a failed hold into a negative one
// for an MQTT 5 client: 0x97 "quota exceeded" when the disk is full, else
// 0x80 "unspecified error". The client then knows its message was not
// stored, and the connection stays. It reports false when it cannot (an
// MQTT 3.1.1 client, or a write that is not a PUBACK): the connection
// must then close, so that the client sends again.
func (w *heldWriter) nack(err error) bool {
	if !w.v5.Load() {
		return false
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.queue) == 0 || w.err != nil {
		return false
	}
	head := w.queue[0].data
	// A PUBACK as mochi writes it: type 4, remaining length, packet id,
	// and a reason code with properties only when there is one.
	if len(head) < 4 || head[0] != 0x40 || head[1] < 2 || int(head[1]) != len(head)-2 {
		return false
	}
	code := byte(0x80)
	if core.StorageFull(err) {
		code = 0x97
	}
	w.queue[0] = heldWrite{data: []byte{0x40, 3, head[2], head[3], code}}
	w.queued += 5 - len(head)
	return true
}

func (w *heldWriter) fail(err error) {
	w.mu.Lock()
	if w.err == nil {
		w.err = err
	}
	w.uncongest()
	w.mu.Unlock()
	_ = w.conn.Close()
}

// close ends the connection politely: what is queued is still written
// (within lingerTime), then the write side is shut and the peer's last
// bytes are read and dropped until it closes too. Closing a socket with
// unread input makes the kernel send a reset, and a peer that gets the
// reset first may never read the DISCONNECT that said why. done is
// closed when the socket is.
func (w *heldWriter) close() error {
	w.mu.Lock()
	if w.closing {
		w.mu.Unlock()
		return nil
	}
	w.closing = true
	w.uncongest() // nobody waits for a connection that is going
	w.done = make(chan struct{})
	_ = w.conn.SetWriteDeadline(time.Now().Add(lingerTime))
	// Wake a reader of ours blocked in Read; from now on reads are the
	// linger's.
	_ = w.conn.SetReadDeadline(time.Now())
	idle := !w.flushing
	w.mu.Unlock()
	if idle {
		go w.linger()
	}
	return nil
}

// linger runs once the queue is written (or given up on).
func (w *heldWriter) linger() {
	defer close(w.done)
	w.mu.Lock()
	failed := w.err != nil
	w.mu.Unlock()
	if cw, ok := w.conn.(interface{ CloseWrite() error }); ok && !failed {
		if cw.CloseWrite() == nil {
			_ = w.conn.SetReadDeadline(time.Now().Add(lingerTime))
			buf := make([]byte, 4096)
			for {
				if _, err := w.conn.Read(buf); err != nil {
					break
				}
			}
		}
	}
	_ = w.conn.Close()
}

// uncongest ends a congestion and wakes the publishers waiting for it.
// Called with mu held.
func (w *heldWriter) uncongest() {
	if !w.congested.Load() {
		return
	}
	w.congested.Store(false)
	if w.room != nil {
		close(w.room)
		w.room = nil
	}
}

// paceState reports whether the queue is congested, and whether it is
// stalled: congested and nothing written for paceStall.
func (w *heldWriter) paceState(now time.Time) (congested, stalled bool) {
	if !w.congested.Load() {
		return false, false
	}
	return true, now.UnixNano()-w.progress.Load() > int64(paceStall)
}

// waitRoom waits until the congestion ends, at most d, and returns how
// long it waited.
func (w *heldWriter) waitRoom(d time.Duration) time.Duration {
	w.mu.Lock()
	if !w.congested.Load() {
		w.mu.Unlock()
		return 0
	}
	if w.room == nil {
		w.room = make(chan struct{})
	}
	room := w.room
	w.mu.Unlock()
	start := time.Now()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-room:
	case <-t.C:
	}
	return time.Since(start)
}

// closed is closed once close has finished with the socket; nil before
// close is called.
func (w *heldWriter) closed() <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.done
}
