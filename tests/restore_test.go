package tests

import (
	"context"
	"testing"

	"github.com/piot-appliance/piot/services/core"
	"github.com/piot-appliance/piot/services/store"
	"github.com/piot-appliance/piot/tui/backend"
)

// A console backup restored through the console: scheduled while the
// appliance runs, applied at the next start.
func TestBackupAndScheduledRestore(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	a := startAppliance(t, startOpts{dataDir: dir})
	tok := a.login("admin@piot.local", a.adminPassword())
	if _, _, code := a.gql(tok, `mutation { createOrg(name: "keep", description: "") { id } }`, nil); code != "" {
		t.Fatal(code)
	}
	a.stop()

	// Back up with the console's adapter on the stopped appliance's store.
	st, err := store.Open(ctx, store.Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	offline, err := core.New(ctx, st, core.Config{})
	if err != nil {
		t.Fatal(err)
	}
	admin := core.Actor{UserID: core.System().UserID, Email: "test@x", Admin: true}
	sys := backend.NewSystem(backend.SystemConfig{DataDir: dir, Core: offline})
	backup, err := sys.Backup(ctx, admin, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Close(ctx); err != nil {
		t.Fatal(err)
	}

	b := startAppliance(t, startOpts{dataDir: dir})
	if _, _, code := b.gql(tok, `mutation { createOrg(name: "later", description: "") { id } }`, nil); code != "" {
		t.Fatal(code)
	}
	if err := sys.Restore(ctx, core.Actor{UserID: admin.UserID}, backup); core.CodeOf(err) != core.CodeForbidden {
		t.Fatalf("restore by a non-admin: %v", err)
	}
	if err := sys.Restore(ctx, admin, backup); err != nil {
		t.Fatal(err)
	}
	b.stop()

	c := startAppliance(t, startOpts{dataDir: dir})
	_, data, code := c.gql(tok, `{ orgs { name } }`, nil)
	if code != "" {
		t.Fatal(code)
	}
	var names []string
	for _, o := range data["orgs"].([]any) {
		names = append(names, o.(map[string]any)["name"].(string))
	}
	if len(names) != 1 || names[0] != "keep" {
		t.Fatalf("orgs after restore: %v", names)
	}
	// The restore is applied once.
	c.stop()
	d := startAppliance(t, startOpts{dataDir: dir})
	if _, _, code := d.gql(tok, `{ orgs { name } }`, nil); code != "" {
		t.Fatal(code)
	}
}
