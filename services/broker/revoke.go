package broker

import (
	"strings"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/piot-appliance/piot/services/core"
)

// onCoreEvent reacts to configuration changes: sessions whose credentials
// were rotated, or whose org was renamed or deleted, are cut at once
// instead of at their next reconnect, and retained messages left in a
// namespace nobody owns any more are removed so that a future org of the
// same name cannot read them.
func (b *Broker) onCoreEvent(e core.Event) {
	switch e.Kind {
	case core.OrgChanged, core.OrgDeleted:
	case core.ThingChanged, core.ThingDeleted:
		// A device's own credentials: rotated, or the thing renamed,
		// moved or deleted.
		b.recheckDevices()
		return
	default:
		return
	}
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.stopped {
		return
	}
	if e.OldName != "" {
		name, exists := b.core.OrgNameOf(e.ID)
		if e.Kind == core.OrgDeleted || !exists || name != e.OldName {
			b.clearRetained("org/" + e.OldName + "/")
		}
	}
	for _, id := range b.policy.ids.all() {
		if id.kind != kindOrg {
			continue
		}
		if cur, ok := b.core.MQTTIdentityOf(id.username); ok && cur == id.org {
			continue
		}
		b.log.Info("mqtt session revoked: credentials or org changed", "client", id.client.ID, "username", id.username)
		b.expireSession(id.client)
	}
}

// recheckDevices cuts the sessions of device credentials that changed.
func (b *Broker) recheckDevices() {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.stopped {
		return
	}
	for _, id := range b.policy.ids.all() {
		if id.kind != kindOrg || id.org.Thing == "" {
			continue
		}
		if cur, ok := b.core.MQTTIdentityOf(id.username); ok && cur == id.org {
			continue
		}
		b.log.Info("mqtt session revoked: device credentials or thing changed", "client", id.client.ID, "username", id.username)
		b.expireSession(id.client)
	}
}

// expireSession ends a session for good: the connection (if any) is cut
// without its will, and its subscriptions, queued messages and persisted
// record are removed.
func (b *Broker) expireSession(cl *mqtt.Client) {
	// Without an identity the ACL denies everything from now on, and
	// OnWill drops the will the disconnect below would otherwise send.
	b.policy.ids.drop(cl)
	if !cl.Closed() {
		if cl.Properties.ProtocolVersion == 5 {
			_ = b.server.DisconnectClient(cl, packets.ErrNotAuthorized)
		} else {
			cl.Stop(packets.ErrNotAuthorized) // 3.1.1 has no server DISCONNECT
		}
	}
	b.server.UnsubscribeClient(cl)
	cl.ClearInflights()
	if cur, ok := b.server.Clients.Get(cl.ID); ok && cur == cl {
		b.server.Clients.Delete(cl.ID)
	}
	if b.sessions != nil {
		b.sessions.forget(cl)
	}
}

// clearRetained deletes every retained message under a topic prefix, in
// memory and on disk.
func (b *Broker) clearRetained(prefix string) {
	n := 0
	for topic := range b.server.Topics.Retained.GetAll() {
		if !strings.HasPrefix(topic, prefix) {
			continue
		}
		b.forgetRetained(topic)
		n++
	}
	if n > 0 {
		b.log.Info("retained messages of a removed org namespace deleted", "prefix", prefix, "count", n)
	}
}

// adoptRestored gives the sessions restored from disk the identity their
// username has now; their login-time version is not persisted. Sessions
// whose username no longer resolves, or that predate namespaced client
// IDs, are discarded. Runs before the listeners accept anyone.
func (b *Broker) adoptRestored() {
	for _, cl := range b.server.Clients.GetAll() {
		if cl.Net.Inline {
			continue
		}
		username := string(cl.Properties.Username)
		if !strings.HasPrefix(cl.ID, username+"/") || !validUsername(username) {
			b.expireSession(cl)
			continue
		}
		if len(b.policy.monitorPassword) > 0 && username == MonitorUsername {
			b.policy.ids.set(cl, &identity{kind: kindMonitor, username: username})
			continue
		}
		org, ok := b.core.MQTTIdentityOf(username)
		if !ok {
			b.log.Info("persisted mqtt session discarded: username unknown", "client", cl.ID)
			b.expireSession(cl)
			continue
		}
		b.policy.ids.set(cl, &identity{kind: kindOrg, username: username, org: org})
	}
}
