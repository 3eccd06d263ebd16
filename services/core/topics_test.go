package core

import (
	"testing"

	"go.mongodb.org/mongo-driver/bson/primitive"
)

// The MQTT tenancy rules the broker and the relay ask core for.
func TestTopicRules(t *testing.T) {
	org := MQTTIdentity{OrgName: "acme"}
	dev := MQTTIdentity{OrgName: "acme", Thing: "T1"}
	for _, c := range []struct {
		id    MQTTIdentity
		topic string
		want  bool
	}{
		{org, "org/acme/T1/value", true},
		{org, "org/acme/#", true},
		{org, "org/acme", false},
		{org, "org/acmex/T1", false},
		{org, "org/+/T1", false},
		{org, "#", false},
		{org, "$SYS/broker/uptime", false},
		{dev, "org/acme/T1/value", true},
		{dev, "org/acme/T1/$adapter/piot", true},
		{dev, "org/acme/T2/value", false},
		{dev, "org/acme/+/value", false},
		{dev, "org/acme/#", false},
	} {
		if got := c.id.Reaches(c.topic); got != c.want {
			t.Errorf("%+v reaches %s = %v, want %v", c.id, c.topic, got, c.want)
		}
	}
	for topic, want := range map[string]bool{"$SYS": true, "$SYS/broker/clients": true, "$SYSX": false, "org/acme/x": false} {
		if MonitorReaches(topic, false) != want || MonitorReaches(topic, true) {
			t.Errorf("monitor and %s: read %v, write %v", topic, MonitorReaches(topic, false), MonitorReaches(topic, true))
		}
	}

	acme, other := primitive.NewObjectID(), primitive.NewObjectID()
	device, sibling := primitive.NewObjectID(), primitive.NewObjectID()
	thing := func(id, org, parent ID) Thing {
		var th Thing
		th.ID, th.OrgID, th.ParentID = id, org, parent
		return th
	}
	for _, c := range []struct {
		name   string
		device ID
		t      Thing
		want   bool
	}{
		{"org edge, own org", ID{}, thing(sibling, acme, ID{}), true},
		{"org edge, other org", ID{}, thing(sibling, other, ID{}), false},
		{"device edge, the device", device, thing(device, acme, ID{}), true},
		{"device edge, its sensor", device, thing(primitive.NewObjectID(), acme, device), true},
		{"device edge, a sibling", device, thing(sibling, acme, ID{}), false},
		{"device edge, a sibling's sensor", device, thing(primitive.NewObjectID(), acme, sibling), false},
		{"device edge, its id in another org", device, thing(device, other, ID{}), false},
	} {
		if got := MayRelayTo(acme, c.device, c.t); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
	if !MayAdoptSensor(device, thing(sibling, acme, ID{})) || MayAdoptSensor(device, thing(sibling, acme, primitive.NewObjectID())) ||
		!MayAdoptSensor(ID{}, thing(sibling, acme, primitive.NewObjectID())) {
		t.Error("MayAdoptSensor: a device edge adopts only orphan sensors; an org edge any")
	}
}
