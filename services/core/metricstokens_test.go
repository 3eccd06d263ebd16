package core

import (
	"context"
	"testing"
)

func TestMetricsTokens(t *testing.T) {
	c, _, admin := newCore(t)
	ctx := context.Background()
	o, _ := c.CreateOrg(ctx, admin, "farm", "")
	mt, err := c.CreateMetricsToken(ctx, admin, o.ID)
	if err != nil || len(mt.Token) < 40 {
		t.Fatalf("create: %+v %v", mt, err)
	}
	if id, ok := c.OrgByMetricsToken(mt.Token); !ok || id != o.ID {
		t.Fatalf("lookup: %v %v", id, ok)
	}
	if _, ok := c.OrgByMetricsToken(mt.Token + "x"); ok {
		t.Fatal("wrong token accepted")
	}
	list, _ := c.MetricsTokens(admin, o.ID)
	if len(list) != 1 || list[0].Token != "" || list[0].ID != mt.ID {
		t.Fatalf("list leaks or lacks: %+v", list)
	}
	member := Actor{UserID: o.ID, Email: "m@x.cz"}
	if _, err := c.CreateMetricsToken(ctx, member, o.ID); CodeOf(err) != CodeForbidden {
		t.Fatalf("member: %v", err)
	}
	if err := c.RevokeMetricsToken(ctx, admin, o.ID, mt.ID); err != nil {
		t.Fatal(err)
	}
	if _, ok := c.OrgByMetricsToken(mt.Token); ok {
		t.Fatal("revoked token accepted")
	}
}
