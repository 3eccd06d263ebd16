package core

import (
	"context"
	"testing"
)

// The decisions core makes for other services, by kind of actor: admin,
// member of org A, member of org B, a user in no org, anonymous.
func TestDecisionsForServices(t *testing.T) {
	c, _, admin := newCore(t)
	ctx := context.Background()
	orgA, err := c.CreateOrg(ctx, admin, "alpha", "")
	if err != nil {
		t.Fatal(err)
	}
	orgB, err := c.CreateOrg(ctx, admin, "beta", "")
	if err != nil {
		t.Fatal(err)
	}
	user := func(email string, orgs ...ID) Actor {
		u, err := c.CreateUser(ctx, admin, email, "password123", false)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range orgs {
			if err := c.AddOrgUser(ctx, admin, o, u.ID); err != nil {
				t.Fatal(err)
			}
		}
		a, err := c.Login(ctx, email, "password123")
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	th, err := c.CreateThing(ctx, admin, "thing-a", ThingSensor)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.UpdateThing(ctx, admin, ThingUpdate{ID: th.ID, SetOrg: true, OrgID: orgA.ID}); err != nil {
		t.Fatal(err)
	}
	actors := []struct {
		name string
		a    Actor
	}{
		{"admin", admin}, {"memberA", user("a@x.test", orgA.ID)}, {"memberB", user("b@x.test", orgB.ID)},
		{"nonmember", user("n@x.test")}, {"anonymous", Anonymous()},
	}
	code := func(err error) string {
		if err == nil {
			return "ok"
		}
		return string(CodeOf(err))
	}
	const (
		ok     = "ok"
		denied = string(CodeForbidden)
		anon   = string(CodeUnauthenticated)
	)
	for _, r := range []struct {
		what string
		want [5]string
		run  func(a Actor) string
	}{
		{"AuthorizeAdmin", [5]string{ok, denied, denied, denied, anon}, func(a Actor) string {
			return code(AuthorizeAdmin(a, ActBackup))
		}},
		{"StatsFor", [5]string{ok, denied, denied, denied, anon}, func(a Actor) string {
			_, err := c.StatsFor(a)
			return code(err)
		}},
		{"AlarmScope includes org A", [5]string{ok, ok, "hidden", "hidden", anon}, func(a Actor) string {
			s, err := c.AlarmScope(a)
			if err == nil && !s.Includes(orgA.ID) {
				return "hidden"
			}
			return code(err)
		}},
		{"MayHandleAlarm of org A's thing", [5]string{ok, ok, denied, denied, anon}, func(a Actor) string {
			return code(c.MayHandleAlarm(a, th.ID))
		}},
		{"ReadThingHistory of org A's thing", [5]string{ok, ok, denied, denied, anon}, func(a Actor) string {
			read := false
			err := c.ReadThingHistory(a, th.ID, func(Thing) error { read = true; return nil })
			if (err == nil) != read {
				t.Errorf("ReadThingHistory: read %v, err %v", read, err)
			}
			return code(err)
		}},
		{"MQTTScope includes org A", [5]string{ok, ok, "hidden", "hidden", anon}, func(a Actor) string {
			s, err := c.MQTTScope(a)
			if err == nil && !s.Includes(orgA.ID) {
				return "hidden"
			}
			return code(err)
		}},
		{"MQTTScope includes no org (the monitor)", [5]string{ok, "hidden", "hidden", "hidden", anon}, func(a Actor) string {
			s, err := c.MQTTScope(a)
			if err == nil && !s.Includes(ID{}) {
				return "hidden"
			}
			return code(err)
		}},
		{"MayManageMQTT of org A", [5]string{ok, ok, denied, denied, anon}, func(a Actor) string {
			return code(c.MayManageMQTT(a, orgA.ID))
		}},
		{"MayManageMQTT of no org", [5]string{ok, denied, denied, denied, anon}, func(a Actor) string {
			return code(c.MayManageMQTT(a, ID{}))
		}},
		{"OrgOfTopic", [5]string{ok, ok, ok, ok, ok}, func(Actor) string {
			for topic, want := range map[string]ID{"org/alpha/t/1": orgA.ID, "org/beta/x": orgB.ID, "org/alpha": {}, "org/gamma/x": {}, "alpha/x": {}} {
				if got, found := c.OrgOfTopic(topic); got != want || found != !want.IsZero() {
					return topic
				}
			}
			return ok
		}},
		{"IsAdministrator", [5]string{ok, "no", "no", "no", "no"}, func(a Actor) string {
			if a.IsAdministrator() {
				return ok
			}
			return "no"
		}},
	} {
		for i, x := range actors {
			if got := r.run(x.a); got != r.want[i] {
				t.Errorf("%s as %s: %s, want %s", r.what, x.name, got, r.want[i])
			}
		}
	}
}

// A scrape token is resolved to what it sees: the appliance-wide one
// everything, an org token its org, anything else nothing.
func TestResolveMetricsToken(t *testing.T) {
	org := ID{1}
	orgOf := func(tok string) (ID, bool) { return org, tok == "org-token" }
	for _, r := range []struct {
		global, tok string
		orgOf       func(string) (ID, bool)
		want        MetricsScope
		ok          bool
	}{
		{"global", "global", orgOf, MetricsScope{All: true}, true},
		{"global", "org-token", orgOf, MetricsScope{OrgID: org}, true},
		{"global", "other", orgOf, MetricsScope{}, false},
		{"", "", orgOf, MetricsScope{}, false},
		{"", "org-token", nil, MetricsScope{}, false},
		{"global", "globa", nil, MetricsScope{}, false},
	} {
		got, ok := ResolveMetricsToken(r.global, r.tok, r.orgOf)
		if got != r.want || ok != r.ok {
			t.Errorf("global %q token %q: %+v %v, want %+v %v", r.global, r.tok, got, ok, r.want, r.ok)
		}
	}
}
