package broker

import (
	"io"
	"log/slog"
	"net"
	"testing"
	"time"
)

// TestMalformedInput throws a catalogue of broken byte streams at the
// listener: each connection must be closed promptly, and the broker must
// go on serving.
func TestMalformedInput(t *testing.T) {
	b := startBroker(t, nil)
	a := newTenant(t, "malformed")
	addr := b.addr(ListenerTCP)

	valid := connectPacket(4, a.username, a.password)
	valid5 := connectPacket(5, a.username, a.password)

	catalogue := []struct {
		name string
		data []byte
	}{
		{"reserved packet type", []byte{0x00, 0x00}},
		{"publish before connect", []byte{0x30, 0x05, 0x00, 0x01, 't', 'x', 'y'}},
		{"five-byte remaining length", []byte{0x10, 0xff, 0xff, 0xff, 0xff, 0x01}},
		{"huge connect", []byte{0x10, 0xff, 0xff, 0xff, 0x7f}},
		{"wrong protocol name", []byte{0x10, 0x0d, 0, 4, 'M', 'Q', 'T', 'X', 4, 2, 0, 30, 0, 1, 'm'}},
		{"unknown protocol level", []byte{0x10, 0x0d, 0, 4, 'M', 'Q', 'T', 'T', 9, 2, 0, 30, 0, 1, 'm'}},
		{"truncated username", []byte{0x10, 0x0f, 0, 4, 'M', 'Q', 'T', 'T', 4, 0x82, 0, 30, 0, 1, 'm', 0, 9}},
		{"http request", []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")},
		{"second connect", append(append([]byte{}, valid...), valid...)},
		{"subscribe without filters", append(append([]byte{}, valid...), 0x82, 0x02, 0x00, 0x01)},
		{"MQTT 5 subscribe without filters", append(append([]byte{}, valid5...), 0x82, 0x03, 0x00, 0x01, 0x00)},
		{"subscribe with bad flags", append(append([]byte{}, valid...), 0x80, 0x06, 0x00, 0x01, 0, 1, '#', 1)},
		{"publish with qos 3", append(append([]byte{}, valid...), 0x36, 0x05, 0x00, 0x01, 't', 0, 1)},
	}
	for _, c := range catalogue {
		t.Run(c.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if _, err := conn.Write(c.data); err != nil {
				t.Fatal(err)
			}
			_ = conn.SetReadDeadline(time.Now().Add(3 * time.Second))
			if _, err := io.Copy(io.Discard, conn); err != nil {
				t.Fatalf("connection not closed: %v", err)
			}
		})
	}

	cl, err := dial5(t, addr, a.username, a.password, v5opts{})
	if err != nil {
		t.Fatal(err)
	}
	cl.subscribe(t, a.topic("#"))
	cl.publish(t, a.topic("ok"), "alive", false)
	cl.expect(t, a.topic("ok"), "alive")
}

// FuzzLimitConnScan: the framing follower never panics and never lets a
// byte of an oversized packet's body through.
func FuzzLimitConnScan(f *testing.F) {
	f.Add([]byte{0x10, 0x02, 0x00, 0x04}, 5)
	f.Add([]byte{0x30, 0xff, 0xff, 0xff, 0xff, 0x01}, 7)
	f.Add([]byte{0x10, 0x0d, 0, 4, 'M', 'Q', 'T', 'T', 5, 2, 0, 30, 0, 1, 'm', 0x30, 0x7f}, 3)
	f.Fuzz(func(t *testing.T, data []byte, chunk int) {
		if chunk <= 0 || chunk > 64 {
			chunk = 1
		}
		c := newLimitConn(nil, connLimits{maxPacket: 64}, slog.New(slog.DiscardHandler))
		passed := 0
		for i := 0; i < len(data); i += chunk {
			part := data[i:min(i+chunk, len(data))]
			cut, _, bad := c.scan(part)
			if bad {
				if cut < 0 || cut > len(part) {
					t.Fatalf("cut %d outside chunk of %d", cut, len(part))
				}
				passed += cut
				break
			}
			passed += len(part)
		}
		if passed > len(data) {
			t.Fatal("passed more than was read")
		}
	})
}
