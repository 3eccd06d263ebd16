package graph_test

import (
	"fmt"
	"testing"

	"github.com/piot-appliance/piot/services/api/graph"
)

// TestOriginalClientDocuments sends documents as the original piot-manager
// and piot-cli build them (string interpolation, optional commas, trailing
// commas, orgId "null").
func TestOriginalClientDocuments(t *testing.T) {
	e := newEnv(t, graph.Options{})
	orgID := e.createOrg("farm")
	e.addMember(orgID, e.admin.UserID.Hex())
	thingID := e.createThing("T1", "sensor")

	docs := []string{
		// manager: api.js
		`{userProfile {is_admin, email, org_id, orgs {id, name, influxdb, influxdb_username, influxdb_password}}}`,
		fmt.Sprintf(`mutation {updateUserProfile(profile: {org_id: "%s"}) {is_admin, email, org_id, orgs {id, name}}}`, orgID),
		// manager: Thing.svelte
		fmt.Sprintf(`{
			thing(id: "%s") {
				id, piot_id, name, description, created, type, alias, enabled, org {id, name},
				availability_topic, telemetry_topic, telemetry, store_influxdb, store_mysqldb,
				store_mysqldb_interval, last_seen_interval,
				sensor {value, class, measurement_topic, measurement_value},
				switch {state, state_topic, state_on, state_off, command_topic, command_on, command_off},
				location_mqtt_topic, location_mqtt_lat_value, location_mqtt_lng_value,
				location_mqtt_sat_value, location_mqtt_ts_value, location_lat, location_lng,
				location_sat, location_ts, location_tracking
			}
			orgs {id, name}
		}`, thingID),
		fmt.Sprintf(`mutation {
			updateThing(
				thing: {
					id: "%s",
					piotId: "",
					name: "T1",
					description: "line\\nbreak",
					type: "sensor",
					alias: "",
					orgId: "null",
					enabled: true,
					last_seen_interval: 0,
					availability_topic: "",
					telemetry_topic: "",
					store_influxdb: false,
					store_mysqldb: false,
					store_mysqldb_interval: 0
					location_lat: 0,
					location_lng: 0,
					location_tracking: false,
					location_mqtt_topic: "",
					location_mqtt_lat_value: "",
					location_mqtt_lng_value: "",
					location_mqtt_sat_value: "",
					location_mqtt_ts_value: "",
				}
			) {id}
		}`, thingID),
		fmt.Sprintf(`mutation { updateThingSensorData( data: { id: "%s", class: "temperature", measurement_topic: "t", measurement_value: "" }) {id} }`, thingID),
		// manager: Things / ThingsAdmin / Orgs / Org / Users / User
		`{ things {id, name, alias, type, enabled, created, last_seen, last_seen_interval, store_mysqldb, store_influxdb, battery_level, battery_level_tracking, parent{id,name}, org{name}, sensor{class,value,unit}} }`,
		`{ things(all: true) {id, name, alias, type, enabled, created, last_seen, last_seen_interval, store_mysqldb, store_influxdb, parent{id,name}, org{name}, sensor{class,value,unit}} }`,
		`{ orgs {id, name, created} }`,
		fmt.Sprintf(`{ org(id: "%s") {id, name, description, created, influxdb, influxdb_username, influxdb_password, mysqldb, mqtt_username, mqtt_password, users {id, email}} }`, orgID),
		fmt.Sprintf(`mutation { updateOrg(org: {id: "%s", name: "farm", description: "", influxdb: "", influxdb_username: "", influxdb_password: "", mysqldb: "", mqtt_username: "", mqtt_password: ""}) {id} }`, orgID),
		`{ users {id, email, created} }`,
		fmt.Sprintf(`{ user(id: "%s") {id, email, created, is_admin, orgs {id, name}} orgs {id, name} }`, e.admin.UserID.Hex()),
		`mutation { createOrg(name: "pasture", description: "") {id} }`,
		`mutation { createUser(email: "new@example.com", password: "new-password") {id} }`,
		// cli
		`{ things (all: true) { id, name, type, alias, enabled, last_seen, last_seen_interval, store_influxdb, store_mysqldb, sensor{value, class, unit} } }`,
		`{ userProfile { email, is_admin, org_id, orgs {id, name, influxdb} } }`,
		`{orgs {id, name, influxdb}}`,
		`mutation { createThing(name: "T2", type: "device") {id} }`,
		fmt.Sprintf(`mutation {deleteThing(id: "%s")}`, thingID),
	}
	for _, d := range docs {
		e.data(e.admin, d, nil, nil)
	}
}
