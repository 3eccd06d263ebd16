package broker

import (
	"bytes"
	"crypto/subtle"
	"log/slog"
	"net"
	"strings"
	"sync"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/piot-appliance/piot/internal/ratelimit"
	"github.com/piot-appliance/piot/services/core"
)

// policy is the broker's only authentication and authorization hook. mochi
// grants access when ANY hook allows it, so AddHook refuses other hooks
// that provide OnConnectAuthenticate or OnACLCheck: the rules live here
// alone. Its methods are spread over auth.go (who may connect), acl.go
// (what they may touch), limits.go (quotas) and revoke.go (cutting
// sessions that lost their rights).
type policy struct {
	mqtt.HookBase
	server          *mqtt.Server
	core            *core.Core
	healthy         func() bool
	monitorPassword []byte
	maxKeepalive    uint16
	strictKeepalive bool
	maxRetained     int
	failures        *ratelimit.Buckets // failed logins per source address
	ids             *identities
	log             *slog.Logger
	// expire removes a session and its persisted state; set by the broker
	// once the storage hook exists.
	expire func(cl *mqtt.Client)
	// counts are the auth, ACL and publish counters (stats.go).
	counts policyCounters
	// refusing holds the clients whose refusal CONNACK the policy is
	// sending, so OnPacketEncode can tell mochi's own refusals apart.
	refusing sync.Map // *mqtt.Client -> struct{}
	// pacer makes publishers wait for congested subscribers (pace.go).
	pacer *pacer
}

// ID names the hook in mochi's logs.
func (p *policy) ID() string { return "piot-policy" }

// Provides lists the hook points the policy uses.
func (p *policy) Provides(b byte) bool {
	switch b {
	case mqtt.OnConnect, mqtt.OnConnectAuthenticate, mqtt.OnACLCheck,
		mqtt.OnWill, mqtt.OnPublish, mqtt.OnPacketEncode, mqtt.OnPacketRead,
		mqtt.OnDisconnect, mqtt.OnClientExpired:
		return true
	}
	return false
}

// CONNACK refusals. mochi translates only some MQTT 5 codes to 3.1.1
// return codes (and maps "bad username or password" to "not authorized"),
// so the policy sends its own CONNACK with the right code per version.
type refusal struct {
	v5     packets.Code
	v3     byte
	result string // key of Stats.AuthResults; "" for refusals that are not about authentication
}

var (
	refuseBadCredentials = refusal{packets.ErrBadUsernameOrPassword, 4, AuthBadCredentials}
	refuseNotAuthorized  = refusal{packets.ErrNotAuthorized, 5, AuthNotAuthorized}
	refuseUnavailable    = refusal{packets.ErrServerUnavailable, 3, AuthUnavailable}
	refuseKeepalive      = refusal{packets.ErrClientIdentifierNotValid, 2, ""}
	// Not "bad credentials": the password was not even checked.
	refuseTooManyFailed = refusal{packets.ErrNotAuthorized, 5, AuthRateLimited}
)

// refuse answers CONNECT with a failure CONNACK and returns the error that
// makes mochi close the connection without sending a CONNACK of its own.
func (p *policy) refuse(cl *mqtt.Client, r refusal, why string) error {
	code := r.v5
	if cl.Properties.ProtocolVersion < 5 {
		// Codes below 0x80 take mochi's success path, which writes the
		// byte as the 3.1.1 return code unchanged.
		code = packets.Code{Code: r.v3, Reason: r.v5.Reason}
	}
	p.log.Info("mqtt connection refused", "remote", cl.Net.Remote, "listener", cl.Net.Listener,
		"username", printable(string(cl.Properties.Username)), "reason", why)
	if r.result != "" {
		p.counts.countAuth(r.result)
	}
	p.refusing.Store(cl, struct{}{})
	_ = p.server.SendConnack(cl, code, false, nil)
	p.refusing.Delete(cl)
	return r.v5
}

// OnConnect authenticates the client. It runs before mochi's own
// OnConnectAuthenticate step so that it can choose the CONNACK code.
func (p *policy) OnConnect(cl *mqtt.Client, pk packets.Packet) error {
	if !p.healthy() {
		return p.refuse(cl, refuseUnavailable, "store unavailable")
	}
	username := string(pk.Connect.Username)
	if !pk.Connect.UsernameFlag || username == "" || !pk.Connect.PasswordFlag {
		return p.refuse(cl, refuseNotAuthorized, "anonymous")
	}
	if !validUsername(username) {
		return p.refuse(cl, refuseBadCredentials, "malformed username")
	}
	if !clampKeepalive(cl, p.maxKeepalive, p.strictKeepalive) {
		return p.refuse(cl, refuseKeepalive, "keepalive not allowed")
	}

	var id *identity
	if len(p.monitorPassword) > 0 && username == MonitorUsername {
		if subtle.ConstantTimeCompare(pk.Connect.Password, p.monitorPassword) != 1 {
			return p.refuse(cl, refuseBadCredentials, "bad password")
		}
		id = &identity{kind: kindMonitor, username: username}
	} else {
		addr := remoteHost(cl.Net.Remote)
		var org core.MQTTIdentity
		var ok bool
		if p.failures.Blocked(addr) {
			// Only credentials verified before, which cost no bcrypt.
			if org, ok = p.core.VerifyMQTTCached(username, string(pk.Connect.Password)); !ok {
				return p.refuse(cl, refuseTooManyFailed, "too many failed logins from this address")
			}
		} else if org, ok = p.core.VerifyMQTT(username, string(pk.Connect.Password)); !ok {
			p.failures.Allow(addr)
			return p.refuse(cl, refuseBadCredentials, "bad credentials")
		}
		id = &identity{kind: kindOrg, username: username, org: org}
	}

	if cl.Properties.Will.Flag == 1 && !p.permits(id, cl.Properties.Will.TopicName, true) {
		// Refused rather than silently dropped, as mosquitto does, so the
		// device owner learns about the misconfiguration.
		return p.refuse(cl, refuseNotAuthorized, "will topic not allowed")
	}

	// Client IDs are global in MQTT, so without a namespace one org could
	// take over (and read the queued messages of) another org's session,
	// or the broker's internal client, just by reusing its client ID.
	cl.ID = username + "/" + cl.ID

	p.inheritCheck(cl, id)
	p.ids.set(cl, id)
	if id.kind == kindOrg {
		// Credentials rotated between VerifyMQTT and set: the revocation
		// event may already have scanned the sessions without this one.
		if cur, ok := p.core.MQTTIdentityOf(username); !ok || cur != id.org {
			p.ids.drop(cl)
			return p.refuse(cl, refuseBadCredentials, "credentials changed during login")
		}
	}
	p.counts.countAuth(AuthOK)
	return nil
}

// inheritCheck ends an existing session of the same client ID whose
// identity does not match the new login's org, before mochi hands its
// subscriptions and queued messages to the new client. With namespaced
// client IDs this only happens when an org was renamed or its MQTT
// username moved to another org; resumed messages are not re-checked by
// mochi, so they must not be resumed at all.
func (p *policy) inheritCheck(cl *mqtt.Client, id *identity) {
	old, ok := p.server.Clients.Get(cl.ID)
	if !ok {
		return
	}
	prev, ok := p.ids.peek(cl.ID)
	if ok && prev.client == old && prev.kind == id.kind && prev.org.OrgID == id.org.OrgID && prev.org.OrgName == id.org.OrgName {
		return
	}
	p.log.Info("mqtt session discarded: identity changed", "client", cl.ID)
	p.expire(old)
}

// OnConnectAuthenticate confirms what OnConnect decided.
func (p *policy) OnConnectAuthenticate(cl *mqtt.Client, _ packets.Packet) bool {
	_, ok := p.ids.get(cl)
	return ok
}

// OnDisconnect forgets the identity of a session that ends with its
// connection (clean session / zero session expiry), and what the
// connection was waiting for as a publisher.
func (p *policy) OnDisconnect(cl *mqtt.Client, _ error, expire bool) {
	p.pacer.forget(cl.ID)
	if expire && !cl.IsTakenOver() {
		p.ids.drop(cl)
	}
}

// OnClientExpired forgets an expired persistent session. mochi only drops
// the client record; its subscriptions would stay in the topic index and,
// like its queued messages, on disk for ever.
func (p *policy) OnClientExpired(cl *mqtt.Client) {
	p.ids.drop(cl)
	p.server.UnsubscribeClient(cl)
	cl.ClearInflights()
}

// validUsername refuses names that could be confused with topic structure
// (the ACL builds topics from org names, never from usernames, but a
// username also prefixes the session namespace).
func validUsername(u string) bool {
	return !strings.ContainsAny(u, "+#/\x00")
}

// remoteHost is the address part of a client's remote address.
func remoteHost(remote string) string {
	if host, _, err := net.SplitHostPort(remote); err == nil {
		return host
	}
	return remote
}

// printable shortens and sanitizes an untrusted name for logs.
func printable(s string) string {
	if len(s) > 64 {
		s = s[:64]
	}
	return string(bytes.ToValidUTF8([]byte(s), []byte("?")))
}
