package broker

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	"github.com/mochi-mqtt/server/v2/packets"
)

// A QoS 1 publish to $SYS is answered, never left waiting (issue 11):
// MQTT 5 gets PUBACK 0x87, MQTT 3.1.1 is disconnected. The client stays
// usable in MQTT 5.
func TestPublishToSysIsAnswered(t *testing.T) {
	b := startBroker(t, nil)
	a := newTenant(t, "sysp")
	c, err := dial5(t, b.addr(ListenerTCP), a.username, a.password, v5opts{})
	if err != nil {
		t.Fatal(err)
	}
	if rc := c.publish(t, "$SYS/broker/uptime", "1", false); rc != packets.ErrNotAuthorized.Code {
		t.Fatalf("v5 publish to $SYS: reason %#x, want 0x87", rc)
	}
	if rc := c.publish(t, a.topic("t1/value"), "2", false); rc != 0 {
		t.Fatalf("publish after the refusal: %#x", rc)
	}

	c3, _, err := dial3(t, "tcp://"+b.addr(ListenerTCP), a.username, a.password, nil)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err = publish3(t, c3, "$SYS/broker/uptime", 1, false, "1")
	if err == nil {
		t.Fatal("3.1.1 publish to $SYS was acknowledged")
	}
	eventually(t, 5*time.Second, "the 3.1.1 client disconnected", func() bool { return !c3.IsConnectionOpen() })
	t.Logf("3.1.1 publish to $SYS: %v after %s", err, time.Since(start).Round(time.Millisecond))
}

// Acknowledgements do not echo the publisher's user properties (issue 11).
func TestPubackCarriesNoUserProperties(t *testing.T) {
	b := startBroker(t, nil)
	a := newTenant(t, "props")
	c, err := dial5(t, b.addr(ListenerTCP), a.username, a.password, v5opts{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	pr, err := c.Publish(ctx, &paho.Publish{Topic: a.topic("t1/value"), QoS: 1, Payload: []byte("1"),
		Properties: &paho.PublishProperties{User: paho.UserProperties{{Key: "firmware", Value: "1.2"}}}})
	if err != nil || pr == nil {
		t.Fatalf("publish: %v", err)
	}
	if pr.ReasonCode != 0 {
		t.Fatalf("reason %#x", pr.ReasonCode)
	}
	if pr.Properties != nil && len(pr.Properties.User) > 0 {
		t.Fatalf("PUBACK echoes user properties: %v", pr.Properties.User)
	}
}

// An MQTT 3.1.1 publish the ACL denies closes the connection without a
// DISCONNECT packet, which 3.1.1 does not let a server send (issue 11).
func TestDeniedPublish311ClosesWithoutDisconnect(t *testing.T) {
	b := startBroker(t, nil)
	a := newTenant(t, "deny311")
	other := newTenant(t, "deny311o")
	conn := rawConnect(t, b.addr(ListenerTCP), 4, a.username, a.password)
	topic := other.topic("t1/value")
	pub := []byte{0x32, byte(2 + len(topic) + 2 + 1), 0, byte(len(topic))}
	pub = append(append(pub, topic...), 0x00, 0x07, '1')
	if _, err := conn.Write(pub); err != nil {
		t.Fatal(err)
	}
	rest, err := io.ReadAll(conn)
	if err != nil {
		t.Fatalf("connection not closed: %v", err)
	}
	if len(rest) != 0 {
		t.Fatalf("the server sent % x after a denied 3.1.1 publish; want the connection closed", rest)
	}
}

// An MQTT 5 publish that carries only a topic alias reaches its topic
// (issue 11): the alias is resolved before the ACL is asked.
func TestTopicAliasResolvedBeforeACL(t *testing.T) {
	b := startBroker(t, nil)
	a := newTenant(t, "alias")
	sub, err := dial5(t, b.addr(ListenerTCP), a.username, a.password, v5opts{})
	if err != nil {
		t.Fatal(err)
	}
	topic := a.topic("t1/value")
	if rc := sub.subscribe(t, topic); rc > 2 {
		t.Fatalf("subscribe: %#x", rc)
	}
	conn := rawConnect(t, b.addr(ListenerTCP), 5, a.username, a.password)
	publish := func(id byte, topic, payload string) {
		t.Helper()
		var p bytes.Buffer
		p.Write([]byte{0, byte(len(topic))})
		p.WriteString(topic)
		p.Write([]byte{0, id})
		p.Write([]byte{3, 0x23, 0, 1}) // properties: topic alias 1
		p.WriteString(payload)
		if _, err := conn.Write(append([]byte{0x32, byte(p.Len())}, p.Bytes()...)); err != nil {
			t.Fatal(err)
		}
		ack := readRawPacket(t, conn)
		if ack[0] != 0x40 || ack[3] != id || len(ack) > 4 && ack[4] != 0 {
			t.Fatalf("PUBACK for %q: % x", topic, ack)
		}
	}
	publish(1, topic, "20.5") // sets alias 1
	publish(2, "", "21.5")    // the alias alone
	sub.expect(t, topic, "20.5")
	sub.expect(t, topic, "21.5")
}

// A client that exceeds Receive Maximum reads DISCONNECT 0x93 before the
// connection ends, with no reset in between (issue 11), even when it has
// sent more than the broker read.
func TestReceiveMaximumDisconnectArrives(t *testing.T) {
	b := startBroker(t, func(c *Config) { c.MaxInflight = 10 })
	a := newTenant(t, "recvmax")
	conn := rawConnect(t, b.addr(ListenerTCP), 5, a.username, a.password)
	// QoS 2 publishes that are never released keep the receive quota
	// taken; the 11th exceeds it, and 40 more follow right behind.
	topic := a.topic("t1/value")
	var burst bytes.Buffer
	for id := 1; id <= 51; id++ {
		body := []byte{0, byte(len(topic))}
		body = append(body, topic...)
		body = append(body, 0, byte(id), 0) // packet id, no properties
		body = append(body, bytes.Repeat([]byte("v"), 64)...)
		burst.Write(append([]byte{0x34, byte(len(body))}, body...))
	}
	if _, err := conn.Write(burst.Bytes()); err != nil {
		t.Fatal(err)
	}
	var got []byte
	for {
		pk, err := readPacket(conn)
		if err != nil {
			t.Fatalf("after % x: %v (want DISCONNECT 0x93, then EOF)", got, err)
		}
		got = append(got, pk[0])
		if pk[0] == 0xE0 {
			if len(pk) < 3 || pk[2] != 0x93 {
				t.Fatalf("DISCONNECT % x, want reason 0x93", pk)
			}
			break
		}
		if pk[0] != 0x50 {
			t.Fatalf("packet % x, want PUBREC", pk)
		}
	}
	if _, err := readPacket(conn); err != io.EOF {
		t.Fatalf("after DISCONNECT: %v, want EOF", err)
	}
}

// readPacket reads one whole packet, returning io.EOF only for a clean
// end before its first byte.
func readPacket(conn net.Conn) ([]byte, error) {
	hdr := make([]byte, 1, 5)
	if _, err := io.ReadFull(conn, hdr); err != nil {
		return nil, err
	}
	n, mult := 0, 1
	for {
		var c [1]byte
		if _, err := io.ReadFull(conn, c[:]); err != nil {
			return nil, fmt.Errorf("length: %w", err)
		}
		hdr = append(hdr, c[0])
		n += int(c[0]&0x7f) * mult
		mult *= 128
		if c[0]&0x80 == 0 {
			break
		}
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(conn, body); err != nil {
		return nil, fmt.Errorf("body: %w", err)
	}
	return append(hdr, body...), nil
}
