package core

import (
	"context"
	"strings"
	"testing"
)

// The console's publish follows the broker's ACL of the user's orgs'
// credentials: a member publishes under org/<their org>/ only, an admin
// anywhere but the broker's own $ topics; bad topic names are refused as
// input before anything else is decided.
func TestMayPublishTopic(t *testing.T) {
	c, _, admin := newCore(t)
	ctx := context.Background()
	acme, err := c.CreateOrg(ctx, admin, "acme", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateOrg(ctx, admin, "globex", ""); err != nil {
		t.Fatal(err)
	}
	u, err := c.CreateUser(ctx, admin, "m@acme.test", "password1", false)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.AddOrgUser(ctx, admin, acme.ID, u.ID); err != nil {
		t.Fatal(err)
	}
	member, err := c.Login(ctx, "m@acme.test", "password1")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		who          Actor
		topic        string
		want         Code
		alsoFollowOK bool
	}{
		{member, "org/acme/boiler/set", "", true},
		{member, "org/acme/x", "", true},
		{member, "org/globex/x", CodeForbidden, false},
		{member, "org/acme", CodeForbidden, false},
		{member, "org/acmex/x", CodeForbidden, false},
		{member, "devices/x", CodeForbidden, false},
		{member, "org/acme/+/set", CodeBadInput, true},
		{member, "org/acme/#", CodeBadInput, true},
		{member, "", CodeBadInput, false},
		{member, "$SYS/broker/uptime", CodeBadInput, false},
		{member, "org/acme/" + strings.Repeat("a", MaxTopicLen), CodeBadInput, true},
		{member, "org/acme/a\x00b", CodeBadInput, true},
		{admin, "org/globex/x", "", true},
		{admin, "anything/at/all", "", true},
		{admin, "$SYS/broker/uptime", CodeBadInput, true},
		{admin, "org/+/x", CodeBadInput, true},
		{Anonymous(), "org/acme/x", CodeUnauthenticated, false},
	} {
		err := c.MayPublishTopic(tc.who, tc.topic)
		if got := CodeOf(err); err == nil && tc.want != "" || err != nil && got != tc.want {
			t.Errorf("%s publishing on %q: %v, want %q", tc.who.Email, tc.topic, err, tc.want)
		}
		// Following is the same rule for filters.
		if err := c.MayFollowTopics(tc.who, tc.topic); (err == nil) != tc.alsoFollowOK {
			t.Errorf("%s following %q: %v", tc.who.Email, tc.topic, err)
		}
	}
	// Leaving the org takes the right away at once.
	if err := c.RemoveOrgUser(ctx, admin, acme.ID, u.ID); err != nil {
		t.Fatal(err)
	}
	if got := CodeOf(c.MayPublishTopic(member, "org/acme/x")); got != CodeForbidden {
		t.Errorf("after leaving the org: %q", got)
	}
}
