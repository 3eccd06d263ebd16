package core

import (
	"context"
	"strings"
	"testing"
	"time"
)

// Every change through core leaves one entry naming the operation, the
// actor and the source, never a secret; members may not read the trail.
func TestAuditRecordsChangesWithoutSecrets(t *testing.T) {
	c, _, admin := newCore(t)
	ctx := WithSource(context.Background(), Source{Via: ViaAPI, Addr: "192.0.2.7:4000"})
	o, err := c.CreateOrg(ctx, admin, "farm", "")
	if err != nil {
		t.Fatal(err)
	}
	u, err := c.CreateUser(ctx, admin, "member@piot.local", "member-password-1", false)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.AddOrgUser(ctx, admin, o.ID, u.ID); err != nil {
		t.Fatal(err)
	}
	pw := "new-secret-password"
	if _, err := c.UpdateUser(ctx, admin, UserUpdate{ID: u.ID, Password: &pw}); err != nil {
		t.Fatal(err)
	}
	th, err := c.CreateThing(ctx, admin, "t1", ThingSensor)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.SetThingAESKey(ctx, admin, th.ID, "0123456789abcdef"); err == nil {
		t.Fatal("a thing without piot id took a key")
	}
	creds, err := c.SetOrgMQTTCredentials(ctx, admin, o.ID, "farm-mqtt")
	if err != nil {
		t.Fatal(err)
	}
	member, err := c.Login(ctx, "member@piot.local", pw)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.AuditLog(ctx, member, AuditQuery{}); CodeOf(err) != CodeForbidden {
		t.Fatalf("member read the trail: %v", err)
	}
	got, err := c.AuditLog(ctx, admin, AuditQuery{})
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, e := range got {
		actions = append(actions, e.Action)
		if e.Action != "bootstrap" && (e.Actor != "admin@piot.local" || e.Source != "api 192.0.2.7:4000") {
			t.Errorf("%+v: wrong actor or source", e)
		}
		for _, secret := range []string{pw, creds.Password, "0123456789abcdef", "member-password-1"} {
			if strings.Contains(e.Target, secret) {
				t.Errorf("%+v holds a secret", e)
			}
		}
	}
	want := "setOrgMqttCredentials createThing updateUser addOrgUser createUser createOrg bootstrap"
	if strings.Join(actions, " ") != want {
		t.Fatalf("actions newest first = %v, want %s", actions, want)
	}
	if got[2].Target != "user member@piot.local (password, token_version)" {
		t.Errorf("updateUser target = %q", got[2].Target)
	}
	if got[len(got)-1].Actor != ActorSystem {
		t.Errorf("bootstrap actor = %q", got[len(got)-1].Actor)
	}
	recorded, failed := c.AuditCounts()
	if recorded["createOrg"] != 1 || recorded["bootstrap"] != 1 || failed != 0 {
		t.Errorf("counts %v, failed %d", recorded, failed)
	}

	filtered, err := c.AuditLog(ctx, admin, AuditQuery{Contains: "MEMBER@", First: 2})
	if err != nil || len(filtered) != 2 || filtered[0].Action != "updateUser" {
		t.Fatalf("filtered: %v %+v", err, filtered)
	}
	for _, bad := range []AuditQuery{{First: MaxAuditEntries + 1}, {First: -1}, {From: 10, To: 5}, {From: -1}} {
		if _, err := c.AuditLog(ctx, admin, bad); CodeOf(err) != CodeBadInput {
			t.Errorf("%+v: %v", bad, err)
		}
	}
	future, err := c.AuditLog(ctx, admin, AuditQuery{From: time.Now().Add(time.Hour).Unix()})
	if err != nil || len(future) != 0 {
		t.Errorf("from the future: %v %v", err, future)
	}
}

// Pruning drops what is older than the retention and the oldest beyond
// the cap.
func TestPruneAuditKeepsRetentionAndCap(t *testing.T) {
	c, _, admin := newCore(t)
	ctx := context.Background()
	now := time.Now()
	c.now = func() time.Time { return now.Add(-100 * 24 * time.Hour) }
	if _, err := c.CreateOrg(ctx, admin, "old", ""); err != nil {
		t.Fatal(err)
	}
	c.now = func() time.Time { return now }
	for _, n := range []string{"a", "b", "c"} {
		if _, err := c.CreateOrg(ctx, admin, n, ""); err != nil {
			t.Fatal(err)
		}
	}
	c.auditMaxEntries = 2
	gone, err := c.PruneAudit(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.AuditLog(ctx, admin, AuditQuery{})
	if err != nil {
		t.Fatal(err)
	}
	// "old" is past 90 days; bootstrap and "a" are beyond the cap of 2.
	if len(got) != 2 || got[0].Target != "org c" || got[1].Target != "org b" || gone != 3 {
		t.Fatalf("after prune (%d gone): %+v", gone, got)
	}
}
