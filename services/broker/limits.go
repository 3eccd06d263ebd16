package broker

import (
	"math"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// Defaults for the limits in Config. Every limit is explicit so that a
// misbehaving or hostile client meets a documented MQTT reason code instead
// of exhausting the appliance's memory.
const (
	// DefaultMaxPacketSize bounds one MQTT packet (fixed header included).
	// Sensor readings are tiny; 256 KiB leaves room for batched uplinks from
	// the edge adapter while keeping one packet far below the memory of a
	// small board. Larger packets end the connection (MQTT 5: DISCONNECT
	// 0x95 "packet too large").
	DefaultMaxPacketSize = 256 << 10
	// DefaultMaxClients bounds concurrent connections. Beyond it CONNACK
	// says 0x89 "server busy" (MQTT 5) or 3 "server unavailable" (3.1.1).
	DefaultMaxClients = 1000
	// DefaultMaxInflight bounds the QoS 1/2 messages queued per session,
	// both for a connected client that is slow to acknowledge and for a
	// persistent session that is offline. Beyond it messages to that
	// session are dropped (counted in $SYS/broker/messages/dropped).
	DefaultMaxInflight = 100
	// DefaultMaxKeepalive is the longest keepalive accepted. MQTT 5 clients
	// asking for more (or for none) are told this value in CONNACK; MQTT
	// 3.1.1 cannot be told, so such clients are refused with return code 2
	// "identifier rejected", as mosquitto does.
	DefaultMaxKeepalive = 3600
	// DefaultSessionExpiry is how long a disconnected persistent session
	// (clean session false / session expiry > 0) keeps its subscriptions
	// and queued messages.
	DefaultSessionExpiry = 24 * time.Hour
	// DefaultMaxRetained bounds the number of retained topics, the broker's
	// own $SYS topics included. A publish that would create a new retained
	// topic beyond it is refused with PUBACK 0x97 "quota exceeded" (MQTT 5,
	// QoS > 0) or delivered without being retained (otherwise).
	DefaultMaxRetained = 10000
	// DefaultFailedLogins is how many CONNECTs with wrong credentials one
	// source address may make per minute (and in a burst). Beyond it
	// CONNACK says "not authorized" at once unless the credentials are ones
	// verified recently (cached, no bcrypt): guessing gets slow, a flood of
	// bad logins cannot keep the CPU busy with bcrypt, and the good devices
	// of a fleet behind the same NAT address still reconnect.
	DefaultFailedLogins = 20
	// DefaultMaxQueuedBytes bounds the bytes waiting to be written to one
	// client. A client that stops reading must not hold up anybody else:
	// beyond half of this its QoS 0 deliveries are dropped, beyond all of
	// it the connection is closed as too slow (its QoS 1/2 messages stay
	// in its session). It is raised to two maximum-size packets if lower.
	DefaultMaxQueuedBytes = 1 << 20
)

// Limits that are not configurable because no deployment needs to change
// them; they exist so that nothing is unbounded.
const (
	// connectTimeout bounds the time between accepting a connection and
	// receiving its CONNECT (TLS handshake included); after CONNECT the
	// keepalive governs.
	connectTimeout = 10 * time.Second
	// maxMessageAge is how long a retained or queued message may live when
	// its publisher set no expiry. mochi's default is one day, which would
	// silently drop retained configuration after 24 hours.
	maxMessageAge = 365 * 24 * 3600
	// queuedBytesPerPacket sizes the per-client outbound queue in packets
	// from MaxQueuedBytes (4096 packets at the default 1 MiB), so that
	// lowering that limit on a small board also shrinks the queue, which
	// reserves 8 bytes a packet per connected client. 1024 packets
	// dropped QoS 0 messages for a subscriber that the scheduler set aside
	// for a moment (mqttbench, one publisher: 89 % delivered; 2048: 97.8–
	// 99.2 %; 4096: 99.7–100 %).
	queuedBytesPerPacket = 256
	minPendingWrites     = 256
	maxPendingWrites     = 1 << 16
	// topicAliasMaximum bounds the inbound topic alias table per client;
	// mochi's default (65535) lets one client pin 65535 topic strings.
	topicAliasMaximum = 64
	// sysTopicInterval is how often $SYS topics are refreshed, in seconds
	// (mosquitto's default).
	sysTopicInterval = 10
)

// withDefaults fills unset limits.
func (c Config) withDefaults() Config {
	if c.MaxPacketSize <= 0 {
		c.MaxPacketSize = DefaultMaxPacketSize
	}
	if c.MaxClients <= 0 {
		c.MaxClients = DefaultMaxClients
	}
	if c.MaxInflight <= 0 {
		c.MaxInflight = DefaultMaxInflight
	}
	if c.MaxQueuedBytes <= 0 {
		c.MaxQueuedBytes = DefaultMaxQueuedBytes
	}
	c.MaxQueuedBytes = max(c.MaxQueuedBytes, 2*c.MaxPacketSize)
	c.PaceWait = min(max(c.PaceWait, 0), MaxPaceWait)
	if c.MaxInflight > math.MaxUint16 {
		c.MaxInflight = math.MaxUint16
	}
	if c.MaxKeepalive <= 0 {
		c.MaxKeepalive = DefaultMaxKeepalive
	}
	c.MaxKeepalive = min(c.MaxKeepalive, math.MaxUint16)
	if c.SessionExpiry <= 0 {
		c.SessionExpiry = DefaultSessionExpiry
	}
	if c.MaxRetained <= 0 {
		c.MaxRetained = DefaultMaxRetained
	}
	if c.FailedLogins <= 0 {
		c.FailedLogins = DefaultFailedLogins
	}
	return c
}

// capabilities translates the limits into mochi's terms.
func (c Config) capabilities() *mqtt.Capabilities {
	caps := mqtt.NewDefaultServerCapabilities()
	caps.MaximumClients = int64(c.MaxClients)
	caps.MaximumPacketSize = uint32(c.MaxPacketSize)
	caps.MaximumInflight = uint16(c.MaxInflight)
	caps.ReceiveMaximum = uint16(c.MaxInflight)
	caps.MaximumSessionExpiryInterval = uint32(min(c.SessionExpiry/time.Second, math.MaxUint32))
	caps.MaximumMessageExpiryInterval = maxMessageAge
	caps.MaximumClientWritesPending = int32(min(max(c.MaxQueuedBytes/queuedBytesPerPacket, minPendingWrites), maxPendingWrites))
	caps.TopicAliasMaximum = topicAliasMaximum
	// Acknowledgements carry no copy of the publish's properties (user
	// properties included), which some embedded clients cannot parse.
	caps.Compatibilities.NoInheritedPropertiesOnAck = true
	return caps
}

// clampKeepalive applies MaxKeepalive to a connecting client. It reports
// false when the client must be refused: MQTT 3.1.1 cannot be told a
// shorter keepalive. A 3.1.1 client asking for none (0) is accepted, as
// mosquitto does and device firmwares expect, unless strict: its dead
// connection then lasts until TCP notices.
func clampKeepalive(cl *mqtt.Client, limit uint16, strict bool) bool {
	ka := cl.State.Keepalive
	if ka != 0 && ka <= limit {
		return true
	}
	if cl.Properties.ProtocolVersion < 5 {
		return ka == 0 && !strict
	}
	cl.State.Keepalive = limit
	cl.State.ServerKeepalive = true // CONNACK carries Server Keep Alive
	return true
}

// retainQuota decides whether a retained publish may create its topic.
// It returns the packet to go on with, or a reason code error.
func (p *policy) retainQuota(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	if !pk.FixedHeader.Retain || len(pk.Payload) == 0 {
		return pk, nil // not retained, or clearing a retained topic
	}
	if _, exists := p.server.Topics.Retained.Get(pk.TopicName); exists {
		return pk, nil // replacing does not grow the set
	}
	if p.server.Topics.Retained.Len() < p.maxRetained {
		return pk, nil
	}
	p.log.Warn("retained message limit reached", "client", cl.ID, "topic", pk.TopicName, "limit", p.maxRetained)
	if cl.Properties.ProtocolVersion == 5 && pk.FixedHeader.Qos > 0 {
		return pk, packets.ErrQuotaExceeded
	}
	// MQTT 3.1.1 has no way to refuse one publish without dropping the
	// connection; deliver it live but keep nothing.
	pk.FixedHeader.Retain = false
	return pk, nil
}
