package graph_test

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/piot-appliance/piot/services/api/graph"
	"github.com/piot-appliance/piot/services/api/graph/model"
	"github.com/piot-appliance/piot/services/core"
)

const thingFields = `id piot_id name description alias type enabled created last_seen
	last_seen_interval voltage org { id name } parent { id name }
	availability_topic availability_yes availability_no telemetry_topic telemetry
	store_influxdb store_mysqldb store_mysqldb_interval
	sensor { value unit class measurement_topic measurement_value }
	switch { state state_topic state_on state_off command_topic command_on command_off }
	location_lat location_lng location_sat location_ts location_tracking
	location_mqtt_topic location_mqtt_lat_value location_mqtt_lng_value
	location_mqtt_sat_value location_mqtt_ts_value alarm_active alarm_activated
	battery_level battery_level_tracking battery_mqtt_topic battery_mqtt_level_value`

func TestOrgsAndUsers(t *testing.T) {
	e := newEnv(t, graph.Options{})

	// createOrg returns the real org, id included.
	var created struct {
		CreateOrg struct {
			ID, Name, Description string
			Created               int64
		}
	}
	e.data(e.admin, `mutation { createOrg(name: "farm", description: "north field") { id name description created } }`, nil, &created)
	farm := created.CreateOrg
	if farm.ID == "" || farm.ID == zeroID || farm.Name != "farm" || farm.Description != "north field" || farm.Created == 0 {
		t.Fatalf("createOrg = %+v", farm)
	}
	var got struct{ Org struct{ ID, Name string } }
	e.data(e.admin, `query($id: ID!) { org(id: $id) { id name } }`, map[string]any{"id": farm.ID}, &got)
	if got.Org.ID != farm.ID || got.Org.Name != "farm" {
		t.Fatalf("org = %+v", got.Org)
	}

	// createUser, with and without the extra is_admin argument.
	var cu struct {
		CreateUser struct {
			ID, Email, Password string
			Created             int64
			IsAdmin             bool `json:"is_admin"`
		}
	}
	e.data(e.admin, `mutation { createUser(email: "Bob@Example.com", password: "bob-password") { id email password created is_admin } }`, nil, &cu)
	bob := cu.CreateUser
	if bob.ID == "" || bob.Email != "bob@example.com" || bob.Password != "" || bob.IsAdmin || bob.Created == 0 {
		t.Fatalf("createUser = %+v", bob)
	}
	e.data(e.admin, `mutation { createUser(email: "carol@example.com", password: "carol-password", is_admin: true) { id email is_admin } }`, nil, &cu)
	carol := cu.CreateUser
	if !carol.IsAdmin {
		t.Fatalf("createUser is_admin = %+v", carol)
	}
	e.fails(e.admin, `mutation { createUser(email: "bob@example.com", password: "bob-password") { id } }`, nil, "CONFLICT")
	e.fails(e.admin, `mutation { createUser(email: "not-an-email", password: "bob-password") { id } }`, nil, "BAD_USER_INPUT")

	// addOrgUser returns null; membership shows on both sides.
	e.addMember(farm.ID, bob.ID)
	var withUsers struct {
		Org struct{ Users []struct{ Email string } }
	}
	e.data(e.admin, `query($id: ID!) { org(id: $id) { users { email } } }`, map[string]any{"id": farm.ID}, &withUsers)
	if len(withUsers.Org.Users) != 1 || withUsers.Org.Users[0].Email != "bob@example.com" {
		t.Fatalf("org users = %+v", withUsers.Org.Users)
	}
	var withOrgs struct {
		User struct {
			Email string
			Orgs  []struct{ Name string }
		}
	}
	e.data(e.admin, `query($id: ID!) { user(id: $id) { email orgs { name } } }`, map[string]any{"id": bob.ID}, &withOrgs)
	if len(withOrgs.User.Orgs) != 1 || withOrgs.User.Orgs[0].Name != "farm" {
		t.Fatalf("user orgs = %+v", withOrgs.User)
	}

	// users and orgs list everything for an admin.
	var lists struct {
		Users []struct{ Email string }
		Orgs  []struct{ Name string }
	}
	e.data(e.admin, `{ users { email } orgs { name } }`, nil, &lists)
	if len(lists.Users) != 3 || len(lists.Orgs) != 1 {
		t.Fatalf("lists = %+v", lists)
	}

	// updateUser; an empty password (the manager's "keep") keeps it.
	var uu struct {
		UpdateUser struct {
			Email   string
			IsAdmin bool `json:"is_admin"`
		}
	}
	e.data(e.admin, `mutation($id: ID!) { updateUser(user: {id: $id, email: "robert@example.com", password: "", is_admin: false}) { email is_admin } }`,
		map[string]any{"id": bob.ID}, &uu)
	if uu.UpdateUser.Email != "robert@example.com" || uu.UpdateUser.IsAdmin {
		t.Fatalf("updateUser = %+v", uu.UpdateUser)
	}
	if _, err := e.core.Login(context.Background(), "robert@example.com", "bob-password"); err != nil {
		t.Fatalf("password changed by an empty password: %v", err)
	}

	// userProfile and updateUserProfile.
	type profile struct {
		Email   string
		IsAdmin bool   `json:"is_admin"`
		OrgID   string `json:"org_id"`
		Orgs    []org
	}
	var p struct{ UserProfile profile }
	e.data(e.admin, `{ userProfile { email is_admin org_id orgs { id name } } }`, nil, &p)
	if p.UserProfile.Email != "admin@piot.local" || !p.UserProfile.IsAdmin || p.UserProfile.OrgID != zeroID || len(p.UserProfile.Orgs) != 0 {
		t.Fatalf("admin profile = %+v", p.UserProfile)
	}
	bobActor, err := e.core.Login(context.Background(), "robert@example.com", "bob-password")
	if err != nil {
		t.Fatal(err)
	}
	e.data(bobActor, `{ userProfile { email is_admin org_id orgs { id name } } }`, nil, &p)
	if p.UserProfile.OrgID != farm.ID || len(p.UserProfile.Orgs) != 1 || p.UserProfile.Orgs[0].ID != farm.ID {
		t.Fatalf("member profile = %+v", p.UserProfile)
	}
	pasture := e.createOrg("pasture")
	var up struct{ UpdateUserProfile profile }
	e.data(e.admin, `mutation($o: ID) { updateUserProfile(profile: {org_id: $o}) { org_id } }`, map[string]any{"o": pasture}, &up)
	if up.UpdateUserProfile.OrgID != pasture {
		t.Fatalf("updateUserProfile = %+v", up.UpdateUserProfile)
	}
	e.fails(bobActor, `mutation($o: ID) { updateUserProfile(profile: {org_id: $o}) { org_id } }`, map[string]any{"o": pasture}, "FORBIDDEN")

	// removeOrgUser returns null and ends the membership.
	var ru struct{ RemoveOrgUser *bool }
	e.data(e.admin, `mutation($o: ID!, $u: ID!) { removeOrgUser(orgId: $o, userId: $u) }`, map[string]any{"o": farm.ID, "u": bob.ID}, &ru)
	if ru.RemoveOrgUser != nil {
		t.Fatalf("removeOrgUser = %v", *ru.RemoveOrgUser)
	}
	e.data(e.admin, `query($id: ID!) { user(id: $id) { email orgs { name } } }`, map[string]any{"id": bob.ID}, &withOrgs)
	if len(withOrgs.User.Orgs) != 0 {
		t.Fatalf("orgs after removeOrgUser = %+v", withOrgs.User.Orgs)
	}

	// deleteOrg unassigns its things; deleteUser removes the user.
	thing := e.createThing("T1", "device")
	e.assign(thing, farm.ID)
	var del struct{ DeleteOrg, DeleteUser *bool }
	e.data(e.admin, `mutation($id: ID!) { deleteOrg(id: $id) }`, map[string]any{"id": farm.ID}, &del)
	if del.DeleteOrg == nil || !*del.DeleteOrg {
		t.Fatalf("deleteOrg = %v", del.DeleteOrg)
	}
	e.fails(e.admin, `query($id: ID!) { org(id: $id) { id } }`, map[string]any{"id": farm.ID}, "NOT_FOUND")
	var th struct{ Thing struct{ Org *org } }
	e.data(e.admin, `query($id: ID!) { thing(id: $id) { org { id } } }`, map[string]any{"id": thing}, &th)
	if th.Thing.Org != nil {
		t.Fatalf("thing of a deleted org still has org %+v", th.Thing.Org)
	}
	e.data(e.admin, `mutation($id: ID!) { deleteUser(id: $id) }`, map[string]any{"id": bob.ID}, &del)
	if del.DeleteUser == nil || !*del.DeleteUser {
		t.Fatalf("deleteUser = %v", del.DeleteUser)
	}
	e.fails(e.admin, `query($id: ID!) { user(id: $id) { id } }`, map[string]any{"id": bob.ID}, "NOT_FOUND")
	e.fails(e.admin, `mutation($id: ID!) { deleteUser(id: $id) }`, map[string]any{"id": e.admin.UserID.Hex()}, "BAD_USER_INPUT")
}

func TestSecretsAreNeverReadable(t *testing.T) {
	e := newEnv(t, graph.Options{})
	farm := e.createOrg("farm")
	set := `mutation($id: ID!) { updateOrg(org: {id: $id, name: "farm2", description: "d",
		influxdb: "farmdb", influxdb_username: "iu", influxdb_password: "influx-secret",
		mysqldb: "farm", mysqldb_username: "mu", mysqldb_password: "mysql-secret",
		mqtt_username: "mq", mqtt_password: "mqtt-secret"}) {
		id name description influxdb influxdb_username influxdb_password mysqldb
		mysqldb_username mysqldb_password mqtt_username mqtt_password } }`
	var out struct{ UpdateOrg map[string]string }
	e.data(e.admin, set, map[string]any{"id": farm}, &out)
	want := map[string]string{
		"id": farm, "name": "farm2", "description": "d",
		"influxdb": "farmdb", "influxdb_username": "iu", "influxdb_password": "",
		"mysqldb": "farm", "mysqldb_username": "mu", "mysqldb_password": "",
		"mqtt_username": "mq", "mqtt_password": "",
	}
	if !reflect.DeepEqual(out.UpdateOrg, want) {
		t.Fatalf("updateOrg = %v\nwant %v", out.UpdateOrg, want)
	}
	var read struct {
		Orgs  []map[string]string
		Users []struct{ Password string }
	}
	e.data(e.admin, `{ orgs { influxdb_password mysqldb_password mqtt_password } users { password } }`, nil, &read)
	for _, o := range read.Orgs {
		for k, v := range o {
			if v != "" {
				t.Errorf("%s = %q", k, v)
			}
		}
	}
	for _, u := range read.Users {
		if u.Password != "" {
			t.Errorf("user password = %q", u.Password)
		}
	}

	// The manager resends the ("") passwords it read with every save: they
	// must stay as they are.
	e.data(e.admin, `mutation($id: ID!) { updateOrg(org: {id: $id, name: "farm3", influxdb_password: "", mysqldb_password: "", mqtt_password: ""}) { name } }`,
		map[string]any{"id": farm}, nil)
	oid, _ := core.ParseID(farm)
	stored, err := e.st.Orgs.Get(context.Background(), oid)
	if err != nil {
		t.Fatal(err)
	}
	if stored.Name != "farm3" || stored.InfluxDBPassword != "influx-secret" || stored.MySQLDBPassword != "mysql-secret" || stored.MQTTPassword == "" {
		t.Fatalf("stored org = %+v", stored)
	}
}

func TestThingLifecycle(t *testing.T) {
	e := newEnv(t, graph.Options{})
	farm := e.createOrg("farm")
	pasture := e.createOrg("pasture")

	var ct struct{ CreateThing map[string]any }
	e.data(e.admin, `mutation { createThing(name: "Sensor 1", type: "sensor") { `+thingFields+` } }`, nil, &ct)
	s := ct.CreateThing
	id := s["id"].(string)
	if s["name"] != "Sensor 1" || s["type"] != "sensor" || s["enabled"] != false || s["org"] != nil || s["switch"] != nil || s["sensor"] == nil {
		t.Fatalf("createThing = %v", s)
	}
	e.fails(e.admin, `mutation { createThing(name: "Sensor 1", type: "sensor") { id } }`, nil, "CONFLICT")
	e.fails(e.admin, `mutation { createThing(name: "X", type: "toaster") { id } }`, nil, "BAD_USER_INPUT")

	// updateThing: every settable field round-trips.
	upd := map[string]any{
		"id": id, "piotId": "piot-123", "name": "Sensor One", "type": "sensor",
		"description": "by the gate", "alias": "gate", "orgId": farm, "enabled": true,
		"last_seen_interval": 300, "voltage": 3.3, "availability_topic": "gate/available",
		"telemetry_topic": "gate/telemetry", "store_influxdb": true, "store_mysqldb": true,
		"store_mysqldb_interval": 60, "location_lat": 49.22, "location_lng": 16.55,
		"location_tracking": true, "location_mqtt_topic": "gate/loc",
		"location_mqtt_lat_value": "lat", "location_mqtt_lng_value": "lng",
		"location_mqtt_sat_value": "sat", "location_mqtt_ts_value": "ts",
		"battery_level_tracking": true, "battery_mqtt_topic": "gate/bat",
		"battery_mqtt_level_value": "level",
	}
	var ut struct{ UpdateThing map[string]any }
	e.data(e.admin, `mutation($t: ThingUpdate!) { updateThing(thing: $t) { `+thingFields+` } }`, map[string]any{"t": upd}, &ut)
	var rt struct{ Thing map[string]any }
	e.data(e.admin, `query($id: ID!) { thing(id: $id) { `+thingFields+` } }`, map[string]any{"id": id}, &rt)
	if !reflect.DeepEqual(ut.UpdateThing, rt.Thing) {
		t.Fatalf("updateThing result differs from thing:\n%v\n%v", ut.UpdateThing, rt.Thing)
	}
	for k, v := range upd {
		gk := map[string]string{"piotId": "piot_id", "orgId": "org"}[k]
		if gk == "" {
			gk = k
		}
		got := rt.Thing[gk]
		if k == "orgId" {
			got = got.(map[string]any)["id"]
		}
		if fmt.Sprint(got) != fmt.Sprint(v) {
			t.Errorf("%s = %v, want %v", gk, got, v)
		}
	}

	// orgId: absent keeps the org; null, "null" and "" unassign.
	orgOf := func() any {
		var r struct{ Thing struct{ Org *org } }
		e.data(e.admin, `query($id: ID!) { thing(id: $id) { org { id } } }`, map[string]any{"id": id}, &r)
		if r.Thing.Org == nil {
			return nil
		}
		return r.Thing.Org.ID
	}
	e.data(e.admin, `mutation($id: ID!) { updateThing(thing: {id: $id, alias: "a"}) { id } }`, map[string]any{"id": id}, nil)
	if got := orgOf(); got != farm {
		t.Fatalf("absent orgId changed the org to %v", got)
	}
	for _, unassign := range []string{`orgId: null`, `orgId: "null"`, `orgId: ""`} {
		e.assign(id, pasture)
		if got := orgOf(); got != pasture {
			t.Fatalf("assign: org = %v", got)
		}
		e.data(e.admin, `mutation($id: ID!) { updateThing(thing: {id: $id, `+unassign+`}) { id } }`, map[string]any{"id": id}, nil)
		if got := orgOf(); got != nil {
			t.Fatalf("%s left org %v", unassign, got)
		}
	}
	e.assign(id, pasture)
	e.data(e.admin, `mutation($id: ID!, $o: ID) { updateThing(thing: {id: $id, orgId: $o}) { id } }`, map[string]any{"id": id, "o": nil}, nil)
	if got := orgOf(); got != nil {
		t.Fatalf("orgId variable null left org %v", got)
	}
	e.fails(e.admin, `mutation($id: ID!) { updateThing(thing: {id: $id, orgId: "nonsense"}) { id } }`, map[string]any{"id": id}, "BAD_USER_INPUT")

	// Sensor data, including the unit.
	var us struct {
		UpdateThingSensorData struct{ Sensor map[string]string }
	}
	e.data(e.admin, `mutation($id: ID!) { updateThingSensorData(data: {id: $id, class: "temperature", unit: "°C",
		measurement_topic: "gate/temp", measurement_value: "DS18B20.Temperature"}) {
		sensor { value unit class measurement_topic measurement_value } } }`, map[string]any{"id": id}, &us)
	wantSensor := map[string]string{"value": "", "unit": "°C", "class": "temperature", "measurement_topic": "gate/temp", "measurement_value": "DS18B20.Temperature"}
	if !reflect.DeepEqual(us.UpdateThingSensorData.Sensor, wantSensor) {
		t.Fatalf("sensor = %v", us.UpdateThingSensorData.Sensor)
	}

	// Alarm.
	var al struct{ SetThingAlarm *bool }
	e.data(e.admin, `mutation($id: ID!) { setThingAlarm(id: $id, active: true) }`, map[string]any{"id": id}, &al)
	if al.SetThingAlarm == nil || !*al.SetThingAlarm {
		t.Fatalf("setThingAlarm = %v", al.SetThingAlarm)
	}
	var alarm struct {
		Thing struct {
			Active    bool  `json:"alarm_active"`
			Activated int64 `json:"alarm_activated"`
		}
	}
	e.data(e.admin, `query($id: ID!) { thing(id: $id) { alarm_active alarm_activated } }`, map[string]any{"id": id}, &alarm)
	if !alarm.Thing.Active || alarm.Thing.Activated == 0 {
		t.Fatalf("alarm = %+v", alarm.Thing)
	}

	// Switches: settings and state.
	sw := e.createThing("Relay", "switch")
	var uw struct {
		UpdateThingSwitchData struct {
			Sensor *struct{}
			Switch map[string]any
		}
	}
	e.data(e.admin, `mutation($id: ID!) { updateThingSwitchData(data: {id: $id, state_topic: "relay/state", state_on: "ON",
		state_off: "OFF", command_topic: "relay/cmd", command_on: "1", command_off: "0"}) {
		sensor { value } switch { state state_topic state_on state_off command_topic command_on command_off } } }`,
		map[string]any{"id": sw}, &uw)
	wantSwitch := map[string]any{"state": false, "state_topic": "relay/state", "state_on": "ON", "state_off": "OFF",
		"command_topic": "relay/cmd", "command_on": "1", "command_off": "0"}
	if uw.UpdateThingSwitchData.Sensor != nil || !reflect.DeepEqual(uw.UpdateThingSwitchData.Switch, wantSwitch) {
		t.Fatalf("switch = %+v", uw.UpdateThingSwitchData)
	}
	var ss struct {
		SetSwitchState struct{ Switch struct{ State bool } }
	}
	e.data(e.admin, `mutation($id: ID!) { setSwitchState(id: $id, on: true) { switch { state } } }`, map[string]any{"id": sw}, &ss)
	if !ss.SetSwitchState.Switch.State {
		t.Fatal("setSwitchState did not switch on")
	}
	e.fails(e.admin, `mutation($id: ID!) { setSwitchState(id: $id, on: true) { id } }`, map[string]any{"id": id}, "BAD_USER_INPUT")

	// Parent shown through core.ThingParent; deleteThing returns null.
	var del struct{ DeleteThing *bool }
	e.data(e.admin, `mutation($id: ID!) { deleteThing(id: $id) }`, map[string]any{"id": sw}, &del)
	if del.DeleteThing != nil {
		t.Fatalf("deleteThing = %v", *del.DeleteThing)
	}
	e.fails(e.admin, `query($id: ID!) { thing(id: $id) { id } }`, map[string]any{"id": sw}, "NOT_FOUND")
}

func TestThingsListing(t *testing.T) {
	e := newEnv(t, graph.Options{})
	farm := e.createOrg("farm")
	other := e.createOrg("other")
	var names []string
	for i := 1; i <= 25; i++ {
		name := fmt.Sprintf("t-%02d", i)
		e.assign(e.createThing(name, "sensor"), farm)
		names = append(names, name)
	}
	// Regular-expression metacharacters are matched literally.
	tricky := []string{"a.b", "a*b", "(x)", "[y]", "a?b"}
	for _, n := range tricky {
		e.assign(e.createThing(n, "device"), farm)
	}
	foreign := e.createThing("foreign", "device")
	e.assign(foreign, other)
	e.createThing("loose", "device") // unassigned

	type thingsOut struct{ Things []struct{ Name string } }
	namesOf := func(out thingsOut) []string {
		var n []string
		for _, t := range out.Things {
			n = append(n, t.Name)
		}
		return n
	}
	var all thingsOut
	e.data(e.admin, `{ things(all: true, sort: {field: name, order: asc}) { name } }`, nil, &all)
	got := namesOf(all)
	if len(got) != 32 || !sort.StringsAreSorted(got) {
		t.Fatalf("all things = %v", got)
	}
	e.data(e.admin, `{ things(all: true, sort: {field: name, order: desc}) { name } }`, nil, &all)
	if got := namesOf(all); got[0] != "t-25" {
		t.Fatalf("desc = %v", got)
	}

	cases := map[string][]string{
		`filter: {name: "t-07"}`:                     {"t-07"},
		`filter: {nameContains: "."}`:                {"a.b"},
		`filter: {nameContains: "*"}`:                {"a*b"},
		`filter: {nameContains: "("}`:                {"(x)"},
		`filter: {nameContains: "[y"}`:               {"[y]"},
		`filter: {nameContains: "a?"}`:               {"a?b"},
		`filter: {nameContains: ".*"}`:               nil,
		`filter: {nameContains: "T-2"}`:              {"t-20", "t-21", "t-22", "t-23", "t-24", "t-25"},
		`filter: {name: "nope", nameContains: "-0"}`: {"t-01", "t-02", "t-03", "t-04", "t-05", "t-06", "t-07", "t-08", "t-09"},
	}
	for args, want := range cases {
		var out thingsOut
		e.data(e.admin, `{ things(all: true, sort: {field: name, order: asc}, `+args+`) { name } }`, nil, &out)
		if got := namesOf(out); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: %v, want %v", args, got, want)
		}
	}

	// Paging with thingsConnection and things(first, after).
	type connOut struct {
		ThingsConnection struct {
			TotalCount int
			Edges      []struct {
				Cursor string
				Node   struct{ Name string }
			}
			PageInfo struct {
				EndCursor   *string
				HasNextPage bool
			}
		}
	}
	q := `query($after: String) { thingsConnection(all: true, filter: {nameContains: "t-"}, sort: {field: name, order: asc}, first: 10, after: $after) {
		totalCount edges { cursor node { name } } pageInfo { endCursor hasNextPage } } }`
	var paged []string
	var after any
	for page := 0; ; page++ {
		var out connOut
		e.data(e.admin, q, map[string]any{"after": after}, &out)
		c := out.ThingsConnection
		if c.TotalCount != 25 {
			t.Fatalf("totalCount = %d", c.TotalCount)
		}
		for _, edge := range c.Edges {
			paged = append(paged, edge.Node.Name)
		}
		last := c.Edges[len(c.Edges)-1]
		if c.PageInfo.EndCursor == nil || last.Cursor != *c.PageInfo.EndCursor {
			t.Fatalf("page %d: end cursor %v, last edge cursor %q", page, c.PageInfo.EndCursor, last.Cursor)
		}
		wantNext := page < 2
		if c.PageInfo.HasNextPage != wantNext {
			t.Fatalf("page %d: hasNextPage = %v", page, c.PageInfo.HasNextPage)
		}
		// things(first, after) gives the same page.
		var plain thingsOut
		e.data(e.admin, `query($after: String) { things(all: true, filter: {nameContains: "t-"}, sort: {field: name, order: asc}, first: 10, after: $after) { name } }`,
			map[string]any{"after": after}, &plain)
		if got := namesOf(plain); !reflect.DeepEqual(got, paged[len(paged)-len(c.Edges):]) {
			t.Fatalf("page %d: things = %v", page, got)
		}
		if !c.PageInfo.HasNextPage {
			break
		}
		after = *c.PageInfo.EndCursor
	}
	if !reflect.DeepEqual(paged, names) {
		t.Fatalf("pages = %v", paged)
	}
	var empty connOut
	e.data(e.admin, `{ thingsConnection(all: true, filter: {name: "none"}) { totalCount edges { cursor } pageInfo { endCursor hasNextPage } } }`, nil, &empty)
	if c := empty.ThingsConnection; c.TotalCount != 0 || len(c.Edges) != 0 || c.PageInfo.EndCursor != nil || c.PageInfo.HasNextPage {
		t.Fatalf("empty connection = %+v", c)
	}
	e.fails(e.admin, `{ things(all: true, first: 5000) { name } }`, nil, "BAD_USER_INPUT")
	e.fails(e.admin, `{ things(all: true, first: 2, after: "!!") { name } }`, nil, "BAD_USER_INPUT")

	// A member sees the things of their active org only.
	member := e.user("member@example.com")
	e.addMember(other, member.UserID.Hex())
	var mine thingsOut
	e.data(member, `{ things { name } }`, nil, &mine)
	if got := namesOf(mine); !reflect.DeepEqual(got, []string{"foreign"}) {
		t.Fatalf("member things = %v", got)
	}
	var conn connOut
	e.data(member, `{ thingsConnection { totalCount edges { node { name } } } }`, nil, &conn)
	if conn.ThingsConnection.TotalCount != 1 {
		t.Fatalf("member connection = %+v", conn.ThingsConnection)
	}
	e.fails(member, `{ things(all: true) { name } }`, nil, "FORBIDDEN")
}

func TestMemberCannotSeeOtherOrgsThing(t *testing.T) {
	e := newEnv(t, graph.Options{})
	orgA, orgB := e.createOrg("A"), e.createOrg("B")
	thingA := e.createThing("thing-a", "sensor")
	e.assign(thingA, orgA)
	thingB := e.createThing("thing-b", "sensor")
	e.assign(thingB, orgB)
	memberB := e.user("b@example.com")
	e.addMember(orgB, memberB.UserID.Hex())

	var ok struct{ Thing struct{ Name string } }
	e.data(memberB, `query($id: ID!) { thing(id: $id) { name } }`, map[string]any{"id": thingB}, &ok)
	if ok.Thing.Name != "thing-b" {
		t.Fatalf("own thing = %+v", ok.Thing)
	}
	resp := e.fails(memberB, `query($id: ID!) { thing(id: $id) { name } }`, map[string]any{"id": thingA}, "FORBIDDEN")
	if resp.Errors[0].Path[0] != "thing" || string(resp.Data) != `{"thing":null}` {
		t.Fatalf("forbidden response = %+v %s", resp.Errors, resp.Data)
	}
	e.fails(memberB, `mutation($id: ID!) { updateThing(thing: {id: $id, name: "mine"}) { name } }`, map[string]any{"id": thingA}, "FORBIDDEN")
	e.fails(memberB, `query($id: ID!) { org(id: $id) { name } }`, map[string]any{"id": orgA}, "FORBIDDEN")
	e.fails(memberB, `{ users { email } }`, nil, "FORBIDDEN")
	e.fails(core.Anonymous(), `{ things { name } }`, nil, "UNAUTHENTICATED")
}

func TestBadIDs(t *testing.T) {
	e := newEnv(t, graph.Options{})
	for _, q := range []string{
		`{ thing(id: "xyz") { id } }`,
		`{ org(id: "123") { id } }`,
		`{ user(id: "") { id } }`,
		`mutation { deleteThing(id: "zz") }`,
		`mutation { addOrgUser(orgId: "x", userId: "y") }`,
		`mutation { updateThing(thing: {id: "nope"}) { id } }`,
	} {
		resp := e.fails(e.admin, q, nil, "BAD_USER_INPUT")
		if !strings.HasPrefix(resp.Errors[0].Message, "cannot decode ID") {
			t.Errorf("%s: message %q", q, resp.Errors[0].Message)
		}
	}
}

func TestIDsAreHex(t *testing.T) {
	e := newEnv(t, graph.Options{})
	id := e.createThing("x", "device")
	raw := e.do(e.admin, `query($id: ID!) { thing(id: $id) { id created } }`, map[string]any{"id": id})
	var out struct {
		Thing struct {
			ID      json.RawMessage
			Created json.RawMessage
		}
	}
	if err := json.Unmarshal(raw.Data, &out); err != nil {
		t.Fatal(err)
	}
	if string(out.Thing.ID) != `"`+id+`"` || len(id) != 24 || strings.Contains(string(out.Thing.Created), ".") {
		t.Fatalf("thing = %s", raw.Data)
	}
}

// TestSystemIsForAdmins: the update status (issue 14) answers admins
// only; the composition root supplies it.
func TestSystemIsForAdmins(t *testing.T) {
	slot, state := "b", "bad"
	e := newEnv(t, graph.Options{System: func(context.Context) (*model.System, error) {
		return &model.System{Version: "v1.3.0", Slot: &slot, OtherSlotState: &state,
			LastUpdate: &model.UpdateOutcome{Result: "rolled-back", At: 1765000000}}, nil
	}})
	var got struct {
		System struct {
			Version          string
			Slot             *string
			OtherSlotVersion *string `json:"other_slot_version"`
			OtherSlotState   *string `json:"other_slot_state"`
			LastUpdate       struct {
				Result string
				At     int64
			} `json:"last_update"`
		}
	}
	e.data(e.admin, `{ system { version slot other_slot_version other_slot_state last_update { result reason at } } }`, nil, &got)
	if s := got.System; s.Version != "v1.3.0" || *s.Slot != "b" || s.OtherSlotVersion != nil || *s.OtherSlotState != "bad" ||
		s.LastUpdate.Result != "rolled-back" || s.LastUpdate.At != 1765000000 {
		t.Fatalf("system: %+v", got)
	}
	e.fails(e.user("member@example.com"), `{ system { version } }`, nil, "FORBIDDEN")
	e.fails(core.Anonymous(), `{ system { version } }`, nil, "UNAUTHENTICATED")
}
