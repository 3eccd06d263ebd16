package core

import (
	"context"

	"golang.org/x/crypto/bcrypt"
)

// Actor is who is calling. It is resolved from the store's current state
// on every request, so revoking admin rights or deleting a user takes
// effect at once, whatever tokens are still around.
type Actor struct {
	UserID ID
	Email  string
	Admin  bool
	// TokenVersion is the user's current token version, put into tokens
	// issued for this actor.
	TokenVersion int64
}

// Anonymous is the actor of unauthenticated calls.
var Anonymous = Actor{}

// Authenticated reports whether the actor is a logged-in user.
func (a Actor) Authenticated() bool { return !a.UserID.IsZero() }

// Login checks an email and password.
func (c *Core) Login(_ context.Context, email, password string) (Actor, error) {
	bad := errf(CodeUnauthenticated, "user identified by this email does not exist or provided credentials are wrong")
	norm, err := normEmail(email)
	if err != nil || password == "" {
		_ = bcrypt.CompareHashAndPassword(c.dummyHash(), []byte(password))
		return Anonymous, bad
	}
	c.mu.RLock()
	var hash []byte
	var actor Actor
	if id, ok := c.userByEmail[norm]; ok {
		u := c.users[id]
		hash = []byte(u.Password)
		actor = Actor{UserID: u.ID, Email: u.Email, Admin: u.IsAdmin, TokenVersion: u.TokenVersion}
	}
	c.mu.RUnlock()
	if hash == nil {
		_ = bcrypt.CompareHashAndPassword(c.dummyHash(), []byte(password))
		return Anonymous, bad
	}
	if bcrypt.CompareHashAndPassword(hash, []byte(password)) != nil {
		return Anonymous, bad
	}
	return actor, nil
}

// ActorFor resolves a token's subject. version is the token's user version;
// tokens issued before the user's last password change carry an older one
// and are refused.
func (c *Core) ActorFor(userID ID, version int64) (Actor, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	u, ok := c.users[userID]
	if !ok {
		return Anonymous, errf(CodeUnauthenticated, "the user of this token no longer exists")
	}
	if version != u.TokenVersion {
		return Anonymous, errf(CodeUnauthenticated, "token was revoked by a password change")
	}
	return Actor{UserID: u.ID, Email: u.Email, Admin: u.IsAdmin, TokenVersion: u.TokenVersion}, nil
}

// The rules. Everything not allowed here is denied. Callers hold c.mu.

// isMember reports whether the actor belongs to the org.
func (c *Core) isMember(a Actor, org ID) bool {
	if org.IsZero() {
		return false
	}
	_, ok := c.userOrgs[a.UserID][org]
	return ok
}

func (c *Core) canReadOrg(a Actor, org ID) bool { return a.Admin || c.isMember(a, org) }

func (c *Core) canReadUser(a Actor, u ID) bool { return a.Admin || a.UserID == u }

func (c *Core) canReadThing(a Actor, t *Thing) bool {
	return a.Admin || c.isMember(a, t.OrgID)
}

// canEditThing covers settings; reassigning to another org is admin only.
func (c *Core) canEditThing(a Actor, t *Thing) bool {
	return a.Admin || c.isMember(a, t.OrgID)
}

// requireAuth rejects anonymous actors.
func requireAuth(a Actor) error {
	if !a.Authenticated() {
		return errUnauthenticated
	}
	return nil
}

// RequireAdmin is the rule of the appliance's maintenance actions (the
// console's System screen: backups, restores, certificates, OS settings,
// power): admins only; what names the action in the refusal.
func RequireAdmin(a Actor, what string) error {
	if !a.Authenticated() {
		return NewError(CodeUnauthenticated, "authentication required")
	}
	if !a.Admin {
		return NewError(CodeForbidden, "only admins may "+what)
	}
	return nil
}

// requireAdmin rejects everybody but admins.
func requireAdmin(a Actor) error {
	if err := requireAuth(a); err != nil {
		return err
	}
	if !a.Admin {
		return errForbidden
	}
	return nil
}
