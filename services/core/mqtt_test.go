package core

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/piot-appliance/piot/services/store"
	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/bson/primitive"
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
	reload := func(what string, want func(*Thing) bool) {
		t.Helper()
		c2, err := New(ctx, st, Config{BcryptCost: 4})
		if err != nil {
			t.Fatal(err)
		}
		got, err := c2.Thing(System(), th.ID)
		if err != nil || !want(&got) {
			t.Fatalf("%s, after a restart: %+v %v", what, got, err)
		}
	}
	reload("flushed", func(x *Thing) bool { return x.Sensor.Value == "21.5" && x.LastSeen == 1000 && x.Alias == "kitchen" })
	if n, _ := c.FlushState(ctx); n != 0 {
		t.Fatalf("second flush wrote %d", n)
	}
	// The page is what counts: the thing's document, whose sensor
	// settings a change rewrites, never takes state back.
	if !c.UpdateThingState(th.ID, func(x *Thing) bool { x.Sensor.Value = "22"; x.LastSeen = 1010; return true }) {
		t.Fatal("no change")
	}
	if _, err := c.FlushState(ctx); err != nil {
		t.Fatal(err)
	}
	if err := st.Things.Set(ctx, th.ID, bson.D{{Key: "sensor.value", Value: "stale"}, {Key: "last_seen", Value: int64(1)}}); err != nil {
		t.Fatal(err)
	}
	reload("flushed again", func(x *Thing) bool { return x.Sensor.Value == "22" && x.LastSeen == 1010 })
}

// Thing state lives in pages of many things: a flush of 1 000 changed
// things writes at most statePages pages, every thing comes back after a
// restart, and a deleted thing's entry is dropped from its page.
func TestThingStatePages(t *testing.T) {
	c, st, admin := newCore(t)
	ctx := context.Background()
	var ids []ID
	for i := 0; i < 300; i++ {
		th, err := c.CreateThing(ctx, admin, fmt.Sprintf("T%d", i), "sensor")
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, th.ID)
		c.UpdateThingState(th.ID, func(x *Thing) bool { x.Sensor.Value = fmt.Sprint(i); x.LastSeen = int64(i); return true })
	}
	if n, err := c.FlushState(ctx); err != nil || n != 300 {
		t.Fatalf("flush: %d %v", n, err)
	}
	pages, err := st.Database().Collection(store.CollThingState).CountDocuments(ctx, bson.D{})
	if err != nil || pages > statePages || pages < statePages/2 {
		t.Fatalf("%d pages for 300 things: %v", pages, err)
	}
	if err := c.DeleteThing(ctx, admin, ids[7]); err != nil {
		t.Fatal(err)
	}
	c.UpdateThingState(ids[8], func(x *Thing) bool { x.Sensor.Value = "late"; return true })
	if _, err := c.FlushState(ctx); err != nil {
		t.Fatal(err)
	}
	c2, err := New(ctx, st, Config{BcryptCost: 4})
	if err != nil {
		t.Fatal(err)
	}
	for i, id := range ids {
		got, err := c2.Thing(System(), id)
		switch {
		case i == 7:
			if err == nil {
				t.Fatal("deleted thing came back")
			}
		case err != nil:
			t.Fatal(err)
		case i == 8 && got.Sensor.Value != "late", i != 8 && (got.Sensor.Value != fmt.Sprint(i) || got.LastSeen != int64(i)):
			t.Fatalf("thing %d after a restart: value %q, last seen %d", i, got.Sensor.Value, got.LastSeen)
		}
	}
}

// BenchmarkFlushState is ingest's state flush with every thing changed
// (store's BenchmarkThingSetMany1000 is the one-statement-a-thing way).
func BenchmarkFlushState(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("%dthings", n), func(b *testing.B) {
			ctx := context.Background()
			st, err := store.Open(ctx, store.Config{DataDir: b.TempDir()})
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close(ctx)
			var docs []store.Thing
			for i := 0; i < n; i++ {
				docs = append(docs, store.Thing{ID: primitive.NewObjectID(), Name: fmt.Sprintf("t%d", i), Type: "sensor"})
			}
			if err := st.Things.InsertMany(ctx, docs); err != nil {
				b.Fatal(err)
			}
			// Loaded after the things were inserted.
			c, err := New(ctx, st, Config{BcryptCost: 4})
			if err != nil {
				b.Fatal(err)
			}
			for i := 0; b.Loop(); i++ {
				for _, d := range docs {
					c.UpdateThingState(d.ID, func(x *Thing) bool { x.Sensor.Value = fmt.Sprint(i); x.LastSeen = int64(i); return true })
				}
				if got, err := c.FlushState(ctx); err != nil || got != n {
					b.Fatalf("flush: %d %v", got, err)
				}
			}
			b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "things/s")
		})
	}
}

// A state change made through the API (a switch) is durable at once: the
// thing's page, which a restart reads over its document, is written with
// it.
func TestAPIStateChangeSurvivesItsPage(t *testing.T) {
	c, st, admin := newCore(t)
	ctx := context.Background()
	th, err := c.CreateThing(ctx, admin, "S1", ThingSwitch)
	if err != nil {
		t.Fatal(err)
	}
	c.UpdateThingState(th.ID, func(x *Thing) bool { x.LastSeen = 5; return true })
	if _, err := c.FlushState(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.SetSwitchState(ctx, admin, th.ID, true); err != nil {
		t.Fatal(err)
	}
	c2, err := New(ctx, st, Config{BcryptCost: 4})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := c2.Thing(System(), th.ID); err != nil || !got.Switch.State || got.LastSeen != 5 {
		t.Fatalf("after a restart: state %v, last seen %d, %v", got.Switch.State, got.LastSeen, err)
	}
}
