package core

import (
	"context"
	"fmt"

	"go.mongodb.org/mongo-driver/bson"
)

// Thing state (what devices report, as opposed to settings) changes on the
// hot path: ingest updates it in memory at once and FlushState writes it
// back in batches, so no message waits for the database. Durability of
// what devices sent comes from the ingest journal, not from this write.

// UpdateThingState applies fn to the live thing under the write lock. fn
// must touch only state fields and return whether it changed anything.
func (c *Core) UpdateThingState(id ID, fn func(t *Thing) bool) bool {
	c.mu.Lock()
	t, ok := c.things[id]
	if !ok {
		c.mu.Unlock()
		return false
	}
	n := *t // copy-on-write: readers may hold the old pointer's copy
	if !fn(&n) {
		c.mu.Unlock()
		return false
	}
	c.things[id] = &n
	if c.dirty == nil {
		c.dirty = map[ID]struct{}{}
	}
	c.dirty[id] = struct{}{}
	c.mu.Unlock()
	c.watchers.notify(id)
	return true
}

// stateSet is the $set of every state field of a thing.
func stateSet(t *Thing) bson.D {
	return bson.D{
		{Key: "available", Value: t.Available},
		{Key: "last_seen", Value: t.LastSeen},
		{Key: "telemetry", Value: t.Telemetry},
		{Key: "voltage", Value: t.Voltage},
		{Key: "loc_lat", Value: t.LocLat},
		{Key: "loc_lng", Value: t.LocLng},
		{Key: "loc_sat", Value: t.LocSat},
		{Key: "loc_ts", Value: t.LocTs},
		{Key: "battery_level", Value: t.BatteryLevel},
		{Key: "alarm_active", Value: t.AlarmActive},
		{Key: "alarm_activated", Value: t.AlarmActivated},
		{Key: "sensor.value", Value: t.Sensor.Value},
		{Key: "sensor.unit", Value: t.Sensor.Unit},
		{Key: "sensor.measurement_last", Value: t.Sensor.MeasurementLast},
		{Key: "switch.state", Value: t.Switch.State},
	}
}

// FlushState writes the state of every thing changed since the last flush
// in one bulk write. On failure the things stay dirty for the next try.
func (c *Core) FlushState(ctx context.Context) (int, error) {
	c.mu.Lock()
	if len(c.dirty) == 0 {
		c.mu.Unlock()
		return 0, nil
	}
	ids := make([]ID, 0, len(c.dirty))
	sets := make([]bson.D, 0, len(c.dirty))
	for id := range c.dirty {
		if t, ok := c.things[id]; ok {
			ids = append(ids, id)
			sets = append(sets, stateSet(t))
		}
	}
	c.dirty = nil
	c.mu.Unlock()
	if err := c.st.Things.SetMany(ctx, ids, sets); err != nil {
		c.mu.Lock()
		if c.dirty == nil {
			c.dirty = map[ID]struct{}{}
		}
		for _, id := range ids {
			c.dirty[id] = struct{}{}
		}
		c.mu.Unlock()
		return 0, fmt.Errorf("core: flush thing state: %w", err)
	}
	return len(ids), nil
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
