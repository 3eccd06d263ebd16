package core

import (
	"context"
	"sort"

	"github.com/piot-appliance/piot/services/store"
	"go.mongodb.org/mongo-driver/bson/primitive"
	"golang.org/x/crypto/bcrypt"
)

// User is a user as callers see it: the password hash never leaves core.
type User struct {
	ID      ID
	Email   string
	Created int64
	IsAdmin bool
}

func userView(u *store.User) User {
	return User{ID: u.ID, Email: u.Email, Created: u.Created, IsAdmin: u.IsAdmin}
}

// Profile is the caller's own view of themselves.
type Profile struct {
	User
	// ActiveOrgID is the org whose things `things` lists; zero if the user
	// belongs to none.
	ActiveOrgID ID
}

// UserUpdate changes a user; nil fields stay as they are.
type UserUpdate struct {
	ID       ID
	Email    *string
	Password *string
	IsAdmin  *bool
}

func (c *Core) hash(pw string) (string, error) {
	h, err := bcrypt.GenerateFromPassword([]byte(pw), c.cost)
	if err != nil {
		return "", internal("error while hashing password, try again", err)
	}
	return string(h), nil
}

// activeOrg is the user's active org if still a member, else the first of
// their orgs by name; computed on read so a removed membership can never
// leave a user looking at an org they left.
func (c *Core) activeOrg(u *store.User) ID {
	if _, ok := c.userOrgs[u.ID][u.ActiveOrgID]; ok && !u.ActiveOrgID.IsZero() {
		return u.ActiveOrgID
	}
	if _, ok := c.orgs[u.ActiveOrgID]; ok && u.IsAdmin {
		return u.ActiveOrgID
	}
	var best *store.Org
	for oid := range c.userOrgs[u.ID] {
		o := c.orgs[oid]
		if o != nil && (best == nil || o.Name < best.Name) {
			best = o
		}
	}
	if best == nil {
		return primitive.NilObjectID
	}
	return best.ID
}

// Profile returns the caller's profile.
func (c *Core) Profile(a Actor) (Profile, error) {
	if err := requireAuth(a); err != nil {
		return Profile{}, err
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	u, ok := c.users[a.UserID]
	if !ok {
		return Profile{}, errUnauthenticated
	}
	return Profile{User: userView(u), ActiveOrgID: c.activeOrg(u)}, nil
}

// ActiveOrg returns the org the caller works in (zero if none).
func (c *Core) ActiveOrg(a Actor) ID {
	p, err := c.Profile(a)
	if err != nil {
		return primitive.NilObjectID
	}
	return p.ActiveOrgID
}

// User returns one user: admins see anybody, users themselves.
func (c *Core) User(a Actor, id ID) (User, error) {
	if err := requireAuth(a); err != nil {
		return User{}, err
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	u, ok := c.users[id]
	if !c.canReadUser(a, id) {
		return User{}, errForbidden
	}
	if !ok {
		return User{}, errf(CodeNotFound, "user does not exist")
	}
	return userView(u), nil
}

// Users lists all users (admins only), by email.
func (c *Core) Users(a Actor) ([]User, error) {
	if err := requireAdmin(a); err != nil {
		return nil, err
	}
	c.mu.RLock()
	out := make([]User, 0, len(c.users))
	for _, u := range c.users {
		out = append(out, userView(u))
	}
	c.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Email < out[j].Email })
	return out, nil
}

// UserOrgs lists the orgs of a user that the caller may see.
func (c *Core) UserOrgs(a Actor, userID ID) ([]Org, error) {
	if err := requireAuth(a); err != nil {
		return nil, err
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	var out []Org
	for oid := range c.userOrgs[userID] {
		if o := c.orgs[oid]; o != nil && c.canReadOrg(a, oid) {
			out = append(out, orgView(o))
		}
	}
	sortOrgs(out)
	return out, nil
}

// CreateUser adds a user (admins only).
func (c *Core) CreateUser(ctx context.Context, a Actor, email, password string, admin bool) (User, error) {
	if err := requireAdmin(a); err != nil {
		return User{}, err
	}
	u, err := c.createUser(ctx, email, password, admin)
	if err == nil {
		c.audit(ctx, a, "createUser", userTarget(u.Email, admin))
	}
	return u, err
}

// Register creates a non-admin user through self-registration; the API
// only calls it when registration is enabled.
func (c *Core) Register(ctx context.Context, email, password string) (User, error) {
	u, err := c.createUser(ctx, email, password, false)
	if err == nil {
		c.audit(ctx, Actor{UserID: u.ID, Email: u.Email}, "register", userTarget(u.Email, false))
	}
	return u, err
}

// Bootstrap creates the first admin when there are no users at all; it is
// how the appliance provisions itself on first start. It reports false if
// users already exist.
func (c *Core) Bootstrap(ctx context.Context, email, password string) (bool, error) {
	c.mu.RLock()
	n := len(c.users)
	c.mu.RUnlock()
	if n > 0 {
		return false, nil
	}
	u, err := c.createUser(ctx, email, password, true)
	if err == nil {
		c.audit(ctx, System(), "bootstrap", userTarget(u.Email, true))
	}
	return err == nil, err
}

func (c *Core) createUser(ctx context.Context, email, password string, admin bool) (User, error) {
	norm, err := normEmail(email)
	if err != nil {
		return User{}, err
	}
	if err := validPassword(password); err != nil {
		return User{}, err
	}
	h, err := c.hash(password)
	if err != nil {
		return User{}, err
	}
	u := &store.User{ID: primitive.NewObjectID(), Email: norm, Password: h, Created: c.unix(), IsAdmin: admin}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := c.st.Users.Insert(ctx, u); err != nil {
		if e := storeErr(err, "user"); CodeOf(e) == CodeConflict {
			return User{}, &Error{Code: CodeConflict, Msg: "user identified by this email already exists", Err: err}
		}
		return User{}, internal("error while creating user, try again", err)
	}
	c.mu.Lock()
	c.putUser(u)
	c.mu.Unlock()
	c.emit(Event{Kind: UserChanged, ID: u.ID})
	return userView(u), nil
}

// UpdateUser changes a user. Admins may change anything but may not drop
// the last admin; users may change only their own password.
func (c *Core) UpdateUser(ctx context.Context, a Actor, upd UserUpdate) (User, error) {
	if err := requireAuth(a); err != nil {
		return User{}, err
	}
	if !a.Admin && (a.UserID != upd.ID || upd.Email != nil || upd.IsAdmin != nil) {
		return User{}, errForbidden
	}
	var newHash string
	if upd.Password != nil && *upd.Password != "" {
		if err := validPassword(*upd.Password); err != nil {
			return User{}, err
		}
		h, err := c.hash(*upd.Password)
		if err != nil {
			return User{}, err
		}
		newHash = h
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.mu.RLock()
	cur, ok := c.users[upd.ID]
	admins := c.adminCount()
	c.mu.RUnlock()
	if !ok {
		return User{}, errf(CodeNotFound, "User does not exist")
	}
	n := *cur
	if upd.Email != nil {
		norm, err := normEmail(*upd.Email)
		if err != nil {
			return User{}, err
		}
		n.Email = norm
	}
	if newHash != "" {
		n.Password = newHash
		// Tokens issued before the change stop working.
		n.TokenVersion++
	}
	if upd.IsAdmin != nil {
		if cur.IsAdmin && !*upd.IsAdmin && admins == 1 {
			return User{}, errf(CodeBadInput, "cannot remove the last admin")
		}
		n.IsAdmin = *upd.IsAdmin
	}
	if err := update(ctx, c.st.Users, n.ID, cur, &n, "User"); err != nil {
		if CodeOf(err) == CodeConflict {
			return User{}, &Error{Code: CodeConflict, Msg: "User of such email already exists", Err: err}
		}
		return User{}, err
	}
	c.mu.Lock()
	c.putUser(&n)
	c.mu.Unlock()
	c.emit(Event{Kind: UserChanged, ID: n.ID})
	// The password hash shows as "password", the token version as what a
	// password change revokes.
	c.audit(ctx, a, "updateUser", changes("user "+cur.Email, cur, &n))
	return userView(&n), nil
}

func (c *Core) adminCount() int {
	n := 0
	for _, u := range c.users {
		if u.IsAdmin {
			n++
		}
	}
	return n
}

// DeleteUser removes a user and their memberships (admins only; nobody can
// delete themselves, which also protects the last admin).
func (c *Core) DeleteUser(ctx context.Context, a Actor, id ID) error {
	if err := requireAdmin(a); err != nil {
		return err
	}
	if id == a.UserID {
		return errf(CodeBadInput, "you cannot delete yourself")
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.mu.RLock()
	gone, ok := c.users[id]
	var mids []ID
	for _, mid := range c.userOrgs[id] {
		mids = append(mids, mid)
	}
	c.mu.RUnlock()
	if !ok {
		return errf(CodeNotFound, "user does not exist")
	}
	// Memberships first: a crash in between leaves a user without orgs,
	// never memberships pointing at nobody.
	if err := c.st.Members.DeleteIDs(ctx, mids); err != nil {
		return internal("error while deleting user", err)
	}
	if err := c.st.Users.Delete(ctx, id); err != nil {
		return storeErr(err, "user")
	}
	c.mu.Lock()
	for _, mid := range mids {
		c.dropMember(mid)
	}
	c.dropUser(id)
	c.mu.Unlock()
	c.emit(Event{Kind: UserDeleted, ID: id})
	c.audit(ctx, a, "deleteUser", "user "+gone.Email)
	return nil
}

// SetActiveOrg switches the caller's active org among their own orgs
// (admins: any org).
func (c *Core) SetActiveOrg(ctx context.Context, a Actor, org ID) (Profile, error) {
	if err := requireAuth(a); err != nil {
		return Profile{}, err
	}
	c.wmu.Lock()
	c.mu.RLock()
	cur, ok := c.users[a.UserID]
	_, exists := c.orgs[org]
	member := c.isMember(a, org)
	c.mu.RUnlock()
	if !ok {
		c.wmu.Unlock()
		return Profile{}, errUnauthenticated
	}
	if !exists && !org.IsZero() {
		c.wmu.Unlock()
		if a.Admin {
			return Profile{}, errf(CodeNotFound, "organization does not exist")
		}
		return Profile{}, errForbidden
	}
	if !member && !a.Admin && !org.IsZero() {
		c.wmu.Unlock()
		return Profile{}, errForbidden
	}
	n := *cur
	n.ActiveOrgID = org
	err := update(ctx, c.st.Users, n.ID, cur, &n, "user")
	if err == nil {
		c.mu.Lock()
		c.putUser(&n)
		c.mu.Unlock()
	}
	c.wmu.Unlock()
	if err != nil {
		return Profile{}, err
	}
	c.audit(ctx, a, "updateUserProfile", "active org of user "+cur.Email+" to "+c.orgLabel(org))
	return c.Profile(a)
}

// userTarget names a new user in the audit trail.
func userTarget(email string, admin bool) string {
	if admin {
		return "user " + email + " (admin)"
	}
	return "user " + email
}

// orgLabel names an org in the audit trail, "none" for no org.
func (c *Core) orgLabel(id ID) string {
	if name, ok := c.OrgNameOf(id); ok {
		return "org " + name
	}
	return "none"
}
