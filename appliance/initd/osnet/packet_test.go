package osnet

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"slices"
	"testing"
	"time"
)

var testMAC = []byte{0x52, 0x54, 0x00, 0x12, 0x34, 0x56}

// ackBytes is an ACK as QEMU's user-mode network (slirp) sends it.
func ackBytes(t testing.TB) []byte {
	t.Helper()
	m := &message{
		op: opReply, htype: htypeEthernet, hlen: 6, xid: 0xdeadbeef, flags: flagBroadcast,
		yiaddr: netip.MustParseAddr("10.0.2.15"),
		siaddr: netip.MustParseAddr("10.0.2.2"),
	}
	copy(m.chaddr[:], testMAC)
	m.setOption(optMessageType, []byte{byte(msgAck)})
	m.setOption(optServerID, []byte{10, 0, 2, 2})
	m.setOption(optSubnetMask, []byte{255, 255, 255, 0})
	m.setOption(optRouter, []byte{10, 0, 2, 2})
	m.setOption(optDNS, []byte{10, 0, 2, 3})
	m.setOption(optLeaseTime, be32(86400))
	b, err := m.marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func be32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }

// withOptions returns a valid header followed by the given raw options.
func withOptions(t testing.TB, opts ...byte) []byte {
	t.Helper()
	return append(ackBytes(t)[:headerLen:headerLen], opts...)
}

func TestMarshalLayout(t *testing.T) {
	x := &exchanger{hwaddr: testMAC, hostname: "piot-1"}
	m := x.newMessage(msgDiscover, 0x01020304)
	m.flags = flagBroadcast
	m.secs = 3
	b, err := m.marshal()
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != minBOOTPLen {
		t.Errorf("length %d, want padding to %d", len(b), minBOOTPLen)
	}
	for _, c := range []struct {
		name string
		got  []byte
		want []byte
	}{
		{"op htype hlen hops", b[0:4], []byte{opRequest, htypeEthernet, 6, 0}},
		{"xid", b[4:8], []byte{1, 2, 3, 4}},
		{"secs", b[8:10], []byte{0, 3}},
		{"flags", b[10:12], []byte{0x80, 0}},
		{"ciaddr..giaddr", b[12:28], make([]byte, 16)},
		{"chaddr", b[28:44], append(slices.Clone(testMAC), make([]byte, 10)...)},
		{"sname file", b[44:236], make([]byte, 192)},
		{"cookie", b[236:240], magicCookie[:]},
		// 53 first, then the rest in code order.
		{"first option", b[240:243], []byte{optMessageType, 1, byte(msgDiscover)}},
	} {
		if !bytes.Equal(c.got, c.want) {
			t.Errorf("%s = % x, want % x", c.name, c.got, c.want)
		}
	}
	p, err := parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if got := p.options[optParamRequest]; !bytes.Equal(got, []byte{1, 3, 6, 51, 54, 58, 59}) {
		t.Errorf("option 55 = %v", got)
	}
	if got := string(p.options[optHostname]); got != "piot-1" {
		t.Errorf("option 12 = %q", got)
	}
	if got := p.options[optClientID]; !bytes.Equal(got, append([]byte{1}, testMAC...)) {
		t.Errorf("option 61 = % x", got)
	}
}

func TestMarshalLongOptionSplits(t *testing.T) {
	m := &message{op: opRequest}
	long := bytes.Repeat([]byte{'a'}, 300)
	m.setOption(optHostname, long)
	b, err := m.marshal()
	if err != nil {
		t.Fatal(err)
	}
	if b[headerLen] != optHostname || b[headerLen+1] != 255 || b[headerLen+2+255] != optHostname || b[headerLen+2+255+1] != 45 {
		t.Fatalf("not split per RFC 3396: % x", b[headerLen:headerLen+4])
	}
	p, err := parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(p.options[optHostname], long) {
		t.Errorf("concatenation lost data: %d bytes", len(p.options[optHostname]))
	}
}

func TestMarshalRejects(t *testing.T) {
	for name, m := range map[string]*message{
		"IPv6 ciaddr": {ciaddr: netip.MustParseAddr("::1")},
		"pad option":  {options: map[byte][]byte{optPad: {1}}},
		"end option":  {options: map[byte][]byte{optEnd: {}}},
	} {
		if _, err := m.marshal(); err == nil {
			t.Errorf("%s: marshal succeeded", name)
		}
	}
}

func TestParse(t *testing.T) {
	good := ackBytes(t)
	badCookie := slices.Clone(good)
	badCookie[237] ^= 0xff
	bigHLen := slices.Clone(good)
	bigHLen[2] = 17

	for _, c := range []struct {
		name    string
		in      []byte
		wantErr error
		check   func(*testing.T, *message)
	}{
		{name: "empty", in: nil, wantErr: errTruncated},
		{name: "header only, no cookie", in: good[:fixedLen], wantErr: errTruncated},
		{name: "one byte short of cookie", in: good[:headerLen-1], wantErr: errTruncated},
		{name: "bad cookie", in: badCookie, wantErr: errBadCookie},
		{name: "hlen over 16", in: bigHLen, wantErr: errBadHLen},
		{name: "option length past end", in: withOptions(t, optMessageType, 5, 1), wantErr: errOptOverrun},
		{name: "option code without length", in: withOptions(t, optPad, optMessageType), wantErr: errOptOverrun},
		{name: "second option overruns", in: withOptions(t, optMessageType, 1, 5, optDNS, 8, 10, 0, 2, 3), wantErr: errOptOverrun},
		{
			name: "slirp ACK",
			in:   good,
			check: func(t *testing.T, m *message) {
				if m.op != opReply || m.xid != 0xdeadbeef || m.flags != flagBroadcast || m.msgType() != msgAck {
					t.Errorf("header = %+v", m)
				}
				if m.yiaddr != netip.MustParseAddr("10.0.2.15") || m.siaddr != netip.MustParseAddr("10.0.2.2") || !m.ciaddr.IsUnspecified() {
					t.Errorf("addresses = %v %v %v", m.yiaddr, m.siaddr, m.ciaddr)
				}
				if !bytes.Equal(m.chaddr[:6], testMAC) {
					t.Errorf("chaddr = % x", m.chaddr)
				}
			},
		},
		{
			name: "no options at all",
			in:   good[:headerLen],
			check: func(t *testing.T, m *message) {
				if m.msgType() != 0 || len(m.options) != 0 {
					t.Errorf("options = %v", m.options)
				}
			},
		},
		{
			name: "missing END tolerated, pads skipped",
			in:   withOptions(t, optPad, optPad, optMessageType, 1, byte(msgOffer)),
			check: func(t *testing.T, m *message) {
				if m.msgType() != msgOffer {
					t.Errorf("type = %v", m.msgType())
				}
			},
		},
		{
			name: "garbage after END ignored",
			in:   withOptions(t, optMessageType, 1, byte(msgNak), optEnd, optDNS, 200),
			check: func(t *testing.T, m *message) {
				if m.msgType() != msgNak || m.options[optDNS] != nil {
					t.Errorf("options = %v", m.options)
				}
			},
		},
		{
			name: "overload option ignored, sname not parsed",
			in:   withOptions(t, optOverload, 1, 3, optMessageType, 1, byte(msgAck), optEnd),
			check: func(t *testing.T, m *message) {
				if m.msgType() != msgAck {
					t.Errorf("type = %v", m.msgType())
				}
			},
		},
		{
			name: "repeated option concatenated",
			in:   withOptions(t, optDNS, 4, 1, 1, 1, 1, optDNS, 4, 8, 8, 8, 8, optEnd),
			check: func(t *testing.T, m *message) {
				want := []netip.Addr{netip.MustParseAddr("1.1.1.1"), netip.MustParseAddr("8.8.8.8")}
				if got := m.addrs(optDNS); !slices.Equal(got, want) {
					t.Errorf("dns = %v", got)
				}
			},
		},
		{
			name: "zero-length and odd-length values are not addresses or types",
			in:   withOptions(t, optMessageType, 0, optRouter, 3, 1, 2, 3, optLeaseTime, 2, 0, 1, optEnd),
			check: func(t *testing.T, m *message) {
				if m.msgType() != 0 {
					t.Errorf("type = %v", m.msgType())
				}
				if _, ok := m.addr(optRouter); ok {
					t.Error("3-byte router parsed")
				}
				if _, ok := m.seconds(optLeaseTime); ok {
					t.Error("2-byte lease time parsed")
				}
			},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			m, err := parse(c.in)
			if c.wantErr != nil {
				if !errors.Is(err, c.wantErr) {
					t.Fatalf("err = %v, want %v", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			c.check(t, m)
		})
	}
}

func TestParseDoesNotAliasBuffer(t *testing.T) {
	b := withOptions(t, optDNS, 4, 1, 1, 1, 1, optEnd)
	m, err := parse(b)
	if err != nil {
		t.Fatal(err)
	}
	clear(b)
	if got := m.addrs(optDNS); len(got) != 1 || got[0] != netip.MustParseAddr("1.1.1.1") {
		t.Errorf("dns changed with the buffer: %v", got)
	}
}

func TestLeaseFrom(t *testing.T) {
	sent := time.Now()
	base := func() *message {
		m, err := parse(ackBytes(t))
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	for _, c := range []struct {
		name    string
		edit    func(*message)
		want    Lease
		wantErr bool
	}{
		{
			name: "slirp defaults",
			edit: func(*message) {},
			want: Lease{
				Address: netip.MustParsePrefix("10.0.2.15/24"), Gateway: netip.MustParseAddr("10.0.2.2"),
				DNS: []netip.Addr{netip.MustParseAddr("10.0.2.3")}, Server: netip.MustParseAddr("10.0.2.2"),
				Duration: 24 * time.Hour, T1: 12 * time.Hour, T2: 21 * time.Hour, Acquired: sent,
			},
		},
		{
			name: "explicit T1 T2",
			edit: func(m *message) {
				m.setOption(optRenewalTime, be32(600))
				m.setOption(optRebindingTime, be32(900))
				m.setOption(optLeaseTime, be32(1000))
			},
			want: Lease{Duration: 1000 * time.Second, T1: 600 * time.Second, T2: 900 * time.Second},
		},
		{
			name: "T1 after lease end falls back to defaults",
			edit: func(m *message) {
				m.setOption(optRenewalTime, be32(5000))
				m.setOption(optRebindingTime, be32(100))
				m.setOption(optLeaseTime, be32(1000))
			},
			want: Lease{Duration: 1000 * time.Second, T1: 500 * time.Second, T2: 875 * time.Second},
		},
		{
			name: "missing lease time",
			edit: func(m *message) { delete(m.options, optLeaseTime) },
			want: Lease{Duration: time.Hour, T1: 30 * time.Minute, T2: 52*time.Minute + 30*time.Second},
		},
		{
			name: "infinite lease",
			edit: func(m *message) { m.setOption(optLeaseTime, be32(0xffffffff)) },
			want: Lease{Duration: 0xffffffff * time.Second, T1: 0xffffffff * time.Second / 2, T2: 0xffffffff*time.Second - 0xffffffff*time.Second/8},
		},
		{
			name: "/32 with no router",
			edit: func(m *message) {
				m.setOption(optSubnetMask, []byte{255, 255, 255, 255})
				delete(m.options, optRouter)
			},
			want: Lease{Address: netip.MustParsePrefix("10.0.2.15/32")},
		},
		{
			name: "no mask: classful",
			edit: func(m *message) { delete(m.options, optSubnetMask) },
			want: Lease{Address: netip.MustParsePrefix("10.0.2.15/8")},
		},
		{name: "non-contiguous mask", edit: func(m *message) { m.setOption(optSubnetMask, []byte{255, 0, 255, 0}) }, wantErr: true},
		{name: "zero mask", edit: func(m *message) { m.setOption(optSubnetMask, []byte{0, 0, 0, 0}) }, wantErr: true},
		{name: "short mask", edit: func(m *message) { m.setOption(optSubnetMask, []byte{255, 255}) }, wantErr: true},
		{name: "no address", edit: func(m *message) { m.yiaddr = netip.IPv4Unspecified() }, wantErr: true},
		{name: "broadcast address", edit: func(m *message) { m.yiaddr = netip.MustParseAddr("255.255.255.255") }, wantErr: true},
		{name: "multicast address", edit: func(m *message) { m.yiaddr = netip.MustParseAddr("224.0.0.1") }, wantErr: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := base()
			c.edit(m)
			got, err := leaseFrom(m, sent)
			if c.wantErr {
				if err == nil {
					t.Fatalf("lease %+v, want error", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			// Zero fields of want are not checked.
			w := c.want
			if w.Address.IsValid() && got.Address != w.Address {
				t.Errorf("Address = %v, want %v", got.Address, w.Address)
			}
			if w.Gateway.IsValid() && got.Gateway != w.Gateway {
				t.Errorf("Gateway = %v, want %v", got.Gateway, w.Gateway)
			}
			if w.DNS != nil && !slices.Equal(got.DNS, w.DNS) {
				t.Errorf("DNS = %v, want %v", got.DNS, w.DNS)
			}
			if w.Server.IsValid() && got.Server != w.Server {
				t.Errorf("Server = %v, want %v", got.Server, w.Server)
			}
			if w.Duration != 0 && (got.Duration != w.Duration || got.T1 != w.T1 || got.T2 != w.T2) {
				t.Errorf("times = %v %v %v, want %v %v %v", got.Duration, got.T1, got.T2, w.Duration, w.T1, w.T2)
			}
			if !w.Acquired.IsZero() && !got.Acquired.Equal(w.Acquired) {
				t.Errorf("Acquired = %v", got.Acquired)
			}
			if c.name == "/32 with no router" && got.Gateway.IsValid() {
				t.Errorf("Gateway = %v, want none", got.Gateway)
			}
		})
	}
}

// FuzzParse checks that no input makes the decoder panic, and that what
// it accepts survives a marshal/parse round trip. Without -fuzz it runs
// the seed corpus as a normal test.
func FuzzParse(f *testing.F) {
	f.Add(ackBytes(f))
	f.Add([]byte{})
	f.Add(withOptions(f, optMessageType, 5, 1))
	f.Add(withOptions(f, optDNS, 4, 1, 1, 1, 1, optDNS, 4, 8, 8, 8, 8, optEnd))
	f.Add(withOptions(f, optOverload, 1, 3, optSubnetMask, 4, 255, 0, 255, 0))
	f.Add(withOptions(f, optPad, optLeaseTime))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := parse(b)
		if err != nil {
			return
		}
		// Accessors and lease building must not panic either.
		_ = m.msgType()
		_, _ = m.addr(optServerID)
		_, _ = m.seconds(optLeaseTime)
		_, _ = leaseFrom(m, time.Time{})
		if m.options[optPad] != nil || m.options[optEnd] != nil {
			t.Fatal("pad or end parsed as an option")
		}
		out, err := m.marshal()
		if err != nil {
			t.Fatalf("re-marshal: %v", err)
		}
		m2, err := parse(out)
		if err != nil {
			t.Fatalf("re-parse: %v", err)
		}
		if m2.xid != m.xid || m2.yiaddr != m.yiaddr || m2.chaddr != m.chaddr || len(m2.options) != len(m.options) {
			t.Fatalf("round trip changed the message:\n%+v\n%+v", m, m2)
		}
		for c, v := range m.options {
			if !bytes.Equal(m2.options[c], v) {
				t.Fatalf("option %d: % x became % x", c, v, m2.options[c])
			}
		}
	})
}
