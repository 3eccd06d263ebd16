// Package sntp sets the clock of an appliance from time servers with a
// minimal SNTPv4 client (RFC 4330). It exists because the appliance may
// have no RTC: it boots in 1970, where every TLS certificate and JWT is
// "not yet valid".
package sntp

import (
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"
)

const (
	defaultPort  = "123"
	packetLen    = 48
	ntpEpochDiff = 2208988800 // seconds from 1900 (NTP era 0) to 1970

	modeClient = 3
	modeServer = 4
	version    = 4
	leapAlarm  = 3 // LI: server clock not synchronized

	// defaultQueryTimeout bounds a Query whose ctx has no deadline: a lost
	// UDP datagram is otherwise waited for forever.
	defaultQueryTimeout = 5 * time.Second
)

// Response is a validated server reply.
type Response struct {
	// Time is the server's transmit time plus half the round trip: the
	// best estimate of the true time at the moment the reply arrived.
	Time time.Time
	// Offset is how far the local clock is behind the server's (add it
	// to the local time to get the server's).
	Offset time.Duration
	// RTT is the round-trip delay, less the server's processing time.
	RTT time.Duration
	// Stratum is the server's distance from a reference clock, 1..15.
	Stratum uint8
}

// KissError is a kiss-o'-death reply (stratum 0): the server refuses to
// serve (DENY, RSTR) or asks the client to slow down (RATE).
type KissError struct {
	Code string
}

func (e *KissError) Error() string { return fmt.Sprintf("sntp: kiss-o'-death %q", e.Code) }

// Query asks server ("host" or "host:port", port 123 by default) for the
// time. It sends one request and waits for one reply until ctx ends, or
// 5 s when ctx has no deadline; retrying is the caller's business (see
// Syncer). The reply must be a server reply (mode 4) of stratum 1..15
// with a synchronized leap indicator, a non-zero transmit timestamp, and
// an originate timestamp equal to the request's transmit timestamp.
func Query(ctx context.Context, server string) (Response, error) {
	r, _, err := query(ctx, server)
	return r, err
}

// query is Query that also returns when the reply arrived, with its
// monotonic reading, so that the Syncer can carry Response.Time forward
// without trusting the local wall clock.
func query(ctx context.Context, server string) (Response, time.Time, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, defaultQueryTimeout)
		defer cancel()
	}
	addr := withPort(server)
	var d net.Dialer
	conn, err := d.DialContext(ctx, "udp", addr)
	if err != nil {
		return Response{}, time.Time{}, fmt.Errorf("sntp %s: %w", addr, err)
	}
	defer conn.Close()
	// Unblocks the read when ctx is cancelled; the deadline below only
	// covers ctx's own deadline.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if dl, ok := ctx.Deadline(); ok {
		if err := conn.SetDeadline(dl); err != nil {
			return Response{}, time.Time{}, fmt.Errorf("sntp %s: %w", addr, err)
		}
	}

	req := make([]byte, packetLen)
	req[0] = version<<3 | modeClient
	// The transmit timestamp is a random nonce rather than the local
	// time: the server echoes it as the originate timestamp, which proves
	// the reply answers this request (64 bits an off-path attacker cannot
	// guess), and it does not tell the network how wrong our clock is.
	// Offsets are computed from local send and receive times instead.
	var nonce [8]byte
	_, _ = crand.Read(nonce[:]) // documented never to fail
	copy(req[40:], nonce[:])

	t1 := time.Now()
	if _, err := conn.Write(req); err != nil {
		return Response{}, time.Time{}, fmt.Errorf("sntp %s: %w", addr, err)
	}
	buf := make([]byte, 512)
	n, err := conn.Read(buf)
	t4 := time.Now()
	if err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			// Every deadline on conn comes from ctx, whose own timer may
			// fire a moment after the socket's: wait for it so the error
			// says why.
			<-ctx.Done()
			return Response{}, time.Time{}, fmt.Errorf("sntp %s: %w", addr, ctx.Err())
		}
		return Response{}, time.Time{}, fmt.Errorf("sntp %s: %w", addr, err)
	}
	r, err := parseReply(buf[:n], nonce, t1, t4)
	if err != nil {
		return Response{}, time.Time{}, fmt.Errorf("sntp %s: %w", addr, err)
	}
	return r, t4, nil
}

var (
	errShort    = errors.New("reply too short")
	errMode     = errors.New("reply is not from a server (mode 4)")
	errVersion  = errors.New("unsupported version")
	errStratum  = errors.New("stratum out of range")
	errLeap     = errors.New("server clock not synchronized (LI=3)")
	errOrigin   = errors.New("originate timestamp does not match the request")
	errZeroTime = errors.New("zero timestamp")
)

// parseReply validates a reply to the request carrying nonce, sent at t1
// and answered at t4 (local times, with monotonic readings).
func parseReply(b []byte, nonce [8]byte, t1, t4 time.Time) (Response, error) {
	if len(b) < packetLen {
		return Response{}, fmt.Errorf("%w: %d bytes", errShort, len(b))
	}
	li, vn, mode := b[0]>>6, b[0]>>3&7, b[0]&7
	if mode != modeServer {
		return Response{}, fmt.Errorf("%w: mode %d", errMode, mode)
	}
	// RFC 4330 servers answer in the request's version; version 3
	// servers are still common and their replies are compatible.
	if vn != 3 && vn != 4 {
		return Response{}, fmt.Errorf("%w %d", errVersion, vn)
	}
	// The origin check comes before anything else in the reply is
	// believed, the kiss code included: otherwise anyone could send a
	// forged kiss-o'-death.
	if [8]byte(b[24:32]) != nonce {
		return Response{}, errOrigin
	}
	stratum := b[1]
	if stratum == 0 {
		return Response{}, &KissError{Code: kissCode(b[12:16])}
	}
	if stratum > 15 {
		return Response{}, fmt.Errorf("%w: %d", errStratum, stratum)
	}
	if li == leapAlarm {
		return Response{}, errLeap
	}
	recv, xmit := binary.BigEndian.Uint64(b[32:]), binary.BigEndian.Uint64(b[40:])
	if xmit == 0 {
		return Response{}, fmt.Errorf("%w: transmit", errZeroTime)
	}
	if recv == 0 {
		return Response{}, fmt.Errorf("%w: receive", errZeroTime)
	}
	t2, t3 := fromNTP(recv), fromNTP(xmit)
	// t4-t1 uses the monotonic clock; t3-t2 is the server's own.
	rtt := max(t4.Sub(t1)-t3.Sub(t2), 0)
	// t2 and t3 have no monotonic reading, so these differences are of
	// wall clocks, which is what the offset is about.
	offset := (t2.Sub(t1) + t3.Sub(t4)) / 2
	return Response{
		Time:    t3.Add(rtt / 2),
		Offset:  offset,
		RTT:     rtt,
		Stratum: stratum,
	}, nil
}

// kissCode returns the ASCII code of a kiss-o'-death, with anything
// unprintable replaced so that it is safe to log.
func kissCode(b []byte) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e {
			return '?'
		}
		return r
	}, strings.TrimRight(string(b), "\x00"))
}

// fromNTP converts a 64-bit NTP timestamp. RFC 4330 §3: with the most
// significant bit of the seconds set the time is in 1968–2036 (era 0),
// otherwise in 2036–2104 (era 1), so the client keeps working after the
// era rolls over in 2036.
func fromNTP(v uint64) time.Time {
	secs := int64(v >> 32)
	if secs&0x80000000 == 0 {
		secs += 1 << 32
	}
	nsec := (v & 0xffffffff) * 1e9 >> 32
	return time.Unix(secs-ntpEpochDiff, int64(nsec)).UTC()
}

// withPort adds the default port to a server given without one.
func withPort(server string) string {
	if _, _, err := net.SplitHostPort(server); err == nil {
		return server
	}
	return net.JoinHostPort(strings.TrimSuffix(strings.TrimPrefix(server, "["), "]"), defaultPort)
}

// plausibleSpan is how far past notBefore a time is still believed: far
// enough for an appliance left without updates for decades, near enough
// to reject an RTC or server that says 2100.
const plausibleSpan = 50

// Plausible reports whether t can be the current time on an appliance
// built at notBefore: not before the build (a clock without RTC starts in
// 1970) and less than 50 years after it. A zero notBefore (build time
// unknown, as in development builds) makes every time plausible.
func Plausible(t, notBefore time.Time) bool {
	if notBefore.IsZero() {
		return true
	}
	return !t.Before(notBefore) && t.Before(notBefore.AddDate(plausibleSpan, 0, 0))
}
