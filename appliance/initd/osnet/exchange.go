package osnet

import (
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"time"
)

// exchanger runs the client side of DHCP conversations (RFC 2131 §4.4)
// over a packet socket. It knows nothing of interfaces, so the state
// machine can be tested over a loopback UDP socket against a server in the
// test, while Acquire gives it a socket bound to the interface.
type exchanger struct {
	conn net.PacketConn
	// server is where requests go: 255.255.255.255:67 on a real link.
	server   net.Addr
	hwaddr   net.HardwareAddr
	hostname string
	// retry is the first retransmission delay; it doubles up to maxRetry
	// (RFC 2131 §4.1 caps it at 64 s).
	retry, maxRetry time.Duration
	// requestTries is how often a REQUEST is sent in the selecting state
	// before giving up on that offer and discovering anew.
	requestTries int
	log          *slog.Logger
}

// errNoReply means a bounded number of retransmissions went unanswered.
var errNoReply = errors.New("dhcp: no reply")

func (x *exchanger) newMessage(t msgType, xid uint32) *message {
	m := &message{
		op:    opRequest,
		htype: htypeEthernet,
		hlen:  byte(len(x.hwaddr)),
		xid:   xid,
	}
	copy(m.chaddr[:], x.hwaddr)
	m.setOption(optMessageType, []byte{byte(t)})
	// A client identifier of type 1 (Ethernet) + MAC is what most
	// clients send; servers that key leases on it then give the same
	// address after a reboot.
	m.setOption(optClientID, append([]byte{htypeEthernet}, x.hwaddr...))
	if x.hostname != "" {
		m.setOption(optHostname, []byte(x.hostname))
	}
	m.setOption(optParamRequest, paramRequestList)
	return m
}

// acquire runs DISCOVER → OFFER → REQUEST → ACK until it has a lease or
// ctx ends. A NAK, an unusable ACK or an offer whose REQUEST goes
// unanswered starts over with a new transaction ID.
func (x *exchanger) acquire(ctx context.Context) (Lease, error) {
	for {
		xid := newXID()
		start := time.Now()
		discover := x.newMessage(msgDiscover, xid)
		discover.flags = flagBroadcast
		offer, err := x.transact(ctx, discover, start, 0, func(m *message) bool {
			if m.msgType() != msgOffer {
				return false
			}
			if _, ok := m.addr(optServerID); !ok {
				x.log.Debug("dhcp: ignoring OFFER without server identifier")
				return false
			}
			return m.yiaddr.IsValid() && !m.yiaddr.IsUnspecified()
		})
		if err != nil {
			return Lease{}, err
		}
		serverID, _ := offer.addr(optServerID)
		x.log.Debug("dhcp: offer", "address", offer.yiaddr, "server", serverID)

		// Selecting state: same xid as the DISCOVER, naming the chosen
		// server so that the others withdraw their offers.
		req := x.newMessage(msgRequest, xid)
		req.flags = flagBroadcast
		a4 := offer.yiaddr.As4()
		req.setOption(optRequestedIP, a4[:])
		s4 := serverID.As4()
		req.setOption(optServerID, s4[:])
		sent := time.Now()
		reply, err := x.transact(ctx, req, start, x.requestTries, func(m *message) bool {
			t := m.msgType()
			if t != msgAck && t != msgNak {
				return false
			}
			// Replies from other servers are not for this REQUEST.
			id, ok := m.addr(optServerID)
			return !ok || id == serverID
		})
		switch {
		case errors.Is(err, errNoReply):
			x.log.Debug("dhcp: no answer to REQUEST, discovering again", "server", serverID)
			continue
		case err != nil:
			return Lease{}, err
		}
		if reply.msgType() == msgNak {
			x.log.Info("dhcp: server refused the offered address", "address", offer.yiaddr, "server", serverID, "message", string(reply.options[optMessage]))
			// Pause before starting over so a server that NAKs every
			// REQUEST is not hammered.
			if err := sleep(ctx, x.retry); err != nil {
				return Lease{}, fmt.Errorf("dhcp: %w", err)
			}
			continue
		}
		l, err := leaseFrom(reply, sent)
		if err != nil {
			x.log.Warn("dhcp: unusable ACK, discovering again", "err", err)
			if err := sleep(ctx, x.retry); err != nil {
				return Lease{}, fmt.Errorf("dhcp: %w", err)
			}
			continue
		}
		if !l.Server.IsValid() {
			l.Server = serverID
		}
		return l, nil
	}
}

// renew asks any server to extend l (RFC 2131 §4.4.5, rebinding: the
// REQUEST is broadcast with ciaddr set and no server identifier). It
// retransmits until ctx ends, so the caller bounds it by the lease's
// expiry.
func (x *exchanger) renew(ctx context.Context, l Lease) (Lease, error) {
	if !l.Address.Addr().Is4() {
		return Lease{}, fmt.Errorf("dhcp: renew: lease has no IPv4 address")
	}
	req := x.newMessage(msgRequest, newXID())
	// The interface has its address now, so the server may unicast the
	// ACK to ciaddr as RFC 2131 §4.1 says it does when ciaddr is set.
	req.ciaddr = l.Address.Addr()
	start := time.Now()
	var nl Lease
	reply, err := x.transact(ctx, req, start, 0, func(m *message) bool {
		switch m.msgType() {
		case msgNak:
			return true
		case msgAck:
			// An unusable ACK is skipped rather than fatal: the current
			// lease stays valid until expiry and another server may do
			// better.
			var err error
			if nl, err = leaseFrom(m, start); err != nil {
				x.log.Warn("dhcp: ignoring unusable ACK", "err", err)
				return false
			}
			return true
		}
		return false
	})
	if err != nil {
		return Lease{}, err
	}
	if reply.msgType() == msgNak {
		return Lease{}, fmt.Errorf("%w: %s", ErrNAK, reply.options[optMessage])
	}
	if !nl.Server.IsValid() {
		nl.Server = l.Server
	}
	return nl, nil
}

// transact sends m and retransmits it with exponential backoff until a
// reply that accept takes arrives, tries sends were made (0: until ctx
// ends), or ctx ends. Replies whose xid or chaddr differ are ignored:
// the socket sees every DHCP reply broadcast on the link.
func (x *exchanger) transact(ctx context.Context, m *message, start time.Time, tries int, accept func(*message) bool) (*message, error) {
	// Wake a blocked read when ctx ends; a deadline in the past makes
	// ReadFrom return at once.
	stop := context.AfterFunc(ctx, func() { _ = x.conn.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()

	buf := make([]byte, 1<<16)
	delay := x.retry
	var sendErr error
	for n := 0; tries == 0 || n < tries; n++ {
		// secs is the time since the client began acquiring (RFC 2131
		// §4.4.1); relays and some servers use it to pick backups.
		m.secs = uint16(min(time.Since(start)/time.Second, 0xffff))
		b, err := m.marshal()
		if err != nil {
			return nil, err
		}
		if _, err := x.conn.WriteTo(b, x.server); err != nil {
			// Not fatal: right after the link comes up the carrier may
			// not be there yet and sends fail until it is.
			sendErr = err
			x.log.Debug("dhcp: send failed", "type", m.msgType(), "err", err)
		} else {
			x.log.Debug("dhcp: sent", "type", m.msgType(), "xid", m.xid)
		}
		wait := jitter(delay)
		deadline := time.Now().Add(wait)
		for {
			r, err := x.receive(ctx, buf, deadline)
			if err != nil {
				if ctx.Err() != nil {
					if sendErr != nil {
						return nil, fmt.Errorf("dhcp: %w (last send error: %w)", ctx.Err(), sendErr)
					}
					return nil, fmt.Errorf("dhcp: %w", ctx.Err())
				}
				if errors.Is(err, os.ErrDeadlineExceeded) {
					break
				}
				return nil, fmt.Errorf("dhcp: receive: %w", err)
			}
			if r.op != opReply || r.xid != m.xid || r.chaddr != m.chaddr {
				continue
			}
			if accept(r) {
				x.log.Debug("dhcp: received", "type", r.msgType(), "xid", r.xid)
				return r, nil
			}
		}
		delay = min(2*delay, x.maxRetry)
	}
	return nil, errNoReply
}

// receive reads one datagram that parses as a DHCP message, skipping
// anything else, until deadline.
func (x *exchanger) receive(ctx context.Context, buf []byte, deadline time.Time) (*message, error) {
	for {
		if err := x.conn.SetReadDeadline(deadline); err != nil {
			return nil, err
		}
		// Checked after setting the deadline: had ctx ended before, the
		// AfterFunc's past deadline would just have been overwritten.
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		n, _, err := x.conn.ReadFrom(buf)
		if err != nil {
			return nil, err
		}
		m, err := parse(buf[:n])
		if err != nil {
			x.log.Debug("dhcp: ignoring malformed packet", "err", err)
			continue
		}
		return m, nil
	}
}

// jitter randomises a retransmission delay by ±10% so that many
// appliances powered on together (after an outage) do not retransmit in
// lockstep; RFC 2131 §4.1 asks for the same with ±1 s.
func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return d
	}
	span := int64(d) / 5
	if span == 0 {
		return d
	}
	return d - time.Duration(span/2) + time.Duration(rand.Int64N(span))
}

// newXID returns a random transaction ID. It comes from crypto/rand
// because it is all that stops another host on the link from answering
// in the server's place.
func newXID() uint32 {
	var b [4]byte
	_, _ = crand.Read(b[:]) // documented never to fail
	return binary.BigEndian.Uint32(b[:])
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
