package broker

import (
	"errors"
	"testing"
	"time"

	paho3 "github.com/eclipse/paho.mqtt.golang"
)

func findClient(cs []Client, session string) (Client, bool) {
	for _, c := range cs {
		if c.Session == session {
			return c, true
		}
	}
	return Client{}, false
}

// TestClientsListDisconnectAndDeleteSession: the connected clients carry
// who they are and what they hold; an administrator's disconnect keeps a
// persistent session, which can then be deleted for good, also on disk.
func TestClientsListDisconnectAndDeleteSession(t *testing.T) {
	dir := t.TempDir()
	a := newTenant(t, "clients")
	b := startBrokerIn(t, dir, nil)
	addr := b.addr(ListenerTCP)

	before := time.Now().Add(-time.Second)
	c5, err := dial5(t, addr, a.username, a.password, v5opts{clientID: "sensor5", resume: true, expiry: 3600})
	if err != nil {
		t.Fatal(err)
	}
	c5.subscribe(t, a.topic("cmd/#"))
	c3, _, err := dial3(t, "tcp://"+addr, a.username, a.password, func(o *paho3.ClientOptions) { o.SetClientID("clean3") })
	if err != nil {
		t.Fatal(err)
	}
	defer c3.Disconnect(0)

	session := a.username + "/sensor5"
	var got Client
	eventually(t, 2*time.Second, "both clients listed", func() bool {
		cs := b.Clients()
		_, ok3 := findClient(cs, a.username+"/clean3")
		c, ok5 := findClient(cs, session)
		got = c
		return ok3 && ok5
	})
	if got.ClientID != "sensor5" || got.Username != a.username || got.OrgID != a.id || got.Org != a.name ||
		got.ProtocolVersion != 5 || !got.Connected || !got.Persistent || got.Listener != ListenerTCP ||
		got.Remote == "" || got.Since.Before(before) || got.Since.After(time.Now()) {
		t.Fatalf("listed %+v", got)
	}
	if len(got.Subscriptions) != 1 || got.Subscriptions[0].Filter != a.topic("cmd/#") || got.Subscriptions[0].QoS != 1 {
		t.Fatalf("subscriptions %+v", got.Subscriptions)
	}
	if c, _ := b.Client(a.username + "/clean3"); c.ProtocolVersion != 4 || c.Persistent {
		t.Fatalf("3.1.1 clean client %+v", c)
	}

	if err := b.DeleteSession(session); !errors.Is(err, ErrConnected) {
		t.Fatalf("deleting a connected session: %v", err)
	}
	if err := b.Disconnect(session); err != nil {
		t.Fatal(err)
	}
	select {
	case d := <-c5.disconnect:
		if d.ReasonCode != 0x98 {
			t.Fatalf("DISCONNECT reason %#x, want 0x98", d.ReasonCode)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no DISCONNECT")
	}
	eventually(t, 2*time.Second, "the session offline", func() bool {
		c, ok := b.Client(session)
		got = c
		return ok && !c.Connected
	})
	if !got.Persistent || len(got.Subscriptions) != 1 || got.Expires.Sub(got.Since) != time.Hour {
		t.Fatalf("offline session %+v", got)
	}
	if err := b.Disconnect(session); !errors.Is(err, ErrNotOnline) {
		t.Fatalf("disconnecting an offline session: %v", err)
	}

	if err := b.DeleteSession(session); err != nil {
		t.Fatal(err)
	}
	if _, ok := b.Client(session); ok {
		t.Fatal("deleted session still listed")
	}
	if err := b.DeleteSession(session); !errors.Is(err, ErrNoSession) {
		t.Fatalf("deleting it again: %v", err)
	}
	b.stop(t)

	b2 := startBrokerIn(t, dir, nil)
	if _, ok := b2.Client(session); ok {
		t.Fatal("deleted session restored after restart")
	}
	r5, err := dial5(t, b2.addr(ListenerTCP), a.username, a.password, v5opts{clientID: "sensor5", resume: true, expiry: 3600})
	if err != nil {
		t.Fatal(err)
	}
	if r5.connack.SessionPresent {
		t.Fatal("the deleted session was resumed")
	}
}

// TestRetainedListAndDelete: retained messages are listed with size and
// time, and a deletion holds across a restart; the broker's $SYS topics
// are neither listed nor deletable.
func TestRetainedListAndDelete(t *testing.T) {
	dir := t.TempDir()
	a := newTenant(t, "retained")
	b := startBrokerIn(t, dir, nil)
	pub, err := dial5(t, b.addr(ListenerTCP), a.username, a.password, v5opts{})
	if err != nil {
		t.Fatal(err)
	}
	for _, topic := range []string{"config", "keep"} {
		if rc := pub.publish(t, a.topic(topic), "v1-"+topic, true); rc != 0 {
			t.Fatalf("retain: %#x", rc)
		}
	}
	var rs []RetainedMessage
	eventually(t, 2*time.Second, "both retained", func() bool {
		rs = nil
		for _, m := range b.Retained() {
			if m.Topic == a.topic("config") || m.Topic == a.topic("keep") {
				rs = append(rs, m)
			}
		}
		return len(rs) == 2
	})
	if rs[0].Topic != a.topic("config") || string(rs[0].Payload) != "v1-config" || rs[0].QoS != 1 ||
		time.Since(rs[0].Created) > time.Minute {
		t.Fatalf("retained %+v", rs[0])
	}
	for _, m := range b.Retained() {
		if m.Topic[0] == '$' {
			t.Fatalf("$SYS listed: %s", m.Topic)
		}
	}
	if err := b.DeleteRetained("$SYS/broker/uptime"); err == nil {
		t.Fatal("deleted a $SYS topic")
	}
	if err := b.DeleteRetained(a.topic("config")); err != nil {
		t.Fatal(err)
	}
	if err := b.DeleteRetained(a.topic("config")); !errors.Is(err, ErrNoRetained) {
		t.Fatalf("deleting it again: %v", err)
	}
	pub.close()
	b.stop(t)

	b2 := startBrokerIn(t, dir, nil)
	sub, err := dial5(t, b2.addr(ListenerTCP), a.username, a.password, v5opts{})
	if err != nil {
		t.Fatal(err)
	}
	sub.subscribe(t, a.topic("#"))
	sub.expect(t, a.topic("keep"), "v1-keep")
	sub.expectNone(t, 300*time.Millisecond)
	for _, m := range b2.Retained() {
		if m.Topic == a.topic("config") {
			t.Fatal("deleted retained message back after restart")
		}
	}
}
