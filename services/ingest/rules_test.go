package ingest

import (
	"bytes"
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/piot-appliance/piot/services/core"
	"github.com/piot-appliance/piot/services/history"
)

var base = time.Now().Add(-3 * time.Hour).Truncate(time.Hour)

// resultOf finds what a rule did to a thing.
func resultOf(t *testing.T, r Result, id core.ID, rule string) string {
	t.Helper()
	for _, rr := range r.Rules {
		if rr.Thing == id && rr.Rule == rule {
			return rr.Result
		}
	}
	t.Fatalf("no %s result for %s in %+v", rule, id.Hex(), r)
	return ""
}

func TestIgnoredTopics(t *testing.T) {
	e := newEnv(t)
	ing := e.start(Config{}, nil)
	e.thing(thingSpec{name: "dev1", typ: "device", update: core.ThingUpdate{TelemetryTopic: ptr("telemetry")}})
	for _, c := range []struct{ topic, want string }{
		{"foo/acme/dev1/telemetry", IgnoredNotOrg},
		{"org", IgnoredNotOrg},
		{"org/acme", IgnoredNotOrg},
		{"org/acme/", IgnoredNotOrg},
		{"org//dev1/telemetry", IgnoredNotOrg},
		{"org/unknown/dev1/telemetry", IgnoredUnknownOrg},
		{"org/acme/dev1/nothing", IgnoredNoMatch},
		{"org/acme/dev2/telemetry", IgnoredNoMatch},
	} {
		if r := ing.Process(c.topic, []byte("x"), base); r.Outcome != c.want || len(r.Rules) != 0 {
			t.Errorf("%s: %+v, want %s", c.topic, r, c.want)
		}
	}
	s := ing.Stats()
	if s[Key{RuleMessage, IgnoredNotOrg}] != 5 || s[Key{RuleMessage, IgnoredUnknownOrg}] != 1 || s[Key{RuleMessage, IgnoredNoMatch}] != 2 {
		t.Fatalf("stats %v", s)
	}
}

func TestTelemetryAndAvailability(t *testing.T) {
	e := newEnv(t)
	ing := e.start(Config{}, nil)
	dev := e.thing(thingSpec{name: "dev1", typ: "device", update: core.ThingUpdate{
		TelemetryTopic: ptr("dev1/telemetry"), AvailabilityTopic: ptr("dev1/available")}})

	r := ing.Process("org/acme/dev1/telemetry", []byte(`{"uptime":5}`), base)
	if resultOf(t, r, dev.ID, RuleTelemetry) != Accepted {
		t.Fatalf("%+v", r)
	}
	th := e.get(dev.ID)
	if th.Telemetry != `{"uptime":5}` || th.LastSeen != base.Unix() {
		t.Fatalf("telemetry %q last_seen %d", th.Telemetry, th.LastSeen)
	}
	// available follows the payload; anything else only touches last_seen.
	steps := []struct {
		payload string
		avail   bool
	}{{"yes", true}, {"whatever", true}, {"no", false}, {"", false}, {"yes", true}}
	for k, s := range steps {
		at := base.Add(time.Duration(k+1) * time.Minute)
		r := ing.Process("org/acme/dev1/available", []byte(s.payload), at)
		if resultOf(t, r, dev.ID, RuleAvailability) != Accepted {
			t.Fatalf("%q: %+v", s.payload, r)
		}
		th := e.get(dev.ID)
		if th.Available != s.avail || th.LastSeen != at.Unix() {
			t.Fatalf("after %q: available %v last_seen %d", s.payload, th.Available, th.LastSeen)
		}
	}
	// A replayed older message never moves last_seen back.
	ing.Process("org/acme/dev1/available", []byte("yes"), base)
	if e.get(dev.ID).LastSeen != base.Add(5*time.Minute).Unix() {
		t.Fatal("last_seen went back")
	}
	// Telemetry that is not UTF-8 or too large changes nothing.
	before := e.get(dev.ID)
	r = ing.Process("org/acme/dev1/telemetry", []byte{0xff, 0xfe}, base.Add(time.Hour))
	if got := resultOf(t, r, dev.ID, RuleTelemetry); got != RejectedBadEncoding {
		t.Fatalf("binary telemetry: %s", got)
	}
	r = ing.Process("org/acme/dev1/telemetry", bytes.Repeat([]byte("x"), MaxTelemetryLen+1), base.Add(time.Hour))
	if got := resultOf(t, r, dev.ID, RuleTelemetry); got != RejectedTooLarge {
		t.Fatalf("large telemetry: %s", got)
	}
	if after := e.get(dev.ID); after != before {
		t.Fatalf("rejected telemetry changed the thing:\n%+v\n%+v", before, after)
	}
}

func TestLocation(t *testing.T) {
	e := newEnv(t)
	ing := e.start(Config{}, nil)
	withTS := e.thing(thingSpec{name: "tracker", typ: "device", update: core.ThingUpdate{
		LocMQTTTopic: ptr("tracker/location"), LocMQTTLatValue: ptr("lat"), LocMQTTLngValue: ptr("lng"),
		LocMQTTTsValue: ptr("ts"), LocMQTTSatValue: ptr("sat")}})
	noTS := e.thing(thingSpec{name: "tracker2", typ: "device", update: core.ThingUpdate{
		LocMQTTTopic: ptr("tracker2/location"), LocMQTTLatValue: ptr("gps.lat"), LocMQTTLngValue: ptr("gps.lng")}})
	ts := base.Unix()

	r := ing.Process("org/acme/tracker/location", []byte(`{"lat":50.1,"lng":-14.4,"ts":`+itoa(ts)+`,"sat":4}`), base.Add(time.Minute))
	if resultOf(t, r, withTS.ID, RuleLocation) != Accepted || len(r.Points) != 1 {
		t.Fatalf("%+v", r)
	}
	p := r.Points[0]
	if p.Kind != history.KindLocation || p.TS != ts || p.Value != `{"lat":50.1,"lng":-14.4,"sat":4}` {
		t.Fatalf("point %+v", p)
	}
	th := e.get(withTS.ID)
	if th.LocLat != 50.1 || th.LocLng != -14.4 || th.LocSat != 4 || th.LocTs != ts || th.LastSeen != base.Add(time.Minute).Unix() {
		t.Fatalf("state %+v", th)
	}
	// An older fix does not replace the current one but is history.
	r = ing.Process("org/acme/tracker/location", []byte(`{"lat":1,"lng":2,"ts":`+itoa(ts-100)+`,"sat":3}`), base.Add(2*time.Minute))
	if resultOf(t, r, withTS.ID, RuleLocation) != AcceptedOlder || len(r.Points) != 1 || r.Points[0].TS != ts-100 {
		t.Fatalf("older fix: %+v", r)
	}
	if th := e.get(withTS.ID); th.LocLat != 50.1 || th.LocTs != ts {
		t.Fatalf("older fix overwrote: %+v", th)
	}
	// The same time overwrites (newer-or-equal).
	ing.Process("org/acme/tracker/location", []byte(`{"lat":"50.2","lng":"14.5","ts":`+itoa(ts)+`}`), base.Add(3*time.Minute))
	if th := e.get(withTS.ID); th.LocLat != 50.2 || th.LocLng != 14.5 || th.LocSat != 0 {
		t.Fatalf("equal ts: %+v", th)
	}
	// Without a ts path the fix is dated by its arrival.
	at := base.Add(10 * time.Minute)
	r = ing.Process("org/acme/tracker2/location", []byte(`{"gps":{"lat":34.56,"lng":12.34}}`), at)
	if resultOf(t, r, noTS.ID, RuleLocation) != Accepted {
		t.Fatalf("%+v", r)
	}
	if th := e.get(noTS.ID); th.LocLat != 34.56 || th.LocLng != 12.34 || th.LocTs != at.Unix() {
		t.Fatalf("no ts: %+v", th)
	}

	before := e.get(withTS.ID)
	for _, c := range []struct{ payload, want string }{
		{`{"lat":123.234,"lng":14,"ts":` + itoa(ts+5) + `}`, RejectedOutOfRange}, // the original's own test data
		{`{"lat":50,"lng":678.789}`, RejectedOutOfRange},
		{`{"lat":-90.0001,"lng":0}`, RejectedOutOfRange},
		{`{"lat":50,"lng":14,"ts":` + itoa(time.Now().Add(48*time.Hour).Unix()) + `}`, RejectedOutOfRange},
		{`{"lat":"north","lng":14}`, RejectedUnparsable},
		{`{"lat":50,"lng":14,"ts":"soon"}`, RejectedUnparsable},
		{`{"lat":50,"lng":14,"sat":-1}`, RejectedUnparsable},
		{`{"lng":14}`, RejectedMissingValue},
		{`{"lat":null,"lng":14}`, RejectedMissingValue},
		{`{"lat":50,"lng":14`, RejectedBadJSON},
		{`lat=50`, RejectedBadJSON},
	} {
		r := ing.Process("org/acme/tracker/location", []byte(c.payload), base.Add(time.Hour))
		if got := resultOf(t, r, withTS.ID, RuleLocation); got != c.want || len(r.Points) != 0 {
			t.Errorf("%s: %s (%d points), want %s", c.payload, got, len(r.Points), c.want)
		}
	}
	if after := e.get(withTS.ID); after != before {
		t.Fatalf("rejected fixes changed the thing")
	}
	s := ing.Stats()
	if s[Key{RuleLocation, RejectedOutOfRange}] != 4 || s[Key{RuleLocation, RejectedBadJSON}] != 2 {
		t.Fatalf("stats %v", s)
	}
}

func itoa(v int64) string { return strconv.FormatInt(v, 10) }

func TestSensors(t *testing.T) {
	e := newEnv(t)
	ing := e.start(Config{}, nil)
	plain := e.thing(thingSpec{name: "Tplain", typ: "sensor", sensor: &core.SensorUpdate{MeasurementTopic: ptr("Tplain/value")}})
	temp := e.thing(thingSpec{name: "Ttemp", typ: "sensor", sensor: &core.SensorUpdate{MeasurementTopic: ptr("room/sensor"), MeasurementValue: ptr("temp")}})
	ds := e.thing(thingSpec{name: "Tds", typ: "sensor", sensor: &core.SensorUpdate{MeasurementTopic: ptr("tasmota/SENSOR"), MeasurementValue: ptr("DS18B20.Temperature"), Class: ptr("temperature")}})
	// Two sensors on one topic: humidity next to temperature.
	hum := e.thing(thingSpec{name: "Hroom", typ: "sensor", sensor: &core.SensorUpdate{MeasurementTopic: ptr("room/sensor"), MeasurementValue: ptr("hum")}})

	at := base.Add(time.Minute)
	r := ing.Process("org/acme/Tplain/value", []byte(" 21.5\n"), at)
	if resultOf(t, r, plain.ID, RuleSensor) != Accepted || len(r.Points) != 1 || r.Points[0].Value != "21.5" || r.Points[0].Kind != history.KindSensor {
		t.Fatalf("%+v", r)
	}
	if th := e.get(plain.ID); th.Sensor.Value != "21.5" || th.Sensor.MeasurementLast != at.Unix() || th.LastSeen != at.Unix() {
		t.Fatalf("plain: %+v", th.Sensor)
	}
	r = ing.Process("org/acme/room/sensor", []byte(`{"temp":23.5,"hum":40}`), at)
	if len(r.Rules) != 2 || len(r.Points) != 2 || resultOf(t, r, temp.ID, RuleSensor) != Accepted || resultOf(t, r, hum.ID, RuleSensor) != Accepted {
		t.Fatalf("shared topic: %+v", r)
	}
	if e.get(temp.ID).Sensor.Value != "23.5" || e.get(hum.ID).Sensor.Value != "40" {
		t.Fatal("shared topic values")
	}
	r = ing.Process("org/acme/tasmota/SENSOR", []byte(`{"DS18B20":{"Temperature":23.0}}`), at)
	if resultOf(t, r, ds.ID, RuleSensor) != Accepted || e.get(ds.ID).Sensor.Value != "23" {
		t.Fatalf("DS18B20: %+v %q", r, e.get(ds.ID).Sensor.Value)
	}
	// A missing path is not a value (the original stored "").
	r = ing.Process("org/acme/room/sensor", []byte(`{"temp":24}`), at.Add(time.Minute))
	if resultOf(t, r, hum.ID, RuleSensor) != RejectedMissingValue || resultOf(t, r, temp.ID, RuleSensor) != Accepted {
		t.Fatalf("missing path: %+v", r)
	}
	if th := e.get(hum.ID); th.Sensor.Value != "40" || th.Sensor.MeasurementLast != at.Unix() {
		t.Fatalf("missing path changed humidity: %+v", th.Sensor)
	}
	before := e.get(temp.ID)
	for _, c := range []struct{ payload, want string }{
		{`{"temp":`, RejectedBadJSON},
		{`temp=3`, RejectedBadJSON},
		{`{"temp":{"c":3}}`, RejectedUnparsable},
		{`{"temp":"  "}`, RejectedMissingValue},
		{`{"temp":"` + strings.Repeat("9", MaxValueLen+1) + `"}`, RejectedTooLarge},
	} {
		r := ing.Process("org/acme/room/sensor", []byte(c.payload), at.Add(time.Hour))
		if got := resultOf(t, r, temp.ID, RuleSensor); got != c.want {
			t.Errorf("%.30s: %s, want %s", c.payload, got, c.want)
		}
	}
	if e.get(temp.ID) != before {
		t.Fatal("malformed payloads changed the sensor")
	}
	for _, p := range [][]byte{{}, []byte("   "), {0xff}} {
		r := ing.Process("org/acme/Tplain/value", p, at)
		if got := resultOf(t, r, plain.ID, RuleSensor); got != RejectedMissingValue && got != RejectedBadEncoding {
			t.Errorf("%q: %s", p, got)
		}
	}
	// A reading measured before the current one (a device's backlog,
	// sent with its own time) goes to history but leaves the current
	// value and its time alone; the same time replaces it.
	r = ing.Process("org/acme/Tplain/value", []byte("12.5"), at.Add(-72*time.Hour))
	if resultOf(t, r, plain.ID, RuleSensor) != AcceptedOlder || len(r.Points) != 1 || r.Points[0].Value != "12.5" || r.Points[0].TS != at.Add(-72*time.Hour).Unix() {
		t.Fatalf("older reading: %+v", r)
	}
	if th := e.get(plain.ID); th.Sensor.Value != "21.5" || th.Sensor.MeasurementLast != at.Unix() || th.LastSeen != at.Unix() {
		t.Fatalf("older reading changed the sensor: %+v, last seen %d", th.Sensor, th.LastSeen)
	}
	r = ing.Process("org/acme/Tplain/value", []byte("21.6"), at)
	if resultOf(t, r, plain.ID, RuleSensor) != Accepted || e.get(plain.ID).Sensor.Value != "21.6" {
		t.Fatalf("same time: %+v", r)
	}
	// The unit comes from <measurement topic>/unit, as the PIOT adapter
	// publishes it.
	r = ing.Process("org/acme/Tplain/value/unit", []byte("C"), at)
	if resultOf(t, r, plain.ID, RuleSensorUnit) != Accepted || e.get(plain.ID).Sensor.Unit != "C" {
		t.Fatalf("unit: %+v", r)
	}
	r = ing.Process("org/acme/Tplain/value/unit", []byte("C\x00"), at)
	if resultOf(t, r, plain.ID, RuleSensorUnit) != RejectedBadEncoding || e.get(plain.ID).Sensor.Unit != "C" {
		t.Fatalf("bad unit: %+v", r)
	}
}

// Things as auto-registration leaves them (thing-relative topics) match
// <thing>/<topic>, and the reference meaning (relative to org/<org>/) keeps
// working.
func TestAutoRegistrationTopics(t *testing.T) {
	e := newEnv(t)
	ing := e.start(Config{}, nil)
	dev := e.thing(thingSpec{name: "device01", typ: "device", update: core.ThingUpdate{AvailabilityTopic: ptr("available")}})
	sen := e.thing(thingSpec{name: "TSensorAddr", typ: "sensor", sensor: &core.SensorUpdate{MeasurementTopic: ptr("value"), Class: ptr("temperature")}})
	gps := e.thing(thingSpec{name: "vd1", typ: "device", update: core.ThingUpdate{LocMQTTTopic: ptr("location"),
		LocMQTTLatValue: ptr("lat"), LocMQTTLngValue: ptr("lng"), LocMQTTSatValue: ptr("sat"), LocMQTTTsValue: ptr("ts")}})
	at := base.Add(time.Minute)
	// The PIOT adapter's publications for an assigned device and sensor.
	for _, m := range []struct{ topic, payload string }{
		{"org/acme/device01/available", "yes"},
		{"org/acme/TSensorAddr/available", "yes"},
		{"org/acme/TSensorAddr/value", "4.5"},
		{"org/acme/TSensorAddr/value/unit", "C"},
		{"org/acme/vd1/location", `{"ts":0,"lat":34.56,"lng":12.34,"sat":3}`},
	} {
		ing.Process(m.topic, []byte(m.payload), at)
	}
	if th := e.get(dev.ID); !th.Available || th.LastSeen != at.Unix() {
		t.Fatalf("device: %+v", th)
	}
	if th := e.get(sen.ID); th.Sensor.Value != "4.5" || th.Sensor.Unit != "C" || th.LastSeen != at.Unix() {
		t.Fatalf("sensor: %+v", th.Sensor)
	}
	if th := e.get(gps.ID); th.LocLat != 34.56 || th.LocTs != at.Unix() || th.LocSat != 3 {
		t.Fatalf("gps: %+v", th)
	}
	// Org-relative meaning.
	ing.Process("org/acme/value", []byte("5.5"), at)
	if e.get(sen.ID).Sensor.Value != "5.5" {
		t.Fatal("org-relative topic")
	}
}

func TestSwitch(t *testing.T) {
	e := newEnv(t)
	ing := e.start(Config{}, nil)
	sw := e.thing(thingSpec{name: "relay", typ: "switch", sw: &core.SwitchUpdate{StateTopic: ptr("relay/state"), StateOn: ptr("ON"), StateOff: ptr("OFF")}})
	r := ing.Process("org/acme/relay/state", []byte("ON"), base)
	if resultOf(t, r, sw.ID, RuleSwitch) != Accepted || !e.get(sw.ID).Switch.State || r.Points[0].Value != "1" || r.Points[0].Kind != history.KindSwitch {
		t.Fatalf("ON: %+v", r)
	}
	r = ing.Process("org/acme/relay/state", []byte("OFF"), base.Add(time.Second))
	if resultOf(t, r, sw.ID, RuleSwitch) != Accepted || e.get(sw.ID).Switch.State || r.Points[0].Value != "0" {
		t.Fatalf("OFF: %+v", r)
	}
	before := e.get(sw.ID)
	r = ing.Process("org/acme/relay/state", []byte("TOGGLE"), base.Add(time.Minute))
	if resultOf(t, r, sw.ID, RuleSwitch) != IgnoredUnknownState || len(r.Points) != 0 || e.get(sw.ID) != before {
		t.Fatalf("unknown: %+v", r)
	}
	if ing.Stats()[Key{RuleSwitch, IgnoredUnknownState}] != 1 {
		t.Fatal("unknown state not counted")
	}
}

func TestBattery(t *testing.T) {
	e := newEnv(t)
	ing := e.start(Config{}, nil)
	withPath := e.thing(thingSpec{name: "b1", typ: "device", update: core.ThingUpdate{BatteryMQTTTopic: ptr("b1/battery"), BatteryMQTTLevelValue: ptr("bat")}})
	plain := e.thing(thingSpec{name: "b2", typ: "sensor", update: core.ThingUpdate{BatteryMQTTTopic: ptr("b2/battery")}})
	r := ing.Process("org/acme/b1/battery", []byte(`{"bat":23}`), base)
	if resultOf(t, r, withPath.ID, RuleBattery) != Accepted || e.get(withPath.ID).BatteryLevel != 23 {
		t.Fatalf("%+v", r)
	}
	if len(r.Points) != 1 || r.Points[0].Value != "23" || r.Points[0].Kind != history.KindBattery {
		t.Fatalf("points %+v", r.Points)
	}
	for _, c := range []struct{ payload, want string }{
		{`{"bat":"abc"}`, RejectedUnparsable},
		{`{"bat":150}`, RejectedOutOfRange},
		{`{"bat":-1}`, RejectedOutOfRange},
		{`{"level":50}`, RejectedMissingValue},
		{`{"bat":`, RejectedBadJSON},
	} {
		r := ing.Process("org/acme/b1/battery", []byte(c.payload), base.Add(time.Minute))
		if got := resultOf(t, r, withPath.ID, RuleBattery); got != c.want {
			t.Errorf("%s: %s, want %s", c.payload, got, c.want)
		}
	}
	if th := e.get(withPath.ID); th.BatteryLevel != 23 || th.LastSeen != base.Unix() {
		t.Fatalf("rejected levels changed the thing: %+v", th)
	}
	r = ing.Process("org/acme/b2/battery", []byte("87"), base)
	if resultOf(t, r, plain.ID, RuleBattery) != Accepted || e.get(plain.ID).BatteryLevel != 87 {
		t.Fatalf("plain: %+v", r)
	}
	r = ing.Process("org/acme/b2/battery", []byte("full"), base)
	if resultOf(t, r, plain.ID, RuleBattery) != RejectedUnparsable || e.get(plain.ID).BatteryLevel != 87 {
		t.Fatalf("unparsable stored: %+v", r)
	}
}

func TestDisabledAndUnassignedThings(t *testing.T) {
	e := newEnv(t)
	ing := e.start(Config{}, nil)
	off := e.thing(thingSpec{name: "off", typ: "sensor", disabled: true, sensor: &core.SensorUpdate{MeasurementTopic: ptr("off/value")}})
	loose := e.thing(thingSpec{name: "loose", typ: "sensor", noOrg: true, sensor: &core.SensorUpdate{MeasurementTopic: ptr("loose/value")}})
	r := ing.Process("org/acme/off/value", []byte("1"), base)
	if resultOf(t, r, off.ID, RuleSensor) != IgnoredDisabled || len(r.Points) != 0 || e.get(off.ID).Sensor.Value != "" {
		t.Fatalf("disabled: %+v", r)
	}
	if r := ing.Process("org/acme/loose/value", []byte("1"), base); r.Outcome != IgnoredNoMatch || e.get(loose.ID).Sensor.Value != "" {
		t.Fatalf("unassigned: %+v", r)
	}
	// Enabling takes effect without a restart.
	on, err := e.c.UpdateThing(context.Background(), e.admin, core.ThingUpdate{ID: off.ID, Enabled: ptr(true)})
	if err != nil {
		t.Fatal(err)
	}
	e.synced(on)
	if r := ing.Process("org/acme/off/value", []byte("2"), base); resultOf(t, r, off.ID, RuleSensor) != Accepted {
		t.Fatalf("enabled: %+v", r)
	}
}

func TestOversizedPayloadIgnored(t *testing.T) {
	e := newEnv(t)
	ing := e.start(Config{MaxPayload: 1024}, nil)
	s := e.thing(thingSpec{name: "s", typ: "sensor", sensor: &core.SensorUpdate{MeasurementTopic: ptr("s/value")}})
	r := ing.Process("org/acme/s/value", bytes.Repeat([]byte("1"), 1025), base)
	if r.Outcome != IgnoredTooLarge || e.get(s.ID).Sensor.Value != "" {
		t.Fatalf("%+v", r)
	}
	if ing.Stats()[Key{RuleMessage, IgnoredTooLarge}] != 1 {
		t.Fatal("not counted")
	}
}

// The index follows configuration changes made through core.
func TestIndexFollowsChanges(t *testing.T) {
	e := newEnv(t)
	ing := e.start(Config{}, nil)
	ctx := context.Background()
	s := e.thing(thingSpec{name: "s", typ: "sensor", sensor: &core.SensorUpdate{MeasurementTopic: ptr("old")}})
	th, err := e.c.UpdateThingSensor(ctx, e.admin, core.SensorUpdate{ID: s.ID, MeasurementTopic: ptr("new")})
	if err != nil {
		t.Fatal(err)
	}
	e.synced(th)
	if r := ing.Process("org/acme/old", []byte("1"), base); r.Outcome != IgnoredNoMatch {
		t.Fatalf("old topic: %+v", r)
	}
	if r := ing.Process("org/acme/new", []byte("1"), base); r.Outcome != Processed {
		t.Fatalf("new topic: %+v", r)
	}
	// Renaming the org moves its namespace.
	if _, err := e.c.UpdateOrg(ctx, e.admin, core.OrgUpdate{ID: e.org.ID, Name: ptr("acme2")}); err != nil {
		t.Fatal(err)
	}
	if r := ing.Process("org/acme/new", []byte("1"), base); r.Outcome != IgnoredUnknownOrg {
		t.Fatalf("old org name: %+v", r)
	}
	if r := ing.Process("org/acme2/new", []byte("2"), base); r.Outcome != Processed {
		t.Fatalf("new org name: %+v", r)
	}
	// Renaming the thing moves its thing-relative topics.
	th, err = e.c.UpdateThing(ctx, e.admin, core.ThingUpdate{ID: s.ID, Name: ptr("s2")})
	if err != nil {
		t.Fatal(err)
	}
	e.synced(th)
	if r := ing.Process("org/acme2/s2/new", []byte("3"), base); r.Outcome != Processed {
		t.Fatalf("renamed thing: %+v", r)
	}
	if err := e.c.DeleteThing(ctx, e.admin, s.ID); err != nil {
		t.Fatal(err)
	}
	eventually(t, func() bool { return ing.Process("org/acme2/new", []byte("1"), base).Outcome == IgnoredNoMatch })
}
