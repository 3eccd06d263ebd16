package core

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/piot-appliance/piot/services/names"
	"github.com/piot-appliance/piot/services/store"
)

func newCore(t *testing.T) (*Core, *store.Store, Actor) {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, store.Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close(context.Background()) })
	c, err := New(ctx, st, Config{BcryptCost: 4})
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := c.Bootstrap(ctx, "Admin@Piot.Local", "admin-password"); !ok || err != nil {
		t.Fatalf("bootstrap: %v %v", ok, err)
	}
	admin, err := c.Login(ctx, "admin@piot.local", "admin-password")
	if err != nil {
		t.Fatal(err)
	}
	return c, st, admin
}

// ValidName is package names' check (tested there) with core's error
// code, so the API and the console answer BAD_USER_INPUT in the rule's
// own words.
func TestValidName(t *testing.T) {
	if err := ValidName("org", "Farm 2"); err != nil {
		t.Fatalf("refused: %v", err)
	}
	for _, n := range []string{"", "a/b", strings.Repeat("a", 65), "boiler\u202egnp"} {
		err := ValidName("org", n)
		if want := names.Valid("org", n); want == nil || CodeOf(err) != CodeBadInput || Message(err) != want.Error() {
			t.Errorf("%q: %v, want %v", n, err, want)
		}
	}
}

func TestLoginIsCaseInsensitiveAndPasswordChangeRevokesTokens(t *testing.T) {
	c, _, admin := newCore(t)
	ctx := context.Background()
	if _, err := c.Login(ctx, "ADMIN@piot.local", "admin-password"); err != nil {
		t.Fatalf("upper-case email: %v", err)
	}
	if _, err := c.Login(ctx, "admin@piot.local", "wrong"); CodeOf(err) != CodeUnauthenticated {
		t.Fatalf("wrong password: %v", err)
	}
	if _, err := c.ActorFor(admin.UserID, admin.TokenVersion); err != nil {
		t.Fatal(err)
	}
	pw := "new-password-1"
	if _, err := c.UpdateUser(ctx, admin, UserUpdate{ID: admin.UserID, Password: &pw}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ActorFor(admin.UserID, admin.TokenVersion); CodeOf(err) != CodeUnauthenticated {
		t.Fatalf("old token still accepted: %v", err)
	}
	again, err := c.Login(ctx, "admin@piot.local", pw)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.ActorFor(admin.UserID, again.TokenVersion); err != nil {
		t.Fatalf("new token refused: %v", err)
	}
}

func TestDataSurvivesReload(t *testing.T) {
	c, st, admin := newCore(t)
	ctx := context.Background()
	o, err := c.CreateOrg(ctx, admin, "farm", "")
	if err != nil {
		t.Fatal(err)
	}
	th, err := c.CreateThing(ctx, admin, "T1", "sensor")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.UpdateThing(ctx, admin, ThingUpdate{ID: th.ID, SetOrg: true, OrgID: o.ID}); err != nil {
		t.Fatal(err)
	}
	c2, err := New(ctx, st, Config{BcryptCost: 4})
	if err != nil {
		t.Fatal(err)
	}
	got, err := c2.Thing(admin, th.ID)
	if err != nil || got.OrgID != o.ID {
		t.Fatalf("after reload: %+v %v", got, err)
	}
	// Unassign (the original could not) and the piot id index stays sane.
	if _, err := c2.UpdateThing(ctx, admin, ThingUpdate{ID: th.ID, SetOrg: true}); err != nil {
		t.Fatal(err)
	}
	empty := ""
	if _, err := c2.UpdateThing(ctx, admin, ThingUpdate{ID: th.ID, PiotID: &empty}); err != nil {
		t.Fatal(err)
	}
}

func TestThingsPagination(t *testing.T) {
	c, _, admin := newCore(t)
	ctx := context.Background()
	for i := 0; i < 25; i++ {
		if _, err := c.CreateThing(ctx, admin, fmt.Sprintf("t%02d", i), "sensor"); err != nil {
			t.Fatal(err)
		}
	}
	first := 10
	var names []string
	after := ""
	for pages := 0; ; pages++ {
		p, err := c.Things(admin, ThingQuery{All: true, SortBy: "name", SortSet: true, First: &first, After: after})
		if err != nil {
			t.Fatal(err)
		}
		if p.TotalCount != 25 {
			t.Fatalf("total %d", p.TotalCount)
		}
		for _, it := range p.Items {
			names = append(names, it.Name)
		}
		if !p.HasNextPage {
			break
		}
		after = p.EndCursor
		if pages > 5 {
			t.Fatal("pagination does not end")
		}
	}
	if len(names) != 25 || names[0] != "t00" || names[24] != "t24" {
		t.Fatalf("names %v", names)
	}
	p, err := c.Things(admin, ThingQuery{All: true, NameContains: "T1"})
	if err != nil || p.TotalCount != 10 {
		t.Fatalf("nameContains: %d %v", p.TotalCount, err)
	}
	if _, err := c.Things(admin, ThingQuery{All: true, After: "%%%"}); CodeOf(err) != CodeBadInput {
		t.Fatalf("bad cursor: %v", err)
	}
}

func TestLastAdminIsProtected(t *testing.T) {
	c, _, admin := newCore(t)
	ctx := context.Background()
	no := false
	if _, err := c.UpdateUser(ctx, admin, UserUpdate{ID: admin.UserID, IsAdmin: &no}); CodeOf(err) != CodeBadInput {
		t.Fatalf("demoting the last admin: %v", err)
	}
	if err := c.DeleteUser(ctx, admin, admin.UserID); CodeOf(err) != CodeBadInput {
		t.Fatalf("deleting yourself: %v", err)
	}
}

func TestRenameOntoExistingNameConflicts(t *testing.T) {
	c, _, admin := newCore(t)
	ctx := context.Background()
	if _, err := c.CreateThing(ctx, admin, "a", "sensor"); err != nil {
		t.Fatal(err)
	}
	b, err := c.CreateThing(ctx, admin, "b", "sensor")
	if err != nil {
		t.Fatal(err)
	}
	name := "a"
	if _, err := c.UpdateThing(ctx, admin, ThingUpdate{ID: b.ID, Name: &name}); CodeOf(err) != CodeConflict {
		t.Fatalf("thing rename: %v", err)
	}
	if got, _ := c.Thing(admin, b.ID); got.Name != "b" {
		t.Fatalf("memory changed despite the conflict: %q", got.Name)
	}
	u, err := c.CreateUser(ctx, admin, "u@x.cz", "password1", false)
	if err != nil {
		t.Fatal(err)
	}
	email := "admin@piot.local"
	if _, err := c.UpdateUser(ctx, admin, UserUpdate{ID: u.ID, Email: &email}); CodeOf(err) != CodeConflict {
		t.Fatalf("email change: %v", err)
	}
}

// A write a unique index refuses says which field collides, whichever
// index it was (issue 11: a duplicate piot id and MQTT username were
// reported as a duplicate name).
func TestDuplicateMessageNamesTheField(t *testing.T) {
	c, _, admin := newCore(t)
	ctx := context.Background()
	ptr := func(s string) *string { return &s }
	a, _ := c.CreateThing(ctx, admin, "a", "device")
	b, _ := c.CreateThing(ctx, admin, "b", "device")
	if _, err := c.UpdateThing(ctx, admin, ThingUpdate{ID: a.ID, PiotID: ptr("CHIP-1")}); err != nil {
		t.Fatal(err)
	}
	o1, _ := c.CreateOrg(ctx, admin, "farm", "")
	o2, _ := c.CreateOrg(ctx, admin, "shop", "")
	if _, err := c.UpdateOrg(ctx, admin, OrgUpdate{ID: o1.ID, MQTTUsername: ptr("farm-devices")}); err != nil {
		t.Fatal(err)
	}
	u, _ := c.CreateUser(ctx, admin, "u@x.cz", "password1", false)
	cases := []struct {
		name string
		run  func() error
		want string
	}{
		{"thing name", func() error {
			_, err := c.UpdateThing(ctx, admin, ThingUpdate{ID: b.ID, Name: ptr("a")})
			return err
		}, "Thing of such name already exists"},
		{"piot id", func() error {
			_, err := c.UpdateThing(ctx, admin, ThingUpdate{ID: b.ID, PiotID: ptr("CHIP-1")})
			return err
		}, "Thing of such piotId already exists"},
		{"org name", func() error {
			_, err := c.UpdateOrg(ctx, admin, OrgUpdate{ID: o2.ID, Name: ptr("farm")})
			return err
		}, "Org of such name already exists"},
		{"org mqtt username", func() error {
			_, err := c.UpdateOrg(ctx, admin, OrgUpdate{ID: o2.ID, MQTTUsername: ptr("farm-devices")})
			return err
		}, "this MQTT username is used by another organization"},
		{"user email", func() error {
			_, err := c.UpdateUser(ctx, admin, UserUpdate{ID: u.ID, Email: ptr("admin@piot.local")})
			return err
		}, "User of such email already exists"},
	}
	for _, tc := range cases {
		err := tc.run()
		if CodeOf(err) != CodeConflict || Message(err) != tc.want {
			t.Errorf("%s: %s %q, want CONFLICT %q", tc.name, CodeOf(err), Message(err), tc.want)
		}
	}
}

func TestParentAndLookups(t *testing.T) {
	c, _, admin := newCore(t)
	ctx := context.Background()
	dev, _ := c.CreateThing(ctx, admin, "chip1", "device")
	sen, _ := c.CreateThing(ctx, admin, "Tchip1", "sensor")
	pid := "CHIP-1"
	if _, err := c.UpdateThing(ctx, admin, ThingUpdate{ID: dev.ID, PiotID: &pid}); err != nil {
		t.Fatal(err)
	}
	if got, ok := c.ThingByPiotID("CHIP-1"); !ok || got.ID != dev.ID {
		t.Fatalf("by piot id: %v %v", got.ID, ok)
	}
	if got, ok := c.ThingByName("Tchip1"); !ok || got.ID != sen.ID {
		t.Fatalf("by name: %v", ok)
	}
	if _, err := c.UpdateThing(ctx, admin, ThingUpdate{ID: sen.ID, SetParent: true, ParentID: dev.ID}); err != nil {
		t.Fatal(err)
	}
	if got, _ := c.Thing(admin, sen.ID); got.ParentID != dev.ID {
		t.Fatal("parent not set")
	}
	if _, err := c.UpdateThing(ctx, admin, ThingUpdate{ID: sen.ID, SetParent: true, ParentID: sen.ID}); CodeOf(err) != CodeBadInput {
		t.Fatalf("self parent: %v", err)
	}
	if n := c.UnassignedThings(); n != 2 {
		t.Fatalf("unassigned = %d", n)
	}
}

func TestEmailRejectsInvisibleCharacters(t *testing.T) {
	for _, e := range []string{"ad\u200bmin@x.test", "admin@x\u202e.test", "admin\ufeff@x.test"} {
		if _, err := normEmail(e); CodeOf(err) != CodeBadInput {
			t.Errorf("%q accepted (%v)", e, err)
		}
	}
	if got, err := normEmail("Alice@Farm.example"); err != nil || got != "alice@farm.example" {
		t.Fatalf("plain address: %q %v", got, err)
	}
}

// An admin removed from their active org falls back to the first org they
// belong to (issue 11); one who chose an org without being a member keeps it.
func TestRemovedFromActiveOrgFallsBack(t *testing.T) {
	c, _, admin := newCore(t)
	ctx := context.Background()
	alpha, err := c.CreateOrg(ctx, admin, "alpha", "")
	if err != nil {
		t.Fatal(err)
	}
	beta, err := c.CreateOrg(ctx, admin, "beta", "")
	if err != nil {
		t.Fatal(err)
	}
	gamma, err := c.CreateOrg(ctx, admin, "gamma", "")
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range []Org{alpha, beta} {
		if err := c.AddOrgUser(ctx, admin, o.ID, admin.UserID); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.SetActiveOrg(ctx, admin, beta.ID); err != nil {
		t.Fatal(err)
	}
	if err := c.RemoveOrgUser(ctx, admin, beta.ID, admin.UserID); err != nil {
		t.Fatal(err)
	}
	if p, _ := c.Profile(admin); p.ActiveOrgID != alpha.ID {
		t.Fatalf("active org after removal: %v, want alpha %v", p.ActiveOrgID.Hex(), alpha.ID.Hex())
	}
	if _, err := c.SetActiveOrg(ctx, admin, gamma.ID); err != nil {
		t.Fatal(err)
	}
	if p, _ := c.Profile(admin); p.ActiveOrgID != gamma.ID {
		t.Fatalf("an admin's chosen org without membership: %v", p.ActiveOrgID.Hex())
	}
}
