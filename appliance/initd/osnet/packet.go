package osnet

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"
)

// DHCPv4 wire format (RFC 2131 §2, RFC 2132). The codec is pure so it can
// be table-tested and fuzzed without sockets.

const (
	opRequest = 1
	opReply   = 2

	htypeEthernet = 1

	// flagBroadcast asks servers to broadcast replies: until it is
	// configured the client's interface has no address, so the kernel would
	// drop a reply unicast to the offered address.
	flagBroadcast = 0x8000

	fixedLen    = 236 // op .. file
	cookieLen   = 4
	headerLen   = fixedLen + cookieLen
	minBOOTPLen = 300 // RFC 1542 §2.1: some relays drop shorter messages
)

// magicCookie marks the start of the options field (RFC 2131 §3).
var magicCookie = [cookieLen]byte{99, 130, 83, 99}

type msgType uint8

const (
	msgDiscover msgType = 1
	msgOffer    msgType = 2
	msgRequest  msgType = 3
	msgDecline  msgType = 4
	msgAck      msgType = 5
	msgNak      msgType = 6
	msgRelease  msgType = 7
	msgInform   msgType = 8
)

func (t msgType) String() string {
	switch t {
	case msgDiscover:
		return "DISCOVER"
	case msgOffer:
		return "OFFER"
	case msgRequest:
		return "REQUEST"
	case msgDecline:
		return "DECLINE"
	case msgAck:
		return "ACK"
	case msgNak:
		return "NAK"
	case msgRelease:
		return "RELEASE"
	case msgInform:
		return "INFORM"
	}
	return fmt.Sprintf("type(%d)", uint8(t))
}

// Option codes used by the client (RFC 2132).
const (
	optPad           = 0
	optSubnetMask    = 1
	optRouter        = 3
	optDNS           = 6
	optHostname      = 12
	optRequestedIP   = 50
	optLeaseTime     = 51
	optOverload      = 52
	optMessageType   = 53
	optServerID      = 54
	optParamRequest  = 55
	optMessage       = 56
	optRenewalTime   = 58
	optRebindingTime = 59
	optClientID      = 61
	optEnd           = 255
)

// paramRequestList is what the client asks servers to include (option 55).
var paramRequestList = []byte{optSubnetMask, optRouter, optDNS, optLeaseTime, optServerID, optRenewalTime, optRebindingTime}

// message is one DHCP message. Addresses are always IPv4 after parse;
// the zero netip.Addr encodes as 0.0.0.0.
type message struct {
	op, htype, hlen, hops byte
	xid                   uint32
	secs, flags           uint16

	ciaddr, yiaddr, siaddr, giaddr netip.Addr
	chaddr                         [16]byte

	// options maps a code to its data; a code that appears several times
	// is concatenated (RFC 3396). sname and file are not kept: the client
	// needs neither, and option overload (52) is deliberately ignored.
	options map[byte][]byte
}

var (
	errTruncated   = errors.New("dhcp: message truncated")
	errBadCookie   = errors.New("dhcp: bad magic cookie")
	errOptOverrun  = errors.New("dhcp: option overruns message")
	errBadHLen     = errors.New("dhcp: hardware address length out of range")
	errNotIPv4Addr = errors.New("dhcp: address is not IPv4")
)

func (m *message) setOption(code byte, data []byte) {
	if m.options == nil {
		m.options = make(map[byte][]byte)
	}
	m.options[code] = data
}

// marshal encodes m. Option 53 goes first because some servers look for
// it there; the rest are sorted so that encoding is deterministic.
func (m *message) marshal() ([]byte, error) {
	b := make([]byte, headerLen, minBOOTPLen)
	b[0], b[1], b[2], b[3] = m.op, m.htype, m.hlen, m.hops
	binary.BigEndian.PutUint32(b[4:], m.xid)
	binary.BigEndian.PutUint16(b[8:], m.secs)
	binary.BigEndian.PutUint16(b[10:], m.flags)
	for i, a := range []netip.Addr{m.ciaddr, m.yiaddr, m.siaddr, m.giaddr} {
		if !a.IsValid() {
			continue
		}
		if !a.Is4() {
			return nil, fmt.Errorf("%w: %s", errNotIPv4Addr, a)
		}
		a4 := a.As4()
		copy(b[12+4*i:], a4[:])
	}
	copy(b[28:44], m.chaddr[:])
	copy(b[fixedLen:], magicCookie[:])

	codes := make([]byte, 0, len(m.options))
	for c := range m.options {
		if c == optPad || c == optEnd {
			return nil, fmt.Errorf("dhcp: option code %d carries no data", c)
		}
		codes = append(codes, c)
	}
	slices.SortFunc(codes, func(x, y byte) int {
		switch {
		case x == y:
			return 0
		case x == optMessageType:
			return -1
		case y == optMessageType:
			return 1
		}
		return int(x) - int(y)
	})
	for _, c := range codes {
		b = appendOption(b, c, m.options[c])
	}
	b = append(b, optEnd)
	for len(b) < minBOOTPLen {
		b = append(b, optPad)
	}
	return b, nil
}

// appendOption splits data longer than 255 bytes into consecutive
// options of the same code (RFC 3396).
func appendOption(b []byte, code byte, data []byte) []byte {
	for {
		n := min(len(data), 255)
		b = append(b, code, byte(n))
		b = append(b, data[:n]...)
		data = data[n:]
		if len(data) == 0 {
			return b
		}
	}
}

// parse decodes a DHCP message. It never panics, whatever b holds: the
// socket receives anything sent to port 68 on the link.
func parse(b []byte) (*message, error) {
	if len(b) < headerLen {
		return nil, fmt.Errorf("%w: %d bytes", errTruncated, len(b))
	}
	if [cookieLen]byte(b[fixedLen:headerLen]) != magicCookie {
		return nil, errBadCookie
	}
	m := &message{
		op: b[0], htype: b[1], hlen: b[2], hops: b[3],
		xid:    binary.BigEndian.Uint32(b[4:]),
		secs:   binary.BigEndian.Uint16(b[8:]),
		flags:  binary.BigEndian.Uint16(b[10:]),
		ciaddr: netip.AddrFrom4([4]byte(b[12:16])),
		yiaddr: netip.AddrFrom4([4]byte(b[16:20])),
		siaddr: netip.AddrFrom4([4]byte(b[20:24])),
		giaddr: netip.AddrFrom4([4]byte(b[24:28])),
		chaddr: [16]byte(b[28:44]),
	}
	if m.hlen > 16 {
		return nil, fmt.Errorf("%w: %d", errBadHLen, m.hlen)
	}
	opts := b[headerLen:]
	for i := 0; i < len(opts); {
		code := opts[i]
		if code == optEnd {
			break
		}
		if code == optPad {
			i++
			continue
		}
		if i+1 >= len(opts) {
			return nil, fmt.Errorf("%w: option %d has no length", errOptOverrun, code)
		}
		n := int(opts[i+1])
		start := i + 2
		if start+n > len(opts) {
			return nil, fmt.Errorf("%w: option %d wants %d bytes, %d left", errOptOverrun, code, n, len(opts)-start)
		}
		if m.options == nil {
			m.options = make(map[byte][]byte)
		}
		// Copy so the message does not alias the caller's receive buffer.
		m.options[code] = append(m.options[code], opts[start:start+n]...)
		i = start + n
	}
	// A missing END option is tolerated: being strict buys nothing and some
	// embedded servers leave it out.
	return m, nil
}

func (m *message) msgType() msgType {
	if v := m.options[optMessageType]; len(v) == 1 {
		return msgType(v[0])
	}
	return 0
}

// addr returns the first address of an address-valued option.
func (m *message) addr(code byte) (netip.Addr, bool) {
	as := m.addrs(code)
	if len(as) == 0 {
		return netip.Addr{}, false
	}
	return as[0], true
}

// addrs returns the addresses of a list-of-addresses option, or nil when
// its length is not a positive multiple of 4.
func (m *message) addrs(code byte) []netip.Addr {
	v := m.options[code]
	if len(v) == 0 || len(v)%4 != 0 {
		return nil
	}
	as := make([]netip.Addr, 0, len(v)/4)
	for i := 0; i < len(v); i += 4 {
		as = append(as, netip.AddrFrom4([4]byte(v[i:i+4])))
	}
	return as
}

// seconds returns a 32-bit seconds option as a duration.
func (m *message) seconds(code byte) (time.Duration, bool) {
	v := m.options[code]
	if len(v) != 4 {
		return 0, false
	}
	return time.Duration(binary.BigEndian.Uint32(v)) * time.Second, true
}

// defaultLeaseTime is assumed when an ACK omits option 51, which RFC 2131
// requires; refusing such an ACK would leave the appliance without an
// address on a network whose server is merely sloppy.
const defaultLeaseTime = time.Hour

// leaseFrom builds a lease from an ACK; sent is when the REQUEST that it
// answers was first sent, from which RFC 2131 §4.4.1 counts the lease.
func leaseFrom(m *message, sent time.Time) (Lease, error) {
	yi := m.yiaddr
	if !yi.IsValid() || yi.IsUnspecified() || yi.IsMulticast() || yi == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
		return Lease{}, fmt.Errorf("dhcp: ACK offers unusable address %s", yi)
	}
	bits, err := prefixLen(m, yi)
	if err != nil {
		return Lease{}, err
	}
	l := Lease{
		Address:  netip.PrefixFrom(yi, bits),
		DNS:      m.addrs(optDNS),
		Acquired: sent,
	}
	if gw, ok := m.addr(optRouter); ok && !gw.IsUnspecified() {
		l.Gateway = gw
	}
	if id, ok := m.addr(optServerID); ok {
		l.Server = id
	}
	d, ok := m.seconds(optLeaseTime)
	if !ok || d == 0 {
		d = defaultLeaseTime
	}
	l.Duration = d
	// RFC 2131 §4.4.5 defaults; also used when a server sends times that
	// are out of order, which would otherwise make renewal never happen or
	// happen after expiry.
	t1, ok1 := m.seconds(optRenewalTime)
	t2, ok2 := m.seconds(optRebindingTime)
	if !ok1 || t1 == 0 || t1 >= d {
		t1 = d / 2
	}
	if !ok2 || t2 <= t1 || t2 >= d {
		t2 = d - d/8 // not d*7/8, which overflows for an infinite lease
	}
	l.T1, l.T2 = t1, t2
	return l, nil
}

// prefixLen turns option 1 into a prefix length, falling back to the
// classful mask of addr when the server sends none.
func prefixLen(m *message, addr netip.Addr) (int, error) {
	v, ok := m.options[optSubnetMask]
	if !ok {
		switch a := addr.As4(); {
		case a[0] < 128:
			return 8, nil
		case a[0] < 192:
			return 16, nil
		default:
			return 24, nil
		}
	}
	if len(v) != 4 {
		return 0, fmt.Errorf("dhcp: subnet mask option has %d bytes", len(v))
	}
	mask := binary.BigEndian.Uint32(v)
	ones := 0
	for mask&(1<<31) != 0 {
		mask <<= 1
		ones++
	}
	if mask != 0 || ones == 0 {
		return 0, fmt.Errorf("dhcp: unusable subnet mask %d.%d.%d.%d", v[0], v[1], v[2], v[3])
	}
	return ones, nil
}
