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

// Anonymous is the actor of unauthenticated calls. A function rather
// than a variable, so that no package can redefine who is anonymous.
func Anonymous() Actor { return Actor{} }

// Authenticated reports whether the actor is a logged-in user.
func (a Actor) Authenticated() bool { return !a.UserID.IsZero() }

// Login checks an email and password.
func (c *Core) Login(_ context.Context, email, password string) (Actor, error) {
	bad := errf(CodeUnauthenticated, "user identified by this email does not exist or provided credentials are wrong")
	norm, err := normEmail(email)
	if err != nil || password == "" {
		_ = bcrypt.CompareHashAndPassword(c.dummyHash(), []byte(password))
		return Anonymous(), bad
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
		return Anonymous(), bad
	}
	if bcrypt.CompareHashAndPassword(hash, []byte(password)) != nil {
		return Anonymous(), bad
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
		return Anonymous(), errf(CodeUnauthenticated, "the user of this token no longer exists")
	}
	if version != u.TokenVersion {
		return Anonymous(), errf(CodeUnauthenticated, "token was revoked by a password change")
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

// AdminAction is something only admins may do outside core's own
// operations: the appliance's maintenance (the console's System screen)
// and the console's admin actions, refused before their forms open (the
// operations refuse them again). Its text completes "only admins may …".
type AdminAction string

// The admin actions.
const (
	// ActAdminister is any of them; its refusal says only "not allowed".
	ActAdminister AdminAction = ""

	ActRegenerateTLS AdminAction = "regenerate the TLS certificate"
	ActBackup        AdminAction = "back up the appliance"
	ActRestore       AdminAction = "restore the appliance"
	ActReboot        AdminAction = "reboot the appliance"
	ActPowerOff      AdminAction = "power the appliance off"
	// ActUpdate: install an update bundle, or see the update status
	// (GET/POST /update).
	ActUpdate           AdminAction = "update the appliance"
	ActSeeOSSettings    AdminAction = "see the OS settings"
	ActChangeOSSettings AdminAction = "change the OS settings"
	// ActSeeStatus: the appliance's services, listeners and disk (the
	// web manager's status page).
	ActSeeStatus AdminAction = "see the appliance's status"
	// ActReadLogs: the process log (the console's Logs screen) names
	// every org's users, things and topics.
	ActReadLogs AdminAction = "read the appliance's logs"
	// ActReadAudit: the audit trail names every org's users and things
	// and who changed them (GraphQL auditLog, the console's Audit screen).
	ActReadAudit AdminAction = "read the audit trail"
	// ActTestWebhook: send a test request to an org's webhook.
	ActTestWebhook AdminAction = "send test webhooks"
	// ActConsolePassword: logging in to the console with a password
	// rather than an SSH key.
	ActConsolePassword AdminAction = "log in to the console with a password"

	ActCreateOrg    AdminAction = "create organizations"
	ActChangeOrg    AdminAction = "change organizations"
	ActSetOrgMQTT   AdminAction = "set MQTT credentials"
	ActAddMember    AdminAction = "add members"
	ActRemoveMember AdminAction = "remove members"
	ActCreateThing  AdminAction = "create things"
	ActAssignThing  AdminAction = "assign things to organizations"
	ActDeleteThing  AdminAction = "delete things"
	ActDeleteOrg    AdminAction = "delete organizations"

	ActSetNotifications AdminAction = "change notification settings"
	ActMetricsTokens    AdminAction = "manage metrics tokens"
	ActSetThingMQTT     AdminAction = "give devices MQTT credentials"
	// ActAuthorizedKeys: see and remove the keys of
	// <data-dir>/authorized_keys, each of which logs in to the console as
	// the first admin.
	ActAuthorizedKeys AdminAction = "manage the keys in authorized_keys"
)

// AuthorizeAdmin is the rule of the admin actions: admins only; the
// refusal names the action.
func AuthorizeAdmin(a Actor, act AdminAction) error {
	if !a.Authenticated() {
		return NewError(CodeUnauthenticated, "authentication required")
	}
	if !a.Admin {
		if act == ActAdminister {
			return errForbidden
		}
		return NewError(CodeForbidden, "only admins may "+string(act))
	}
	return nil
}

// IsAdministrator reports whether front ends should show the actor the
// admin's views: admin screens and keys, appliance-wide counts, the
// details of internal errors. It allows nothing: the operations refuse by
// themselves, and AuthorizeAdmin refuses the admin actions.
func (a Actor) IsAdministrator() bool { return a.Authenticated() && a.Admin }

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
