package broker

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	paho3 "github.com/eclipse/paho.mqtt.golang"
	"github.com/piot-appliance/piot/services/core"
)

// TestRotationCutsSessions: rotating an org's credentials through core
// disconnects its clients within 2 s (MQTT 5, 3.1.1 and mosquitto_sub),
// the old password stops working, and other orgs are untouched.
func TestRotationCutsSessions(t *testing.T) {
	b := startBroker(t, nil)
	a, o := newTenant(t, "rota"), newTenant(t, "rotb")
	addr := b.addr(ListenerTCP)

	c5, err := dial5(t, addr, a.username, a.password, v5opts{})
	if err != nil {
		t.Fatal(err)
	}
	lost3 := make(chan error, 1)
	c3, _, err := dial3(t, "tcp://"+addr, a.username, a.password, func(o *paho3.ClientOptions) {
		o.SetConnectionLostHandler(func(_ paho3.Client, err error) { lost3 <- err })
	})
	if err != nil {
		t.Fatal(err)
	}
	_ = c3
	other, err := dial5(t, addr, o.username, o.password, v5opts{})
	if err != nil {
		t.Fatal(err)
	}

	// A mosquitto_sub that stays subscribed until it is cut off.
	h, p := hostPort(t, addr)
	var sub *exec.Cmd
	subDone := make(chan error, 1)
	if path, ok := mosquittoPath(t, "mosquitto_sub"); ok {
		sub = exec.Command(path, "-h", h, "-p", p, "-u", a.username, "-P", a.password, "-t", a.topic("#"))
		if err := sub.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = sub.Process.Kill() })
		go func() { subDone <- sub.Wait() }()
		eventually(t, 5*time.Second, "mosquitto_sub connected", func() bool { return b.connected() >= 4 })
	}

	old := a.rotate(t)
	start := time.Now()
	select {
	case d := <-c5.disconnect:
		if d.ReasonCode != 0x87 {
			t.Errorf("MQTT 5 DISCONNECT reason %#x, want 0x87", d.ReasonCode)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("MQTT 5 client still connected 2 s after rotation")
	}
	select {
	case <-lost3:
	case <-time.After(2*time.Second - time.Since(start)):
		t.Fatal("MQTT 3.1.1 client still connected 2 s after rotation")
	}
	if sub != nil {
		select {
		case <-subDone:
		case <-time.After(2*time.Second - time.Since(start)):
			t.Fatal("mosquitto_sub still connected 2 s after rotation")
		}
	}

	if c, err := dial5(t, addr, a.username, old, v5opts{}); err == nil || c.connack.ReasonCode != 0x86 {
		t.Fatalf("old password: %v %+v", err, c.connack)
	}
	if sub != nil {
		out, err := mosquitto(t, "mosquitto_pub", "-h", h, "-p", p, "-u", a.username, "-P", old, "-t", a.topic("x"), "-m", "old")
		if err == nil || !strings.Contains(out, "bad user name or password") {
			t.Fatalf("mosquitto_pub with the old password: %v %q", err, out)
		}
	}
	if _, err := dial5(t, addr, a.username, a.password, v5opts{}); err != nil {
		t.Fatalf("new password: %v", err)
	}
	select {
	case <-other.disconnect:
		t.Fatal("another org's client was cut")
	default:
	}
	other.subscribe(t, o.topic("#"))
	other.publish(t, o.topic("ok"), "fine", false)
	other.expect(t, o.topic("ok"), "fine")
}

// TestRevocationDiscardsPersistentSession: a persistent session created
// with revoked credentials is not resumed, so messages queued for it are
// never delivered under the new credentials' login either.
func TestRevocationDiscardsPersistentSession(t *testing.T) {
	b := startBroker(t, nil)
	a := newTenant(t, "revsess")
	addr := b.addr(ListenerTCP)
	c, err := dial5(t, addr, a.username, a.password, v5opts{clientID: "dev", resume: true, expiry: 3600})
	if err != nil {
		t.Fatal(err)
	}
	c.subscribe(t, a.topic("#"))
	c.close()
	eventually(t, 2*time.Second, "offline", func() bool { return b.connected() == 0 })
	if err := b.Publish(context.Background(), a.topic("queued"), []byte("for the old session")); err != nil {
		t.Fatal(err)
	}

	a.rotate(t)
	eventually(t, 2*time.Second, "session discarded", func() bool {
		_, ok := b.server.Clients.Get(a.username + "/dev")
		return !ok
	})
	c2, err := dial5(t, addr, a.username, a.password, v5opts{clientID: "dev", resume: true, expiry: 3600})
	if err != nil {
		t.Fatal(err)
	}
	if c2.connack.SessionPresent {
		t.Fatal("revoked session resumed")
	}
	c2.expectNone(t, 300*time.Millisecond)
}

// TestOrgDeletionCutsSessions: deleting an org cuts its clients and its
// username stops working.
func TestOrgDeletionCutsSessions(t *testing.T) {
	b := startBroker(t, nil)
	a := newTenant(t, "del")
	addr := b.addr(ListenerTCP)
	c, err := dial5(t, addr, a.username, a.password, v5opts{})
	if err != nil {
		t.Fatal(err)
	}
	cc, admin := sharedCore(t)
	if err := cc.DeleteOrg(context.Background(), admin, a.id); err != nil {
		t.Fatal(err)
	}
	select {
	case <-c.disconnect:
	case <-time.After(2 * time.Second):
		t.Fatal("client of a deleted org still connected")
	}
	if _, err := dial5(t, addr, a.username, a.password, v5opts{}); err == nil {
		t.Fatal("deleted org's credentials still connect")
	}
}

// TestResumeRechecksIdentity: even if the change event were missed, a
// session is not resumed under a different org name, and a connected
// client of a renamed org can no longer publish or subscribe.
func TestResumeRechecksIdentity(t *testing.T) {
	b := startBroker(t, nil)
	b.mu.Lock()
	b.cancelEvents() // only the per-check and resume-time rules remain
	b.mu.Unlock()
	a := newTenant(t, "resume")
	addr := b.addr(ListenerTCP)
	c, err := dial5(t, addr, a.username, a.password, v5opts{clientID: "dev", resume: true, expiry: 3600})
	if err != nil {
		t.Fatal(err)
	}
	c.subscribe(t, a.topic("#"))
	live, err := dial5(t, addr, a.username, a.password, v5opts{})
	if err != nil {
		t.Fatal(err)
	}
	c.close()
	eventually(t, 2*time.Second, "offline", func() bool { return b.connected() == 1 })
	if err := b.Publish(context.Background(), a.topic("queued"), []byte("old namespace")); err != nil {
		t.Fatal(err)
	}

	cc, admin := sharedCore(t)
	renamed := a.name + "r"
	if _, err := cc.UpdateOrg(context.Background(), admin, core.OrgUpdate{ID: a.id, Name: &renamed}); err != nil {
		t.Fatal(err)
	}
	if rc := live.publish(t, a.topic("x"), "old name", false); rc != 0x87 {
		t.Errorf("publish under the old name: %#x", rc)
	}
	if rc := live.publish(t, "org/"+renamed+"/x", "new name", false); rc != 0x87 {
		t.Errorf("publish with a session granted under the old name: %#x", rc)
	}
	c2, err := dial5(t, addr, a.username, a.password, v5opts{clientID: "dev", resume: true, expiry: 3600})
	if err != nil {
		t.Fatal(err)
	}
	if c2.connack.SessionPresent {
		t.Fatal("session resumed under a new org name")
	}
	c2.expectNone(t, 300*time.Millisecond)
	if rc := c2.subscribe(t, "org/"+renamed+"/#"); rc != 1 {
		t.Fatalf("subscribe under the new name: %#x", rc)
	}
}
