// Package core holds the domain operations on users, organisations and
// things, and every authorization rule. The GraphQL API, the console and
// the web pages call it as the logged-in Actor, so a rule written here
// holds everywhere.
//
// The store is the source of truth; core keeps all configuration in memory
// (loaded once at start, updated on every write) because FerretDB on SQLite
// can only look documents up by `_id` without scanning. Writes are
// serialized: each one goes to the store first and then to memory, so the
// memory never shows something the store refused.
package core

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/piot-appliance/piot/services/store"
	"golang.org/x/crypto/bcrypt"
)

// Config tunes the core.
type Config struct {
	// BcryptCost for password hashes; 0 means bcrypt.DefaultCost+2 (12).
	BcryptCost int
	// AuditRetention is how long audit entries are kept (0: 90 days);
	// AuditMaxEntries the most kept, the oldest dropped first (0: 100 000).
	AuditRetention  time.Duration
	AuditMaxEntries int
	// Now is the clock; nil means time.Now.
	Now    func() time.Time
	Logger *slog.Logger
}

// Core is the domain layer.
type Core struct {
	st   *store.Store
	cost int
	now  func() time.Time
	log  *slog.Logger

	// dummyHash makes logins for unknown emails cost as much as for known
	// ones, so response times do not reveal which emails exist. It is made
	// at the first use: at cost 12 hashing takes a quarter second here and
	// seconds on a small board, too much for the start-up path (the first
	// unknown email costs one hash more, once).
	dummyHash func() []byte

	wmu sync.Mutex // serializes writes: store first, then memory

	subMu sync.Mutex
	subs  []*subscriber

	watchers stateWatchers // WatchState

	auditStats      auditStats
	auditRetention  time.Duration
	auditMaxEntries int

	cmdMu sync.Mutex
	cmd   CommandPublisher

	mqttMu sync.Mutex
	mqttOK map[[32]byte]string // verified MQTT credentials -> username

	mu          sync.RWMutex
	users       map[ID]*store.User
	userByEmail map[string]ID
	orgs        map[ID]*store.Org
	orgByName   map[string]ID
	orgByMQTT   map[string]ID // MQTT username -> org
	members     map[ID]*store.Membership
	orgUsers    map[ID]map[ID]ID // org -> user -> membership
	userOrgs    map[ID]map[ID]ID // user -> org -> membership
	things      map[ID]*Thing
	thingByName map[string]ID
	thingByPiot map[string]ID
	keyed       map[ID]struct{} // things with their own AES key
	// credVersions are the MQTT credential versions of orgs and devices
	// (by id), computed on change: the broker asks on every ACL check.
	credVersions map[ID]string
	dirty        map[ID]struct{} // things whose state awaits FlushState
	// flushMu orders the writes of state pages: a page is snapshot and
	// written under it, so an older snapshot never lands after a newer.
	flushMu sync.Mutex
	// revoked are signed-out tokens (by jti) with their expiry.
	revoked map[ID]int64
}

// New loads the in-memory indexes from the store.
func New(ctx context.Context, st *store.Store, cfg Config) (*Core, error) {
	c := &Core{
		st:           st,
		cost:         cfg.BcryptCost,
		now:          cfg.Now,
		log:          cfg.Logger,
		users:        map[ID]*store.User{},
		userByEmail:  map[string]ID{},
		orgs:         map[ID]*store.Org{},
		orgByName:    map[string]ID{},
		orgByMQTT:    map[string]ID{},
		members:      map[ID]*store.Membership{},
		orgUsers:     map[ID]map[ID]ID{},
		userOrgs:     map[ID]map[ID]ID{},
		things:       map[ID]*Thing{},
		thingByName:  map[string]ID{},
		thingByPiot:  map[string]ID{},
		keyed:        map[ID]struct{}{},
		credVersions: map[ID]string{},
		mqttOK:       map[[32]byte]string{},
		revoked:      map[ID]int64{},

		auditStats:      auditStats{recorded: map[string]uint64{}},
		auditRetention:  cfg.AuditRetention,
		auditMaxEntries: cfg.AuditMaxEntries,
	}
	if c.auditRetention <= 0 {
		c.auditRetention = DefaultAuditRetention
	}
	if c.auditMaxEntries <= 0 {
		c.auditMaxEntries = DefaultAuditMaxEntries
	}
	if c.cost == 0 {
		c.cost = bcrypt.DefaultCost + 2
	}
	if c.cost < bcrypt.MinCost || c.cost > bcrypt.MaxCost {
		return nil, fmt.Errorf("core: bcrypt cost %d out of range", c.cost)
	}
	if c.now == nil {
		c.now = time.Now
	}
	cost := c.cost
	c.dummyHash = sync.OnceValue(func() []byte {
		h, err := bcrypt.GenerateFromPassword([]byte("not the password of anybody"), cost)
		if err != nil {
			panic(fmt.Sprintf("core: bcrypt: %v", err)) // only for a cost out of range, checked above
		}
		return h
	})
	if c.log == nil {
		c.log = slog.Default()
	}
	if err := st.Users.Each(ctx, func(u *store.User) error { c.putUser(u); return nil }); err != nil {
		return nil, fmt.Errorf("core: load users: %w", err)
	}
	if err := st.Orgs.Each(ctx, func(o *store.Org) error { c.putOrg(o); return nil }); err != nil {
		return nil, fmt.Errorf("core: load orgs: %w", err)
	}
	if err := st.Members.Each(ctx, func(m *store.Membership) error { c.putMember(m); return nil }); err != nil {
		return nil, fmt.Errorf("core: load memberships: %w", err)
	}
	if err := st.Things.Each(ctx, func(d *store.Thing) error { c.putThing(thingFromDoc(d)); return nil }); err != nil {
		return nil, fmt.Errorf("core: load things: %w", err)
	}
	if err := c.loadPages(ctx); err != nil {
		return nil, fmt.Errorf("core: load thing state: %w", err)
	}
	if err := c.loadRevoked(ctx); err != nil {
		return nil, fmt.Errorf("core: load revoked tokens: %w", err)
	}
	c.log.Info("core loaded", "users", len(c.users), "orgs", len(c.orgs), "things", len(c.things))
	return c, nil
}

func (c *Core) unix() int64 { return c.now().Unix() }

// The put/drop helpers keep the secondary indexes consistent; callers hold
// c.mu for writing (or are in New).

func (c *Core) putUser(u *store.User) {
	if old, ok := c.users[u.ID]; ok {
		delete(c.userByEmail, old.Email)
	}
	c.users[u.ID] = u
	c.userByEmail[u.Email] = u.ID
}

func (c *Core) dropUser(id ID) {
	if old, ok := c.users[id]; ok {
		delete(c.userByEmail, old.Email)
		delete(c.users, id)
	}
}

func (c *Core) putOrg(o *store.Org) {
	if old, ok := c.orgs[o.ID]; ok {
		delete(c.orgByName, old.Name)
		delete(c.orgByMQTT, old.MQTTUsername)
	}
	c.orgs[o.ID] = o
	c.orgByName[o.Name] = o.ID
	if o.MQTTUsername != "" {
		c.orgByMQTT[o.MQTTUsername] = o.ID
	}
	c.credVersions[o.ID] = credVersion(o)
}

func (c *Core) dropOrg(id ID) {
	if old, ok := c.orgs[id]; ok {
		delete(c.orgByName, old.Name)
		delete(c.orgByMQTT, old.MQTTUsername)
		delete(c.orgs, id)
		delete(c.credVersions, id)
	}
}

func (c *Core) putMember(m *store.Membership) {
	c.members[m.ID] = m
	if c.orgUsers[m.OrgID] == nil {
		c.orgUsers[m.OrgID] = map[ID]ID{}
	}
	c.orgUsers[m.OrgID][m.UserID] = m.ID
	if c.userOrgs[m.UserID] == nil {
		c.userOrgs[m.UserID] = map[ID]ID{}
	}
	c.userOrgs[m.UserID][m.OrgID] = m.ID
}

func (c *Core) dropMember(id ID) {
	m, ok := c.members[id]
	if !ok {
		return
	}
	delete(c.members, id)
	delete(c.orgUsers[m.OrgID], m.UserID)
	delete(c.userOrgs[m.UserID], m.OrgID)
}

// putThing stores a copy of t: the map's things are changed in place
// under c.mu (UpdateThingState), so no caller may keep one of them.
func (c *Core) putThing(t *Thing) {
	if old, ok := c.things[t.ID]; ok {
		delete(c.thingByName, old.Name)
		if old.PiotID != "" {
			delete(c.thingByPiot, old.PiotID)
		}
	}
	cp := *t
	c.things[t.ID] = &cp
	c.thingByName[t.Name] = t.ID
	if t.PiotID != "" {
		c.thingByPiot[t.PiotID] = t.ID
	}
	if t.AESKey != "" {
		c.keyed[t.ID] = struct{}{}
	} else {
		delete(c.keyed, t.ID)
	}
	if t.MQTTPassword != "" {
		c.credVersions[t.ID] = thingCredVersion(t)
	} else {
		delete(c.credVersions, t.ID)
	}
}

func (c *Core) dropThing(id ID) {
	if old, ok := c.things[id]; ok {
		delete(c.thingByName, old.Name)
		if old.PiotID != "" {
			delete(c.thingByPiot, old.PiotID)
		}
		delete(c.things, id)
		delete(c.keyed, id)
		delete(c.credVersions, id)
	}
}

// Ready reports whether the store answers; used by /readyz.
func (c *Core) Ready(ctx context.Context) error { return c.st.Ping(ctx) }

// Stats are counts for health pages and metrics.
type Stats struct{ Users, Orgs, Things int }

// Stats returns object counts.
func (c *Core) Stats() Stats {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return Stats{Users: len(c.users), Orgs: len(c.orgs), Things: len(c.things)}
}
