package core

import (
	"reflect"
	"testing"
)

func TestThingTopics(t *testing.T) {
	sensor := Thing{Name: "T1", Type: ThingSensor, AvailabilityTopic: "available", Sensor: Sensor{MeasurementTopic: "value"}}
	want := []ThingTopic{
		{"value", "org/farm/T1/value", "org/farm/value"},
		{"unit", "org/farm/T1/value/unit", "org/farm/value/unit"},
		{"availability", "org/farm/T1/available", "org/farm/available"},
	}
	if got := ThingTopics("farm", sensor); !reflect.DeepEqual(got, want) {
		t.Errorf("sensor: %v", got)
	}
	// A field that already names the thing is shown as written.
	sw := Thing{Name: "SW", Type: ThingSwitch, Switch: Switch{StateTopic: "SW/state", CommandTopic: "SW/set"}}
	want = []ThingTopic{{"state", "org/farm/SW/state", "org/farm/SW/SW/state"}, {"command", "org/farm/SW/set", ""}}
	if got := ThingTopics("farm", sw); !reflect.DeepEqual(got, want) {
		t.Errorf("switch: %v", got)
	}
	if got := ThingTopics("", sensor); got != nil {
		t.Errorf("unassigned: %v", got)
	}
}
