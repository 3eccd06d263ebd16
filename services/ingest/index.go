package ingest

import (
	"sync"

	"github.com/piot-appliance/piot/services/core"
)

// role is what a topic means to a thing.
type role uint8

const (
	roleBattery role = iota + 1
	roleAvailability
	roleTelemetry
	roleLocation
	roleSensor
	roleSensorUnit
	roleSwitch
)

func (r role) rule() string {
	switch r {
	case roleBattery:
		return RuleBattery
	case roleAvailability:
		return RuleAvailability
	case roleTelemetry:
		return RuleTelemetry
	case roleLocation:
		return RuleLocation
	case roleSensor:
		return RuleSensor
	case roleSensorUnit:
		return RuleSensorUnit
	case roleSwitch:
		return RuleSwitch
	}
	return "unknown"
}

// match is one thing listening on a topic in one role, with the thing's
// settings as of the last change (immutable). enabled is the thing's, at
// hand: the publisher's goroutine asks it of every message before
// journaling, and the thing itself is elsewhere in memory.
type match struct {
	role    role
	enabled bool
	thing   *core.Thing
}

type topicKey struct {
	org   core.ID
	topic string // relative to org/<org>/
}

// index maps topics to the things listening on them. It is built from
// core's things at start and kept current from core's change events, so
// messages never wait for the database.
type index struct {
	mu sync.RWMutex
	// topics is by org, then by topic: a map keyed by the topic string
	// alone hashes and compares faster than one keyed by (org, topic).
	topics map[core.ID]map[string][]match
	things map[core.ID][]topicKey // keys each thing is listed under
}

func newIndex() *index {
	return &index{topics: map[core.ID]map[string][]match{}, things: map[core.ID][]topicKey{}}
}

// thingTopics lists the topics a thing listens on, by role. Topic fields
// are relative to org/<org>/ as in the original server; each is also
// matched relative to the thing itself (<thing name>/<topic>), which is
// what the auto-registration defaults (available, value, location) mean.
func thingTopics(t *core.Thing) map[topicKey][]role {
	out := map[topicKey][]role{}
	add := func(topic string, r role) {
		if topic == "" {
			return
		}
		for _, k := range []string{topic, t.Name + "/" + topic} {
			key := topicKey{t.OrgID, k}
			dup := false
			for _, have := range out[key] {
				dup = dup || have == r
			}
			if !dup {
				out[key] = append(out[key], r)
			}
		}
	}
	add(t.BatteryMQTTTopic, roleBattery)
	add(t.AvailabilityTopic, roleAvailability)
	add(t.TelemetryTopic, roleTelemetry)
	add(t.LocMQTTTopic, roleLocation)
	if t.Type == core.ThingSensor && t.Sensor.MeasurementTopic != "" {
		add(t.Sensor.MeasurementTopic, roleSensor)
		add(t.Sensor.MeasurementTopic+"/unit", roleSensorUnit)
	}
	if t.Type == core.ThingSwitch {
		add(t.Switch.StateTopic, roleSwitch)
	}
	return out
}

// put lists a thing under its current topics (replacing older entries).
func (x *index) put(t core.Thing) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.removeLocked(t.ID)
	if t.OrgID.IsZero() {
		return // unassigned things have no topics
	}
	cp := t
	var keys []topicKey
	for key, roles := range thingTopics(&cp) {
		org := x.topics[key.org]
		if org == nil {
			org = map[string][]match{}
			x.topics[key.org] = org
		}
		for _, r := range roles {
			org[key.topic] = append(org[key.topic], match{role: r, enabled: cp.Enabled, thing: &cp})
		}
		keys = append(keys, key)
	}
	x.things[t.ID] = keys
}

func (x *index) remove(id core.ID) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.removeLocked(id)
}

func (x *index) removeLocked(id core.ID) {
	for _, key := range x.things[id] {
		org := x.topics[key.org]
		ms := org[key.topic]
		kept := ms[:0:0]
		for _, m := range ms {
			if m.thing.ID != id {
				kept = append(kept, m)
			}
		}
		switch {
		case len(kept) > 0:
			org[key.topic] = kept
		case len(org) > 1:
			delete(org, key.topic)
		default:
			delete(x.topics, key.org)
		}
	}
	delete(x.things, id)
}

// reset replaces the whole index.
func (x *index) reset(things []core.Thing) {
	x.mu.Lock()
	x.topics = map[core.ID]map[string][]match{}
	x.things = map[core.ID][]topicKey{}
	x.mu.Unlock()
	for _, t := range things {
		x.put(t)
	}
}

// lookup returns the things listening on a topic of an org. The slice
// must not be modified.
func (x *index) lookup(org core.ID, topic string) []match {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return x.topics[org][topic]
}
