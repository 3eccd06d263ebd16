package broker

import (
	"context"
	"testing"
	"time"

	"github.com/piot-appliance/piot/services/core"
)

// device creates a thing of tenant tn and gives it its own credentials.
func device(t *testing.T, tn tenant, name string) (core.Thing, core.MQTTCredentials) {
	t.Helper()
	c, admin := sharedCore(t)
	ctx := context.Background()
	th, err := c.CreateThing(ctx, admin, name, core.ThingDevice)
	if err != nil {
		t.Fatal(err)
	}
	if th, err = c.UpdateThing(ctx, admin, core.ThingUpdate{ID: th.ID, SetOrg: true, OrgID: tn.id}); err != nil {
		t.Fatal(err)
	}
	creds, err := c.SetThingMQTTCredentials(ctx, admin, th.ID)
	if err != nil {
		t.Fatal(err)
	}
	return th, creds
}

// A device's own credentials reach only its thing's subtree, and stop
// working when they are rotated or the thing is renamed, moved or
// deleted.
func TestDeviceCredentials(t *testing.T) {
	b := startBroker(t, nil)
	addr := b.addr(ListenerTCP)
	a, o := newTenant(t, "deva"), newTenant(t, "devb")
	th, creds := device(t, a, "dev-"+a.name)
	if creds.Username != core.ThingUsernamePrefix+th.Name || creds.Password == "" {
		t.Fatalf("credentials %+v", creds)
	}
	d, err := dial5(t, addr, creds.Username, creds.Password, v5opts{})
	if err != nil {
		t.Fatal(err)
	}
	own := a.topic(th.Name + "/")
	for _, s := range []struct {
		filter string
		want   byte
	}{
		{own + "#", 0x01},
		{own + "cmd/+", 0x01},
		{a.topic("#"), 0x87},
		{a.topic("+/value"), 0x87},
		{a.topic("other/#"), 0x87},
		{a.topic(th.Name), 0x87},
		{o.topic(th.Name + "/#"), 0x87},
		{"#", 0x87},
	} {
		if rc := d.subscribe(t, s.filter); rc != s.want {
			t.Errorf("device subscribe %q: %#x, want %#x", s.filter, rc, s.want)
		}
	}
	for _, p := range []struct {
		topic string
		want  byte
	}{
		{own + "value", 0x00},
		{a.topic("other/value"), 0x87},
		{o.topic(th.Name + "/value"), 0x87},
	} {
		if rc := d.publish(t, p.topic, "21.5", false); rc != p.want {
			t.Errorf("device publish %q: %#x, want %#x", p.topic, rc, p.want)
		}
	}
	d.expect(t, own+"value", "21.5")
	if _, err := dial5(t, addr, creds.Username, "wrong", v5opts{}); err == nil {
		t.Fatal("wrong device password accepted")
	}

	c, admin := sharedCore(t)
	ctx := context.Background()
	// Rotation cuts the session and the old password.
	fresh, err := c.SetThingMQTTCredentials(ctx, admin, th.ID)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "session cut after rotation", func() bool { return b.connected() == 0 })
	if _, err := dial5(t, addr, creds.Username, creds.Password, v5opts{}); err == nil {
		t.Fatal("rotated device password accepted")
	}
	// Moving the thing to another org cuts it too; its new org's subtree is
	// then its reach.
	if _, err := dial5(t, addr, fresh.Username, fresh.Password, v5opts{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.UpdateThing(ctx, admin, core.ThingUpdate{ID: th.ID, SetOrg: true, OrgID: o.id}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "session cut after the move", func() bool { return b.connected() == 0 })
	d, err = dial5(t, addr, fresh.Username, fresh.Password, v5opts{})
	if err != nil {
		t.Fatal(err)
	}
	if rc := d.publish(t, o.topic(th.Name+"/value"), "1", false); rc != 0 {
		t.Fatalf("publish in the new org: %#x", rc)
	}
	if rc := d.publish(t, own+"value", "1", false); rc != 0x87 {
		t.Fatalf("publish in the old org: %#x", rc)
	}
	// Unassigned, then deleted: no login.
	if _, err := c.UpdateThing(ctx, admin, core.ThingUpdate{ID: th.ID, SetOrg: true}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "session cut after unassigning", func() bool { return b.connected() == 0 })
	if _, err := dial5(t, addr, fresh.Username, fresh.Password, v5opts{}); err == nil {
		t.Fatal("unassigned device logged in")
	}
	if err := c.DeleteThing(ctx, admin, th.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := dial5(t, addr, fresh.Username, fresh.Password, v5opts{}); err == nil {
		t.Fatal("deleted device logged in")
	}
}
