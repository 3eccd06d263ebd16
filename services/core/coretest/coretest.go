// Package coretest sets up a real core on the embedded store for tests of
// the services built on it.
package coretest

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/piot-appliance/piot/services/core"
	"github.com/piot-appliance/piot/services/store"
)

// AdminEmail and AdminPassword are the bootstrap administrator's login.
const AdminEmail, AdminPassword = "admin@piot.local", "correct horse battery"

// Env is a core with an administrator and one organization, "acme".
type Env struct {
	Store *store.Store
	Core  *core.Core
	Admin core.Actor
	Org   core.Org
}

// New opens the embedded store in a temporary directory (closed at the
// end of the test) and bootstraps the core. Logs are discarded.
func New(tb testing.TB) *Env {
	tb.Helper()
	ctx := context.Background()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	st, err := store.Open(ctx, store.Config{DataDir: tb.TempDir(), Logger: quiet})
	if err != nil {
		tb.Fatalf("open store: %v", err)
	}
	tb.Cleanup(func() { _ = st.Close(context.Background()) })
	c, err := core.New(ctx, st, core.Config{BcryptCost: 4, Logger: quiet})
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := c.Bootstrap(ctx, AdminEmail, AdminPassword); err != nil {
		tb.Fatal(err)
	}
	admin, err := c.Login(ctx, AdminEmail, AdminPassword)
	if err != nil {
		tb.Fatal(err)
	}
	org, err := c.CreateOrg(ctx, admin, "acme", "")
	if err != nil {
		tb.Fatal(err)
	}
	return &Env{Store: st, Core: c, Admin: admin, Org: org}
}
