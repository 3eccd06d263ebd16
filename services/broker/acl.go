package broker

import (
	"strings"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/piot-appliance/piot/services/core"
)

// OnACLCheck is called by mochi for every SUBSCRIBE filter, every inbound
// PUBLISH and every delivery to a subscriber, retained replays included.
// Each decision about a network client is counted.
func (p *policy) OnACLCheck(cl *mqtt.Client, topic string, write bool) bool {
	if cl.Net.Inline {
		return true // the appliance's own services
	}
	allow := p.aclDecide(cl, topic, write)
	p.counts.countACL(write, allow)
	return allow
}

func (p *policy) aclDecide(cl *mqtt.Client, topic string, write bool) bool {
	if !p.healthy() {
		return false // fail closed: the rights cannot be confirmed
	}
	id, ok := p.ids.get(cl)
	if !ok {
		return false
	}
	return p.permits(id, topic, write)
}

// permits is the ACL: an org identity may read and write only under
// org/<its org name>/ (both levels literal, wildcards only below), a
// device's own identity only under org/<org>/<thing>/, and only while its
// credentials, org and thing name are those it logged in with; the
// monitor identity may only read $SYS.
func (p *policy) permits(id *identity, topic string, write bool) bool {
	if strings.IndexByte(topic, 0) >= 0 {
		return false
	}
	if !write {
		topic = unshare(topic)
	}
	switch id.kind {
	case kindMonitor:
		return core.MonitorReaches(topic, write)
	case kindOrg:
		cur, ok := p.core.MQTTIdentityOf(id.username)
		if !ok || cur != id.org {
			return false // rotated, moved, renamed or deleted since login
		}
		return cur.Reaches(topic)
	}
	return false
}

// unshare strips the "$share/<group>/" prefix of a shared subscription so
// the ACL judges the filter that is actually matched.
func unshare(filter string) string {
	rest, ok := strings.CutPrefix(filter, "$share/")
	if !ok {
		return filter
	}
	if _, f, found := strings.Cut(rest, "/"); found {
		return f
	}
	return filter
}

// OnWill re-checks a will message when it is about to be sent: the client
// may have lost its rights since CONNECT (credentials rotated, org renamed
// or deleted). mochi cannot cancel a will from a hook, so a refused will is
// emptied: a message with no topic matches no subscription.
func (p *policy) OnWill(cl *mqtt.Client, will mqtt.Will) (mqtt.Will, error) {
	id, ok := p.ids.get(cl)
	if !ok || !p.healthy() || !p.permits(id, will.TopicName, true) {
		p.log.Info("mqtt will dropped", "client", cl.ID, "topic", will.TopicName)
		return mqtt.Will{}, nil
	}
	if will.Retain && len(will.Payload) > 0 {
		_, exists := p.server.Topics.Retained.Get(will.TopicName)
		if !exists && p.server.Topics.Retained.Len() >= p.maxRetained {
			p.log.Warn("retained message limit reached", "client", cl.ID, "topic", will.TopicName, "limit", p.maxRetained)
			will.Retain = false
		}
	}
	return will, nil
}

// OnPublish counts a client's publish by QoS and applies the retained
// message quota; the ACL has already run.
//
// It also makes a network client wait while a subscriber its messages
// reach is congested (pace.go). It runs on the client's reading
// goroutine, so waiting holds this publish and the packets after it.
func (p *policy) OnPublish(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	if !cl.Net.Inline {
		p.counts.countPublish(pk.FixedHeader.Qos)
		if p.pacer.active.Load() > 0 {
			if lc, ok := cl.Net.Conn.(*limitConn); ok {
				p.pacer.pace(cl.ID, &lc.budget)
			}
		}
	}
	return p.retainQuota(cl, pk)
}

// OnPacketEncode tells MQTT 5 clients the limits in CONNACK; mochi does
// not announce them itself, and a client that knows them can avoid being
// disconnected. It links the publisher of a QoS 0 delivery to a
// congested subscriber (pace.go).
//
// It also counts the "server busy" refusals, which mochi decides (and
// answers) before any hook sees the CONNECT.
func (p *policy) OnPacketEncode(cl *mqtt.Client, pk packets.Packet) packets.Packet {
	if pk.FixedHeader.Type == packets.Publish {
		// A QoS 0 delivery to a congested subscriber: its publisher is
		// to wait for it (pace.go).
		if lc, ok := cl.Net.Conn.(*limitConn); ok && pk.FixedHeader.Qos == 0 && lc.congested.Load() {
			p.pacer.link(pk.Origin, lc.heldWriter)
		}
		return pk
	}
	if pk.FixedHeader.Type != packets.Connack {
		return pk
	}
	if pk.ReasonCode != packets.CodeSuccess.Code {
		busy := pk.ReasonCode == packets.ErrServerBusy.Code ||
			(cl.Properties.ProtocolVersion < 5 && pk.ReasonCode == packets.Err3ServerUnavailable.Code)
		if _, ours := p.refusing.Load(cl); busy && !ours {
			p.counts.countAuth(AuthServerBusy)
		}
		return pk
	}
	if cl.Properties.ProtocolVersion < 5 {
		return pk
	}
	pk.Properties.MaximumPacketSize = p.server.Options.Capabilities.MaximumPacketSize
	pk.Properties.TopicAliasMaximum = p.server.Options.Capabilities.TopicAliasMaximum
	return pk
}

// OnPacketRead answers a client's publish to $SYS/…, which mochi drops
// without an acknowledgement (a QoS 1 publisher then waits forever):
// MQTT 5 gets PUBACK/PUBREC 0x87 (not authorized), MQTT 3.1.1, which has
// no way to say no, is disconnected. QoS 0 needs no answer.
//
// It also refuses an MQTT 3.1.1 client's QoS 1/2 publish that the ACL
// denies by closing the connection: mochi would send a DISCONNECT packet,
// which 3.1.1 does not allow a server to send and some clients choke on.
//
// And it resolves an MQTT 5 topic alias first: mochi checks the ACL
// before resolving it, so a publish that carries only the alias was
// checked against an empty topic and refused (0x87).
func (p *policy) OnPacketRead(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	if pk.FixedHeader.Type != packets.Publish || cl.Net.Inline {
		return pk, nil
	}
	if pk.TopicName == "" && pk.Properties.TopicAliasFlag && pk.Properties.TopicAlias > 0 &&
		pk.Properties.TopicAlias <= topicAliasMaximum {
		pk.TopicName = cl.State.TopicAliases.Inbound.Set(pk.Properties.TopicAlias, "")
	}
	if pk.FixedHeader.Qos == 0 {
		return pk, nil
	}
	if !strings.HasPrefix(pk.TopicName, "$") {
		// Only a refusal is decided and counted here; an allowed publish
		// is checked and counted once, by mochi.
		if cl.Properties.ProtocolVersion < 5 && !p.aclDecide(cl, pk.TopicName, true) {
			p.counts.countACL(true, false)
			return pk, packets.ErrRejectPacket
		}
		return pk, nil
	}
	if cl.Properties.ProtocolVersion < 5 {
		p.log.Info("MQTT 3.1.1 publish to a $ topic refused; disconnecting", "client", cl.ID, "topic", pk.TopicName)
		return pk, packets.ErrRejectPacket
	}
	ack := packets.Puback
	if pk.FixedHeader.Qos == 2 {
		ack = packets.Pubrec
	}
	err := cl.WritePacket(packets.Packet{
		FixedHeader: packets.FixedHeader{Type: ack},
		PacketID:    pk.PacketID,
		ReasonCode:  packets.ErrNotAuthorized.Code,
		Properties:  packets.Properties{ReasonString: "$ topics are the broker's"},
	})
	// mochi drops the publish itself (IsValidFilter), after this answer.
	return pk, err
}
