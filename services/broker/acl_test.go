package broker

import (
	"strings"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/piot-appliance/piot/services/core"
)

func TestUnderOrg(t *testing.T) {
	cases := []struct {
		topic string
		want  bool
	}{
		{"org/a/x", true},
		{"org/a/#", true},
		{"org/a/+/y", true},
		{"org/a/", true},
		{"org/a", false},
		{"org/b/x", false},
		{"org/+/x", false},
		{"org/#", false},
		{"#", false},
		{"+/a/x", false},
		{"foo/a/x", false}, // the reference checked only the second level
		{"org/ab/x", false},
		{"org/a b/x", false},
		{"Org/a/x", false},
		{"$SYS/a/x", false},
		{"", false},
	}
	for _, c := range cases {
		if got := (core.MQTTIdentity{OrgName: "a"}).Reaches(c.topic); got != c.want {
			t.Errorf("org a reaches %q: %v", c.topic, got)
		}
	}
	if (core.MQTTIdentity{}).Reaches("org//x") {
		t.Error("empty org name must own nothing")
	}
	if got := unshare("$share/g/org/a/#"); got != "org/a/#" {
		t.Errorf("unshare = %q", got)
	}
	if got := unshare("$share/g"); got != "$share/g" {
		t.Errorf("unshare malformed = %q", got)
	}
}

// TestACLMatrixV5 drives the ACL with an MQTT 5 client, whose SUBACK and
// PUBACK reason codes say exactly what was refused.
func TestACLMatrixV5(t *testing.T) {
	b := startBroker(t, nil)
	a, o := newTenant(t, "acla"), newTenant(t, "aclb")
	addr := b.addr(ListenerTCP)

	ca, err := dial5(t, addr, a.username, a.password, v5opts{})
	if err != nil {
		t.Fatal(err)
	}
	cb, err := dial5(t, addr, o.username, o.password, v5opts{})
	if err != nil {
		t.Fatal(err)
	}
	if rc := cb.subscribe(t, "org/"+o.name+"/#"); rc != 1 {
		t.Fatalf("B subscribe own namespace: %#x", rc)
	}

	subs := []struct {
		filter string
		want   byte
	}{
		{a.topic("#"), 0x01},
		{a.topic("x/+"), 0x01},
		{"$share/grp/" + a.topic("#"), 0x01},
		{o.topic("#"), 0x87},
		{o.topic("x"), 0x87},
		{"#", 0x87},
		{"+", 0x87},
		{"+/" + a.name + "/#", 0x87},
		{"org/+/x", 0x87},
		{"org/+/#", 0x87},
		{"org/#", 0x87},
		{"org/" + a.name, 0x87},
		{"$SYS/#", 0x87},
		{"$SYS/broker/version", 0x87},
		{"$share/grp/" + o.topic("#"), 0x87},
		{"foo/" + a.name + "/x", 0x87},
	}
	for _, s := range subs {
		if rc := ca.subscribe(t, s.filter); rc != s.want {
			t.Errorf("A subscribe %q: reason %#x, want %#x", s.filter, rc, s.want)
		}
	}

	pubs := []struct {
		topic string
		want  byte
	}{
		{a.topic("t"), 0x00},
		{a.topic("deep/er/t"), 0x00},
		{o.topic("t"), 0x87},
		{"org/" + o.name, 0x87},
		{"foo/" + a.name + "/t", 0x87},
		{"org/" + a.name, 0x87},
		{"t", 0x87},
	}
	for _, p := range pubs {
		if rc := ca.publish(t, p.topic, "from A", false); rc != p.want {
			t.Errorf("A publish %q: reason %#x, want %#x", p.topic, rc, p.want)
		}
	}
	cb.expectNone(t, 300*time.Millisecond)
	ca.expect(t, a.topic("t"), "from A")

	// B's own traffic still flows: the refusals above cost B nothing.
	if rc := cb.publish(t, o.topic("t"), "from B", false); rc != 0 {
		t.Fatalf("B publish own: %#x", rc)
	}
	cb.expect(t, o.topic("t"), "from B")
}

// TestACLMatrixMosquitto runs the cross-org matrix with Debian's mosquitto
// clients speaking MQTT 3.1.1 (SUBACK 0x80; a refused QoS 1 publish ends
// the connection, as mochi does for 3.1.1) and MQTT 5.
func TestACLMatrixMosquitto(t *testing.T) {
	b := startBroker(t, nil)
	a, o := newTenant(t, "mosa"), newTenant(t, "mosb")
	h, p := hostPort(t, b.addr(ListenerTCP))
	creds := func(tn tenant) []string { return []string{"-h", h, "-p", p, "-u", tn.username, "-P", tn.password} }

	// B listens on its namespace with a Go 3.1.1 client.
	cb, msgsB, err := dial3(t, "tcp://"+b.addr(ListenerTCP), o.username, o.password, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rc := subscribe3(t, cb, o.topic("#")); rc != 1 {
		t.Fatalf("B subscribe: %#x", rc)
	}

	for _, version := range []string{"mqttv311", "mqttv5"} {
		for _, filter := range []string{o.topic("#"), "#", "org/+/x", "org/#", "$SYS/#"} {
			out, err := mosquitto(t, "mosquitto_sub", append(creds(a), "-V", version, "-t", filter, "-W", "2", "-C", "1")...)
			if !strings.Contains(out, "denied") {
				t.Errorf("%s: A subscribing %q: err=%v out=%q", version, filter, err, out)
			}
		}
		// 3.1.1: mochi drops the connection; 5: PUBACK 0x87.
		out, err := mosquitto(t, "mosquitto_pub", append(creds(a), "-V", version, "-q", "1", "-t", o.topic("x"), "-m", "leak")...)
		if err == nil && !strings.Contains(strings.ToLower(out), "not authorized") {
			t.Errorf("%s: A publishing to B succeeded: %q", version, out)
		}
		// QoS 0 cannot be refused on the wire; it must just vanish.
		if out, err := mosquitto(t, "mosquitto_pub", append(creds(a), "-V", version, "-q", "0", "-t", o.topic("x"), "-m", "leak0")...); err != nil {
			t.Errorf("%s: QoS 0 publish: %v %q", version, err, out)
		}
		// A's own namespace works.
		if out, err := mosquitto(t, "mosquitto_pub", append(creds(a), "-V", version, "-q", "1", "-t", a.topic("x"), "-m", "mine")...); err != nil {
			t.Errorf("%s: A publishing to own namespace: %v %q", version, err, out)
		}
	}
	expectNone3(t, msgsB, 300*time.Millisecond)

	// mosquitto_sub receives its own org's messages.
	done := make(chan string, 1)
	go func() {
		out, _ := mosquitto(t, "mosquitto_sub", append(creds(a), "-t", a.topic("#"), "-C", "1", "-W", "5", "-v")...)
		done <- out
	}()
	eventually(t, 5*time.Second, "mosquitto_sub subscribed", func() bool {
		return publish3(t, cb, o.topic("noise"), 0, false, "x") == nil && b.subscriptions() >= 2
	})
	ca, _, err := dial3(t, "tcp://"+b.addr(ListenerTCP), a.username, a.password, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := publish3(t, ca, a.topic("hello"), 1, false, "world"); err != nil {
		t.Fatal(err)
	}
	if out := <-done; !strings.Contains(out, a.topic("hello")+" world") {
		t.Fatalf("mosquitto_sub got %q", out)
	}
}

// TestWillCannotCrossOrgs: a will on another org's topic is refused at
// CONNECT, and a will whose publisher lost its rights is not delivered.
func TestWillCannotCrossOrgs(t *testing.T) {
	b := startBroker(t, nil)
	a, o := newTenant(t, "willa"), newTenant(t, "willb")
	addr := b.addr(ListenerTCP)
	h, p := hostPort(t, addr)

	cb, err := dial5(t, addr, o.username, o.password, v5opts{})
	if err != nil {
		t.Fatal(err)
	}
	cb.subscribe(t, o.topic("#"))

	_, err = dial5(t, addr, a.username, a.password, v5opts{will: &paho.WillMessage{Topic: o.topic("status"), Payload: []byte("leak"), QoS: 1}})
	if err == nil {
		t.Fatal("A connected with a will on B's topic")
	}
	out, err := mosquitto(t, "mosquitto_sub", "-h", h, "-p", p, "-u", a.username, "-P", a.password, "-V", "mqttv311",
		"--will-topic", o.topic("status"), "--will-payload", "leak", "-t", a.topic("#"), "-W", "2")
	if err == nil || !strings.Contains(strings.ToLower(out), "not authori") {
		t.Fatalf("mosquitto_sub with cross-org will: err=%v out=%q", err, out)
	}
	cb.expectNone(t, 300*time.Millisecond)

	// An inline observer sees every will that is actually published.
	wills := make(chan string, 10)
	if err := b.server.Subscribe(a.topic("#"), 1, func(_ *mqtt.Client, _ packets.Subscription, pk packets.Packet) {
		wills <- string(pk.Payload)
	}); err != nil {
		t.Fatal(err)
	}
	// Control: an abrupt disconnect publishes an allowed will.
	c1, err := dial5(t, addr, a.username, a.password, v5opts{will: &paho.WillMessage{Topic: a.topic("status"), Payload: []byte("gone"), QoS: 1}})
	if err != nil {
		t.Fatal(err)
	}
	c1.conn.Close()
	select {
	case w := <-wills:
		if w != "gone" {
			t.Fatalf("will %q", w)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("allowed will not delivered")
	}
	// Revoked: the will of a client whose credentials were rotated is dropped.
	c2, err := dial5(t, addr, a.username, a.password, v5opts{will: &paho.WillMessage{Topic: a.topic("status"), Payload: []byte("revoked"), QoS: 1}})
	if err != nil {
		t.Fatal(err)
	}
	a.rotate(t)
	select {
	case d := <-c2.disconnect:
		if d.ReasonCode != 0x87 {
			t.Fatalf("revoked client got DISCONNECT %#x", d.ReasonCode)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("revoked client not disconnected within 2 s")
	}
	select {
	case w := <-wills:
		t.Fatalf("will of a revoked client delivered: %q", w)
	case <-time.After(500 * time.Millisecond):
	}
}

// TestRetainedDoesNotLeak: B's retained messages never reach A, and the
// retained messages of a renamed org are gone before a new org can take
// the old name.
func TestRetainedDoesNotLeak(t *testing.T) {
	b := startBroker(t, nil)
	a, o := newTenant(t, "reta"), newTenant(t, "retb")
	addr := b.addr(ListenerTCP)

	cb, err := dial5(t, addr, o.username, o.password, v5opts{})
	if err != nil {
		t.Fatal(err)
	}
	if rc := cb.publish(t, o.topic("config"), "secret", true); rc != 0 {
		t.Fatalf("retain: %#x", rc)
	}
	ca, err := dial5(t, addr, a.username, a.password, v5opts{})
	if err != nil {
		t.Fatal(err)
	}
	if rc := ca.subscribe(t, a.topic("#")); rc != 1 {
		t.Fatalf("own: %#x", rc)
	}
	for _, f := range []string{o.topic("config"), o.topic("#"), "#", "org/+/config", "+/+/config"} {
		if rc := ca.subscribe(t, f); rc != 0x87 {
			t.Errorf("subscribe %q: %#x", f, rc)
		}
	}
	ca.expectNone(t, 300*time.Millisecond)

	// Rename B: its retained namespace is cleared, so a new org that takes
	// the old name starts empty.
	c, admin := sharedCore(t)
	renamed := o.name + "x"
	if _, err := c.UpdateOrg(t.Context(), admin, core.OrgUpdate{ID: o.id, Name: &renamed}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-cb.disconnect:
	case <-time.After(2 * time.Second):
		t.Fatal("renamed org's client not disconnected")
	}
	eventually(t, 2*time.Second, "retained cleared", func() bool {
		_, ok := b.server.Topics.Retained.Get(o.topic("config"))
		return !ok
	})
	org2, err := c.CreateOrg(t.Context(), admin, o.name, "")
	if err != nil {
		t.Fatal(err)
	}
	creds, err := c.SetOrgMQTTCredentials(t.Context(), admin, org2.ID, "user-"+o.name+"-new")
	if err != nil {
		t.Fatal(err)
	}
	cn, err := dial5(t, addr, creds.Username, creds.Password, v5opts{})
	if err != nil {
		t.Fatal(err)
	}
	if rc := cn.subscribe(t, o.topic("#")); rc != 1 {
		t.Fatalf("new org subscribe: %#x", rc)
	}
	cn.expectNone(t, 300*time.Millisecond)
}
