package tui

import (
	"strings"
	"sync/atomic"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/piot-appliance/piot/services/core"
)

func TestFormatNumber(t *testing.T) {
	for v, want := range map[float64]string{
		21.285714285714285: "21.29", 0: "0", 100: "100", 12345.678: "12346", -3.14159: "-3.142",
		0.000123456: "0.0001235", 87.5: "87.5", 1e-12: "0", 99.99999: "100",
	} {
		if got := formatNumber(v); got != want {
			t.Errorf("formatNumber(%v) = %q, want %q", v, got, want)
		}
	}
}

// historyWorld has a sensor with a battery and a device with locations in
// acme, and a sensor in another org.
func historyWorld(t *testing.T) (*world, core.Thing, core.Thing) {
	t.Helper()
	w := newWorld(t)
	boiler := w.thing(t, "boiler", "sensor", w.acme.ID)
	w.core.UpdateThingState(boiler.ID, func(t *core.Thing) bool {
		t.Sensor.Unit, t.BatteryLevelTracking = "°C", true
		return true
	})
	w.thing(t, "truck", "device", w.acme.ID)
	other, err := w.core.CreateOrg(t.Context(), w.admin, "globex", "")
	if err != nil {
		t.Fatal(err)
	}
	foreign := w.thing(t, "their-boiler", "sensor", other.ID)
	return w, boiler, foreign
}

func historyHarness(t *testing.T, a func(*world) core.Actor, width, height int) (*harness, *world, core.Thing) {
	t.Helper()
	w, _, foreign := historyWorld(t)
	h := newHarness(t, Deps{Core: w.core, History: fakeHistory{core: w.core}}, a(w), width, height)
	h.key("9")
	h.waitFor("History — pick a thing", "boiler")
	return h, w, foreign
}

func TestHistoryChartAndRanges(t *testing.T) {
	h, _, _ := historyHarness(t, func(w *world) core.Actor { return w.admin }, 80, 24)
	h.key("enter") // boiler, the first by name
	s := h.waitFor("boiler", "[24 h]", "[sensor]", "°C", "step")
	checkFits(t, s, 80, 24)
	for _, want := range []string{"┤", "└──", "●", "12:00", "2026-04-30 12:00 – 2026-05-01 12:00"} {
		if !strings.Contains(s, want) {
			t.Errorf("the chart lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, "21.285714") || strings.Contains(s, "142857") {
		t.Errorf("unrounded numbers:\n%s", s)
	}
	h.key("right")
	s = h.waitFor("[7 d]", "04-24 12:00", "step")
	checkFits(t, s, 80, 24)
	h.key("right")
	h.waitFor("[30 d]", "04-01 12:00")
	h.key("right")
	h.waitFor("[1 h]", "11:00", "12:00")
	h.key("left")
	h.waitFor("[30 d]")

	h.key("c")
	h.typeText("3h")
	h.key("enter")
	h.waitFor("[custom]", "2026-05-01 09:00 – 2026-05-01 12:00")
	h.key("c")
	h.typeText("2026-04-29..2026-04-30 06:00")
	h.key("enter")
	h.waitFor("[custom]", "2026-04-29 00:00 – 2026-04-30 06:00")
	h.key("c")
	h.typeText("tomorrow")
	h.key("enter")
	h.waitFor("error: range: write 3h, 90m, 2d or FROM..TO")
	h.key("esc")

	// The steps and the raw readings, newest first, scrolled.
	h.key("v")
	s = h.waitFor("Step from", "Min", "Avg", "Max")
	checkFits(t, s, 80, 24)
	h.key("v")
	h.waitFor("Time", "Value", "2026-04-30 05:50:00")
	h.key("G")
	h.waitFor("2026-04-29 00:00:00")
	h.key("v")
	h.waitFor("┤")

	// The battery, in percent.
	h.key("s")
	s = h.waitFor("[battery]", "%")
	checkFits(t, s, 80, 24)
	h.key("esc")
	h.waitFor("History — pick a thing")
}

func TestHistoryTrack(t *testing.T) {
	h, _, _ := historyHarness(t, func(w *world) core.Actor { return w.admin }, 120, 35)
	h.key("/")
	h.typeText("truck")
	h.key("enter", "enter")
	s := h.waitFor("truck", "[24 h]", "locations", "lat", "lng 13.4")
	checkFits(t, s, 120, 35)
	if !strings.Contains(s, "o") || !strings.Contains(s, "●") || !strings.Contains(s, "52.5") {
		t.Errorf("the track lacks its ends or its axis:\n%s", s)
	}
	h.key("v")
	s = h.waitFor("Latitude", "Longitude", "52.64300")
	checkFits(t, s, 120, 35)
}

// A member picks from their org's things only, and core refuses another
// org's thing even when asked for it by id.
func TestHistoryMemberScoping(t *testing.T) {
	h, _, foreign := historyHarness(t, func(w *world) core.Actor { return w.member }, 80, 24)
	if s := h.screen(); strings.Contains(s, "their-boiler") {
		t.Fatalf("a member is offered another org's thing:\n%s", s)
	}
	hs := h.m.screens[8].(*historyScreen)
	hs.items[foreign.ID.Hex()] = foreign
	h.exec(hs.show(foreign.ID.Hex()))
	s := h.waitUntil("the foreign thing's history was not refused", func(s string) bool {
		return strings.Contains(s, "their-boiler") && (strings.Contains(s, "not found") || strings.Contains(s, "not allowed"))
	})
	if strings.Contains(s, "┤") || strings.Contains(s, "readings") {
		t.Fatalf("a member sees another org's history:\n%s", s)
	}
}

func TestHistoryResize(t *testing.T) {
	h, _, _ := historyHarness(t, func(w *world) core.Actor { return w.admin }, 120, 35)
	h.key("enter")
	h.waitFor("┤")
	for _, mode := range []string{"", "v", "v"} {
		if mode != "" {
			h.key(mode)
		}
		for _, sz := range [][2]int{{80, 24}, {60, 15}, {40, 10}, {20, 5}, {1, 1}, {120, 35}} {
			h.send(tea.WindowSizeMsg{Width: sz[0], Height: sz[1]})
			checkFits(t, h.screen(), sz[0], sz[1])
		}
	}
	h.key("c")
	h.send(tea.PasteMsg{Content: strings.Repeat("9", 5000)})
	h.key("enter")
	checkFits(t, h.screen(), 120, 35)
}

// The chart draws nothing rather than something broken when there is no
// room, and a flat series still gets an axis.
func TestStepChartEdges(t *testing.T) {
	from := testNow.Add(-time.Hour)
	flat := []SeriesStep{{Start: from, Min: 5, Max: 5, Avg: 5}, {Start: from.Add(30 * time.Minute), Min: 5, Max: 5, Avg: 5}}
	if got := stepChart(flat, from, testNow, "V", 11, 10); got != nil {
		t.Errorf("too narrow: %q", got)
	}
	got := stepChart(flat, from, testNow, "V", 40, 8)
	if len(got) != 8 || !strings.Contains(got[0], "6") || !strings.Contains(got[0], "V") || !strings.Contains(strings.Join(got, "\n"), "●") {
		t.Errorf("flat series:\n%s", strings.Join(got, "\n"))
	}
	for _, l := range got {
		if w := len([]rune(l)); w > 40 {
			t.Errorf("line of %d cells: %q", w, l)
		}
	}
	if got := trackPlot([]trackPoint{{1, 2}}, 40, 8); len(got) != 8 {
		t.Errorf("one location: %q", got)
	}
}

// H on Things opens the thing's history; a relative range follows the
// clock without losing the selected reading.
func TestHistoryFromThingsAndReload(t *testing.T) {
	w, _, _ := historyWorld(t)
	var clock atomic.Int64
	clock.Store(testNow.Unix())
	now := func() time.Time { return time.Unix(clock.Load(), 0).UTC() }
	h := newHarness(t, Deps{Core: w.core, History: fakeHistory{core: w.core}, Now: now}, w.admin, 80, 24)
	h.key("2")
	h.waitFor("boiler", "truck")
	h.key("H")
	h.waitFor("[9 History]", "boiler •", "[24 h]", "┤")
	h.key("v", "v", "down", "down")
	sel := lineWith(h.waitFor("Value"), "> ")
	if !strings.Contains(sel, "2026-05-01 11:40:00") {
		t.Fatalf("two down from the newest: %q", sel)
	}
	clock.Add(11 * 60)
	h.refresh()
	s := h.waitFor("2026-05-01 12:10:00", "– 2026-05-01 12:11")
	if got := lineWith(s, "> "); got != sel {
		t.Fatalf("the selection moved from %q to %q:\n%s", sel, got, s)
	}

	// From the detail too, and a member gets their own thing's history.
	m := newHarness(t, Deps{Core: w.core, History: fakeHistory{core: w.core}}, w.member, 80, 24)
	m.key("2")
	m.waitFor("boiler")
	m.key("enter")
	m.waitFor("boiler — sensor")
	m.key("H")
	m.waitFor("[9 History]", "boiler •", "min ", "┤")
}

// The extremes come from the steps, which cover the whole range; the
// mean from the readings unless only the oldest of them came back.
func TestHistorySummary(t *testing.T) {
	s := &historyScreen{env: &env{now: func() time.Time { return testNow }}, kinds: []string{"battery"}}
	s.series = Series{Step: time.Hour,
		Steps:    []SeriesStep{{Min: 10, Max: 30, Avg: 20}, {Min: 40, Max: 60, Avg: 50}},
		Readings: []SeriesReading{{Value: "10"}, {Value: "11"}, {Value: "12"}}}
	if got, want := s.summary(), "min 10 • avg 11 • max 60 % • 3 readings • step 1h"; got != want {
		t.Errorf("summary = %q, want %q", got, want)
	}
	s.series.Truncated = true
	if got, want := s.summary(), "min 10 • avg 35 • max 60 % • 3 oldest readings • step 1h"; got != want {
		t.Errorf("truncated summary = %q, want %q", got, want)
	}
}
