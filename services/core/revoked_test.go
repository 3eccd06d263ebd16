package core_test

import (
	"context"
	"testing"
	"time"

	"github.com/piot-appliance/piot/services/core"
	"github.com/piot-appliance/piot/services/core/coretest"
)

// A signed-out token stays refused after a restart: the list is in the
// store, not only in memory.
func TestRevokedTokenSurvivesRestart(t *testing.T) {
	ctx := context.Background()
	env := coretest.New(t)
	var jti core.ID
	jti[0] = 7
	if err := env.Core.RevokeToken(ctx, core.Anonymous(), jti.Hex(), time.Now().Add(time.Hour)); core.CodeOf(err) != core.CodeUnauthenticated {
		t.Fatalf("anonymous revocation: %v", err)
	}
	if err := env.Core.RevokeToken(ctx, env.Admin, jti.Hex(), time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := env.Core.RevokeToken(ctx, env.Admin, jti.Hex(), time.Now().Add(time.Hour)); err != nil {
		t.Fatalf("signing out twice: %v", err)
	}
	if _, err := env.Core.ActorForToken(env.Admin.UserID, env.Admin.TokenVersion, jti.Hex()); core.CodeOf(err) != core.CodeUnauthenticated {
		t.Fatalf("revoked token: %v", err)
	}
	reopened, err := core.New(ctx, env.Store, core.Config{BcryptCost: 4})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := reopened.ActorForToken(env.Admin.UserID, env.Admin.TokenVersion, jti.Hex()); core.CodeOf(err) != core.CodeUnauthenticated {
		t.Fatalf("revoked token after a restart: %v", err)
	}
	var other core.ID
	other[0] = 8
	if _, err := reopened.ActorForToken(env.Admin.UserID, env.Admin.TokenVersion, other.Hex()); err != nil {
		t.Fatalf("another token: %v", err)
	}
}

// Entries past their token's expiry are dropped at start.
func TestExpiredRevocationsArePruned(t *testing.T) {
	ctx := context.Background()
	env := coretest.New(t)
	var jti core.ID
	jti[0] = 9
	if err := env.Core.RevokeToken(ctx, env.Admin, jti.Hex(), time.Now().Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}
	if _, err := core.New(ctx, env.Store, core.Config{BcryptCost: 4}); err != nil {
		t.Fatal(err)
	}
	if n, err := env.Store.Revoked.Count(ctx); err != nil || n != 0 {
		t.Fatalf("%d revocations left, %v", n, err)
	}
}
