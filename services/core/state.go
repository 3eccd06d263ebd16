package core

import (
	"context"
	"fmt"
)

// Thing state (what devices report, as opposed to settings) changes on the
// hot path: ingest updates it in memory at once and FlushState writes it
// back in batches, so no message waits for the database. Durability of
// what devices sent comes from the ingest journal, not from this write.

// UpdateThingState applies fn to the live thing under the write lock. fn
// must touch only state fields and return whether it changed anything;
// what it changed before returning false is undone.
//
// The thing is changed in place: the things' map is private to the core
// and read only under its lock (readers copy what they keep), so a
// message does not copy and allocate a whole thing, which was an eighth
// of the appliance's allocations under load.
func (c *Core) UpdateThingState(id ID, fn func(t *Thing) bool) bool {
	c.mu.Lock()
	t, ok := c.things[id]
	if !ok {
		c.mu.Unlock()
		return false
	}
	before := stateOf(t)
	if !fn(t) {
		before.applyTo(t)
		c.mu.Unlock()
		return false
	}
	if c.dirty == nil {
		c.dirty = map[ID]struct{}{}
	}
	c.dirty[id] = struct{}{}
	c.mu.Unlock()
	c.watchers.notify(id)
	return true
}

// FlushState writes the state of every thing changed since the last flush
// (statepages.go): the pages holding one, each with all its things. It
// returns the number of changed things written.
func (c *Core) FlushState(ctx context.Context) (int, error) {
	c.flushMu.Lock()
	defer c.flushMu.Unlock()
	c.mu.Lock()
	if len(c.dirty) == 0 {
		c.mu.Unlock()
		return 0, nil
	}
	dirty := c.dirty
	c.dirty = nil
	var want [statePages]bool
	for id := range dirty {
		want[pageOf(id)] = true
	}
	pages := c.pagesLocked(want)
	n := 0
	for id := range dirty {
		if _, ok := c.things[id]; ok {
			n++
		}
	}
	c.mu.Unlock()
	if err := c.writePages(ctx, pages); err != nil {
		c.mu.Lock()
		if c.dirty == nil {
			c.dirty = map[ID]struct{}{}
		}
		for id := range dirty {
			c.dirty[id] = struct{}{}
		}
		c.mu.Unlock()
		return 0, fmt.Errorf("core: flush thing state: %w", err)
	}
	return n, nil
}

// AllThings returns a snapshot of every thing, for services building their
// own indexes (ingest's topic index).
func (c *Core) AllThings() []Thing {
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := make([]Thing, 0, len(c.things))
	for _, t := range c.things {
		out = append(out, *t)
	}
	return out
}

// OrgNameOf returns the name of an org, for services mapping things to
// topics.
func (c *Core) OrgNameOf(id ID) (string, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	o, ok := c.orgs[id]
	if !ok {
		return "", false
	}
	return o.Name, true
}

// OrgIDByName resolves the org of a topic.
func (c *Core) OrgIDByName(name string) (ID, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	id, ok := c.orgByName[name]
	return id, ok
}

// keepLiveState carries into n the state that ingest changed while a
// settings edit was being written (live), except fields the edit itself
// changed relative to the snapshot it started from (cur).
func keepLiveState(n, cur, live *Thing) {
	pick := func(dst *bool, c, l bool) {
		if *dst == c {
			*dst = l
		}
	}
	pickI := func(dst *int64, c, l int64) {
		if *dst == c {
			*dst = l
		}
	}
	pickF := func(dst *float64, c, l float64) {
		if *dst == c {
			*dst = l
		}
	}
	pickS := func(dst *string, c, l string) {
		if *dst == c {
			*dst = l
		}
	}
	pick(&n.Available, cur.Available, live.Available)
	pickI(&n.LastSeen, cur.LastSeen, live.LastSeen)
	pickS(&n.Telemetry, cur.Telemetry, live.Telemetry)
	pickF(&n.Voltage, cur.Voltage, live.Voltage)
	pickF(&n.LocLat, cur.LocLat, live.LocLat)
	pickF(&n.LocLng, cur.LocLng, live.LocLng)
	pickI(&n.LocSat, cur.LocSat, live.LocSat)
	pickI(&n.LocTs, cur.LocTs, live.LocTs)
	pickI(&n.BatteryLevel, cur.BatteryLevel, live.BatteryLevel)
	pick(&n.AlarmActive, cur.AlarmActive, live.AlarmActive)
	pickI(&n.AlarmActivated, cur.AlarmActivated, live.AlarmActivated)
	pickS(&n.Sensor.Value, cur.Sensor.Value, live.Sensor.Value)
	pickS(&n.Sensor.Unit, cur.Sensor.Unit, live.Sensor.Unit)
	pickI(&n.Sensor.MeasurementLast, cur.Sensor.MeasurementLast, live.Sensor.MeasurementLast)
	pick(&n.Switch.State, cur.Switch.State, live.Switch.State)
}
