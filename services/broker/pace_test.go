package broker

import (
	"bytes"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// slowReader subscribes with a raw connection and reads at most chunk
// bytes every pause, counting the PUBLISH packets of size bytes it gets.
type slowReader struct {
	conn  net.Conn
	got   atomic.Int64
	done  chan struct{}
	stop  atomic.Bool
	chunk int
	pause time.Duration
	size  int // remaining length of the PUBLISH packets counted
}

func newSlowReader(t *testing.T, addr string, tn tenant, chunk int, pause time.Duration, size int) *slowReader {
	t.Helper()
	conn := rawClient(t, addr, "sub", tn)
	if _, err := conn.Write(subscribePacket("org/"+tn.name+"/#", 0)); err != nil {
		t.Fatal(err)
	}
	if sa := readRawPacket(t, conn); sa[0] != 0x90 || sa[4] != 0 {
		t.Fatalf("SUBACK % x", sa)
	}
	_ = conn.SetDeadline(time.Time{})
	r := &slowReader{conn: conn, done: make(chan struct{}), chunk: chunk, pause: pause, size: size}
	go r.run()
	return r
}

// rawClient connects an MQTT 3.1.1 client with the given client ID and
// small socket buffers: what it does not read or write waits in the
// broker's queues, not in megabytes of the kernel's.
func rawClient(t *testing.T, addr, id string, tn tenant) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	_ = conn.(*net.TCPConn).SetReadBuffer(256 << 10)
	_ = conn.(*net.TCPConn).SetWriteBuffer(32 << 10)
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Write(connectPacketID(4, id, tn.username, tn.password)); err != nil {
		t.Fatal(err)
	}
	if ca := readRawPacket(t, conn); ca[0] != 0x20 || ca[3] != 0 {
		t.Fatalf("CONNACK % x", ca)
	}
	return conn
}

// publish0 is a QoS 0 PUBLISH (remaining length below 16 KiB).
func publish0(topic, payload string) []byte {
	n := 2 + len(topic) + len(payload)
	p := []byte{0x30, byte(n&0x7f) | 0x80, byte(n >> 7), byte(len(topic) >> 8), byte(len(topic))}
	p = append(p, topic...)
	return append(p, payload...)
}

// run follows the MQTT framing over what it reads: a packet starts with
// its type byte and a variable-length remaining length.
func (r *slowReader) run() {
	defer close(r.done)
	buf := make([]byte, r.chunk)
	state, left, mult := 0, 0, 1
	var typ byte
	for !r.stop.Load() {
		_ = r.conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		n, err := r.conn.Read(buf)
		for i := 0; i < n; {
			switch state {
			case 0: // type
				typ = buf[i] >> 4
				state, left, mult = 1, 0, 1
				i++
			case 1: // remaining length
				left += int(buf[i]&0x7f) * mult
				mult *= 128
				if buf[i]&0x80 == 0 {
					if typ == 3 && left == r.size {
						r.got.Add(1)
					}
					state = 2
					if left == 0 {
						state = 0
					}
				}
				i++
			case 2: // body
				k := min(left, n-i)
				left -= k
				i += k
				if left == 0 {
					state = 0
				}
			}
		}
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				continue
			}
			return
		}
		time.Sleep(r.pause)
	}
}

// A QoS 0 subscriber that reads steadily but slower than a publisher
// writes gets (nearly) every message: the publisher is made to wait for
// it instead of the deliveries beyond half its queue being dropped. The
// same load without pacing (PaceWait 0, first) shows what is lost
// otherwise: a quarter on an idle machine, less on a busy one, where the
// publisher is slower too.
func TestPacingDeliversEveryMessageToASlowSubscriber(t *testing.T) {
	var lostUnpaced int64
	for _, wait := range []time.Duration{0, 100 * time.Millisecond} {
		b := startBroker(t, func(c *Config) {
			c.MaxPacketSize = 16 << 10
			c.MaxQueuedBytes = 256 << 10
			c.PaceWait = wait
			c.socketBuffer = 64 << 10
		})
		tn := newTenant(t, "pace")
		topic, payload := tn.topic("t1/value"), strings.Repeat("x", 100)
		// About 3.2 MB/s read, 4.8 MB/s published: the subscriber falls
		// behind, but by less than pacing can make up.
		sub := newSlowReader(t, b.addr(ListenerTCP), tn, 16<<10, 5*time.Millisecond, 2+len(topic)+len(payload))
		pub := rawClient(t, b.addr(ListenerTCP), "pub", tn)
		_ = pub.SetDeadline(time.Now().Add(60 * time.Second))
		// Bursts of 200 messages every 5 ms: 40 000 msg/s.
		const n, batch = 60000, 200
		burst := bytes.Repeat(publish0(topic, payload), batch)
		for i := 0; i < n; i += batch {
			if _, err := pub.Write(burst); err != nil {
				t.Fatal(err)
			}
			time.Sleep(5 * time.Millisecond)
		}
		eventually(t, 30*time.Second, "deliveries settled", func() bool {
			before := sub.got.Load()
			time.Sleep(500 * time.Millisecond)
			return sub.got.Load() == before
		})
		sub.stop.Store(true)
		<-sub.done
		st := b.Stats()
		t.Logf("pace wait %v: %d of %d delivered, %d dropped, %d publishes paced for %v; slow %d, recv %d sent %d", wait, sub.got.Load(), n, st.MessagesDropped, st.PacedPublishes, st.PaceWait, st.SlowClients, st.MessagesReceived, st.MessagesSent)
		lost := n - sub.got.Load()
		if wait == 0 {
			if st.PacedPublishes != 0 {
				t.Errorf("%d publishes paced with PaceWait 0", st.PacedPublishes)
			}
			if lost < n/100 {
				t.Skipf("the machine is too busy for the publisher to outrun the subscriber: %d of %d lost without pacing", lost, n)
			}
			lostUnpaced = lost
			continue
		}
		// Not every message: on a busy machine the subscriber is sometimes
		// set aside longer than pacing waits, and mochi drops what its
		// outbound queue cannot hold.
		if lost > max(int64(n/200), lostUnpaced/4) {
			t.Errorf("paced: %d of %d lost (without pacing %d; want at most a quarter of that, or 0.5 %%), %d publishes paced", lost, n, lostUnpaced, st.PacedPublishes)
		}
	}
}

// A publisher earns as much waiting as it runs unhindered, up to
// maxPaceCredit, and a wait earns nothing: a subscriber can at most halve
// its rate.
func TestPaceBudgetAtMostHalvesAPublisher(t *testing.T) {
	t0 := time.Now()
	b := newPaceBudget(t0)
	check := func(at, max, want time.Duration) {
		t.Helper()
		if d := b.allow(t0.Add(at), max); d != want {
			t.Errorf("at %v (max %v): may wait %v, want %v", at, max, d, want)
		}
	}
	check(0, time.Second, 0)
	check(30*time.Millisecond, time.Second, 30*time.Millisecond)
	b.spend(30 * time.Millisecond)
	check(60*time.Millisecond, time.Second, 0) // the 30 ms waited earned nothing
	check(70*time.Millisecond, 5*time.Millisecond, 5*time.Millisecond)
	check(time.Hour, time.Second, maxPaceCredit)
}

// congestedWriter is a queue of 64 KiB over a pipe nobody reads yet, with
// 20 KiB of QoS 0 deliveries in it: congested (beyond a quarter).
func congestedWriter(t *testing.T) (*heldWriter, net.Conn) {
	t.Helper()
	srv, cli := net.Pipe()
	t.Cleanup(func() { srv.Close(); cli.Close() })
	w := &heldWriter{conn: srv, limit: 64 << 10}
	for range 20 {
		if _, err := w.write(packet(0x30, 1021)); err != nil {
			t.Fatal(err)
		}
	}
	if c, _ := w.paceState(time.Now()); !c {
		t.Fatalf("%d bytes queued of %d: not congested", w.queuedBytes(), w.limit)
	}
	return w, cli
}

// A waiting publisher wakes when the subscriber has read its queue down
// to an eighth, and the congestion ends.
func TestPaceWaitEndsWhenTheQueueDrains(t *testing.T) {
	w, cli := congestedWriter(t)
	waited := make(chan time.Duration, 1)
	go func() { waited <- w.waitRoom(time.Minute) }()
	go func() { _, _ = io.Copy(io.Discard, cli) }()
	select {
	case d := <-waited:
		if q := w.queuedBytes(); q > w.limit/8 {
			t.Errorf("woke after %v with %d bytes queued", d, q)
		}
		if c, _ := w.paceState(time.Now()); c {
			t.Error("still congested")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the wait did not end when the queue drained")
	}
}

// Nobody waits for a queue that wrote nothing for paceStall, a wait
// lasts no longer than the publisher's credit, and a link to a queue no
// longer congested is dropped.
func TestPacingIsBounded(t *testing.T) {
	w, cli := congestedWriter(t)
	p := &pacer{maxWait: time.Minute}
	p.link("pub", w)
	budget := newPaceBudget(time.Now().Add(-time.Hour)) // full credit
	start := time.Now()
	p.pace("pub", &budget)
	if d := time.Since(start); p.paced.Load() != 1 || d < maxPaceCredit || d > 30*time.Second {
		t.Errorf("paced %d times for %v: want one wait of the credit, %v", p.paced.Load(), d, maxPaceCredit)
	}
	// Stalled: progress paceStall ago.
	w.progress.Store(time.Now().Add(-paceStall - time.Millisecond).UnixNano())
	budget = newPaceBudget(time.Now().Add(-time.Hour))
	p.pace("pub", &budget)
	if p.paced.Load() != 1 {
		t.Error("a publisher waited for a stalled queue")
	}
	// Drained: the link goes.
	go func() { _, _ = io.Copy(io.Discard, cli) }()
	eventually(t, 30*time.Second, "the queue drained", func() bool { c, _ := w.paceState(time.Now()); return !c })
	p.pace("pub", &budget)
	if p.paced.Load() != 1 || p.active.Load() != 0 {
		t.Errorf("after the congestion: paced %d, %d links", p.paced.Load(), p.active.Load())
	}
}
