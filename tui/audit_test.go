package tui

import (
	"context"
	"strings"
	"testing"

	"github.com/piot-appliance/piot/services/core"
)

// The Audit screen lists the changes newest first, including those the
// console itself just made (source console), filters them by text and by
// source, opens one whole, and fits 80×24.
func TestAuditScreen(t *testing.T) {
	w := newWorld(t)
	api := core.WithSource(context.Background(), core.Source{Via: core.ViaAPI, Addr: "192.0.2.9"})
	if _, err := w.core.CreateThing(api, w.admin, "boiler", core.ThingSensor); err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, Deps{Core: w.core}, w.admin, 80, 24)
	h.key("0")
	s := h.waitFor("[0 Audit]", "Audit trail", "createThing", "thing boiler", "api 192.0")
	checkFits(t, s, 80, 24)
	if !strings.Contains(s, " 9 His") {
		t.Errorf("the tab bar lost the other tabs:\n%s", s)
	}
	if strings.Index(s, "createThing") > strings.Index(s, "createOrg") {
		t.Errorf("not newest first:\n%s", s)
	}

	// A change made in the console shows up with the console as source.
	h.key("3", "n")
	h.waitFor("New organization")
	h.typeText("garden")
	h.key("ctrl+s")
	h.waitFor("created organization garden")
	h.key("0")
	h.waitRow("createOrg", "org garden", "console")

	h.key("v")
	s = h.waitFor("source api")
	if strings.Contains(s, "org garden") || !strings.Contains(s, "thing boiler") {
		t.Errorf("source filter api:\n%s", s)
	}
	h.key("v")
	h.waitFor("source cli", "no changes recorded")
	h.key("v", "v", "v", "v")
	h.waitFor("all sources")

	h.key("/")
	h.typeText("boiler")
	h.key("enter")
	s = h.waitFor("1 of the last")
	if strings.Contains(s, "org garden") {
		t.Errorf("text filter:\n%s", s)
	}
	h.key("enter")
	s = h.waitFor("Change", "target  thing boiler (sensor)", "source  api 192.0.2.9", "esc or enter closes")
	checkFits(t, s, 80, 24)
	h.key("esc")
	h.waitFor("Audit trail")
}

// A member is not offered the Audit tab: 0 does nothing, tab never lands
// on it, and core refuses the trail anyway.
func TestAuditScreenNotForMembers(t *testing.T) {
	w := newWorld(t)
	h := newHarness(t, Deps{Core: w.core}, w.member, 80, 24)
	s := h.waitFor("Dashboard")
	if strings.Contains(s, "Aud") || strings.Contains(s, " 0 ") {
		t.Errorf("member sees the Audit tab:\n%s", s)
	}
	h.key("0")
	if s := h.screen(); strings.Contains(s, "Audit trail") {
		t.Fatalf("member opened the audit trail:\n%s", s)
	}
	for range 12 {
		h.key("tab")
		if s := h.screen(); strings.Contains(s, "Audit trail") || strings.Contains(s, "createOrg") {
			t.Fatalf("member tabbed into the audit trail:\n%s", s)
		}
	}
	if _, err := w.core.AuditLog(context.Background(), w.member, core.AuditQuery{}); core.CodeOf(err) != core.CodeForbidden {
		t.Fatalf("core gave a member the trail: %v", err)
	}
	// A direct look at the screen (as if the tab were reached) shows the
	// refusal, not the entries.
	a := newAudit(h.m.env)
	if v := a.view(80, 20); !strings.Contains(v, "only admins may read the audit trail") {
		t.Errorf("member view: %q", v)
	}
}
