package broker

import (
	"errors"
	"log/slog"
	"net"
	"sync/atomic"
	"time"
)

// errPacketTooLarge ends a connection that announced an oversized packet.
var errPacketTooLarge = errors.New("mqtt packet exceeds the maximum packet size")

// disconnectTooLarge is an MQTT 5 DISCONNECT with reason 0x95 "packet too
// large" and that text as reason string.
var disconnectTooLarge = func() []byte {
	reason := "packet too large"
	props := append([]byte{0x1F, 0, byte(len(reason))}, reason...)
	body := append([]byte{0x95, byte(len(props))}, props...)
	return append([]byte{0xE0, byte(len(body))}, body...)
}()

// limitConn enforces the maximum packet size on the byte stream, before
// mochi reads it. mochi checks the size too, but then just closes the
// connection; an MQTT 5 client deserves DISCONNECT 0x95 so it knows why.
// It follows the MQTT framing (type byte, variable-length remaining
// length, body) without decoding packets, and learns the protocol version
// from the CONNECT packet.
type limitConn struct {
	net.Conn
	*heldWriter // every write goes through it, the refusal too
	max         int
	log         *slog.Logger
	budget      paceBudget // how long this client may still wait as a publisher (pace.go)

	// framing state, touched only by the reading goroutine
	state     int
	length    int // remaining length being decoded, then bytes left in the body
	mult      int
	lenBytes  int
	typ       byte
	connect   []byte // head of the CONNECT body, for the protocol version
	seenFirst bool
	version   byte
	err       error
}

const (
	frameType = iota
	frameLength
	frameBody
	frameOff // malformed length: mochi will reject it, stop following
)

// connectHead is enough of the CONNECT variable header to find the
// protocol level: 2-byte name length, the name ("MQTT" or "MQIsdp"), level.
const connectHead = 2 + 6 + 1

// connLimits are what the listeners enforce on every connection.
type connLimits struct {
	maxPacket    int // bytes of one packet read
	maxQueued    int // bytes waiting to be written (heldWriter)
	socketBuffer int // the sockets' kernel buffers; 0: the system's
	// counters, shared by the broker's listeners
	slow, dropped *atomic.Int64
}

func (b *Broker) connLimits() connLimits {
	return connLimits{maxPacket: b.cfg.MaxPacketSize, maxQueued: b.cfg.MaxQueuedBytes, socketBuffer: b.cfg.socketBuffer, slow: &b.slowClients, dropped: &b.queueDropped}
}

func newLimitConn(c net.Conn, lim connLimits, log *slog.Logger) *limitConn {
	w := &heldWriter{conn: c, limit: lim.maxQueued}
	if lim.dropped != nil {
		w.dropped = func(n int) { lim.dropped.Add(int64(n)) }
	}
	if lim.slow != nil {
		w.slow = func() {
			lim.slow.Add(1)
			// Not per message: once per connection, and the connection ends.
			log.Warn("mqtt client too slow: outbound queue full, disconnecting",
				"remote", c.RemoteAddr().String(), "queued_limit", lim.maxQueued)
		}
	}
	return &limitConn{Conn: c, heldWriter: w, max: lim.maxPacket, log: log, budget: newPaceBudget(time.Now())}
}

// Close writes what is queued and closes politely (heldWriter.close).
func (c *limitConn) Close() error { return c.close() }

// Read passes the stream through; when a packet header announces too
// large a packet, it returns the bytes before that packet and an error.
func (c *limitConn) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	if c.closed() != nil {
		return 0, net.ErrClosed // the bytes left are the linger's to drop
	}
	n, err := c.Conn.Read(p)
	if n > 0 {
		if cut, size, bad := c.scan(p[:n]); bad {
			c.err = errPacketTooLarge
			c.refuse(size)
			return cut, c.err
		}
	}
	return n, err
}

// Write passes p on behind any pending write hold.
func (c *limitConn) Write(p []byte) (int, error) { return c.write(p) }

// scan advances the framing over b. On an oversized packet it returns the
// offset in b where that packet starts (0 if it started in an earlier
// read) and the announced size.
func (c *limitConn) scan(b []byte) (cut, size int, bad bool) {
	start := 0
	for i := 0; i < len(b); i++ {
		switch c.state {
		case frameType:
			start = i
			c.typ = b[i] >> 4
			c.length, c.mult, c.lenBytes = 0, 1, 0
			c.state = frameLength
		case frameLength:
			c.length += int(b[i]&0x7f) * c.mult
			c.mult *= 128
			c.lenBytes++
			if b[i]&0x80 != 0 {
				if c.lenBytes == 4 {
					c.state = frameOff
				}
				continue
			}
			if c.length+1 > c.max { // the same measure as mochi's check
				return start, 1 + c.lenBytes + c.length, true
			}
			first := !c.seenFirst
			c.seenFirst = true
			if first && c.typ == 1 {
				c.connect = make([]byte, 0, connectHead)
			}
			if c.length == 0 {
				c.endPacket()
				c.state = frameType
			} else {
				c.state = frameBody
			}
		case frameBody:
			k := min(c.length, len(b)-i)
			if c.connect != nil && c.version == 0 {
				c.connect = append(c.connect, b[i:i+min(k, connectHead-len(c.connect))]...)
			}
			c.length -= k
			i += k - 1
			if c.length == 0 {
				c.endPacket()
				c.state = frameType
			}
		case frameOff:
			return 0, 0, false
		}
	}
	return 0, 0, false
}

// endPacket extracts the protocol version once the CONNECT head is in.
func (c *limitConn) endPacket() {
	if c.connect == nil || c.version != 0 {
		return
	}
	h := c.connect
	c.connect = nil
	if len(h) < 2 {
		return
	}
	nameLen := int(h[0])<<8 | int(h[1])
	if len(h) > 2+nameLen {
		c.version = h[2+nameLen]
		c.heldWriter.v5.Store(c.version == 5)
	}
}

// refuse tells an MQTT 5 client why it is being disconnected; MQTT 3.1.1
// has no server DISCONNECT, so those just see the connection close.
func (c *limitConn) refuse(size int) {
	c.log.Info("mqtt packet too large, disconnecting", "remote", c.RemoteAddr().String(), "size", size, "limit", c.max)
	if c.version != 5 {
		return
	}
	_ = c.Conn.SetWriteDeadline(time.Now().Add(time.Second))
	_, _ = c.write(disconnectTooLarge)
}
