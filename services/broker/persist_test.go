package broker

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	paho3 "github.com/eclipse/paho.mqtt.golang"
)

// TestPersistenceAcrossRestart: retained messages and the queued QoS 1
// messages of persistent sessions (3.1.1 clean session false, MQTT 5 clean
// start false with a session expiry) survive Stop and a new Broker on the
// same DataDir.
func TestPersistenceAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	a := newTenant(t, "persist")

	b1 := startBrokerIn(t, dir, nil)
	addr := b1.addr(ListenerTCP)
	persistent3 := func(o *paho3.ClientOptions) { o.SetClientID("dev3").SetCleanSession(false) }
	c3, _, err := dial3(t, "tcp://"+addr, a.username, a.password, persistent3)
	if err != nil {
		t.Fatal(err)
	}
	if rc := subscribe3(t, c3, a.topic("q/#")); rc != 1 {
		t.Fatalf("subscribe: %#x", rc)
	}
	c3.Disconnect(100)
	c5, err := dial5(t, addr, a.username, a.password, v5opts{clientID: "dev5", resume: true, expiry: 3600})
	if err != nil {
		t.Fatal(err)
	}
	c5.subscribe(t, a.topic("q/#"))
	if rc := c5.subscribe(t, "#"); rc != 0x87 {
		t.Fatalf("subscribe #: %#x", rc)
	}
	c5.close()
	eventually(t, 2*time.Second, "both offline", func() bool { return b1.connected() == 0 })

	pub, err := dial5(t, addr, a.username, a.password, v5opts{})
	if err != nil {
		t.Fatal(err)
	}
	if rc := pub.publish(t, a.topic("config"), "retained-v1", true); rc != 0 {
		t.Fatalf("retain: %#x", rc)
	}
	for _, m := range []string{"queued-1", "queued-2"} {
		if rc := pub.publish(t, a.topic("q/reading"), m, false); rc != 0 {
			t.Fatalf("publish: %#x", rc)
		}
	}
	pub.close()
	b1.stop(t)

	st, err := os.Stat(filepath.Join(dir, "broker", dbFile))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("%s mode %v", dbFile, st.Mode().Perm())
	}

	b2 := startBrokerIn(t, dir, nil)
	addr = b2.addr(ListenerTCP)
	if cl, ok := b2.server.Clients.Get(a.username + "/dev5"); !ok {
		t.Fatal("MQTT 5 session not restored")
	} else if subs := cl.State.Subscriptions.GetAll(); len(subs) != 1 {
		t.Fatalf("restored subscriptions %v, want only the granted one", subs)
	}
	r5, err := dial5(t, addr, a.username, a.password, v5opts{clientID: "dev5", resume: true, expiry: 3600})
	if err != nil {
		t.Fatal(err)
	}
	if !r5.connack.SessionPresent {
		t.Fatal("MQTT 5 session not present after restart")
	}
	// mochi resends queued messages ordered by creation second only, so
	// two from the same second may come in either order.
	got := map[string]bool{}
	for len(got) < 2 {
		select {
		case m := <-r5.msgs:
			got[string(m.Payload)] = true
		case <-time.After(5 * time.Second):
			t.Fatalf("MQTT 5 session resumed with %v", got)
		}
	}
	if !got["queued-1"] || !got["queued-2"] {
		t.Fatalf("MQTT 5 session resumed with %v", got)
	}

	_, msgs3, err := dial3(t, "tcp://"+addr, a.username, a.password, persistent3)
	if err != nil {
		t.Fatal(err)
	}
	got = map[string]bool{}
	for len(got) < 2 {
		select {
		case m := <-msgs3:
			got[string(m.Payload())] = true
		case <-time.After(5 * time.Second):
			t.Fatalf("3.1.1 session resumed with %v", got)
		}
	}
	if !got["queued-1"] || !got["queued-2"] {
		t.Fatalf("3.1.1 session resumed with %v", got)
	}

	fresh, err := dial5(t, addr, a.username, a.password, v5opts{})
	if err != nil {
		t.Fatal(err)
	}
	fresh.subscribe(t, a.topic("config"))
	fresh.expect(t, a.topic("config"), "retained-v1")

	// The restored subscription keeps working for new messages.
	if rc := fresh.publish(t, a.topic("q/reading"), "live-2", false); rc != 0 {
		t.Fatal(rc)
	}
	r5.expect(t, a.topic("q/reading"), "live-2")
}

// TestCleanSessionsAreNotPersisted: clean sessions leave nothing to
// restore, so a restart does not resurrect them.
func TestCleanSessionsAreNotPersisted(t *testing.T) {
	dir := t.TempDir()
	a := newTenant(t, "clean")
	b1 := startBrokerIn(t, dir, nil)
	c, err := dial5(t, b1.addr(ListenerTCP), a.username, a.password, v5opts{clientID: "tmp"})
	if err != nil {
		t.Fatal(err)
	}
	c.subscribe(t, a.topic("#"))
	b1.stop(t)
	b2 := startBrokerIn(t, dir, nil)
	if _, ok := b2.server.Clients.Get(a.username + "/tmp"); ok {
		t.Fatal("clean session restored")
	}
	if n := b2.policy.ids.len(); n != 0 {
		t.Fatalf("%d identities restored", n)
	}
}

// TestSessionExpiry: an offline persistent session disappears after
// SessionExpiry, subscriptions and queued messages included, in memory
// and on disk.
func TestSessionExpiry(t *testing.T) {
	dir := t.TempDir()
	a := newTenant(t, "expiry")
	b1 := startBrokerIn(t, dir, func(c *Config) { c.SessionExpiry = time.Second })
	c, err := dial5(t, b1.addr(ListenerTCP), a.username, a.password, v5opts{clientID: "dev", resume: true, expiry: 3600})
	if err != nil {
		t.Fatal(err)
	}
	if p := c.connack.Properties; p == nil || p.SessionExpiryInterval == nil || *p.SessionExpiryInterval != 1 {
		t.Fatalf("session expiry not capped in CONNACK: %+v", p)
	}
	c.subscribe(t, a.topic("#"))
	c.close()
	eventually(t, 2*time.Second, "offline", func() bool { return b1.connected() == 0 })
	if err := b1.Publish(t.Context(), a.topic("q"), []byte("queued")); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "session expired", func() bool {
		_, ok := b1.server.Clients.Get(a.username + "/dev")
		return !ok
	})
	if subs := b1.server.Topics.Subscribers(a.topic("q")); len(subs.Subscriptions) != 0 {
		t.Fatalf("expired session still subscribed: %v", subs.Subscriptions)
	}
	b1.stop(t)
	b2 := startBrokerIn(t, dir, nil)
	if _, ok := b2.server.Clients.Get(a.username + "/dev"); ok {
		t.Fatal("expired session restored")
	}
	if subs := b2.server.Topics.Subscribers(a.topic("q")); len(subs.Subscriptions) != 0 {
		t.Fatalf("expired session's subscription restored: %v", subs.Subscriptions)
	}
}
