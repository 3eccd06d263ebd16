package broker

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/packets"
	"github.com/eclipse/paho.golang/paho"
	paho3 "github.com/eclipse/paho.mqtt.golang"
)

// TestOversizedPacket: a packet above MaxPacketSize ends that connection
// (MQTT 5 with DISCONNECT 0x95), and the broker goes on serving others.
func TestOversizedPacket(t *testing.T) {
	b := startBroker(t, func(c *Config) { c.MaxPacketSize = 1024 })
	a := newTenant(t, "big")
	addr := b.addr(ListenerTCP)

	watcher, err := dial5(t, addr, a.username, a.password, v5opts{})
	if err != nil {
		t.Fatal(err)
	}
	watcher.subscribe(t, a.topic("#"))

	c, err := dial5(t, addr, a.username, a.password, v5opts{})
	if err != nil {
		t.Fatal(err)
	}
	if rc := c.publish(t, a.topic("small"), strings.Repeat("s", 900), false); rc != 0 {
		t.Fatalf("small publish: %#x", rc)
	}
	_, _ = c.Publish(context.Background(), &paho.Publish{Topic: a.topic("big"), QoS: 0, Payload: bytes.Repeat([]byte("b"), 2048)})
	select {
	case d := <-c.disconnect:
		if d.ReasonCode != 0x95 {
			t.Fatalf("DISCONNECT %#x, want 0x95", d.ReasonCode)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("no DISCONNECT for an oversized packet")
	}

	lost := make(chan error, 1)
	c3, _, err := dial3(t, "tcp://"+addr, a.username, a.password, func(o *paho3.ClientOptions) {
		o.SetConnectionLostHandler(func(_ paho3.Client, err error) { lost <- err })
	})
	if err != nil {
		t.Fatal(err)
	}
	c3.Publish(a.topic("big3"), 0, false, bytes.Repeat([]byte("b"), 4096))
	select {
	case <-lost:
	case <-time.After(3 * time.Second):
		t.Fatal("3.1.1 client with an oversized packet not disconnected")
	}

	watcher.expect(t, a.topic("small"), strings.Repeat("s", 900))
	watcher.expectNone(t, 200*time.Millisecond)
	if rc := watcher.publish(t, a.topic("after"), "still serving", false); rc != 0 {
		t.Fatalf("publish after: %#x", rc)
	}
	watcher.expect(t, a.topic("after"), "still serving")
}

// TestLimitConnFraming feeds the size guard packets split at every byte
// boundary and checks it cuts exactly before the oversized packet and
// answers MQTT 5 clients with DISCONNECT 0x95.
func TestLimitConnFraming(t *testing.T) {
	var stream bytes.Buffer
	connect := packets.NewControlPacket(packets.CONNECT)
	cp := connect.Content.(*packets.Connect)
	cp.ProtocolName, cp.ProtocolVersion, cp.ClientID, cp.KeepAlive = "MQTT", 5, "x", 30
	if _, err := connect.WriteTo(&stream); err != nil {
		t.Fatal(err)
	}
	small := packets.NewControlPacket(packets.PUBLISH)
	small.Content.(*packets.Publish).Topic = "t"
	small.Content.(*packets.Publish).Payload = bytes.Repeat([]byte("a"), 200) // two-byte length
	if _, err := small.WriteTo(&stream); err != nil {
		t.Fatal(err)
	}
	okLen := stream.Len()
	big := packets.NewControlPacket(packets.PUBLISH)
	big.Content.(*packets.Publish).Topic = "t"
	big.Content.(*packets.Publish).Payload = bytes.Repeat([]byte("b"), 600)
	if _, err := big.WriteTo(&stream); err != nil {
		t.Fatal(err)
	}
	data := stream.Bytes()

	for chunk := 1; chunk <= 64; chunk++ {
		client, server := net.Pipe()
		lc := newLimitConn(server, connLimits{maxPacket: 512}, slog.New(slog.DiscardHandler))
		go func() {
			for i := 0; i < len(data); i += chunk {
				if _, err := client.Write(data[i:min(i+chunk, len(data))]); err != nil {
					return
				}
			}
		}()
		replies := make(chan []byte, 1)
		go func() {
			b, _ := io.ReadAll(client)
			replies <- b
		}()
		var got bytes.Buffer
		buf := make([]byte, 7)
		var err error
		for err == nil {
			var n int
			n, err = lc.Read(buf)
			got.Write(buf[:n])
		}
		if err != errPacketTooLarge {
			t.Fatalf("chunk %d: err %v", chunk, err)
		}
		// At most the oversized packet's fixed header may have passed,
		// when it arrived in pieces; never any of its body.
		if got.Len() > okLen+3 || !bytes.Equal(got.Bytes(), data[:got.Len()]) {
			t.Fatalf("chunk %d: passed %d bytes, allowed %d", chunk, got.Len(), okLen)
		}
		if got.Len() < okLen-chunk {
			t.Fatalf("chunk %d: withheld valid bytes (%d < %d)", chunk, got.Len(), okLen)
		}
		lc.Close() // as mochi does: what is queued still goes out
		<-lc.closed()
		if reply := <-replies; !bytes.Equal(reply, disconnectTooLarge) {
			t.Fatalf("chunk %d: reply %x", chunk, reply)
		}
		client.Close()
	}
}

// TestRetainedLimit: beyond MaxRetained a new retained topic is refused
// (MQTT 5 QoS 1: PUBACK 0x97) or delivered without being kept (3.1.1),
// while replacing or clearing existing retained topics still works.
func TestRetainedLimit(t *testing.T) {
	b := startBroker(t, nil)
	b.policy.maxRetained = b.server.Topics.Retained.Len() + 2 // room for two besides $SYS
	a := newTenant(t, "retlim")
	addr := b.addr(ListenerTCP)
	c, err := dial5(t, addr, a.username, a.password, v5opts{})
	if err != nil {
		t.Fatal(err)
	}
	for i, topic := range []string{"r1", "r2"} {
		if rc := c.publish(t, a.topic(topic), "v", true); rc != 0 {
			t.Fatalf("retained %d: %#x", i, rc)
		}
	}
	if rc := c.publish(t, a.topic("r3"), "v", true); rc != 0x97 {
		t.Fatalf("retained beyond the limit: %#x, want 0x97", rc)
	}
	if rc := c.publish(t, a.topic("r1"), "v2", true); rc != 0 {
		t.Fatalf("replacing a retained message: %#x", rc)
	}
	c3, _, err := dial3(t, "tcp://"+addr, a.username, a.password, nil)
	if err != nil {
		t.Fatal(err)
	}
	c.subscribe(t, a.topic("live/#"))
	if err := publish3(t, c3, a.topic("live/r4"), 1, true, "live"); err != nil {
		t.Fatal(err)
	}
	c.expect(t, a.topic("live/r4"), "live")
	if _, ok := b.server.Topics.Retained.Get(a.topic("live/r4")); ok {
		t.Fatal("3.1.1 publish beyond the limit was retained")
	}
	if rc := c.publish(t, a.topic("r2"), "", true); rc != 0 { // clears r2
		t.Fatalf("clearing: %#x", rc)
	}
	if rc := c.publish(t, a.topic("r3"), "v", true); rc != 0 {
		t.Fatalf("retained after clearing one: %#x", rc)
	}
}

// The outbound queue in packets follows the byte limit, within bounds.
func TestOutboundQueueFollowsQueuedBytes(t *testing.T) {
	for _, c := range []struct {
		bytes int
		want  int32
	}{{DefaultMaxQueuedBytes, 4096}, {256 << 10, 1024}, {16 << 10, minPendingWrites}, {1 << 40, maxPendingWrites}} {
		caps := Config{MaxQueuedBytes: c.bytes, MaxPacketSize: 4096}.withDefaults().capabilities()
		if got := caps.MaximumClientWritesPending; got != c.want {
			t.Errorf("max queued bytes %d: %d pending writes, want %d", c.bytes, got, c.want)
		}
	}
}
