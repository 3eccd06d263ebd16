package admincli

import (
	"slices"
	"testing"
)

func TestLookupsByName(t *testing.T) {
	orgs := []orgRow{{ID: "1", Name: "acme"}, {ID: "2", Name: "farm"}}
	if orgID(orgs, "farm") != "2" || orgID(orgs, "Farm") != "" || orgID(nil, "farm") != "" {
		t.Fatal("orgID")
	}
	users := []userRow{{ID: "7", Email: "ann@x.test"}}
	if userID(users, "ann@x.test") != "7" || userID(users, "bob@x.test") != "" {
		t.Fatal("userID")
	}
}

func TestOrgNames(t *testing.T) {
	for want, u := range map[string]userRow{
		"":          {},
		"acme":      {Orgs: []orgRow{{Name: "acme"}}},
		"acme,farm": {Orgs: []orgRow{{Name: "acme"}, {Name: "farm"}}},
	} {
		if got := u.orgNames(); got != want {
			t.Errorf("orgNames = %q, want %q", got, want)
		}
	}
}

func TestThingCells(t *testing.T) {
	th := thingRow{ID: "1", Name: "boiler", Type: "switch", Enabled: true}
	if got, want := th.cells(), []string{"1", "boiler", "", "switch", "-", "true", "-", ""}; !slices.Equal(got, want) {
		t.Fatalf("unassigned switch: %q, want %q", got, want)
	}
	th = thingRow{ID: "2", Name: "attic", Alias: "Attic", Type: "sensor", LastSeen: 1_700_000_000, Org: &orgRow{Name: "acme"},
		Sensor: &sensorRow{Value: "21.5", Unit: "°C"}}
	want := []string{"2", "attic", "Attic", "sensor", "acme", "false", "2023-11-14T22:13:20Z", "21.5 °C"}
	if got := th.cells(); !slices.Equal(got, want) {
		t.Fatalf("sensor: %q, want %q", got, want)
	}
	if len(thingHeader) != len(want) {
		t.Fatalf("%d headers for %d cells", len(thingHeader), len(want))
	}
}
