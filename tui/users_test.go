package tui

import (
	"slices"
	"testing"

	"github.com/piot-appliance/piot/services/core"
)

func TestOrgsOtherThan(t *testing.T) {
	a, b, c := core.Org{ID: core.ID{1}, Name: "a"}, core.Org{ID: core.ID{2}, Name: "b"}, core.Org{ID: core.ID{3}, Name: "c"}
	for _, tc := range []struct {
		all, these, want []core.Org
	}{
		{[]core.Org{a, b, c}, nil, []core.Org{a, b, c}},
		{[]core.Org{a, b, c}, []core.Org{c, a}, []core.Org{b}},
		{[]core.Org{a}, []core.Org{a}, nil},
		{nil, []core.Org{a}, nil},
	} {
		if got := orgsOtherThan(tc.all, tc.these); !slices.Equal(got, tc.want) {
			t.Errorf("orgsOtherThan(%v, %v) = %v, want %v", tc.all, tc.these, got, tc.want)
		}
	}
}

// In a user's detail view: an admin flag revoked there, and no org forms
// when there is nothing to choose.
func TestUserDetailWithoutOrgsToChoose(t *testing.T) {
	w := newWorld(t)
	h := newHarness(t, Deps{Core: w.core}, w.admin, 80, 24)
	h.key("4")
	h.waitFor("2 users", "member@acme.test")
	h.key("/")
	h.typeText("member@")
	h.key("enter", "enter")
	h.waitFor("SSH keys (console logins)", "organizations: acme")
	h.key("o")
	h.waitFor("no organization left to add member@acme.test to")
	h.key("O", "enter")
	h.waitFor("removed from acme", "organizations: –")
	h.key("O")
	h.waitFor("member@acme.test belongs to no organization")
	h.key("a", "y")
	h.waitFor("member@acme.test is now an admin")
	h.key("a")
	h.waitFor("Revoke admin rights of member@acme.test?")
	h.key("y")
	h.waitFor("member@acme.test is no longer an admin")
}
