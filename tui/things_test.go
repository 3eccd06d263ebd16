package tui

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/piot-appliance/piot/services/core"
)

func lineWith(s, needle string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, needle) {
			return l
		}
	}
	return ""
}

func TestThingsListSortFilter(t *testing.T) {
	w := newWorld(t)
	a := w.thing(t, "boiler", "sensor", w.acme.ID)
	w.thing(t, "attic", "switch", w.acme.ID)
	w.thing(t, "cellar", "device", core.ID{})
	// Readings arrive through ingest; core's state path stands in for it.
	w.core.UpdateThingState(a.ID, func(t *core.Thing) bool {
		t.Sensor.Value, t.Sensor.Unit, t.LastSeen, t.LastSeenInterval = "21.5", "°C", testNow.Add(-3*time.Minute).Unix(), 600
		t.BatteryLevelTracking, t.BatteryLevel = true, 87
		return true
	})
	h := newHarness(t, Deps{Core: w.core}, w.admin, 80, 24)
	h.key("2")
	s := h.waitFor("3 all things", "boiler", "attic", "cellar")
	boiler := lineWith(s, "boiler")
	for _, want := range []string{"sensor", "acme", "3m ago", "21.5 °C", "87%", "yes"} {
		if !strings.Contains(boiler, want) {
			t.Errorf("boiler row lacks %q: %q", want, boiler)
		}
	}
	if !strings.Contains(lineWith(s, "attic"), "OFF") {
		t.Errorf("switch row shows no state: %q", lineWith(s, "attic"))
	}
	// Default order is by name.
	if !(strings.Index(s, "attic") < strings.Index(s, "boiler") && strings.Index(s, "boiler") < strings.Index(s, "cellar")) {
		t.Errorf("not sorted by name:\n%s", s)
	}
	// s: sort by the first column; S: reverse.
	h.key("s", "S")
	s = h.screen()
	if !strings.Contains(s, "Name↓") || strings.Index(s, "cellar") > strings.Index(s, "attic") {
		t.Errorf("reverse sort by name failed:\n%s", s)
	}
	// Sort by last seen: s cycles to column 5.
	h.key("s", "s", "s", "s")
	s = h.screen()
	if !strings.Contains(s, "Last seen↑") {
		t.Errorf("sort by last seen not shown:\n%s", s)
	}
	h.key("/")
	h.typeText("cel")
	s = h.waitFor("filter: cel", "cellar")
	if strings.Contains(s, "boiler") || strings.Contains(s, "attic") {
		t.Errorf("filter did not narrow the list:\n%s", s)
	}
	// While the filter has the keyboard, q is typed, not a quit.
	h.key("q")
	if h.quit {
		t.Fatal("q in the filter quit the console")
	}
	h.waitFor("nothing matches the filter")
	h.key("backspace", "enter")
	s = h.waitFor("cellar", "esc to clear")
	h.key("esc")
	h.waitFor("boiler", "attic", "cellar")
	checkFits(t, s, 80, 24)
}

func TestThingDetailEditValidation(t *testing.T) {
	w := newWorld(t)
	w.thing(t, "boiler", "sensor", w.acme.ID)
	h := newHarness(t, Deps{Core: w.core}, w.member, 80, 24)
	h.key("2")
	h.waitFor("boiler")
	h.key("enter")
	s := h.waitFor("boiler — sensor", "[general]", "organization", "acme", "history: history not available")
	checkFits(t, s, 80, 24)
	h.key("right")
	s = h.waitFor("[MQTT]", "availability topic")
	checkFits(t, s, 80, 24)
	// A sensor has no switch settings: the group is not offered.
	if strings.Contains(lineWith(s, "[MQTT]"), "switch") {
		t.Errorf("a sensor offers switch settings:\n%s", s)
	}
	h.key("right", "right", "right", "right")
	h.waitFor("[general]")
	h.key("left")
	s = h.waitFor("[battery]", "battery topic")
	// The battery is not tracked: no level, rather than "0%".
	if strings.Contains(s, "level   ") || strings.Contains(s, "0%") {
		t.Errorf("an untracked battery shows a level:\n%s", s)
	}
	h.key("left", "left", "left")
	h.waitFor("[MQTT]")
	// Edit the MQTT group: a wildcard in a topic is refused by core and the
	// message appears under the field.
	h.key("e")
	h.waitFor("Edit boiler — MQTT", "Availability topic")
	h.typeText("status/#")
	h.key("ctrl+s")
	s = h.waitFor("error: availability_topic must not contain '+', '#' or NUL")
	checkFits(t, s, 80, 24)
	// A bad number is caught before core is asked.
	h.key("down", "down", "down", "down")
	h.typeText("x")
	h.key("ctrl+s")
	h.waitFor("must be a whole number")
	h.key("backspace", "up", "up", "up", "up")
	for range len("status/#") {
		h.key("backspace")
	}
	h.typeText("status")
	h.key("ctrl+s")
	h.waitFor("saved boiler", "org/acme/status")
	th := h.m.screens[1].(*thingsScreen).items
	for _, x := range th {
		if x.AvailabilityTopic != "status" {
			t.Fatalf("availability topic not saved: %q", x.AvailabilityTopic)
		}
	}
	// Members may not rename to a taken name either; the message goes
	// under the name field.
	if _, err := w.core.CreateThing(context.Background(), w.admin, "taken", "sensor"); err != nil {
		t.Fatal(err)
	}
	h.key("left", "e")
	h.waitFor("Edit boiler — general")
	for range len("boiler") {
		h.key("backspace")
	}
	h.typeText("taken")
	h.key("ctrl+s")
	s = h.waitFor("error: Thing of such name")
	if !strings.Contains(lineWith(s, "error:"), "Thing") || strings.Index(s, "error:") > strings.Index(s, "Alias") {
		t.Errorf("the name error is not under the name field:\n%s", s)
	}
	h.key("esc")
	h.waitFor("[general]")
	h.key("esc")
	h.waitFor("things of your organization")
}

func TestThingAssignEnableToggleDelete(t *testing.T) {
	w := newWorld(t)
	sw := w.thing(t, "lamp", "switch", core.ID{})
	h := newHarness(t, Deps{Core: w.core}, w.admin, 80, 24)
	h.key("2")
	h.waitFor("lamp")
	h.key("o")
	h.waitFor("Assign lamp to an organization", "(none: unassigned)")
	h.key("right")
	h.waitFor("< acme >")
	h.key("enter")
	h.waitFor("lamp assigned to acme")
	h.waitRow("lamp", "acme")
	h.key("x")
	h.waitFor("lamp disabled")
	h.waitRow("lamp", " no")
	h.key("t")
	h.waitFor("lamp switched ON")
	h.waitRow("lamp", "ON")
	got, err := w.core.Thing(w.admin, sw.ID)
	if err != nil || !got.Switch.State || got.Enabled || got.OrgID != w.acme.ID {
		t.Fatalf("core state after the actions: %+v %v", got, err)
	}
	h.key("d")
	h.waitFor(`Delete thing "lamp"?`, "[y/N]")
	h.key("n")
	h.waitFor("cancelled")
	h.key("d", "y")
	h.waitFor("deleted thing lamp", "no things")
	// New thing.
	h.key("n")
	h.waitFor("New thing", "Name")
	h.key("enter", "enter")
	h.waitFor("error: thing name must not be empty")
	h.typeText("pump")
	h.key("enter", "right", "right", "enter")
	h.waitFor("created thing pump")
	h.waitRow("pump", "device")
}
