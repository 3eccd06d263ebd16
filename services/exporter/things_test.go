package exporter

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/piot-appliance/piot/services/core"
)

// thingFamilies are the families of thing metrics.
var thingFamilies = []string{
	"piot_sensor_value",
	"piot_switch_on",
	"piot_thing_alarm_active",
	"piot_thing_battery_ratio",
	"piot_thing_last_seen_timestamp_seconds",
	"piot_thing_location_latitude_degrees",
	"piot_thing_location_longitude_degrees",
	"piot_thing_location_timestamp_seconds",
	"piot_thing_up",
}

// farmSeries and citySeries are the exact thing series of the fixture.
var farmSeries = map[string][]string{
	"piot_thing_up": {
		`{org="farm",thing="Greenhouse"} 1`,
		`{org="farm",thing="t-switch"} 1`,
		`{org="farm",thing="t-text"} 0`,
	},
	"piot_thing_last_seen_timestamp_seconds": {
		`{org="farm",thing="Greenhouse"} 1.7e+09`,
		`{org="farm",thing="t-switch"} 1.7000001e+09`,
	},
	"piot_thing_alarm_active": {
		`{org="farm",thing="Greenhouse"} 1`,
		`{org="farm",thing="t-switch"} 0`,
		`{org="farm",thing="t-text"} 0`,
	},
	"piot_sensor_value":                     {`{class="temperature",org="farm",thing="Greenhouse",unit="°C"} 21.5`},
	"piot_switch_on":                        {`{org="farm",thing="t-switch"} 1`},
	"piot_thing_battery_ratio":              {`{org="farm",thing="Greenhouse"} 0.8`},
	"piot_thing_location_latitude_degrees":  {`{org="farm",thing="Greenhouse"} 48.1486`},
	"piot_thing_location_longitude_degrees": {`{org="farm",thing="Greenhouse"} 17.1077`},
	"piot_thing_location_timestamp_seconds": {`{org="farm",thing="Greenhouse"} 1.70000005e+09`},
}

var citySeries = map[string][]string{
	"piot_thing_up":                          {`{org="city",thing="t-city"} 1`},
	"piot_thing_last_seen_timestamp_seconds": {`{org="city",thing="t-city"} 1.7000002e+09`},
	"piot_thing_alarm_active":                {`{org="city",thing="t-city"} 0`},
	"piot_sensor_value":                      {`{class="humidity",org="city",thing="t-city",unit="%"} 7`},
}

func merge(ms ...map[string][]string) map[string][]string {
	out := map[string][]string{}
	for _, m := range ms {
		for k, v := range m {
			out[k] = append(out[k], v...)
		}
	}
	for k := range out {
		slices.Sort(out[k])
	}
	return out
}

// checkThings compares the thing families of a scrape with want exactly.
func checkThings(t *testing.T, body string, want map[string][]string) {
	t.Helper()
	mfs := parse(t, body)
	for _, fam := range thingFamilies {
		got := series(mfs[fam])
		if !slices.Equal(got, want[fam]) {
			t.Errorf("%s:\n got  %q\n want %q", fam, got, want[fam])
		}
		if mf := mfs[fam]; mf != nil && mf.GetType().String() != "GAUGE" {
			t.Errorf("%s is a %s, want a gauge", fam, mf.GetType())
		}
	}
}

func TestThingMetricsAllScope(t *testing.T) {
	f := newFixture(t)
	h := newExporter(t, Sources{Core: f.core}).Handler(BearerAuthorizer(globalToken, f.orgToken))
	code, _, body := scrape(t, h, globalToken)
	if code != http.StatusOK {
		t.Fatalf("status %d: %s", code, body)
	}
	checkThings(t, body, merge(farmSeries, citySeries))
	for _, gone := range []string{"t-disabled", "Disabled", "t-unassigned", "t-deleted", `"t-sensor"`} {
		if strings.Contains(body, gone) {
			t.Errorf("output mentions %s:\n%s", gone, body)
		}
	}
}

func TestThingMetricsFollowChanges(t *testing.T) {
	f := newFixture(t)
	h := newExporter(t, Sources{Core: f.core}).Handler(BearerAuthorizer(globalToken, f.orgToken))
	ctx := t.Context()

	// Disabling a thing and unassigning another removes their series at
	// once; deleting the city's thing empties that org.
	off := false
	if _, err := f.core.UpdateThing(ctx, f.admin, core.ThingUpdate{ID: f.things["t-switch"], Enabled: &off}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.core.UpdateThing(ctx, f.admin, core.ThingUpdate{ID: f.things["t-text"], SetOrg: true}); err != nil {
		t.Fatal(err)
	}
	if err := f.core.DeleteThing(ctx, f.admin, f.things["t-city"]); err != nil {
		t.Fatal(err)
	}
	// A new value, a value that stops being a number, a removed alias.
	f.state(t, f.things["t-sensor"], func(th *core.Thing) { th.Sensor.Value = "-3.25e1" })
	_, _, body := scrape(t, h, globalToken)
	mfs := parse(t, body)
	if got := series(mfs["piot_sensor_value"]); !slices.Equal(got, []string{`{class="temperature",org="farm",thing="Greenhouse",unit="°C"} -32.5`}) {
		t.Errorf("sensor value: %q", got)
	}
	if got := series(mfs["piot_thing_up"]); !slices.Equal(got, []string{`{org="farm",thing="Greenhouse"} 1`}) {
		t.Errorf("thing up: %q", got)
	}
	if mfs["piot_switch_on"] != nil {
		t.Errorf("disabled switch still exported: %q", series(mfs["piot_switch_on"]))
	}

	noAlias := ""
	if _, err := f.core.UpdateThing(ctx, f.admin, core.ThingUpdate{ID: f.things["t-sensor"], Alias: &noAlias}); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"NaN", "+Inf", "21,5", "", "{\"t\":1}"} {
		f.state(t, f.things["t-sensor"], func(th *core.Thing) { th.Sensor.Value = v })
		_, _, body = scrape(t, h, globalToken)
		mfs = parse(t, body)
		if mfs["piot_sensor_value"] != nil {
			t.Errorf("value %q exported: %q", v, series(mfs["piot_sensor_value"]))
		}
		if got := series(mfs["piot_thing_up"]); !slices.Equal(got, []string{`{org="farm",thing="t-sensor"} 1`}) {
			t.Errorf("without alias: %q", got)
		}
	}
}

func TestThingLabelsResolveAliasClashes(t *testing.T) {
	org, other := core.ID{1}, core.ID{2}
	th := func(id byte, name, alias string, o core.ID) core.Thing {
		return core.Thing{ID: core.ID{0xaa, id}, Name: name, Alias: alias, OrgID: o, Enabled: true}
	}
	things := []core.Thing{
		th(1, "a", "pump", org),      // clashes with b's alias: both use their names
		th(2, "b", "pump", org),      //
		th(3, "c", "a", org),         // its alias is a's name: clashes once a falls back
		th(4, "d", "tank", org),      // unique alias
		th(5, "e", "tank", other),    // same alias in another org: no clash
		th(6, "f", "f", org),         // alias equal to its own name
		th(7, "g", "", core.ID{}),    // unassigned
		th(8, "h", "", core.ID{0x9}), // org without a name (being deleted)
	}
	disabled := th(9, "i", "", org)
	disabled.Enabled = false
	things = append(things, disabled)
	orgName := func(id core.ID) (string, bool) {
		switch id {
		case org:
			return "farm", true
		case other:
			return "city", true
		}
		return "", false
	}
	want := map[byte]ThingLabel{
		1: {"farm", "a"}, 2: {"farm", "b"}, 3: {"farm", "c"}, 4: {"farm", "tank"}, 5: {"city", "tank"}, 6: {"farm", "f"},
	}
	// The result does not depend on the order of the things.
	for range 5 {
		got := thingLabels(things, orgName, core.ID{})
		if len(got) != len(want) {
			t.Fatalf("labels %v", got)
		}
		for id, w := range want {
			if got[core.ID{0xaa, id}] != w {
				t.Errorf("thing %d: %v, want %v", id, got[core.ID{0xaa, id}], w)
			}
		}
		slices.Reverse(things)
		things = append(things[1:], things[0])
	}
	if got := thingLabels(things, orgName, other); len(got) != 1 || got[core.ID{0xaa, 5}] != (ThingLabel{"city", "tank"}) {
		t.Errorf("one org: %v", got)
	}
}

func TestThingByLabels(t *testing.T) {
	f := newFixture(t)
	for _, c := range []struct {
		org, thing string
		want       string
	}{
		{"farm", "Greenhouse", "t-sensor"},
		{"farm", "t-switch", "t-switch"},
		{"city", "t-city", "t-city"},
		{"farm", "t-sensor", ""}, // labelled by its alias, not its name
		{"city", "Greenhouse", ""},
		{"farm", "t-disabled", ""},
		{"nowhere", "t-city", ""},
	} {
		id, ok := ThingByLabels(f.core, c.org, c.thing)
		if ok != (c.want != "") || (ok && id != f.things[c.want]) {
			t.Errorf("%s/%s: %v %v, want %s", c.org, c.thing, id.Hex(), ok, c.want)
		}
	}
	if got := ThingLabels(f.core); len(got) != 4 || got[f.things["t-sensor"]] != (ThingLabel{"farm", "Greenhouse"}) {
		t.Errorf("ThingLabels: %v", got)
	}
}

// A unit that is not UTF-8 (core limits its length, not its bytes) costs
// that one series, not the scrape: the things collector reports a failure.
func TestBadLabelValueCostsOneSeries(t *testing.T) {
	f := newFixture(t)
	f.state(t, f.things["t-city"], func(th *core.Thing) { th.Sensor.Unit = "\xff" })
	h := newExporter(t, Sources{Core: f.core}).Handler(BearerAuthorizer(globalToken, f.orgToken))
	for _, tok := range []string{globalToken, cityToken} {
		code, _, body := scrape(t, h, tok)
		if code != http.StatusOK {
			t.Fatalf("%s: status %d", tok, code)
		}
		mfs := parse(t, body)
		if got := series(mfs["piot_thing_up"]); !slices.Contains(got, `{org="city",thing="t-city"} 1`) {
			t.Errorf("%s: thing up %q", tok, got)
		}
		if tok == globalToken {
			if got := series(mfs["piot_sensor_value"]); len(got) != 1 {
				t.Errorf("sensor values %q", got)
			}
			if got := series(mfs["piot_scrape_collector_success"]); !slices.Contains(got, `{collector="things"} 0`) {
				t.Errorf("success %q", got)
			}
		} else if mfs["piot_sensor_value"] != nil {
			t.Errorf("city sensor value %q", series(mfs["piot_sensor_value"]))
		}
	}
}
