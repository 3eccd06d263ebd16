package sntp

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// toNTP is fromNTP's inverse (modulo the era).
func toNTP(t time.Time) uint64 {
	secs := uint64(t.Unix()+ntpEpochDiff) & 0xffffffff
	frac := uint64(t.Nanosecond()) << 32 / 1e9
	return secs<<32 | frac
}

// responder is an SNTP server on 127.0.0.1 answering per RFC 4330 §5,
// with a clock offset from the host's by offset. edit, if set, spoils
// each reply before it is sent; silent makes it drop requests.
type responder struct {
	conn    net.PacketConn
	mu      sync.Mutex
	offset  time.Duration
	edit    func(reply []byte)
	silent  atomic.Bool
	queries atomic.Int32
}

func newResponder(t testing.TB) *responder {
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &responder{conn: c}
	done := make(chan struct{})
	t.Cleanup(func() { c.Close(); <-done })
	go func() {
		defer close(done)
		buf := make([]byte, 512)
		for {
			n, from, err := c.ReadFrom(buf)
			if err != nil {
				return
			}
			r.queries.Add(1)
			if r.silent.Load() || n < packetLen || buf[0]&7 != modeClient {
				continue
			}
			r.mu.Lock()
			offset, edit := r.offset, r.edit
			r.mu.Unlock()
			received := time.Now().Add(offset)
			reply := make([]byte, packetLen)
			reply[0] = 0<<6 | buf[0]&0x38 | modeServer // LI 0, the request's version
			reply[1] = 2                               // stratum
			reply[2] = buf[2]                          // poll
			reply[3] = 0xec                            // precision ≈ 2^-20 s
			copy(reply[12:16], []byte{127, 0, 0, 1})   // reference ID: the upstream server
			binary.BigEndian.PutUint64(reply[16:], toNTP(received.Add(-time.Minute)))
			copy(reply[24:32], buf[40:48]) // originate = the request's transmit
			binary.BigEndian.PutUint64(reply[32:], toNTP(received))
			binary.BigEndian.PutUint64(reply[40:], toNTP(time.Now().Add(offset)))
			if edit != nil {
				edit(reply)
			}
			if _, err := c.WriteTo(reply, from); err != nil {
				return
			}
		}
	}()
	return r
}

func (r *responder) addr() string { return r.conn.LocalAddr().String() }

func (r *responder) set(offset time.Duration, edit func([]byte)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.offset, r.edit = offset, edit
}

// refusedAddr returns an address with nothing listening: queries to it
// fail at once with ECONNREFUSED.
func refusedAddr(t testing.TB) string {
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := c.LocalAddr().String()
	c.Close()
	return a
}

func TestQueryAccepts(t *testing.T) {
	r := newResponder(t)
	const off = 3*time.Hour + 250*time.Millisecond
	r.set(off, nil)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	before := time.Now()
	resp, err := Query(ctx, r.addr())
	if err != nil {
		t.Fatal(err)
	}
	after := time.Now()
	if d := (resp.Offset - off).Abs(); d > 100*time.Millisecond {
		t.Errorf("Offset = %v, want ≈ %v", resp.Offset, off)
	}
	if resp.RTT < 0 || resp.RTT > after.Sub(before) {
		t.Errorf("RTT = %v, query took %v", resp.RTT, after.Sub(before))
	}
	if resp.Stratum != 2 {
		t.Errorf("Stratum = %d", resp.Stratum)
	}
	if resp.Time.Before(before.Add(off)) || resp.Time.After(after.Add(off+50*time.Millisecond)) {
		t.Errorf("Time = %v, want within [%v, %v] + %v", resp.Time, before, after, off)
	}
	if got := resp.Time.Sub(after.Add(resp.Offset)).Abs(); got > 50*time.Millisecond {
		t.Errorf("Time and Offset disagree by %v", got)
	}
	if r.queries.Load() != 1 {
		t.Errorf("%d requests for one Query", r.queries.Load())
	}
}

func TestQueryVersion3Server(t *testing.T) {
	r := newResponder(t)
	r.set(0, func(b []byte) { b[0] = b[0]&^0x38 | 3<<3 })
	if _, err := Query(t.Context(), r.addr()); err != nil {
		t.Fatalf("version 3 reply refused: %v", err)
	}
}

func TestQueryRejects(t *testing.T) {
	r := newResponder(t)
	for _, c := range []struct {
		name string
		edit func([]byte)
		want error
		kiss string
	}{
		{name: "wrong originate timestamp (spoofed)", edit: func(b []byte) { b[31] ^= 1 }, want: errOrigin},
		{name: "zero originate timestamp", edit: func(b []byte) { clear(b[24:32]) }, want: errOrigin},
		{name: "kiss-o'-death RATE", edit: func(b []byte) { b[1] = 0; copy(b[12:16], "RATE") }, kiss: "RATE"},
		{name: "kiss-o'-death DENY", edit: func(b []byte) { b[1] = 0; copy(b[12:16], "DENY") }, kiss: "DENY"},
		{name: "kiss-o'-death unprintable", edit: func(b []byte) { b[1] = 0; copy(b[12:16], "\x01\xffA\x00") }, kiss: "??A"},
		{name: "forged kiss-o'-death", edit: func(b []byte) { b[1] = 0; b[31] ^= 1 }, want: errOrigin},
		{name: "leap indicator 3 (unsynchronized)", edit: func(b []byte) { b[0] |= 3 << 6 }, want: errLeap},
		{name: "stratum 16", edit: func(b []byte) { b[1] = 16 }, want: errStratum},
		{name: "mode 3 (client)", edit: func(b []byte) { b[0] = b[0]&^7 | modeClient }, want: errMode},
		{name: "mode 5 (broadcast)", edit: func(b []byte) { b[0] = b[0]&^7 | 5 }, want: errMode},
		{name: "version 2", edit: func(b []byte) { b[0] = b[0]&^0x38 | 2<<3 }, want: errVersion},
		{name: "zero transmit timestamp", edit: func(b []byte) { clear(b[40:48]) }, want: errZeroTime},
		{name: "zero receive timestamp", edit: func(b []byte) { clear(b[32:40]) }, want: errZeroTime},
	} {
		t.Run(c.name, func(t *testing.T) {
			r.set(0, c.edit)
			_, err := Query(t.Context(), r.addr())
			if c.kiss != "" {
				var k *KissError
				if !errors.As(err, &k) || k.Code != c.kiss {
					t.Fatalf("err = %v, want kiss-o'-death %q", err, c.kiss)
				}
				return
			}
			if !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
		})
	}
}

func TestQueryShortReply(t *testing.T) {
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	go func() {
		buf := make([]byte, 512)
		n, from, err := c.ReadFrom(buf)
		if err != nil {
			return
		}
		buf[0] = buf[0]&^7 | modeServer
		_, _ = c.WriteTo(buf[:n-1], from)
	}()
	if _, err := Query(t.Context(), c.LocalAddr().String()); !errors.Is(err, errShort) {
		t.Fatalf("err = %v, want %v", err, errShort)
	}
}

func TestQueryNoAnswer(t *testing.T) {
	r := newResponder(t)
	r.silent.Store(true)
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := Query(ctx, r.addr()); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want deadline exceeded", err)
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("took %v", el)
	}

	ctx, cancel = context.WithCancel(t.Context())
	time.AfterFunc(100*time.Millisecond, cancel)
	if _, err := Query(ctx, r.addr()); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want canceled", err)
	}
}

func TestQueryRefused(t *testing.T) {
	if _, err := Query(t.Context(), refusedAddr(t)); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("err = %v, want connection refused", err)
	}
}

func TestWithPort(t *testing.T) {
	for in, want := range map[string]string{
		"pool.ntp.org":       "pool.ntp.org:123",
		"pool.ntp.org:10123": "pool.ntp.org:10123",
		"10.0.2.2":           "10.0.2.2:123",
		"10.0.2.2:123":       "10.0.2.2:123",
		"::1":                "[::1]:123",
		"[::1]":              "[::1]:123",
		"[::1]:1234":         "[::1]:1234",
	} {
		if got := withPort(in); got != want {
			t.Errorf("withPort(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestFromNTP(t *testing.T) {
	for _, c := range []struct {
		v    uint64
		want time.Time
	}{
		{0x83aa7e80 << 32, time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC)},
		{(1672531200+ntpEpochDiff)<<32 | 0x80000000, time.Date(2023, 1, 1, 0, 0, 0, 500_000_000, time.UTC)},
		// Era 1: seconds with the top bit clear are after 2036-02-07.
		{1 << 32, time.Date(2036, 2, 7, 6, 28, 17, 0, time.UTC)},
		{0x7fffffff << 32, time.Date(2104, 2, 26, 9, 42, 23, 0, time.UTC)},
	} {
		if got := fromNTP(c.v); !got.Equal(c.want) {
			t.Errorf("fromNTP(%#x) = %v, want %v", c.v, got, c.want)
		}
	}
	for _, tm := range []time.Time{
		time.Date(1999, 12, 31, 23, 59, 59, 999_999_000, time.UTC),
		time.Date(2026, 6, 1, 12, 0, 0, 123_456_000, time.UTC),
		time.Date(2040, 1, 1, 0, 0, 0, 0, time.UTC),
	} {
		if got := fromNTP(toNTP(tm)); got.Sub(tm).Abs() > time.Microsecond {
			t.Errorf("round trip %v -> %v", tm, got)
		}
	}
}

func TestPlausible(t *testing.T) {
	build := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		name string
		t    time.Time
		want bool
	}{
		{"boot without RTC", time.Unix(0, 0), false},
		{"a minute after boot without RTC", time.Unix(60, 0), false},
		{"NTP era 0 start", time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC), false},
		{"just before the build", build.Add(-time.Second), false},
		{"the build time itself", build, true},
		{"a year later", build.AddDate(1, 0, 0), true},
		{"after the 2036 era rollover", time.Date(2036, 2, 8, 0, 0, 0, 0, time.UTC), true},
		{"49 years later", build.AddDate(49, 0, 0), true},
		{"50 years later", build.AddDate(50, 0, 0), false},
		{"corrupt RTC in 2150", time.Date(2150, 1, 1, 0, 0, 0, 0, time.UTC), false},
		{"same instant, other zone", build.In(time.FixedZone("CET", 3600)), true},
	} {
		if got := Plausible(c.t, build); got != c.want {
			t.Errorf("%s: Plausible(%v) = %v, want %v", c.name, c.t, got, c.want)
		}
		if !Plausible(c.t, time.Time{}) {
			t.Errorf("%s: implausible without a build time", c.name)
		}
	}
}
