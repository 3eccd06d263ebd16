package tui

import (
	"context"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/piot-appliance/piot/services/core"
)

// fakeHistory answers through core's door, so the scoping is core's as
// in the real adapter; a nil core allows everything.
type fakeHistory struct{ core *core.Core }

// Series makes a day-long warm-up curve of readings every 10 minutes, a
// battery draining, and a track north-east.
func (f fakeHistory) Series(_ context.Context, a core.Actor, thing core.ID, q SeriesQuery) (Series, error) {
	if f.core != nil {
		if err := f.core.ReadThingHistory(a, thing, func(core.Thing) error { return nil }); err != nil {
			return Series{}, err
		}
	}
	step := q.To.Sub(q.From) / time.Duration(max(q.Steps, 1))
	sr := Series{Kind: q.Kind, Step: step}
	// A day's warm-up and cool-down, and a battery losing 1 % an hour.
	value := func(ts time.Time) float64 {
		if q.Kind == "battery" {
			return 100 - float64(testNow.Sub(ts)/time.Hour%100)
		}
		return 21 + 3*math.Sin(float64(ts.Unix()%86400)/86400*2*math.Pi)
	}
	// Readings on the 10-minute marks, so a range that moves with the
	// clock keeps the ones it still covers.
	first := q.From.Truncate(10 * time.Minute)
	if first.Before(q.From) {
		first = first.Add(10 * time.Minute)
	}
	for ts := first; !ts.After(q.To); ts = ts.Add(10 * time.Minute) {
		i := float64(ts.Sub(q.From) / time.Minute)
		v := value(ts)
		switch q.Kind {
		case "location":
			sr.Readings = append(sr.Readings, SeriesReading{Time: ts, Value: fmt.Sprintf(`{"lat":%g,"lng":%g}`, 52.5+i/10000, 13.4+i/7000)})
			continue
		}
		sr.Readings = append(sr.Readings, SeriesReading{Time: ts, Value: strconv.FormatFloat(v, 'f', -1, 64)})
	}
	for ts := q.From.Truncate(step); ts.Before(q.To) && q.Kind != "location"; ts = ts.Add(step) {
		avg := value(ts)
		sr.Steps = append(sr.Steps, SeriesStep{Start: ts, Min: avg - 0.4, Max: avg + 0.3, Avg: avg})
	}
	return sr, nil
}

func (fakeHistory) Recent(context.Context, core.Actor, core.ID, string, time.Duration, int) ([]float64, error) {
	v := make([]float64, 60)
	for i := range v {
		v[i] = 20 + float64((i*7)%11)/2
	}
	return v, nil
}

// TestScreenshots renders every screen at 80×24 with believable data. With
// PIOT_SCREENSHOTS=<file> it writes them as a Markdown document (the text
// captures for docs/console.md); either way every frame must fit.
func TestScreenshots(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	boiler := w.thing(t, "boiler", "sensor", w.acme.ID)
	lamp := w.thing(t, "porch-lamp", "switch", w.acme.ID)
	w.thing(t, "gateway-01", "device", w.acme.ID)
	w.thing(t, "new-sensor", "sensor", core.ID{})
	_ = lamp
	w.core.UpdateThingState(boiler.ID, func(t *core.Thing) bool {
		t.Sensor.Value, t.Sensor.Unit, t.LastSeen, t.LastSeenInterval = "21.5", "°C", testNow.Add(-2*time.Minute).Unix(), 600
		t.BatteryLevelTracking, t.BatteryLevel = true, 87
		return true
	})
	if _, err := w.core.SetOrgMQTTCredentials(ctx, w.admin, w.acme.ID, "acme"); err != nil {
		t.Fatal(err)
	}
	deps := Deps{
		Core: w.core, Version: "v1.0.0", Started: testNow.Add(-26 * time.Hour), DataDir: t.TempDir(),
		Metrics: &fakeMetrics{}, Health: fakeHealth{}, Alarms: &fakeAlarms{},
		System: &fakeSystem{upd: &UpdateInfo{Version: "v1.0.0", Slot: "b", OtherSlotVersion: "v0.9.2", OtherSlotState: "good",
			LastResult: "good", LastVersion: "v1.0.0", LastAt: testNow.Add(-26 * time.Hour)}},
		History: fakeHistory{}, Live: &fakeFeed{}, Clients: newFakeClients(w.core),
	}
	h := newHarness(t, deps, w.admin, 80, 24)
	for range 20 {
		h.refresh()
	}
	var doc strings.Builder
	shot := func(title string, want ...string) {
		s := h.waitFor(want...)
		checkFits(t, s, 80, 24)
		fmt.Fprintf(&doc, "## %s\n\n```text\n%s\n```\n\n", title, s)
	}
	shot("Dashboard", "Dashboard", "messages/s")
	h.key("2")
	shot("Things", "boiler", "porch-lamp")
	h.key("enter")
	shot("Thing detail (general)", "[general]", "24 h")
	h.key("right")
	shot("Thing detail (MQTT)", "[MQTT]")
	h.key("e")
	shot("Editing a settings group", "Edit boiler — MQTT")
	h.key("esc", "esc", "3")
	shot("Organisations", "acme")
	h.key("m", "enter")
	shot("MQTT credentials, shown once", "password  ")
	h.key("esc", "4")
	shot("Users", "member@acme.test")
	h.key("5")
	feed := deps.Live.(*fakeFeed)
	h.waitFor("following")
	feed.send(LiveMessage{Time: testNow, Topic: "org/acme/boiler/temperature", Payload: []byte(`{"t":21.5,"rh":40}`)})
	feed.send(LiveMessage{Time: testNow.Add(time.Second), Topic: "org/acme/porch-lamp/state", Payload: []byte("ON"), Retained: true})
	shot("Live MQTT", "porch-lamp/state")
	h.key("C")
	shot("MQTT clients (C on Live)", "[Connected (", "boiler-1")
	h.key("esc")
	h.key("6")
	shot("Alarms", "Active (1)")
	h.key("7")
	shot("System", "Listeners")
	h.key("8")
	shot("Logs", "following")
	h.key("9")
	shot("History", "pick a thing", "boiler")
	h.key("enter")
	shot("History of a thing", "[24 h]", "┤")
	h.key("0")
	shot("Audit trail", "Audit trail", "org acme (MQTT")
	h.key("7", "?")
	shot("Help", "Keys — System")
	if out := os.Getenv("PIOT_SCREENSHOTS"); out != "" {
		head := "# The PIOT console\n\n" +
			"`ssh -p 2222 <anything>@<appliance>` opens it for a user whose public key is registered " +
			"(Users → enter → n, or the API's `addSshKey`) or listed in `<data-dir>/authorized_keys` " +
			"(those keys log in as the first admin). A terminal is required; there is no shell and no command execution. " +
			"`piot console` runs the same screens on the appliance's own console.\n\n" +
			"Keys everywhere: `1`–`9`, `0` or `tab`/`shift+tab` switch screens, `/` filters a list, `s`/`S` sort, " +
			"`?` lists the screen's keys, `r` refreshes, `q` or `ctrl+c` quits. Members of an organisation see " +
			"Dashboard, Things, Orgs, Live, Alarms and History for their organisation only; the Logs tab tells them the log is for admins; " +
			"Users, System and Audit are not offered to them.\n\n" +
			"Text captures of every screen at 80×24 (generated by `PIOT_SCREENSHOTS=<file> go test -run TestScreenshots ./tui/`):\n\n"
		if err := os.WriteFile(out, []byte(head+doc.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
