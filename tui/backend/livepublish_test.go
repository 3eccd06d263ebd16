package backend

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/piot-appliance/piot/services/core"
	"github.com/piot-appliance/piot/tui"
)

// A member publishes from the console under their org only, as their
// org's MQTT credentials could; the message reaches followers with its
// QoS and retained flag, and the audit trail names the topic, not the
// payload.
func TestLivePublishTenancyAndAudit(t *testing.T) {
	s := startStack(t, false)
	a, b := newTenant(t, "puba"), newTenant(t, "pubb")
	member := newMember(t, a.org.ID)
	live := NewLive(fx.c, s.b, 0, 0)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	src := core.WithSource(ctx, core.Source{Via: core.ViaConsole, Addr: "192.0.2.7"})

	mine, err := live.Subscribe(ctx, member, a.topic("#"))
	if err != nil {
		t.Fatal(err)
	}
	theirs, err := live.Subscribe(ctx, fx.admin, b.topic("#"))
	if err != nil {
		t.Fatal(err)
	}
	msg := tui.LiveMessage{Topic: a.topic("boiler/set"), Payload: []byte(`{"secret":"s3cr3t"}`), QoS: 1, Retained: true}
	if err := live.Publish(src, member, msg); err != nil {
		t.Fatal(err)
	}
	if m := expectLive(t, mine, msg.Topic, string(msg.Payload)); m.QoS != 1 {
		t.Errorf("QoS = %d", m.QoS)
	}
	// Retained: a later follower gets it as such.
	later, err := live.Subscribe(ctx, member, a.topic("boiler/#"))
	if err != nil {
		t.Fatal(err)
	}
	if m := expectLive(t, later, msg.Topic, string(msg.Payload)); !m.Retained {
		t.Error("the retained publish was not kept")
	}

	for _, bad := range []struct {
		m    tui.LiveMessage
		code core.Code
	}{
		{tui.LiveMessage{Topic: b.topic("boiler/set"), Payload: []byte("x")}, core.CodeForbidden},
		{tui.LiveMessage{Topic: "devices/x", Payload: []byte("x")}, core.CodeForbidden},
		{tui.LiveMessage{Topic: a.topic("+/set"), Payload: []byte("x")}, core.CodeBadInput},
		{tui.LiveMessage{Topic: a.topic("x"), Payload: []byte("x"), QoS: 3}, core.CodeBadInput},
		{tui.LiveMessage{Topic: a.topic("x"), Payload: make([]byte, MaxPublishPayload+1)}, core.CodeBadInput},
	} {
		if err := live.Publish(src, member, bad.m); core.CodeOf(err) != bad.code {
			t.Errorf("member publishing %s (QoS %d, %d B): %v, want %s", bad.m.Topic, bad.m.QoS, len(bad.m.Payload), err, bad.code)
		}
	}
	select {
	case m := <-theirs:
		t.Fatalf("the other org got %s %q", m.Topic, m.Payload)
	case <-time.After(200 * time.Millisecond):
	}
	if err := live.Publish(src, fx.admin, tui.LiveMessage{Topic: b.topic("note"), Payload: []byte("from the admin")}); err != nil {
		t.Fatal(err)
	}
	expectLive(t, theirs, b.topic("note"), "from the admin")

	entries, err := fx.c.AuditLog(ctx, fx.admin, core.AuditQuery{Contains: a.org.Name})
	if err != nil {
		t.Fatal(err)
	}
	var found []core.AuditEntry
	for _, e := range entries {
		if e.Action == "publishMessage" {
			found = append(found, e)
		}
	}
	if len(found) != 1 {
		t.Fatalf("audit entries of publishMessage = %+v, want the one allowed publish", found)
	}
	e := found[0]
	want := "topic " + msg.Topic + " (19 B, QoS 1, retained)"
	if e.Actor != member.Email || e.Target != want || !strings.Contains(e.Source, "192.0.2.7") || strings.Contains(e.Target, "s3cr3t") {
		t.Errorf("audit entry %+v, want target %q by %s", e, want, member.Email)
	}
}
