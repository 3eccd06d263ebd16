package core

import (
	"crypto/sha256"
	"crypto/subtle"
)

// OrgScope is which organizations' objects an actor or a token sees:
// every one, or a set.
type OrgScope struct {
	all  bool
	orgs map[ID]struct{}
}

// All reports whether the scope is the whole appliance.
func (s OrgScope) All() bool { return s.all }

// Includes reports whether objects of org are in the scope.
func (s OrgScope) Includes(org ID) bool {
	if s.all {
		return true
	}
	_, ok := s.orgs[org]
	return ok
}

// errNotLoggedIn is the monitor's refusal of anonymous callers.
func errNotLoggedIn() error { return NewError(CodeUnauthenticated, "Not logged in") }

// AlarmScope is whose alarms the actor sees: all for admins, those raised
// for things of its orgs (the org the thing belonged to when raised) for
// members.
func (c *Core) AlarmScope(a Actor) (OrgScope, error) {
	if !a.Authenticated() {
		return OrgScope{}, errNotLoggedIn()
	}
	return c.orgScope(a), nil
}

// orgScope is every org for admins, the orgs the actor belongs to for
// everybody else.
func (c *Core) orgScope(a Actor) OrgScope {
	if a.Admin {
		return OrgScope{all: true}
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	s := OrgScope{orgs: map[ID]struct{}{}}
	for id := range c.userOrgs[a.UserID] {
		if _, ok := c.orgs[id]; ok {
			s.orgs[id] = struct{}{}
		}
	}
	return s
}

// MQTTScope is whose MQTT clients, persistent sessions and retained
// messages the actor sees (the console's Clients view): every one for
// admins, including those of no org (the monitor, topics outside
// org/<org>/); the ones of their orgs for members. An org's objects are
// the clients that logged in with its or its devices' credentials and the
// retained messages under org/<org>/.
func (c *Core) MQTTScope(a Actor) (OrgScope, error) {
	if err := requireAuth(a); err != nil {
		return OrgScope{}, err
	}
	return c.orgScope(a), nil
}

// MayManageMQTT says whether the actor may disconnect a client of org,
// delete its persistent session or one of its retained messages: admins
// anything, members what belongs to their orgs; objects of no org (a zero
// org) are the admins' alone.
func (c *Core) MayManageMQTT(a Actor, org ID) error {
	scope, err := c.MQTTScope(a)
	if err != nil {
		return err
	}
	if !scope.Includes(org) {
		return errf(CodeForbidden, "you may only manage the MQTT clients and messages of your organizations")
	}
	return nil
}

// MayHandleAlarm says whether the actor may see and acknowledge an alarm
// of thing: admins, and members of the org the thing is in now.
func (c *Core) MayHandleAlarm(a Actor, thing ID) error {
	if !a.Authenticated() {
		return errNotLoggedIn()
	}
	if a.Admin {
		return nil
	}
	if _, err := c.Thing(a, thing); err != nil {
		return NewError(CodeForbidden, "Not allowed")
	}
	return nil
}

// MetricsScope is what a scraper sees: every metric (the appliance-wide
// token) or one organization's things (an org token).
type MetricsScope struct {
	All   bool
	OrgID ID
}

// ResolveMetricsToken decides what a scraper presenting tok sees. global
// is the appliance-wide token ("" matches nothing), compared in constant
// time on SHA-256 digests so that not even its length shows; orgOf
// resolves org tokens (nil knows none; core's OrgByMetricsToken keeps
// only their hashes). false: the token sees nothing.
func ResolveMetricsToken(global, tok string, orgOf func(tok string) (ID, bool)) (MetricsScope, bool) {
	if tok == "" {
		return MetricsScope{}, false
	}
	if global != "" {
		want, got := sha256.Sum256([]byte(global)), sha256.Sum256([]byte(tok))
		if subtle.ConstantTimeCompare(got[:], want[:]) == 1 {
			return MetricsScope{All: true}, true
		}
	}
	if orgOf != nil {
		if id, ok := orgOf(tok); ok && !id.IsZero() {
			return MetricsScope{OrgID: id}, true
		}
	}
	return MetricsScope{}, false
}

// ReadThingHistory is the one door to a thing's time series for front
// ends: read runs, with the thing, only if the actor may see it. The time
// series store lives beside core, which must not import it, so the query
// comes in as read.
func (c *Core) ReadThingHistory(a Actor, id ID, read func(t Thing) error) error {
	t, err := c.Thing(a, id)
	if err != nil {
		return err
	}
	return read(t)
}

// StatsFor returns the appliance-wide object counts to admins.
func (c *Core) StatsFor(a Actor) (Stats, error) {
	if err := requireAdmin(a); err != nil {
		return Stats{}, err
	}
	return c.Stats(), nil
}
