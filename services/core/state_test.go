package core

import (
	"context"
	"fmt"
	"sync"
	"testing"
)

// UpdateThingState changes the live thing in place: a refused change
// leaves nothing behind, and what callers got from the core before is
// their own copy.
func TestStateUpdateInPlace(t *testing.T) {
	c, _, admin := newCore(t)
	ctx := context.Background()
	th, err := c.CreateThing(ctx, admin, "T1", ThingSensor)
	if err != nil {
		t.Fatal(err)
	}
	if !c.UpdateThingState(th.ID, func(x *Thing) bool { x.Sensor.Value = "1"; x.LastSeen = 10; return true }) {
		t.Fatal("update refused")
	}
	if n, err := c.FlushState(ctx); n != 1 || err != nil {
		t.Fatalf("flush: %d %v", n, err)
	}
	before, _ := c.Thing(admin, th.ID)
	if c.UpdateThingState(th.ID, func(x *Thing) bool { x.Sensor.Value = "2"; x.LastSeen = 20; x.AlarmActive = true; return false }) {
		t.Fatal("a refused update reported a change")
	}
	got, _ := c.Thing(admin, th.ID)
	if got.Sensor.Value != "1" || got.LastSeen != 10 || got.AlarmActive {
		t.Fatalf("a refused update left %q %d %v", got.Sensor.Value, got.LastSeen, got.AlarmActive)
	}
	if n, err := c.FlushState(ctx); n != 0 || err != nil {
		t.Fatalf("a refused update made the thing dirty: %d %v", n, err)
	}
	c.UpdateThingState(th.ID, func(x *Thing) bool { x.Sensor.Value = "3"; return true })
	if before.Sensor.Value != "1" {
		t.Fatalf("a copy taken before changed with the live thing: %q", before.Sensor.Value)
	}
}

// State updates run while the API lists, edits and deletes the same
// things, and while deleting a parent and an org rewrites their things
// (run under the race detector by make test). The deletions keep the
// state that arrived meanwhile.
func TestStateUpdatesAlongsideEdits(t *testing.T) {
	c, _, admin := newCore(t)
	ctx := context.Background()
	org, err := c.CreateOrg(ctx, admin, "farm", "")
	if err != nil {
		t.Fatal(err)
	}
	parent, err := c.CreateThing(ctx, admin, "device", ThingDevice)
	if err != nil {
		t.Fatal(err)
	}
	var ids []ID
	for k := range 8 {
		th, err := c.CreateThing(ctx, admin, fmt.Sprintf("s%d", k), ThingSensor)
		if err != nil {
			t.Fatal(err)
		}
		u := ThingUpdate{ID: th.ID, SetOrg: true, OrgID: org.ID}
		if k%2 == 0 {
			u = ThingUpdate{ID: th.ID, SetParent: true, ParentID: parent.ID}
		}
		if _, err := c.UpdateThing(ctx, admin, u); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, th.ID)
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	last := make([]int64, len(ids))
	wg.Add(1)
	go func() {
		defer wg.Done()
		for n := int64(1); ; n++ {
			select {
			case <-stop:
				return
			default:
			}
			for k, id := range ids {
				c.UpdateThingState(id, func(x *Thing) bool {
					x.Sensor.Value, x.LastSeen = fmt.Sprint(n), n
					return true
				})
				last[k] = n
			}
		}
	}()
	for k, id := range ids {
		desc := fmt.Sprintf("edited %d", k)
		if _, err := c.UpdateThing(ctx, admin, ThingUpdate{ID: id, Description: &desc}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Things(admin, ThingQuery{All: true, SortBy: "name"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.DeleteThing(ctx, admin, parent.ID); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteOrg(ctx, admin, org.ID); err != nil {
		t.Fatal(err)
	}
	close(stop)
	wg.Wait()

	for k, id := range ids {
		got, err := c.Thing(admin, id)
		if err != nil {
			t.Fatal(err)
		}
		if !got.ParentID.IsZero() || !got.OrgID.IsZero() || got.Description != fmt.Sprintf("edited %d", k) {
			t.Errorf("%s: parent %v org %v description %q", got.Name, got.ParentID, got.OrgID, got.Description)
		}
		if got.LastSeen != last[k] || got.Sensor.Value != fmt.Sprint(last[k]) {
			t.Errorf("%s: state %q at %d, the last update was %d", got.Name, got.Sensor.Value, got.LastSeen, last[k])
		}
	}
}
