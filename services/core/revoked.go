package core

import (
	"context"
	"time"

	"github.com/piot-appliance/piot/services/store"
)

// RevokeToken signs out one session: the token whose id (its jti) is
// given is refused from now on, until it would have expired anyway.
// Only its holder knows the id, so any signed-in actor may revoke the
// token it presents. The list is in the store, so a restart does not
// revive a signed-out token; entries past their expiry are dropped here.
func (c *Core) RevokeToken(ctx context.Context, a Actor, jti string, until time.Time) error {
	if err := requireAuth(a); err != nil {
		return err
	}
	id, err := ParseID(jti)
	if err != nil {
		return errf(CodeBadInput, "the token has no valid id")
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := c.st.Revoked.Insert(ctx, &store.RevokedToken{ID: id, Until: until.Unix()}); err != nil {
		if e := storeErr(err, "revoked token"); CodeOf(e) == CodeConflict {
			return nil // signed out twice: it is revoked either way
		}
		return internal("cannot revoke the token", err)
	}
	now := c.unix()
	c.mu.Lock()
	c.revoked[id] = until.Unix()
	var expired []ID
	for r, u := range c.revoked {
		// The new entry stays whatever its expiry: the token's checker
		// may run on another clock than core's.
		if u < now && r != id {
			expired = append(expired, r)
		}
	}
	c.mu.Unlock()
	c.pruneRevoked(ctx, expired)
	c.audit(ctx, a, "signOut", "user "+a.Email)
	return nil
}

// pruneRevoked forgets expired revocations; a failure only leaves them
// for the next revocation or start. Callers hold c.wmu.
func (c *Core) pruneRevoked(ctx context.Context, expired []ID) {
	if len(expired) == 0 {
		return
	}
	if err := c.st.Revoked.DeleteIDs(ctx, expired); err != nil {
		c.log.Warn("cannot prune revoked tokens", "err", err)
		return
	}
	c.mu.Lock()
	for _, id := range expired {
		delete(c.revoked, id)
	}
	c.mu.Unlock()
}

// loadRevoked reads the revocation list at start, dropping what expired.
func (c *Core) loadRevoked(ctx context.Context) error {
	now := c.unix()
	var expired []ID
	err := c.st.Revoked.Each(ctx, func(r *store.RevokedToken) error {
		if r.Until < now {
			expired = append(expired, r.ID)
			return nil
		}
		c.revoked[r.ID] = r.Until
		return nil
	})
	if err != nil {
		return err
	}
	c.pruneRevoked(ctx, expired)
	return nil
}

// ActorForToken is ActorFor for a token that carries an id: a revoked
// token is refused like one of an older version. Tokens without an id
// (issued before tokens had one) cannot be revoked one by one.
func (c *Core) ActorForToken(userID ID, version int64, jti string) (Actor, error) {
	if jti != "" {
		id, err := ParseID(jti)
		if err != nil {
			return Anonymous(), errf(CodeUnauthenticated, "token is not valid")
		}
		c.mu.RLock()
		_, gone := c.revoked[id]
		c.mu.RUnlock()
		if gone {
			return Anonymous(), errf(CodeUnauthenticated, "token was revoked by signing out")
		}
	}
	return c.ActorFor(userID, version)
}
