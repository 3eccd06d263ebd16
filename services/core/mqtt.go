package core

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"strings"
	"unicode"

	"github.com/piot-appliance/piot/services/names"
	"github.com/piot-appliance/piot/services/store"
	"golang.org/x/crypto/bcrypt"
)

// ReservedMQTTUsername is the broker's read-only $SYS monitoring identity.
const ReservedMQTTUsername = "monitor"

// MQTTCredentials are an org's MQTT username and, once, its new password.
type MQTTCredentials struct {
	Username string
	Password string
}

// ThingUsernamePrefix starts the MQTT username of a device's own
// credentials, "thing:<thing name>"; org usernames cannot contain ':'.
const ThingUsernamePrefix = names.ThingUsernamePrefix

// MQTTIdentity is who an MQTT client is after authentication.
type MQTTIdentity struct {
	OrgID   ID
	OrgName string
	// Thing is the thing name of a device's own credentials, which reach
	// only org/<org>/<thing>/…; empty for an organization's credentials.
	Thing string
	// Version changes whenever the org's MQTT username or password does,
	// so the broker can cut sessions that logged in with old credentials.
	Version string
}

func credVersion(o *store.Org) string {
	sum := sha256.Sum256([]byte(o.MQTTUsername + "\x00" + o.MQTTPassword))
	return hex.EncodeToString(sum[:8])
}

// thingCredVersion changes whenever a device's credentials or name do.
func thingCredVersion(t *Thing) string {
	sum := sha256.Sum256([]byte(ThingUsernamePrefix + t.Name + "\x00" + t.MQTTPassword + "\x00" + t.ID.Hex()))
	return hex.EncodeToString(sum[:8])
}

// validMQTTUsername refuses identities that could be confused with topic
// structure or protocol delimiters.
func validMQTTUsername(u string) error {
	if u == "" || len(u) > MaxNameLen {
		return errf(CodeBadInput, "MQTT username must have 1 to %d bytes", MaxNameLen)
	}
	for _, r := range u {
		if r == '/' || r == '+' || r == '#' || r == ':' || unicode.IsControl(r) || unicode.IsSpace(r) {
			return errf(CodeBadInput, "MQTT username must not contain '/', '+', '#', ':', spaces or control characters")
		}
	}
	if strings.HasPrefix(u, "$") {
		return errf(CodeBadInput, "MQTT username must not start with '$'")
	}
	if u == ReservedMQTTUsername {
		return errf(CodeBadInput, "MQTT username %q is reserved", u)
	}
	return nil
}

// SetOrgMQTTCredentials sets (or rotates) an org's MQTT username and
// generates a new password, returned only now; the store keeps its hash
// (admins only). Sessions using the old credentials are cut off by the
// broker when it sees the change.
func (c *Core) SetOrgMQTTCredentials(ctx context.Context, a Actor, orgID ID, username string) (MQTTCredentials, error) {
	if err := requireAdmin(a); err != nil {
		return MQTTCredentials{}, err
	}
	if err := validMQTTUsername(username); err != nil {
		return MQTTCredentials{}, err
	}
	pw, h, err := c.newMQTTPassword()
	if err != nil {
		return MQTTCredentials{}, err
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.mu.RLock()
	cur, ok := c.orgs[orgID]
	c.mu.RUnlock()
	if !ok {
		return MQTTCredentials{}, errf(CodeNotFound, "Org does not exist")
	}
	n := *cur
	n.MQTTUsername, n.MQTTPassword = username, h
	if err := update(ctx, c.st.Orgs, n.ID, cur, &n, "Org"); err != nil {
		if CodeOf(err) == CodeConflict {
			return MQTTCredentials{}, &Error{Code: CodeConflict, Msg: "this MQTT username is used by another organization", Err: err}
		}
		return MQTTCredentials{}, err
	}
	c.mu.Lock()
	c.putOrg(&n)
	c.mu.Unlock()
	c.forgetMQTT(cur.MQTTUsername)
	c.emit(Event{Kind: OrgChanged, ID: n.ID, OldName: cur.Name})
	c.audit(ctx, a, "setOrgMqttCredentials", "org "+cur.Name+" (MQTT user "+username+")")
	return MQTTCredentials{Username: username, Password: pw}, nil
}

// mqttCacheKey binds a verified password to the hash it matched, so a
// rotated password can never be served from the cache.
func mqttCacheKey(username, password, hash string) [32]byte {
	return sha256.Sum256([]byte(username + "\x00" + password + "\x00" + hash))
}

// VerifyMQTT checks an org's MQTT credentials. bcrypt makes each check
// expensive on purpose; successful checks are cached (by a hash of the
// username, password and stored hash) so reconnect storms from many
// devices of one org cost one bcrypt, not one each.
func (c *Core) VerifyMQTT(username, password string) (MQTTIdentity, bool) {
	if username == "" || password == "" {
		return MQTTIdentity{}, false
	}
	c.mu.RLock()
	ident, hash, ok := c.mqttIdentityLocked(username)
	c.mu.RUnlock()
	if !ok || hash == "" {
		_ = bcrypt.CompareHashAndPassword(c.dummyHash(), []byte(password))
		return MQTTIdentity{}, false
	}
	key := mqttCacheKey(username, password, hash)
	c.mqttMu.Lock()
	_, hit := c.mqttOK[key]
	c.mqttMu.Unlock()
	if !hit {
		if bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)) != nil {
			return MQTTIdentity{}, false
		}
		c.mqttMu.Lock()
		if len(c.mqttOK) >= 4096 {
			clear(c.mqttOK)
		}
		c.mqttOK[key] = username
		c.mqttMu.Unlock()
	}
	return ident, true
}

// VerifyMQTTCached is VerifyMQTT without bcrypt: it accepts only
// credentials verified recently. The broker uses it for addresses that
// made too many failed attempts, so that their good devices still get in.
func (c *Core) VerifyMQTTCached(username, password string) (MQTTIdentity, bool) {
	c.mu.RLock()
	ident, hash, ok := c.mqttIdentityLocked(username)
	c.mu.RUnlock()
	if !ok || hash == "" || password == "" {
		return MQTTIdentity{}, false
	}
	c.mqttMu.Lock()
	_, hit := c.mqttOK[mqttCacheKey(username, password, hash)]
	c.mqttMu.Unlock()
	return ident, hit
}

// mqttIdentityLocked resolves a username to its identity and password
// hash; callers hold c.mu. A device's credentials need the thing to be
// assigned to an organization.
func (c *Core) mqttIdentityLocked(username string) (MQTTIdentity, string, bool) {
	if name, ok := strings.CutPrefix(username, ThingUsernamePrefix); ok {
		tid, ok := c.thingByName[name]
		if !ok {
			return MQTTIdentity{}, "", false
		}
		t := c.things[tid]
		o, ok := c.orgs[t.OrgID]
		if !ok || t.MQTTPassword == "" {
			return MQTTIdentity{}, "", false
		}
		return MQTTIdentity{OrgID: o.ID, OrgName: o.Name, Thing: t.Name, Version: c.credVersions[t.ID]}, t.MQTTPassword, true
	}
	id, ok := c.orgByMQTT[username]
	if !ok {
		return MQTTIdentity{}, "", false
	}
	o := c.orgs[id]
	return MQTTIdentity{OrgID: o.ID, OrgName: o.Name, Version: c.credVersions[o.ID]}, o.MQTTPassword, true
}

// SetThingMQTTCredentials gives a device its own MQTT credentials, or new
// ones (admins only): username "thing:<name>" and a generated password,
// returned only now; the store keeps its hash. They reach only
// org/<org>/<thing>/… and only while the thing is assigned to an
// organization; rotating them, renaming, moving or deleting the thing
// cuts the sessions that used them.
func (c *Core) SetThingMQTTCredentials(ctx context.Context, a Actor, thingID ID) (MQTTCredentials, error) {
	if err := requireAdmin(a); err != nil {
		return MQTTCredentials{}, err
	}
	pw, h, err := c.newMQTTPassword()
	if err != nil {
		return MQTTCredentials{}, err
	}
	var old string
	t, err := c.editThing(ctx, a, "setThingMqttCredentials", thingID, func(cur, n *Thing) error {
		old = cur.Name
		n.MQTTPassword = h
		return nil
	})
	if err != nil {
		return MQTTCredentials{}, err
	}
	c.forgetMQTT(ThingUsernamePrefix + old)
	return MQTTCredentials{Username: ThingUsernamePrefix + t.Name, Password: pw}, nil
}

// newMQTTPassword generates a password and its hash.
func (c *Core) newMQTTPassword() (string, string, error) {
	raw := make([]byte, 18)
	if _, err := rand.Read(raw); err != nil {
		return "", "", internal("cannot generate a password", err)
	}
	pw := base64.RawURLEncoding.EncodeToString(raw)
	h, err := c.hash(pw)
	if err != nil {
		return "", "", err
	}
	return pw, h, nil
}

func (c *Core) forgetMQTT(username string) {
	c.mqttMu.Lock()
	for k, u := range c.mqttOK {
		if u == username {
			delete(c.mqttOK, k)
		}
	}
	c.mqttMu.Unlock()
}

// MQTTIdentityOf returns the current identity of an MQTT username, or false
// if it no longer exists; the broker re-checks sessions with it.
func (c *Core) MQTTIdentityOf(username string) (MQTTIdentity, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	id, hash, ok := c.mqttIdentityLocked(username)
	return id, ok && hash != ""
}

// System is the actor of the appliance's own services (ingest, adapters,
// monitor). It is never persisted and cannot log in. A function rather
// than a variable: an assignment to a package variable anywhere in the
// program would have changed what every service may do.
func System() Actor {
	// An ID no stored user can have.
	id := ID{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}
	return Actor{UserID: id, Email: "system@piot.internal", Admin: true}
}
