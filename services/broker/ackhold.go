package broker

import (
	"net"
	"sync"
)

// A write hold is a condition a connection's outgoing bytes wait for: the
// ingest journal's durability of the last publish read from it. Its type is
// a literal so that the ingest hook can name it without importing this
// package.
type writeHold = interface {
	Ready() bool
	Wait() error
}

// heldWriter delays a connection's writes behind write holds, so that the
// broker can go on reading a client's next publishes while the previous
// ones are being made durable, and a PUBACK still leaves only after its
// message is on disk. mochi handles one packet of a connection at a time
// and writes the acknowledgement right after the OnPublish hook returns;
// without this the hook would have to block for the fsync, and a client
// would get one fsync per message however many it keeps in flight.
//
// Every write made while a hold is pending is queued, in order, behind
// it (PUBACKs, but also deliveries and PINGRESPs, whose order relative
// to the acknowledgements must not change). A hold that fails closes the
// connection: the client did not get the acknowledgement and resends.
type heldWriter struct {
	conn net.Conn // the stream written to

	mu       sync.Mutex
	hold     writeHold // the newest hold not known ready
	queue    []heldWrite
	flushing bool  // a goroutine is writing the queue
	err      error // sticky: the connection is unusable
}

type heldWrite struct {
	data []byte
	hold writeHold // nil: ready once the writes before it are
}

// HoldWrites makes the writes that follow wait until h is ready. The
// ingest hook calls it from OnPublish, before mochi writes the PUBACK.
func (w *heldWriter) HoldWrites(h interface {
	Ready() bool
	Wait() error
}) {
	w.mu.Lock()
	w.hold = h
	w.mu.Unlock()
}

func (w *heldWriter) write(p []byte) (int, error) {
	w.mu.Lock()
	if w.err != nil {
		err := w.err
		w.mu.Unlock()
		return 0, err
	}
	if w.hold != nil && w.hold.Ready() {
		w.hold = nil
	}
	if w.hold == nil && !w.flushing && len(w.queue) == 0 {
		// Nothing pending: write through, still under the lock so that a
		// flush cannot start in between.
		n, err := w.conn.Write(p)
		w.mu.Unlock()
		return n, err
	}
	w.queue = append(w.queue, heldWrite{data: append([]byte(nil), p...), hold: w.hold})
	w.hold = nil // the queued write carries it; later writes queue behind it
	if !w.flushing {
		w.flushing = true
		go w.flush()
	}
	w.mu.Unlock()
	return len(p), nil
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
			w.mu.Unlock()
			return
		}
		head := w.queue[0].hold
		w.mu.Unlock()

		if head != nil {
			if err := head.Wait(); err != nil {
				w.fail(err)
				continue
			}
		}
		w.mu.Lock()
		buf = buf[:0]
		k := 0
		for ; k < len(w.queue); k++ {
			e := w.queue[k]
			if k > 0 && e.hold != nil && !e.hold.Ready() {
				break
			}
			buf = append(buf, e.data...)
		}
		w.queue = w.queue[k:]
		w.mu.Unlock()

		if _, err := w.conn.Write(buf); err != nil {
			w.fail(err)
		}
	}
}

func (w *heldWriter) fail(err error) {
	w.mu.Lock()
	if w.err == nil {
		w.err = err
	}
	w.mu.Unlock()
	_ = w.conn.Close()
}
