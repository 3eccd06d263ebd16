package broker

import (
	"bytes"
	"context"
	"io"
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
