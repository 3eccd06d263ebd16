package core

import (
	"context"
	"sort"
	"strings"

	"github.com/piot-appliance/piot/services/store"
	"go.mongodb.org/mongo-driver/bson/primitive"
)

// Org is an organisation as callers see it. Passwords are write-only: they
// are not even copied into this type.
type Org struct {
	ID               ID
	Name             string
	Description      string
	Created          int64
	InfluxDB         string
	InfluxDBUsername string
	MySQLDB          string
	MySQLDBUsername  string
	MQTTUsername     string
}

func orgView(o *store.Org) Org {
	return Org{
		ID: o.ID, Name: o.Name, Description: o.Description, Created: o.Created,
		InfluxDB: o.InfluxDB, InfluxDBUsername: o.InfluxDBUsername,
		MySQLDB: o.MySQLDB, MySQLDBUsername: o.MySQLDBUsername,
		MQTTUsername: o.MQTTUsername,
	}
}

func sortOrgs(o []Org) { sort.Slice(o, func(i, j int) bool { return o[i].Name < o[j].Name }) }

// OrgUpdate changes an org; nil fields stay as they are.
type OrgUpdate struct {
	ID               ID
	Name             *string
	Description      *string
	InfluxDB         *string
	InfluxDBUsername *string
	InfluxDBPassword *string
	MySQLDB          *string
	MySQLDBUsername  *string
	MySQLDBPassword  *string
	MQTTUsername     *string
	MQTTPassword     *string
}

// Orgs lists the orgs the caller may see: all for admins, their own for
// members.
func (c *Core) Orgs(a Actor) ([]Org, error) {
	if err := requireAuth(a); err != nil {
		return nil, err
	}
	c.mu.RLock()
	var out []Org
	for id, o := range c.orgs {
		if c.canReadOrg(a, id) {
			out = append(out, orgView(o))
		}
	}
	c.mu.RUnlock()
	sortOrgs(out)
	return out, nil
}

// Org returns one org to an admin or a member.
func (c *Core) Org(a Actor, id ID) (Org, error) {
	if err := requireAuth(a); err != nil {
		return Org{}, err
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	o, ok := c.orgs[id]
	if !ok {
		if a.Admin {
			return Org{}, errf(CodeNotFound, "Org does not exist")
		}
		return Org{}, errForbidden
	}
	if !c.canReadOrg(a, id) {
		return Org{}, errForbidden
	}
	return orgView(o), nil
}

// OrgUsers lists the members of an org to an admin or a member.
func (c *Core) OrgUsers(a Actor, id ID) ([]User, error) {
	if _, err := c.Org(a, id); err != nil {
		return nil, err
	}
	c.mu.RLock()
	var out []User
	for uid := range c.orgUsers[id] {
		if u := c.users[uid]; u != nil {
			out = append(out, userView(u))
		}
	}
	c.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Email < out[j].Email })
	return out, nil
}

// CreateOrg adds an org (admins only).
func (c *Core) CreateOrg(ctx context.Context, a Actor, name, description string) (Org, error) {
	if err := requireAdmin(a); err != nil {
		return Org{}, err
	}
	if err := ValidName("organization", name); err != nil {
		return Org{}, err
	}
	if err := validText("description", description); err != nil {
		return Org{}, err
	}
	o := &store.Org{ID: primitive.NewObjectID(), Name: name, Description: description, Created: c.unix()}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := c.st.Orgs.Insert(ctx, o); err != nil {
		e := storeErr(err, "organization")
		if CodeOf(e) == CodeInternal {
			return Org{}, internal("error while creating organization", err)
		}
		return Org{}, e
	}
	c.mu.Lock()
	c.putOrg(o)
	c.mu.Unlock()
	c.emit(Event{Kind: OrgChanged, ID: o.ID, OldName: o.Name})
	c.audit(ctx, a, "createOrg", "org "+o.Name)
	return orgView(o), nil
}

// UpdateOrg changes an org (admins only). Renaming moves its MQTT
// namespace, so it is admin-only like everything else on orgs.
func (c *Core) UpdateOrg(ctx context.Context, a Actor, upd OrgUpdate) (Org, error) {
	if err := requireAdmin(a); err != nil {
		return Org{}, err
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.mu.RLock()
	cur, ok := c.orgs[upd.ID]
	c.mu.RUnlock()
	if !ok {
		return Org{}, errf(CodeNotFound, "Org does not exist")
	}
	n := *cur
	if upd.Name != nil {
		if err := ValidName("organization", *upd.Name); err != nil {
			return Org{}, err
		}
		n.Name = *upd.Name
	}
	texts := []struct {
		field string
		src   *string
		dst   *string
	}{
		{"description", upd.Description, &n.Description},
		{"influxdb", upd.InfluxDB, &n.InfluxDB},
		{"influxdb_username", upd.InfluxDBUsername, &n.InfluxDBUsername},
		{"influxdb_password", upd.InfluxDBPassword, &n.InfluxDBPassword},
		{"mysqldb", upd.MySQLDB, &n.MySQLDB},
		{"mysqldb_username", upd.MySQLDBUsername, &n.MySQLDBUsername},
		{"mysqldb_password", upd.MySQLDBPassword, &n.MySQLDBPassword},
		{"mqtt_username", upd.MQTTUsername, &n.MQTTUsername},
	}
	if upd.MQTTUsername != nil && *upd.MQTTUsername != "" {
		if err := validMQTTUsername(*upd.MQTTUsername); err != nil {
			return Org{}, err
		}
	}
	for _, t := range texts {
		if t.src == nil {
			continue
		}
		if strings.HasSuffix(t.field, "_password") && *t.src == "" {
			// Secrets read as "", so clients that send back what they
			// read (the original manager) must not wipe them.
			continue
		}
		if err := validText(t.field, *t.src); err != nil {
			return Org{}, err
		}
		*t.dst = *t.src
	}
	if upd.MQTTPassword != nil && *upd.MQTTPassword != "" {
		// Stored as a hash: the broker only ever needs to verify it. An
		// empty value keeps the current one, like the other secrets.
		h, err := c.hash(*upd.MQTTPassword)
		if err != nil {
			return Org{}, err
		}
		n.MQTTPassword = h
	}
	if err := update(ctx, c.st.Orgs, n.ID, cur, &n, "Org"); err != nil {
		return Org{}, err
	}
	c.mu.Lock()
	c.putOrg(&n)
	c.mu.Unlock()
	c.emit(Event{Kind: OrgChanged, ID: n.ID, OldName: cur.Name})
	c.audit(ctx, a, "updateOrg", changes("org "+cur.Name, cur, &n))
	return orgView(&n), nil
}

// DeleteOrg removes an org (admins only): its memberships go, its things
// become unassigned (and so stop being processed) rather than vanish.
func (c *Core) DeleteOrg(ctx context.Context, a Actor, id ID) error {
	if err := requireAdmin(a); err != nil {
		return err
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.mu.RLock()
	_, ok := c.orgs[id]
	var mids []ID
	for _, mid := range c.orgUsers[id] {
		mids = append(mids, mid)
	}
	var owned []Thing
	for _, t := range c.things {
		if t.OrgID == id {
			owned = append(owned, *t)
		}
	}
	c.mu.RUnlock()
	if !ok {
		return errf(CodeNotFound, "Org does not exist")
	}
	for k := range owned {
		if err := c.detach(ctx, &owned[k], func(n *Thing) { n.OrgID = primitive.NilObjectID }); err != nil {
			return err
		}
	}
	if err := c.st.Members.DeleteIDs(ctx, mids); err != nil {
		return internal("error while deleting organization", err)
	}
	if err := c.st.Orgs.Delete(ctx, id); err != nil {
		return storeErr(err, "Org")
	}
	c.mu.Lock()
	old := c.orgs[id]
	for _, mid := range mids {
		c.dropMember(mid)
	}
	c.dropOrg(id)
	c.mu.Unlock()
	for _, t := range owned {
		c.emit(Event{Kind: ThingChanged, ID: t.ID})
	}
	c.emit(Event{Kind: OrgDeleted, ID: id, OldName: old.Name})
	c.audit(ctx, a, "deleteOrg", "org "+old.Name)
	return nil
}

// AddOrgUser makes a user a member of an org (admins only).
func (c *Core) AddOrgUser(ctx context.Context, a Actor, orgID, userID ID) error {
	if err := requireAdmin(a); err != nil {
		return err
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.mu.RLock()
	org, orgOK := c.orgs[orgID]
	user, userOK := c.users[userID]
	c.mu.RUnlock()
	if !orgOK {
		return errf(CodeNotFound, "organization does not exist")
	}
	if !userOK {
		return errf(CodeNotFound, "user does not exist")
	}
	m := &store.Membership{ID: primitive.NewObjectID(), OrgID: orgID, UserID: userID, Created: c.unix()}
	if err := c.st.Members.Insert(ctx, m); err != nil {
		if e := storeErr(err, "membership"); CodeOf(e) == CodeConflict {
			return &Error{Code: CodeConflict, Msg: "User is already assigned to given organization", Err: err}
		}
		return internal("error while adding user to organization", err)
	}
	c.mu.Lock()
	c.putMember(m)
	c.mu.Unlock()
	c.emit(Event{Kind: MembershipChanged, ID: m.ID})
	c.audit(ctx, a, "addOrgUser", "user "+user.Email+" to org "+org.Name)
	return nil
}

// RemoveOrgUser ends a membership (admins only).
func (c *Core) RemoveOrgUser(ctx context.Context, a Actor, orgID, userID ID) error {
	if err := requireAdmin(a); err != nil {
		return err
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.mu.RLock()
	mid, ok := c.orgUsers[orgID][userID]
	target := c.membershipTarget(orgID, userID)
	c.mu.RUnlock()
	if !ok {
		return errf(CodeNotFound, "user is not a member of the organization")
	}
	if err := c.st.Members.Delete(ctx, mid); err != nil {
		return internal("remove user from organization failed", err)
	}
	c.mu.Lock()
	c.dropMember(mid)
	u := c.users[userID]
	c.mu.Unlock()
	// An admin may work in any org, so activeOrg keeps an admin's choice;
	// being removed from it is not a choice: the user falls back to the
	// first org they belong to, as the original did.
	if u != nil && u.ActiveOrgID == orgID {
		n := *u
		n.ActiveOrgID = primitive.NilObjectID
		if err := update(ctx, c.st.Users, n.ID, u, &n, "user"); err != nil {
			c.log.Warn("active organisation not reset after removal", "user", userID.Hex(), "err", err)
		} else {
			c.mu.Lock()
			c.putUser(&n)
			c.mu.Unlock()
		}
	}
	c.emit(Event{Kind: MembershipChanged, ID: mid})
	c.audit(ctx, a, "removeOrgUser", target)
	return nil
}

// membershipTarget names a membership in the audit trail; callers hold
// c.mu.
func (c *Core) membershipTarget(orgID, userID ID) string {
	var email, org string
	if u, ok := c.users[userID]; ok {
		email = u.Email
	}
	if o, ok := c.orgs[orgID]; ok {
		org = o.Name
	}
	return "user " + email + " from org " + org
}
