// Package coretest sets up a real core on the embedded store for tests of
// the services built on it: one place that opens the store, creates the
// core and bootstraps the administrator, instead of one copy per package.
package coretest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"

	"github.com/piot-appliance/piot/services/core"
	"github.com/piot-appliance/piot/services/store"
)

// AdminEmail and AdminPassword are the bootstrap administrator's login.
const AdminEmail, AdminPassword = "admin@piot.local", "correct horse battery"

// Env is a core with an administrator and, when asked for, one
// organization.
type Env struct {
	Dir   string // the store's data directory
	Store *store.Store
	Core  *core.Core
	Admin core.Actor
	Org   core.Org // zero without Options.Org
}

// Options say what Open and Setup make; the zero value is an administrator
// with AdminEmail and AdminPassword, no organization and no logs.
type Options struct {
	// AdminEmail and AdminPassword replace the package's constants, for
	// tests written against a login of their own.
	AdminEmail, AdminPassword string
	// Org, when set, names an organization to create, described by
	// OrgDescription.
	Org, OrgDescription string
	// Logger is for the store and the core; nil discards their logs.
	Logger *slog.Logger
}

// New opens the embedded store in a temporary directory (closed at the
// end of the test) and bootstraps the core, with an organization "acme".
// Logs are discarded.
func New(tb testing.TB) *Env {
	tb.Helper()
	return Open(tb, Options{Org: "acme"})
}

// Open is New with options: the store lives in a temporary directory and
// is closed at the end of the test.
func Open(tb testing.TB, opts Options) *Env {
	tb.Helper()
	env, err := Setup(context.Background(), tb.TempDir(), opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = env.Close() })
	return env
}

// Setup opens the embedded store in dir and bootstraps a core on it, for a
// fixture that a whole package shares (starting the embedded store is the
// slow part of a test): TestMain or a sync.Once calls it, and Close ends it.
func Setup(ctx context.Context, dir string, opts Options) (env *Env, err error) {
	opts = opts.withDefaults()
	st, err := store.Open(ctx, store.Config{DataDir: dir, Logger: opts.Logger})
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	defer func() {
		if err != nil {
			_ = st.Close(context.Background())
		}
	}()
	c, err := core.New(ctx, st, core.Config{BcryptCost: 4, Logger: opts.Logger})
	if err != nil {
		return nil, fmt.Errorf("core: %w", err)
	}
	ok, err := c.Bootstrap(ctx, opts.AdminEmail, opts.AdminPassword)
	if err != nil {
		return nil, fmt.Errorf("bootstrap: %w", err)
	}
	if !ok {
		return nil, errors.New("bootstrap: the store has users already")
	}
	env = &Env{Dir: dir, Store: st, Core: c}
	if env.Admin, err = c.Login(ctx, opts.AdminEmail, opts.AdminPassword); err != nil {
		return nil, fmt.Errorf("admin login: %w", err)
	}
	if opts.Org != "" {
		if env.Org, err = c.CreateOrg(ctx, env.Admin, opts.Org, opts.OrgDescription); err != nil {
			return nil, fmt.Errorf("create org: %w", err)
		}
	}
	return env, nil
}

func (o Options) withDefaults() Options {
	if o.AdminEmail == "" {
		o.AdminEmail = AdminEmail
	}
	if o.AdminPassword == "" {
		o.AdminPassword = AdminPassword
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// Close closes the store.
func (e *Env) Close() error {
	return e.Store.Close(context.Background())
}

// Member creates a user who is not an administrator, adds them to the
// environment's organization and logs them in.
func (e *Env) Member(tb testing.TB, email, password string) core.Actor {
	tb.Helper()
	ctx := context.Background()
	u, err := e.Core.CreateUser(ctx, e.Admin, email, password, false)
	if err != nil {
		tb.Fatal(err)
	}
	if err := e.Core.AddOrgUser(ctx, e.Admin, e.Org.ID, u.ID); err != nil {
		tb.Fatal(err)
	}
	member, err := e.Core.Login(ctx, email, password)
	if err != nil {
		tb.Fatal(err)
	}
	return member
}
