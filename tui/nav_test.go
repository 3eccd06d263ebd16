package tui

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"
	"github.com/piot-appliance/piot/services/core"
)

// Sorting or filtering keeps the selected item selected, not the row
// number (which silently selected another item).
func TestListCursorFollowsTheItem(t *testing.T) {
	l := newList([]column{{title: "Name", width: 10}, {title: "N", width: 3, numeric: true}}, "none")
	l.sortable = true
	l.setRows([]row{
		{key: "a", cells: []string{"alpha", "3"}},
		{key: "b", cells: []string{"bravo", "1"}},
		{key: "c", cells: []string{"charlie", "2"}},
	})
	l.update(keyMsg("down"), 10)
	for _, k := range []string{"s", "S", "s", "S", "s"} {
		l.update(keyMsg(k), 10)
		if r, _ := l.selected(); r.key != "b" {
			t.Fatalf("after %q (sort column %d, desc %v) %q is selected, want b", k, l.sortCol, l.sortDesc, r.key)
		}
	}
	if v := ansi.Strip(l.view(30, 5)); !strings.Contains(v, "> bravo") {
		t.Fatalf("the marker is not on bravo:\n%s", v)
	}
	l.update(keyMsg("/"), 10)
	for _, r := range "av" {
		l.update(tea.KeyPressMsg{Code: r, Text: string(r)}, 10)
	}
	if r, _ := l.selected(); r.key != "b" {
		t.Fatalf("filtering moved the cursor to %q", r.key)
	}
	// selectKey finds a row hidden by the filter by clearing the filter.
	if !l.selectKey("c") || l.filter.Value() != "" {
		t.Fatalf("selectKey did not reveal c (filter %q)", l.filter.Value())
	}
	if l.selectKey("zzz") {
		t.Fatal("selectKey found a row that does not exist")
	}
}

// A status line goes away after StatusFor; the timer of an older line
// does not clear a newer one.
func TestStatusLineClears(t *testing.T) {
	w := newWorld(t)
	m := NewModel(Deps{Core: w.core, StatusFor: 10 * time.Millisecond, Now: func() time.Time { return testNow }}, ProfileIdentity(w.core, w.admin))
	t.Cleanup(m.Close)
	_, first := m.Update(statusMsg{text: "first"})
	_, second := m.Update(statusMsg{text: "second", err: true})
	if m.status != "second" || !m.statusErr {
		t.Fatalf("status %q", m.status)
	}
	old := first()
	if _, ok := old.(clearStatusMsg); !ok {
		t.Fatalf("the status timer sent %T", old)
	}
	m.Update(old)
	if !strings.Contains(m.render(), "error: second") {
		t.Fatalf("the older timer cleared the newer line:\n%s", m.render())
	}
	m.Update(second())
	if m.status != "" || m.statusErr || strings.Contains(m.render(), "second") {
		t.Fatalf("the line stayed:\n%s", m.render())
	}
}

// navWorld: in acme a device with two sensors, and a pump in globex (no
// org of the member's) — each thing with its alarm in the fake service.
func navWorld(t *testing.T) (*world, map[string]core.Thing) {
	t.Helper()
	w := newWorld(t)
	ctx := context.Background()
	globex, err := w.core.CreateOrg(ctx, w.admin, "globex", "")
	if err != nil {
		t.Fatal(err)
	}
	ts := map[string]core.Thing{
		"gateway": w.thing(t, "gateway", "device", w.acme.ID),
		"temp":    w.thing(t, "temp", "sensor", w.acme.ID),
		"humid":   w.thing(t, "humid", "sensor", w.acme.ID),
		"pump":    w.thing(t, "pump", "sensor", globex.ID),
	}
	for _, n := range []string{"temp", "humid"} {
		if _, err := w.core.UpdateThing(ctx, w.admin, core.ThingUpdate{ID: ts[n].ID, SetParent: true, ParentID: ts["gateway"].ID}); err != nil {
			t.Fatal(err)
		}
	}
	return w, ts
}

// scopedAlarms raises one alarm per thing; an actor sees those of the
// things core lets them read, as the monitor decides.
type scopedAlarms struct {
	core   *core.Core
	things []core.Thing
}

func (f scopedAlarms) Active(_ context.Context, a core.Actor) ([]Alarm, error) {
	var out []Alarm
	for _, th := range f.things {
		if _, err := f.core.Thing(a, th.ID); err == nil {
			org, _ := f.core.OrgNameOf(th.OrgID)
			out = append(out, Alarm{ID: "al-" + th.Name, ThingID: th.ID, Thing: th.Name, Org: org, Kind: "last-seen", Message: "not seen", Raised: testNow.Add(-time.Minute)})
		}
	}
	return out, nil
}

func (f scopedAlarms) Recent(ctx context.Context, a core.Actor, _ int) ([]Alarm, error) {
	return f.Active(ctx, a)
}

func (scopedAlarms) Acknowledge(context.Context, core.Actor, string) error { return nil }

// From a device's detail to one of its sensors and back to the device;
// esc walks back the way it came, then to the list with the thing
// selected.
func TestThingLinksBothWays(t *testing.T) {
	w, _ := navWorld(t)
	h := newHarness(t, Deps{Core: w.core}, w.member, 80, 24)
	h.key("2")
	h.waitFor("3 things of your organization", "gateway")
	h.key("/")
	h.typeText("gateway")
	h.key("enter", "enter")
	s := h.waitFor("gateway — device", "sensors:[humid] temp ")
	checkFits(t, s, 80, 24)
	h.key("?")
	h.waitFor("choose link", "open link")
	h.key("esc")
	if strings.Contains(lineWith(s, "[general]"), "sensor ") || strings.Contains(lineWith(s, "[general]"), "switch") {
		t.Errorf("a device offers sensor or switch settings:\n%s", s)
	}
	h.key("down")
	h.waitFor("sensors: humid [temp]")
	h.key("enter")
	s = h.waitFor("temp — sensor", "parent device:[gateway]")
	checkFits(t, s, 80, 24)
	h.key("enter")
	h.waitFor("gateway — device", "sensors:[humid]")
	h.key("esc")
	h.waitFor("temp — sensor")
	h.key("esc")
	h.waitFor("gateway — device")
	h.key("esc")
	s = h.waitFor("3 things of your organization")
	if !strings.Contains(lineWith(s, "> "), "gateway") {
		t.Errorf("back in the list, gateway is not selected:\n%s", s)
	}
	// A sensor links its device only.
	h.key("down", "enter")
	s = h.waitFor("humid — sensor", "parent device:[gateway]")
	if strings.Contains(s, "sensors:") {
		t.Errorf("a sensor lists children:\n%s", s)
	}
}

// The Alarms tab counts the alarms the viewer may see; enter on an alarm
// opens its thing on the Things screen.
func TestAlarmBadgeAndAlarmOpensThing(t *testing.T) {
	w, ts := navWorld(t)
	al := scopedAlarms{core: w.core, things: []core.Thing{ts["temp"], ts["pump"]}}

	admin := newHarness(t, Deps{Core: w.core, Alarms: al}, w.admin, 120, 35)
	admin.waitFor("6 Alarms(2)")
	admin.key("6")
	admin.waitFor("Active (2)", "pump", "temp")
	admin.key("down", "enter")
	s := admin.waitFor("[2 Things]", "pump — sensor", "[general]", "organization", "globex")
	checkFits(t, s, 120, 35)

	member := newHarness(t, Deps{Core: w.core, Alarms: al}, w.member, 80, 24)
	s = member.waitFor("(1)")
	if tabs := strings.SplitN(s, "\n", 2)[0]; !strings.Contains(tabs, "6 Alarms(1)") || strings.Contains(tabs, "(2)") {
		t.Fatalf("the member's badge counts other orgs' alarms: %q", tabs)
	}
	member.key("6")
	s = member.waitFor("[6 Alarms(1)]", "Active (1)", "temp")
	if strings.Contains(s, "pump") {
		t.Fatalf("the member sees globex's alarm:\n%s", s)
	}
	checkFits(t, s, 80, 24)
	member.key("enter")
	s = member.waitFor("[2 Things]", "temp — sensor", "parent device:[gateway]")
	checkFits(t, s, 80, 24)
	member.key("esc")
	s = member.waitFor("3 things of your organization")
	if !strings.Contains(lineWith(s, "> "), "temp") {
		t.Errorf("the alarm's thing is not selected in the list:\n%s", s)
	}
}

// An alarm of a thing the Things list does not hold (the member's active
// org is another) says so instead of opening nothing.
func TestAlarmOfAThingNotListed(t *testing.T) {
	w, ts := navWorld(t)
	p, _ := w.core.Profile(w.member)
	pump, _ := w.core.Thing(w.admin, ts["pump"].ID)
	if err := w.core.AddOrgUser(context.Background(), w.admin, pump.OrgID, p.ID); err != nil {
		t.Fatal(err)
	}
	al := scopedAlarms{core: w.core, things: []core.Thing{ts["pump"]}}
	h := newHarness(t, Deps{Core: w.core, Alarms: al}, w.member, 80, 24)
	h.key("6")
	h.waitFor("Active (1)", "pump")
	h.key("enter")
	h.waitFor("not in your active organization")
}

// Below the two-column width the dashboard says where traffic and
// resources went instead of cutting them off.
func TestDashboardNarrowHint(t *testing.T) {
	w := newWorld(t)
	h := newHarness(t, Deps{Core: w.core, Health: fakeHealth{}}, w.admin, 60, 16)
	s := h.waitFor("Appliance", "widen the terminal to 70 columns")
	checkFits(t, s, 60, 16)
	h.send(tea.WindowSizeMsg{Width: 60, Height: 40})
	s = h.waitFor("Traffic", "Resources")
	if strings.Contains(s, "widen the terminal") {
		t.Errorf("the hint shows though everything fits:\n%s", s)
	}
}

// A device with more sensors than fit keeps the chosen one in view.
func TestLinksLineScrollsToTheChoice(t *testing.T) {
	dev := core.Thing{ID: core.ID{1}, Name: "gateway", Type: "device"}
	s := &thingsScreen{env: &env{}, items: map[string]core.Thing{dev.ID.Hex(): dev}, detail: dev.ID.Hex()}
	for i := range 30 {
		c := core.Thing{ID: core.ID{2, byte(i)}, Name: fmt.Sprintf("sensor-%02d", i), Type: "sensor", ParentID: dev.ID}
		s.items[c.ID.Hex()] = c
	}
	for _, choice := range []int{0, 15, 29} {
		s.link = choice
		line := s.linksLine(dev, s.links(), 80)
		if want := fmt.Sprintf("[sensor-%02d]", choice); !strings.Contains(line, want) || ansi.StringWidth(line) > 80 {
			t.Errorf("choice %d: %q", choice, line)
		}
	}
}
