package coretest

import (
	"context"
	"testing"
)

func TestOpenMakesWhatItWasAskedFor(t *testing.T) {
	env := Open(t, Options{AdminEmail: "boss@x.test", AdminPassword: "boss-password", Org: "farm", OrgDescription: "fields"})
	if !env.Admin.Admin || env.Admin.Email != "boss@x.test" {
		t.Fatalf("admin = %+v", env.Admin)
	}
	if env.Org.Name != "farm" || env.Org.Description != "fields" {
		t.Fatalf("org = %+v", env.Org)
	}
	m := env.Member(t, "member@x.test", "member-password")
	if m.Admin {
		t.Fatal("the member is an administrator")
	}
	orgs, err := env.Core.Orgs(m)
	if err != nil || len(orgs) != 1 || orgs[0].ID != env.Org.ID {
		t.Fatalf("the member's orgs: %+v, %v", orgs, err)
	}
}

func TestSetupRefusesABootstrappedStore(t *testing.T) {
	env := Open(t, Options{})
	if env.Org.Name != "" {
		t.Fatalf("an org without Options.Org: %+v", env.Org)
	}
	if err := env.Close(); err != nil {
		t.Fatal(err)
	}
	if again, err := Setup(context.Background(), env.Dir, Options{}); err == nil {
		_ = again.Close()
		t.Fatal("Setup bootstrapped a store that had an administrator")
	}
}
