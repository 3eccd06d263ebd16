package osnet

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"
)

// testServer is a DHCP server that answers per RFC 2131 §4.3 for one
// pool address, with knobs to misbehave. It serves on a real UDP socket.
type testServer struct {
	t    testing.TB
	conn net.PacketConn
	id   netip.Addr
	pool netip.Addr
	// replyTo picks the destination of a reply; nil sends it back to the
	// sender, which is all loopback can do.
	replyTo func(req, reply *message) net.Addr

	mu    sync.Mutex
	lease uint32 // seconds
	// received holds every parsed message, in order.
	received []*message
	// drop is how many more messages of a type to ignore.
	drop map[msgType]int
	// nak is how many more selecting-state REQUESTs to refuse.
	nak int
	// decoys makes every reply be preceded by packets the client must
	// ignore: another xid, another chaddr, another server's ACK, garbage.
	decoys bool
	bound  map[[16]byte]netip.Addr
}

// newTestServer starts a server; opts set its knobs before it serves,
// update changes them later.
func newTestServer(t testing.TB, conn net.PacketConn, opts ...func(*testServer)) *testServer {
	s := &testServer{
		t:     t,
		conn:  conn,
		id:    netip.MustParseAddr("192.0.2.1"),
		pool:  netip.MustParseAddr("192.0.2.15"),
		lease: 3600,
		drop:  map[msgType]int{},
		bound: map[[16]byte]netip.Addr{},
	}
	for _, o := range opts {
		o(s)
	}
	done := make(chan struct{})
	t.Cleanup(func() {
		conn.Close()
		<-done
	})
	go func() {
		defer close(done)
		s.serve()
	}()
	return s
}

func (s *testServer) serve() {
	buf := make([]byte, 1500)
	for {
		n, from, err := s.conn.ReadFrom(buf)
		if err != nil {
			return
		}
		req, err := parse(buf[:n])
		if err != nil || req.op != opRequest {
			continue
		}
		for _, p := range s.handle(req) {
			to := from
			if p.to != nil {
				to = p.to
			}
			if p.raw == nil {
				b, err := p.msg.marshal()
				if err != nil {
					s.t.Errorf("server marshal: %v", err)
					return
				}
				p.raw = b
			}
			if _, err := s.conn.WriteTo(p.raw, to); err != nil {
				s.t.Logf("server send: %v", err)
			}
		}
	}
}

type packet struct {
	msg *message
	raw []byte   // sent as is when set
	to  net.Addr // nil: back to the sender
}

func (s *testServer) update(f func(*testServer)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s)
}

func (s *testServer) handle(req *message) []packet {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.received = append(s.received, req)
	t := req.msgType()
	if s.drop[t] > 0 {
		s.drop[t]--
		return nil
	}
	var reply *message
	id, selecting := req.addr(optServerID)
	requested, _ := req.addr(optRequestedIP)
	switch t {
	case msgDiscover:
		reply = s.reply(req, msgOffer, s.pool)
	case msgRequest:
		switch {
		case selecting && id != s.id:
			return nil // the client chose another server
		case selecting && s.nak > 0:
			s.nak--
			reply = s.reply(req, msgNak, netip.Addr{})
		case selecting || (requested.IsValid() && req.ciaddr.IsUnspecified()): // selecting or INIT-REBOOT
			if requested != s.pool {
				reply = s.reply(req, msgNak, netip.Addr{})
				break
			}
			s.bound[req.chaddr] = s.pool
			reply = s.reply(req, msgAck, s.pool)
		default: // RENEWING or REBINDING: ciaddr is the address in use
			if s.bound[req.chaddr] != req.ciaddr {
				reply = s.reply(req, msgNak, netip.Addr{})
				break
			}
			reply = s.reply(req, msgAck, req.ciaddr)
		}
	default:
		return nil
	}
	var out []packet
	if s.decoys && reply.msgType() != msgNak {
		otherXID := *reply
		otherXID.xid++
		otherXID.yiaddr = netip.MustParseAddr("192.0.2.99")
		otherMAC := *reply
		otherMAC.chaddr[0] ^= 0xff
		otherMAC.yiaddr = netip.MustParseAddr("192.0.2.98")
		otherServer := *reply
		otherServer.options = maps.Clone(reply.options)
		otherServer.options[optServerID] = []byte{192, 0, 2, 200}
		otherServer.yiaddr = netip.MustParseAddr("192.0.2.97")
		out = append(out, packet{msg: &otherXID}, packet{msg: &otherMAC}, packet{raw: []byte("not dhcp at all")})
		// Only while selecting: a rebinding client takes any server's ACK.
		if t == msgRequest && selecting {
			out = append(out, packet{msg: &otherServer})
		}
	}
	out = append(out, packet{msg: reply})
	if s.replyTo != nil {
		for i := range out {
			out[i].to = s.replyTo(req, reply)
		}
	}
	return out
}

// reply builds a reply per RFC 2131 table 3, including only the
// parameters the client asked for in option 55.
func (s *testServer) reply(req *message, t msgType, yiaddr netip.Addr) *message {
	m := &message{
		op: opReply, htype: req.htype, hlen: req.hlen, xid: req.xid,
		flags: req.flags, giaddr: req.giaddr, chaddr: req.chaddr,
		ciaddr: netip.IPv4Unspecified(),
	}
	id := s.id.As4()
	m.setOption(optMessageType, []byte{byte(t)})
	m.setOption(optServerID, id[:])
	if t == msgNak {
		m.setOption(optMessage, []byte("address not available"))
		return m
	}
	if t == msgAck {
		m.ciaddr = req.ciaddr
	}
	m.yiaddr = yiaddr
	m.siaddr = s.id
	m.setOption(optLeaseTime, be32(s.lease))
	params := map[byte][]byte{
		optSubnetMask:    {255, 255, 255, 0},
		optRouter:        id[:],
		optDNS:           {192, 0, 2, 3, 192, 0, 2, 4},
		optRenewalTime:   be32(s.lease / 2),
		optRebindingTime: be32(s.lease * 7 / 8),
	}
	for _, code := range req.options[optParamRequest] {
		if v, ok := params[code]; ok {
			m.setOption(code, v)
		}
	}
	return m
}

// messages returns what the server received, optionally of one type.
func (s *testServer) messages(t msgType) []*message {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*message
	for _, m := range s.received {
		if t == 0 || m.msgType() == t {
			out = append(out, m)
		}
	}
	return out
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// loopbackPair starts a server on 127.0.0.1 and an exchanger talking to
// it from another socket, with retransmission delays shortened.
func loopbackPair(t *testing.T, opts ...func(*testServer)) (*testServer, *exchanger) {
	t.Helper()
	sc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	srv := newTestServer(t, sc, opts...)
	return srv, &exchanger{
		conn:         cc,
		server:       sc.LocalAddr(),
		hwaddr:       testMAC,
		hostname:     "piot-test",
		retry:        50 * time.Millisecond,
		maxRetry:     200 * time.Millisecond,
		requestTries: 3,
		log:          testLogger(t),
	}
}

func wantLease(t *testing.T, l Lease) {
	t.Helper()
	if l.Address != netip.MustParsePrefix("192.0.2.15/24") || l.Gateway != netip.MustParseAddr("192.0.2.1") ||
		l.Server != netip.MustParseAddr("192.0.2.1") ||
		!slices.Equal(l.DNS, []netip.Addr{netip.MustParseAddr("192.0.2.3"), netip.MustParseAddr("192.0.2.4")}) {
		t.Errorf("lease = %+v", l)
	}
	if l.Duration != time.Hour || l.T1 != 30*time.Minute || l.T2 != 3150*time.Second {
		t.Errorf("lease times = %v %v %v", l.Duration, l.T1, l.T2)
	}
	if time.Since(l.Acquired) > time.Minute || time.Since(l.Acquired) < 0 {
		t.Errorf("Acquired = %v", l.Acquired)
	}
}

func TestAcquire(t *testing.T) {
	srv, x := loopbackPair(t)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	l, err := x.acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wantLease(t, l)

	got := srv.messages(0)
	if len(got) != 2 || got[0].msgType() != msgDiscover || got[1].msgType() != msgRequest {
		t.Fatalf("server received %d messages: %v", len(got), got)
	}
	d, r := got[0], got[1]
	for _, m := range got {
		if m.flags&flagBroadcast == 0 {
			t.Errorf("%v without BROADCAST flag", m.msgType())
		}
		if string(m.options[optHostname]) != "piot-test" {
			t.Errorf("%v hostname = %q", m.msgType(), m.options[optHostname])
		}
		if !slices.Equal(m.options[optParamRequest], []byte{1, 3, 6, 51, 54, 58, 59}) {
			t.Errorf("%v parameter request list = %v", m.msgType(), m.options[optParamRequest])
		}
		if m.htype != htypeEthernet || m.hlen != 6 || !slices.Equal(m.chaddr[:6], testMAC) {
			t.Errorf("%v hardware = %d %d % x", m.msgType(), m.htype, m.hlen, m.chaddr)
		}
		if !m.ciaddr.IsUnspecified() {
			t.Errorf("%v ciaddr = %v", m.msgType(), m.ciaddr)
		}
	}
	if r.xid != d.xid {
		t.Errorf("REQUEST xid %#x differs from DISCOVER's %#x", r.xid, d.xid)
	}
	if a, _ := r.addr(optRequestedIP); a != srv.pool {
		t.Errorf("REQUEST option 50 = %v", a)
	}
	if a, _ := r.addr(optServerID); a != srv.id {
		t.Errorf("REQUEST option 54 = %v", a)
	}
}

func TestAcquireIgnoresForeignReplies(t *testing.T) {
	srv, x := loopbackPair(t, func(s *testServer) { s.decoys = true })
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	l, err := x.acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Decoys carry .97-.99: taking any of them would show here.
	wantLease(t, l)
	if n := len(srv.messages(msgDiscover)); n != 1 {
		t.Errorf("%d DISCOVERs: a decoy disturbed the exchange", n)
	}
}

func TestAcquireRetransmits(t *testing.T) {
	srv, x := loopbackPair(t, func(s *testServer) {
		s.drop[msgDiscover] = 2
		s.drop[msgRequest] = 1
	})
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	start := time.Now()
	l, err := x.acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wantLease(t, l)
	ds, rs := srv.messages(msgDiscover), srv.messages(msgRequest)
	if len(ds) != 3 || len(rs) != 2 {
		t.Fatalf("%d DISCOVERs, %d REQUESTs; want 3 and 2", len(ds), len(rs))
	}
	for _, m := range append(ds[1:], rs...) {
		if m.xid != ds[0].xid {
			t.Errorf("retransmission changed xid: %#x != %#x", m.xid, ds[0].xid)
		}
	}
	// Backoff: ≈50 ms + 100 ms before the third DISCOVER, then 50 ms
	// before the second REQUEST (jitter ±10%).
	if el := time.Since(start); el < 180*time.Millisecond {
		t.Errorf("done after %v: retransmissions did not back off", el)
	}
}

func TestAcquireRediscoversWhenRequestUnanswered(t *testing.T) {
	const tries = 3
	srv, x := loopbackPair(t, func(s *testServer) { s.drop[msgRequest] = tries })
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	l, err := x.acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wantLease(t, l)
	ds := srv.messages(msgDiscover)
	if len(ds) != 2 || len(srv.messages(msgRequest)) != tries+1 {
		t.Fatalf("%d DISCOVERs, %d REQUESTs", len(ds), len(srv.messages(msgRequest)))
	}
	if ds[0].xid == ds[1].xid {
		t.Error("new discovery reused the xid")
	}
}

func TestAcquireAfterNAK(t *testing.T) {
	srv, x := loopbackPair(t, func(s *testServer) { s.nak = 1 })
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	l, err := x.acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wantLease(t, l)
	ds := srv.messages(msgDiscover)
	if len(ds) != 2 {
		t.Fatalf("%d DISCOVERs, want a new discovery after the NAK", len(ds))
	}
	if ds[0].xid == ds[1].xid {
		t.Error("new discovery reused the xid")
	}
}

func TestAcquireEndsWithContext(t *testing.T) {
	srv, x := loopbackPair(t, func(s *testServer) { s.drop[msgDiscover] = 1 << 30 })
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := x.acquire(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want deadline exceeded", err)
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("returned %v after the deadline", el)
	}
	// Sends at 0, 50, 150 ms…: at least 2 even on a loaded machine.
	if n := len(srv.messages(msgDiscover)); n < 2 {
		t.Errorf("%d DISCOVERs in 300 ms", n)
	}
}

func TestAcquireCancelledWhileWaiting(t *testing.T) {
	_, x := loopbackPair(t, func(s *testServer) { s.drop[msgDiscover] = 1 << 30 })
	x.retry, x.maxRetry = time.Hour, time.Hour
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	if _, err := x.acquire(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("cancel took %v to interrupt a read", el)
	}
}

func TestRenew(t *testing.T) {
	srv, x := loopbackPair(t, func(s *testServer) { s.decoys = true })
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	l, err := x.acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	srv.update(func(s *testServer) {
		s.drop[msgRequest] = 1 // renewal retransmits too
		s.lease = 7200
	})
	nl, err := x.renew(ctx, l)
	if err != nil {
		t.Fatal(err)
	}
	if nl.Address != l.Address || nl.Duration != 2*time.Hour || !nl.Acquired.After(l.Acquired) {
		t.Errorf("renewed lease = %+v", nl)
	}
	rs := srv.messages(msgRequest)
	r := rs[len(rs)-1]
	if r.ciaddr != l.Address.Addr() {
		t.Errorf("renewing REQUEST ciaddr = %v", r.ciaddr)
	}
	if _, ok := r.options[optServerID]; ok {
		t.Error("renewing REQUEST carries option 54")
	}
	if _, ok := r.options[optRequestedIP]; ok {
		t.Error("renewing REQUEST carries option 50")
	}
}

func TestRenewNAK(t *testing.T) {
	_, x := loopbackPair(t)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	// The server never bound this address to the client.
	l := Lease{Address: netip.MustParsePrefix("192.0.2.77/24"), Acquired: time.Now()}
	if _, err := x.renew(ctx, l); !errors.Is(err, ErrNAK) {
		t.Fatalf("err = %v, want ErrNAK", err)
	}
}
