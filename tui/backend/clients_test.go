package backend

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/piot-appliance/piot/services/core"
	"github.com/piot-appliance/piot/tui"
)

func sessionsOf(cs []tui.MQTTClient) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Session)
	}
	return out
}

func topicsOf(ms []tui.RetainedMessage) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Topic)
	}
	return out
}

// audited reports whether the audit trail has an entry of action whose
// target contains what.
func audited(t *testing.T, action, what string) bool {
	t.Helper()
	es, err := fx.c.AuditLog(context.Background(), fx.admin, core.AuditQuery{Contains: what})
	if err != nil {
		t.Fatal(err)
	}
	return slices.ContainsFunc(es, func(e core.AuditEntry) bool { return e.Action == action })
}

// TestClientsScopedByOrg: with a real broker, a member sees and acts on
// only their org's clients and retained messages; the admin sees every
// org's; every action is in the audit trail.
func TestClientsScopedByOrg(t *testing.T) {
	ctx := context.Background()
	s := startStack(t, false)
	a, b := newTenant(t, "cla"), newTenant(t, "clb")
	ca, cb := s.dial(t, a), s.dial(t, b)
	publish(t, ca, a.topic("cfg"), true, "a-config")
	publish(t, cb, b.topic("cfg"), true, "b-config")
	cl := NewClients(fx.c, s.b)
	member := newMember(t, a.org.ID)

	var all []tui.MQTTClient
	eventually(t, 5*time.Second, "both clients listed", func() bool {
		var err error
		all, err = cl.Clients(ctx, fx.admin)
		return err == nil && len(all) >= 2
	})
	var aSession, bSession string
	for _, c := range all {
		switch c.Org {
		case a.org.Name:
			aSession = c.Session
			if c.Username != a.username || c.Protocol != "3.1.1" || !c.Connected || c.Remote == "" {
				t.Errorf("org A's client %+v", c)
			}
		case b.org.Name:
			bSession = c.Session
		}
	}
	if aSession == "" || bSession == "" {
		t.Fatalf("admin sees %v", sessionsOf(all))
	}

	mine, err := cl.Clients(ctx, member)
	if err != nil {
		t.Fatal(err)
	}
	if got := sessionsOf(mine); !slices.Equal(got, []string{aSession}) {
		t.Fatalf("member sees clients %v, want only %s", got, aSession)
	}
	rs, err := cl.Retained(ctx, member)
	if err != nil {
		t.Fatal(err)
	}
	if got := topicsOf(rs); !slices.Equal(got, []string{a.topic("cfg")}) || rs[0].Org != a.org.Name || string(rs[0].Payload) != "a-config" {
		t.Fatalf("member sees retained %v", rs)
	}
	if all, _ := cl.Retained(ctx, fx.admin); !slices.Contains(topicsOf(all), b.topic("cfg")) {
		t.Fatalf("admin misses org B's retained message: %v", topicsOf(all))
	}

	if err := cl.Disconnect(ctx, member, bSession); core.CodeOf(err) != core.CodeForbidden {
		t.Fatalf("member disconnecting org B's client: %v", err)
	}
	if err := cl.DeleteRetained(ctx, member, b.topic("cfg")); core.CodeOf(err) != core.CodeForbidden {
		t.Fatalf("member deleting org B's retained message: %v", err)
	}
	if err := cl.Disconnect(ctx, member, "nobody/nothing"); core.CodeOf(err) != core.CodeForbidden {
		t.Fatalf("member disconnecting an unknown session: %v", err)
	}
	if err := cl.Disconnect(ctx, fx.admin, "nobody/nothing"); core.CodeOf(err) != core.CodeNotFound {
		t.Fatalf("admin disconnecting an unknown session: %v", err)
	}
	if !cb.IsConnected() {
		t.Fatal("org B's client was cut by a refused disconnect")
	}

	if err := cl.DeleteRetained(ctx, member, a.topic("cfg")); err != nil {
		t.Fatal(err)
	}
	if rs, _ := cl.Retained(ctx, member); len(rs) != 0 {
		t.Fatalf("retained after delete: %v", topicsOf(rs))
	}
	if err := cl.Disconnect(ctx, member, aSession); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "org A's client cut", func() bool { return !ca.IsConnected() })
	// A clean session ends with its connection; to a member a session
	// that is gone looks like anybody's.
	if err := cl.DeleteSession(ctx, member, aSession); core.CodeOf(err) != core.CodeForbidden {
		t.Fatalf("deleting a clean session after its disconnect: %v", err)
	}
	if !audited(t, "disconnectMqttClient", aSession) || !audited(t, "deleteRetainedMessage", a.topic("cfg")) {
		t.Fatal("the member's actions are not in the audit trail")
	}
	if audited(t, "disconnectMqttClient", bSession) {
		t.Fatal("a refused disconnect was recorded")
	}
}
