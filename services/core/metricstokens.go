package core

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"slices"

	"github.com/piot-appliance/piot/services/store"
)

// MaxMetricsTokensPerOrg bounds the scrape tokens of one org.
const MaxMetricsTokensPerOrg = 16

// MetricsToken is a per-org scrape token; Token is set only when created.
type MetricsToken struct {
	ID      string
	Token   string
	Created int64
}

func tokenHash(tok string) string {
	sum := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(sum[:])
}

// CreateMetricsToken makes a scrape token that sees only the org's things
// (admins only). The token is returned once; the store keeps its hash
// (a SHA-256 is enough: the token is 32 random bytes, not a password).
func (c *Core) CreateMetricsToken(ctx context.Context, a Actor, orgID ID) (MetricsToken, error) {
	if err := requireAdmin(a); err != nil {
		return MetricsToken{}, err
	}
	raw := make([]byte, 32)
	idb := make([]byte, 6)
	if _, err := rand.Read(raw); err != nil {
		return MetricsToken{}, internal("cannot generate a token", err)
	}
	if _, err := rand.Read(idb); err != nil {
		return MetricsToken{}, internal("cannot generate a token", err)
	}
	tok := "piot_org_" + base64.RawURLEncoding.EncodeToString(raw)
	mt := store.MetricsToken{ID: hex.EncodeToString(idb), Hash: tokenHash(tok), Created: c.unix()}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.mu.RLock()
	cur, ok := c.orgs[orgID]
	c.mu.RUnlock()
	if !ok {
		return MetricsToken{}, errf(CodeNotFound, "Org does not exist")
	}
	if len(cur.MetricsTokens) >= MaxMetricsTokensPerOrg {
		return MetricsToken{}, errf(CodeBadInput, "an organization may have at most %d metrics tokens", MaxMetricsTokensPerOrg)
	}
	n := *cur
	n.MetricsTokens = append(slices.Clone(cur.MetricsTokens), mt)
	if err := update(ctx, c.st.Orgs, n.ID, cur, &n, "Org"); err != nil {
		return MetricsToken{}, err
	}
	c.mu.Lock()
	c.putOrg(&n)
	c.mu.Unlock()
	c.audit(ctx, a, "createMetricsToken", "org "+cur.Name+" token "+mt.ID)
	return MetricsToken{ID: mt.ID, Token: tok, Created: mt.Created}, nil
}

// MetricsTokens lists an org's scrape tokens without their secrets (admins
// only).
func (c *Core) MetricsTokens(a Actor, orgID ID) ([]MetricsToken, error) {
	if err := requireAdmin(a); err != nil {
		return nil, err
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	o, ok := c.orgs[orgID]
	if !ok {
		return nil, errf(CodeNotFound, "Org does not exist")
	}
	out := make([]MetricsToken, len(o.MetricsTokens))
	for i, t := range o.MetricsTokens {
		out[i] = MetricsToken{ID: t.ID, Created: t.Created}
	}
	return out, nil
}

// RevokeMetricsToken deletes an org's scrape token by its id (admins only).
func (c *Core) RevokeMetricsToken(ctx context.Context, a Actor, orgID ID, tokenID string) error {
	if err := requireAdmin(a); err != nil {
		return err
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.mu.RLock()
	cur, ok := c.orgs[orgID]
	c.mu.RUnlock()
	if !ok {
		return errf(CodeNotFound, "Org does not exist")
	}
	i := slices.IndexFunc(cur.MetricsTokens, func(t store.MetricsToken) bool { return t.ID == tokenID })
	if i < 0 {
		return errf(CodeNotFound, "no such metrics token")
	}
	n := *cur
	n.MetricsTokens = slices.Delete(slices.Clone(cur.MetricsTokens), i, i+1)
	if err := update(ctx, c.st.Orgs, n.ID, cur, &n, "Org"); err != nil {
		return err
	}
	c.mu.Lock()
	c.putOrg(&n)
	c.mu.Unlock()
	c.audit(ctx, a, "revokeMetricsToken", "org "+cur.Name+" token "+tokenID)
	return nil
}

// OrgByMetricsToken resolves a scrape token to its org.
func (c *Core) OrgByMetricsToken(tok string) (ID, bool) {
	h := tokenHash(tok)
	c.mu.RLock()
	defer c.mu.RUnlock()
	for id, o := range c.orgs {
		for _, t := range o.MetricsTokens {
			if t.Hash == h {
				return id, true
			}
		}
	}
	var zero ID
	return zero, false
}
