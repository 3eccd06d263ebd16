package core

import (
	"context"
	"testing"
	"time"
)

func TestMQTTCredentialsRotateAndVerify(t *testing.T) {
	c, _, admin := newCore(t)
	ctx := context.Background()
	events := make(chan Event, 16)
	defer c.Subscribe(func(e Event) { events <- e })()
	o, err := c.CreateOrg(ctx, admin, "farm", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.SetOrgMQTTCredentials(ctx, admin, o.ID, "bad/name"); CodeOf(err) != CodeBadInput {
		t.Fatalf("bad username: %v", err)
	}
	cr, err := c.SetOrgMQTTCredentials(ctx, admin, o.ID, "farm-devices")
	if err != nil || len(cr.Password) < 20 {
		t.Fatalf("set: %+v %v", cr, err)
	}
	if id, ok := c.VerifyMQTT("farm-devices", cr.Password); !ok || id.OrgName != "farm" {
		t.Fatalf("verify: %+v %v", id, ok)
	}
	if _, ok := c.VerifyMQTT("farm-devices", "wrong"); ok {
		t.Fatal("wrong password accepted")
	}
	cr2, err := c.SetOrgMQTTCredentials(ctx, admin, o.ID, "farm-devices")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := c.VerifyMQTT("farm-devices", cr.Password); ok {
		t.Fatal("rotated password still accepted (cache)")
	}
	if _, ok := c.VerifyMQTT("farm-devices", cr2.Password); !ok {
		t.Fatal("new password refused")
	}
	got, _ := c.Org(admin, o.ID)
	if got.MQTTUsername != "farm-devices" {
		t.Fatalf("username %q", got.MQTTUsername)
	}
	o2, _ := c.CreateOrg(ctx, admin, "other", "")
	if _, err := c.SetOrgMQTTCredentials(ctx, admin, o2.ID, "farm-devices"); CodeOf(err) != CodeConflict {
		t.Fatalf("shared username: %v", err)
	}
	member := Actor{UserID: o.ID, Email: "m@x.cz"}
	if _, err := c.SetOrgMQTTCredentials(ctx, member, o.ID, "x"); CodeOf(err) != CodeForbidden {
		t.Fatalf("non-admin: %v", err)
	}
	seen := 0
	timeout := time.After(5 * time.Second)
	for seen < 3 {
		select {
		case e := <-events:
			if e.Kind == OrgChanged && e.ID == o.ID {
				seen++
			}
		case <-timeout:
			t.Fatalf("saw %d org events", seen)
		}
	}
}

func TestThingStateIsFlushedInBatches(t *testing.T) {
	c, st, admin := newCore(t)
	ctx := context.Background()
	th, err := c.CreateThing(ctx, admin, "T1", "sensor")
	if err != nil {
		t.Fatal(err)
	}
	if !c.UpdateThingState(th.ID, func(x *Thing) bool { x.Sensor.Value = "21.5"; x.LastSeen = 1000; return true }) {
		t.Fatal("no change")
	}
	// A settings change in between must not lose the state, nor the
	// flush the setting.
	alias := "kitchen"
	if _, err := c.UpdateThing(ctx, admin, ThingUpdate{ID: th.ID, Alias: &alias}); err != nil {
		t.Fatal(err)
	}
	n, err := c.FlushState(ctx)
	if err != nil || n != 1 {
		t.Fatalf("flush: %d %v", n, err)
	}
	got, err := st.Things.Get(ctx, th.ID)
	if err != nil || got.Sensor.Value != "21.5" || got.LastSeen != 1000 || got.Alias != "kitchen" {
		t.Fatalf("stored: %+v %v", got, err)
	}
	if n, _ := c.FlushState(ctx); n != 0 {
		t.Fatalf("second flush wrote %d", n)
	}
}
