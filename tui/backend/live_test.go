package backend

import (
	"context"
	"testing"
	"time"

	"github.com/piot-appliance/piot/services/core"
	"github.com/piot-appliance/piot/tui"
)

var _ tui.LiveFeed = (*Live)(nil)

// expectLive waits for one message on topic with payload.
func expectLive(t *testing.T, ch <-chan tui.LiveMessage, topic, payload string) tui.LiveMessage {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case m, ok := <-ch:
			if !ok {
				t.Fatalf("feed closed before %s %q", topic, payload)
			}
			if m.Topic == topic && string(m.Payload) == payload {
				return m
			}
		case <-deadline:
			t.Fatalf("no message %q on %s", payload, topic)
		}
	}
}

// expectLiveSet waits for every topic/payload pair, in any order.
func expectLiveSet(t *testing.T, ch <-chan tui.LiveMessage, want map[string]string) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for len(want) > 0 {
		select {
		case m, ok := <-ch:
			if !ok {
				t.Fatalf("feed closed before %v", want)
			}
			if p, ok := want[m.Topic]; ok && p == string(m.Payload) {
				delete(want, m.Topic)
			}
		case <-deadline:
			t.Fatalf("never got %v", want)
		}
	}
}

// expectClosed waits until the feed is closed, draining it.
func expectClosed(t *testing.T, ch <-chan tui.LiveMessage, within time.Duration) {
	t.Helper()
	deadline := time.After(within)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-deadline:
			t.Fatal("feed not closed")
		}
	}
}

func TestLiveFeedTenancy(t *testing.T) {
	s := startStack(t, false)
	a, b := newTenant(t, "livea"), newTenant(t, "liveb")
	member := newMember(t, a.org.ID)
	live := NewLive(fx.c, s.b, 0, 100*time.Millisecond)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	ca, cb := s.dial(t, a), s.dial(t, b)
	publish(t, ca, a.topic("kept"), true, "retained-a")

	for _, f := range []string{
		b.topic("#"), "#", "org/#", "org/+/x", "org/" + a.org.Name, "+/" + a.org.Name + "/#",
		"$SYS/#", "$share/g/" + a.topic("#"), "org/" + a.org.Name + "x/#",
	} {
		if _, err := live.Subscribe(ctx, member, f); core.CodeOf(err) != core.CodeForbidden {
			t.Errorf("member following %q: %v, want FORBIDDEN", f, err)
		}
	}
	if _, err := live.Subscribe(ctx, core.Anonymous(), a.topic("#")); core.CodeOf(err) != core.CodeUnauthenticated {
		t.Errorf("anonymous: %v", err)
	}
	if _, err := live.Subscribe(ctx, fx.admin, "org/#/x"); core.CodeOf(err) != core.CodeBadInput {
		t.Errorf("invalid filter: %v, want BAD_USER_INPUT", err)
	}

	mine, err := live.Subscribe(ctx, member, a.topic("#"))
	if err != nil {
		t.Fatal(err)
	}
	actx, acancel := context.WithCancel(ctx)
	all, err := live.Subscribe(actx, fx.admin, "#")
	if err != nil {
		t.Fatal(err)
	}
	if m := expectLive(t, mine, a.topic("kept"), "retained-a"); !m.Retained {
		t.Error("retained message not flagged")
	}

	publish(t, ca, a.topic("t/1"), false, "from-a")
	publish(t, cb, b.topic("t/1"), false, "from-b")
	m := expectLive(t, mine, a.topic("t/1"), "from-a")
	if m.QoS != 1 || m.Retained || m.Time.IsZero() {
		t.Errorf("message = %+v", m)
	}
	// Messages of two clients may reach a follower in either order: mochi
	// fans out after the PUBACK.
	expectLiveSet(t, all, map[string]string{a.topic("t/1"): "from-a", b.topic("t/1"): "from-b"})
	// Whatever the member got after a's message must not be b's.
	select {
	case m := <-mine:
		t.Fatalf("member saw %s %q", m.Topic, m.Payload)
	case <-time.After(200 * time.Millisecond):
	}

	// Ending the context closes the feed and removes the follower.
	acancel()
	expectClosed(t, all, 3*time.Second)
	eventually(t, 3*time.Second, "admin follower gone", func() bool { return s.b.FollowStats().Active == 1 })

	// Losing the membership cuts the member's feed.
	u, err := fx.c.Profile(member)
	if err != nil {
		t.Fatal(err)
	}
	if err := fx.c.RemoveOrgUser(ctx, fx.admin, a.org.ID, u.ID); err != nil {
		t.Fatal(err)
	}
	expectClosed(t, mine, 3*time.Second)
	if _, err := live.Subscribe(ctx, member, a.topic("#")); core.CodeOf(err) != core.CodeForbidden {
		t.Errorf("former member: %v, want FORBIDDEN", err)
	}
}

func TestLiveFeedOrgRenameCutsMember(t *testing.T) {
	s := startStack(t, false)
	a := newTenant(t, "liver")
	member := newMember(t, a.org.ID)
	live := NewLive(fx.c, s.b, 0, time.Hour) // only core events re-check
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := live.Subscribe(ctx, member, a.topic("#"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fx.c.UpdateOrg(ctx, fx.admin, core.OrgUpdate{ID: a.org.ID, Name: ptr(a.org.Name + "new")}); err != nil {
		t.Fatal(err)
	}
	expectClosed(t, ch, 3*time.Second)
}

func TestLiveFeedSlowFollowerDoesNotBlockBroker(t *testing.T) {
	s := startStack(t, false)
	a := newTenant(t, "lives")
	live := NewLive(fx.c, s.b, 4, 0)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := live.Subscribe(ctx, fx.admin, a.topic("#"))
	if err != nil {
		t.Fatal(err)
	}
	c := s.dial(t, a)
	for i := range 50 {
		publish(t, c, a.topic("flood"), false, string(rune('a'+i%26)))
	}
	eventually(t, 3*time.Second, "drops counted", func() bool { return s.b.FollowStats().Dropped > 0 })
	n := 0
	for len(ch) > 0 {
		<-ch
		n++
	}
	if n == 0 || n > 10 {
		t.Errorf("buffered %d messages", n)
	}
}
