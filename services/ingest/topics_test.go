package ingest

import (
	"testing"

	"github.com/piot-appliance/piot/services/core"
	"go.mongodb.org/mongo-driver/bson/primitive"
)

// TestCoreListsTheTopicsIngestListensOn: the onboarding page shows
// core.ThingTopics; every topic the index routes to a thing must be among
// them, so what a person is told to publish to is what ingest reads.
func TestCoreListsTheTopicsIngestListensOn(t *testing.T) {
	org := primitive.NewObjectID()
	things := []core.Thing{
		{Name: "TA1", Type: core.ThingSensor, OrgID: org, AvailabilityTopic: "available",
			Sensor: core.Sensor{MeasurementTopic: "value"}},
		{Name: "SW1", Type: core.ThingSwitch, OrgID: org, BatteryMQTTTopic: "SW1/bat",
			Switch: core.Switch{StateTopic: "relay/state", CommandTopic: "relay/set"}},
		{Name: "CHIP1", Type: core.ThingDevice, OrgID: org, AvailabilityTopic: "available",
			TelemetryTopic: "tele", LocMQTTTopic: "gps"},
	}
	for _, th := range things {
		listed := map[string]bool{}
		for _, tt := range core.ThingTopics("farm", th) {
			listed[tt.Topic], listed[tt.Also] = true, true
		}
		for key := range thingTopics(&th) {
			if full := "org/farm/" + key.topic; !listed[full] {
				t.Errorf("%s: ingest listens on %s, core.ThingTopics does not list it (%v)", th.Name, full, core.ThingTopics("farm", th))
			}
		}
	}
}
