package osnet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

const (
	clientPort = 68
	serverPort = 67
)

// listenUDP opens a UDP socket on 0.0.0.0:port that only sees ifname's
// traffic and may broadcast. Binding to the device rather than to an
// address is what lets it work before the interface has an address, and
// keeps replies on one NIC from reaching the client of another.
func listenUDP(ctx context.Context, ifname string, port int) (net.PacketConn, error) {
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		var opErr error
		err := rc.Control(func(fd uintptr) {
			s := int(fd)
			// REUSEADDR: a renewal may open the port while the socket of
			// the previous exchange is still being closed.
			if opErr = unix.SetsockoptInt(s, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); opErr != nil {
				opErr = fmt.Errorf("SO_REUSEADDR: %w", opErr)
				return
			}
			if opErr = unix.SetsockoptInt(s, unix.SOL_SOCKET, unix.SO_BROADCAST, 1); opErr != nil {
				opErr = fmt.Errorf("SO_BROADCAST: %w", opErr)
				return
			}
			if opErr = unix.BindToDevice(s, ifname); opErr != nil {
				opErr = fmt.Errorf("SO_BINDTODEVICE %s: %w", ifname, opErr)
			}
		})
		return errors.Join(err, opErr)
	}}
	c, err := lc.ListenPacket(ctx, "udp4", net.JoinHostPort("0.0.0.0", strconv.Itoa(port)))
	if err != nil {
		return nil, fmt.Errorf("dhcp socket on %s: %w", ifname, err)
	}
	return c, nil
}

// newExchanger sets ifname up and opens the client socket on it.
func newExchanger(ctx context.Context, ifname, hostname string) (*exchanger, error) {
	if len(hostname) > 255 {
		return nil, fmt.Errorf("dhcp: host name longer than 255 bytes")
	}
	link, err := linkUp(ifname)
	if err != nil {
		return nil, err
	}
	hw := link.Attrs().HardwareAddr
	if len(hw) != 6 {
		return nil, fmt.Errorf("dhcp: %s has no Ethernet hardware address (%v)", ifname, hw)
	}
	conn, err := listenUDP(ctx, ifname, clientPort)
	if err != nil {
		return nil, err
	}
	return &exchanger{
		conn:         conn,
		server:       &net.UDPAddr{IP: net.IPv4bcast, Port: serverPort},
		hwaddr:       hw,
		hostname:     hostname,
		retry:        time.Second,
		maxRetry:     64 * time.Second,
		requestTries: 4,
		log:          slog.New(slog.DiscardHandler),
	}, nil
}

// Acquire obtains a lease for ifname: it sets the link up and runs
// DISCOVER → OFFER → REQUEST → ACK, retransmitting with exponential
// backoff from 1 s, until it has a lease or ctx ends. It does not
// configure the interface; see Apply and Run. hostname, if not empty, is
// sent as option 12 so that the server can register it in DNS.
func Acquire(ctx context.Context, ifname, hostname string) (Lease, error) {
	x, err := newExchanger(ctx, ifname, hostname)
	if err != nil {
		return Lease{}, err
	}
	defer x.conn.Close()
	return x.acquire(ctx)
}

// Renew asks for l to be extended, retransmitting until ctx ends; the
// caller bounds ctx by l's expiry. The REQUEST carries l's address in
// ciaddr and is broadcast, so any server may answer (the rebinding state
// of RFC 2131; simpler than unicasting to l.Server first, and equivalent
// on a network with one server). A refusal returns an error wrapping
// ErrNAK.
func Renew(ctx context.Context, ifname, hostname string, l Lease) (Lease, error) {
	x, err := newExchanger(ctx, ifname, hostname)
	if err != nil {
		return Lease{}, err
	}
	defer x.conn.Close()
	return x.renew(ctx, l)
}

// Run keeps ifname configured by DHCP until ctx ends: it acquires a
// lease, applies it (Apply), calls onLease (may be nil) after every
// applied acquisition or renewal, renews at T1 and, when renewal fails by
// expiry or NAK, removes the address and acquires anew. Failures are
// retried with backoff; Run returns only ctx's error. It logs one line
// per lease change.
func Run(ctx context.Context, log *slog.Logger, ifname, hostname string, onLease func(Lease)) error {
	if log == nil {
		log = slog.Default()
	}
	r := &runner{
		log:    log,
		ifname: ifname,
		acquire: func(ctx context.Context) (Lease, error) {
			x, err := newExchanger(ctx, ifname, hostname)
			if err != nil {
				return Lease{}, err
			}
			defer x.conn.Close()
			x.log = log
			return x.acquire(ctx)
		},
		renew: func(ctx context.Context, l Lease) (Lease, error) {
			x, err := newExchanger(ctx, ifname, hostname)
			if err != nil {
				return Lease{}, err
			}
			defer x.conn.Close()
			x.log = log
			return x.renew(ctx, l)
		},
		apply:       func(l Lease) error { return Apply(ifname, l.Config()) },
		unconfigure: func() error { return flushIPv4(ifname) },
		onLease:     onLease,
		retry:       time.Second,
		maxRetry:    time.Minute,
	}
	return r.run(ctx)
}
