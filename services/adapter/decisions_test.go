package adapter

import (
	"context"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/piot-appliance/piot/services/core"
)

// The device decisions' matrix, the adapters' counterpart of the
// authorization matrix: every decision core makes about a device packet
// (CheckRelayedDevice, RegisterDevice, MaySensorsRegister,
// DeviceDelivery), by where the packet came from (sent directly, relayed
// by org A's edge adapter, relayed with a device's own credentials) and
// what the device is (unregistered, unassigned, disabled, enabled, of
// another org, another device), with the answer the adapter gives.
func TestDeviceDecisionMatrix(t *testing.T) {
	e := newEnv(t, Config{})
	ctx := context.Background()
	orgA := e.org.ID
	orgB, err := e.c.CreateOrg(ctx, e.admin, "beta", "")
	if err != nil {
		t.Fatal(err)
	}
	// capped refuses new unassigned things once one exists, and gives a
	// device a share of one sensor.
	capped, err := New(Config{MaxUnassigned: 1, Logger: quiet, Now: e.clk.now}, Deps{Core: e.c, Publish: PublisherFunc(e.rec.publish)})
	if err != nil {
		t.Fatal(err)
	}
	register := func(piotID string, org core.ID, enabled bool) core.Thing {
		t.Helper()
		if code, _ := e.send(`{"device":"` + piotID + `"}`); code != http.StatusAccepted {
			t.Fatalf("register %s: %d", piotID, code)
		}
		th := e.thing(piotID)
		if !org.IsZero() {
			th, err = e.c.UpdateThing(ctx, e.admin, core.ThingUpdate{ID: th.ID, SetOrg: true, OrgID: org, Enabled: &enabled})
			if err != nil {
				t.Fatal(err)
			}
		}
		return th
	}
	register("UNASSIGNED", core.ID{}, false)
	register("DISABLED", orgA, false)
	enabled := register("ENABLED", orgA, true)
	register("SIBLING", orgA, true)
	register("BETA", orgB.ID, true)
	moved := register("MOVED", orgB.ID, true)
	if _, err := e.c.CreateThing(ctx, e.admin, "MANUAL", core.ThingDevice); err != nil {
		t.Fatal(err)
	}

	direct := Source{}
	edgeA := Source{OrgID: orgA}
	deviceEdge := func(dev core.Thing) Source { return Source{OrgID: orgA, Device: dev.ID} }
	const twoSensors = `,"readings":[{"a":"S1","t":1},{"a":"S2","t":2}]`

	type row struct {
		name   string
		a      *Adapter
		src    Source
		device string
		extra  string // more of the packet's JSON
		status int
		reason string
	}
	rows := []row{
		{"direct, enabled device of an org", e.a, direct, "ENABLED", "", http.StatusOK, ""},
		{"direct, new device", e.a, direct, "NEWDIRECT", "", http.StatusAccepted, ReasonNotAssigned},
		{"direct, unassigned device", e.a, direct, "UNASSIGNED", "", http.StatusAccepted, ReasonNotAssigned},
		{"direct, disabled device", e.a, direct, "DISABLED", "", http.StatusAccepted, ReasonDisabled},
		{"direct, name taken without the piot id", e.a, direct, "MANUAL", "", http.StatusConflict, ReasonNameConflict},
		{"direct, new device over the unassigned cap", capped, direct, "NEWCAPPED", "", http.StatusForbidden, ReasonUnassignedCap},
		{"direct, known device under a full cap", capped, direct, "UNASSIGNED", "", http.StatusAccepted, ReasonNotAssigned},
		{"direct, more new sensors than the device's share", capped, direct, "UNASSIGNED", twoSensors, http.StatusForbidden, ReasonUnassignedCap},
		{"direct, new sensors of a device in an org", e.a, direct, "ENABLED", twoSensors, http.StatusOK, ""},
		{"direct, new sensors over the unassigned cap", capped, direct, "SIBLING", `,"readings":[{"a":"S3","t":1}]`, http.StatusForbidden, ReasonUnassignedCap},
		{"org edge, its org's device", e.a, edgeA, "SIBLING", "", http.StatusOK, ""},
		{"org edge, its org's disabled device", e.a, edgeA, "DISABLED", "", http.StatusAccepted, ReasonDisabled},
		{"org edge, another org's device", e.a, edgeA, "BETA", "", http.StatusForbidden, ReasonForeignOrg},
		{"org edge, an unassigned device", e.a, edgeA, "UNASSIGNED", "", http.StatusForbidden, ReasonForeignOrg},
		{"org edge, new device (into its org, disabled; no cap)", capped, edgeA, "NEWRELAYED", "", http.StatusAccepted, ReasonDisabled},
		{"org edge, a new sensor of its org's device", e.a, edgeA, "SIBLING", `,"readings":[{"a":"S9","t":1}]`, http.StatusOK, ""},
		{"device edge, its device", e.a, deviceEdge(enabled), "ENABLED", "", http.StatusOK, ""},
		{"device edge, a new sensor of its device", e.a, deviceEdge(enabled), "ENABLED", `,"readings":[{"a":"S8","t":1}]`, http.StatusOK, ""},
		{"device edge, a sibling", e.a, deviceEdge(enabled), "SIBLING", "", http.StatusForbidden, ReasonForeignDevice},
		{"device edge, an unknown device", e.a, deviceEdge(enabled), "NEWDEVICEEDGE", "", http.StatusForbidden, ReasonForeignDevice},
		{"device edge, its device now in another org", e.a, deviceEdge(moved), "MOVED", "", http.StatusForbidden, ReasonForeignDevice},
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			e.clk.advance(time.Minute)
			out := r.a.Handle(ctx, []byte(`{"device":"`+r.device+`"`+r.extra+`}`), r.src)
			if out.Status != r.status || out.Reason != r.reason {
				t.Errorf("answer %d %q (%s), want %d %q", out.Status, out.Reason, out.Msg, r.status, r.reason)
			}
		})
	}

	// Every rule core names is the answer of some row.
	for _, rule := range []core.DeviceRule{core.RuleForeignOrg, core.RuleForeignDevice, core.RuleUnassignedCap, core.RuleNotAssigned, core.RuleDisabled} {
		if !slices.ContainsFunc(rows, func(r row) bool { return r.reason == string(rule) }) {
			t.Errorf("no row answers with core's rule %s", rule)
		}
	}
	// A relayed new device was registered into the edge's org, disabled,
	// relayed new sensors into it as their device's children; a sensor
	// sent directly starts unassigned, so it is no child of a
	// device in an org.
	if th := e.thing("NEWRELAYED"); th.OrgID != orgA || th.Enabled {
		t.Errorf("relayed registration: org %v enabled %v", th.OrgID, th.Enabled)
	}
	sibling := e.thing("SIBLING")
	for piotID, parent := range map[string]core.ID{"TS9": sibling.ID, "TS8": enabled.ID} {
		if s := e.thing(piotID); s.ParentID != parent || s.OrgID != orgA {
			t.Errorf("relayed new sensor %s: parent %v org %v, want the device's child in its org", piotID, s.ParentID, s.OrgID)
		}
	}
	if s := e.thing("TS1"); !s.ParentID.IsZero() || !s.OrgID.IsZero() {
		t.Errorf("a new sensor of a device in an org: parent %v org %v (unassigned, so nobody's child)", s.ParentID, s.OrgID)
	}
}
