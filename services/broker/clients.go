package broker

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/piot-appliance/piot/services/core"
)

// Client is one MQTT session as an administrator sees it: a connected
// client, or a persistent session kept while its client is away. It
// authorizes nothing: the caller (the console) decides from OrgID who may
// see it.
type Client struct {
	// Session is the broker's key of the session, "<username>/<client
	// id>": client IDs are namespaced by username (see the package doc).
	Session  string
	ClientID string // as the client sent it
	Username string
	// OrgID and Org are the organization the client logged in for; zero
	// for the read-only monitor.
	OrgID   core.ID
	Org     string
	Thing   string // a device's own credentials; empty for an org's
	Monitor bool

	Remote          string
	Listener        string
	ProtocolVersion byte // 3 (3.1), 4 (3.1.1) or 5
	Keepalive       uint16
	Connected       bool
	// Since is when the client connected, or when the session went
	// offline (for sessions restored at start: the start).
	Since time.Time
	// Persistent sessions outlive the connection; Expires is when an
	// offline one will be dropped (zero while connected).
	Persistent bool
	Expires    time.Time

	Subscriptions []Subscription // by filter
	// Inflight counts the QoS 1 and 2 messages not yet acknowledged, or
	// kept for an offline session; QueuedBytes the bytes written but not
	// yet sent to the peer.
	Inflight    int
	QueuedBytes int
}

// Subscription is one topic filter of a session.
type Subscription struct {
	Filter string
	QoS    byte
}

// RetainedMessage is one retained message.
type RetainedMessage struct {
	Topic   string
	Payload []byte
	QoS     byte
	// Created is when the broker received it; zero if unknown.
	Created time.Time
}

// Errors of the session operations, wrapped with the session or topic.
var (
	ErrNoSession   = errors.New("no such MQTT session")
	ErrConnected   = errors.New("the client is connected: disconnect it first")
	ErrNotOnline   = errors.New("the client is not connected")
	ErrNoRetained  = errors.New("no retained message on this topic")
	errSysRetained = errors.New("$SYS topics are the broker's own")
)

// Clients returns the connected clients and the offline persistent
// sessions, by session key. The appliance's own in-process clients are
// not listed.
func (b *Broker) Clients() []Client {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if !b.started || b.stopped {
		return nil
	}
	var out []Client
	for _, cl := range b.server.Clients.GetAll() {
		if c, ok := b.clientOf(cl); ok {
			out = append(out, c)
		}
	}
	slices.SortFunc(out, func(x, y Client) int { return strings.Compare(x.Session, y.Session) })
	return out
}

// Client returns one session by its key.
func (b *Broker) Client(session string) (Client, bool) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if !b.started || b.stopped {
		return Client{}, false
	}
	cl, ok := b.server.Clients.Get(session)
	if !ok {
		return Client{}, false
	}
	return b.clientOf(cl)
}

// clientOf describes cl; false for in-process clients and for clients
// that are neither connected nor holding a persistent session (a clean
// session on its way out, or one whose identity was revoked).
func (b *Broker) clientOf(cl *mqtt.Client) (Client, bool) {
	if cl.Net.Inline {
		return Client{}, false
	}
	id, ok := b.policy.ids.get(cl)
	if !ok {
		return Client{}, false
	}
	connected, persistent := !cl.Closed(), !ephemeral(cl)
	if !connected && !persistent {
		return Client{}, false
	}
	c := Client{
		Session:         cl.ID,
		ClientID:        strings.TrimPrefix(cl.ID, id.username+"/"),
		Username:        id.username,
		OrgID:           id.org.OrgID,
		Org:             id.org.OrgName,
		Thing:           id.org.Thing,
		Monitor:         id.kind == kindMonitor,
		Remote:          cl.Net.Remote,
		Listener:        cl.Net.Listener,
		ProtocolVersion: cl.Properties.ProtocolVersion,
		Keepalive:       cl.State.Keepalive,
		Connected:       connected,
		Since:           id.since,
		Persistent:      persistent,
		Inflight:        cl.State.Inflight.Len(),
	}
	if !connected {
		c.Since = time.Unix(cl.StopTime(), 0)
		c.Expires = c.Since.Add(time.Duration(b.sessionExpiry(cl)) * time.Second)
	}
	if lc, ok := cl.Net.Conn.(*limitConn); ok && connected {
		c.QueuedBytes = lc.queuedBytes()
	}
	for _, s := range cl.State.Subscriptions.GetAll() {
		c.Subscriptions = append(c.Subscriptions, Subscription{Filter: s.Filter, QoS: s.Qos})
	}
	slices.SortFunc(c.Subscriptions, func(x, y Subscription) int { return strings.Compare(x.Filter, y.Filter) })
	return c, true
}

// sessionExpiry is the seconds an offline session is kept, as mochi
// computes it when it expires sessions.
func (b *Broker) sessionExpiry(cl *mqtt.Client) uint32 {
	expire := b.server.Options.Capabilities.MaximumSessionExpiryInterval
	if cl.Properties.ProtocolVersion == 5 && cl.Properties.Props.SessionExpiryIntervalFlag {
		expire = cl.Properties.Props.SessionExpiryInterval
	}
	return expire
}

// Disconnect ends a client's connection (MQTT 5 clients get DISCONNECT
// 0x98 "administrative action"). A persistent session stays, with its
// subscriptions and queued messages, for the client's return; the will,
// if any, is sent as for any connection lost.
func (b *Broker) Disconnect(session string) error {
	return b.withSession(session, func(cl *mqtt.Client) error {
		if cl.Closed() {
			return fmt.Errorf("%w: %s", ErrNotOnline, session)
		}
		b.log.Info("mqtt client disconnected by an administrator", "client", cl.ID, "remote", cl.Net.Remote)
		if cl.Properties.ProtocolVersion == 5 {
			_ = b.server.DisconnectClient(cl, packets.ErrAdministrativeAction)
		} else {
			cl.Stop(packets.ErrAdministrativeAction) // 3.1.1 has no server DISCONNECT
		}
		return nil
	})
}

// DeleteSession discards an offline persistent session: its
// subscriptions, queued messages and persisted record. A connected
// client's session is refused (ErrConnected): deleting it would cut the
// client without saying so.
func (b *Broker) DeleteSession(session string) error {
	return b.withSession(session, func(cl *mqtt.Client) error {
		if !cl.Closed() {
			return fmt.Errorf("%w: %s", ErrConnected, session)
		}
		b.log.Info("mqtt session deleted by an administrator", "client", cl.ID)
		b.expireSession(cl)
		return nil
	})
}

// withSession runs fn on a running broker's client of that session (not
// the broker's own inline client), under the broker's read lock.
func (b *Broker) withSession(session string, fn func(cl *mqtt.Client) error) error {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if !b.started || b.stopped {
		return ErrNotRunning
	}
	cl, ok := b.server.Clients.Get(session)
	if !ok || cl.Net.Inline {
		return fmt.Errorf("%w: %s", ErrNoSession, session)
	}
	return fn(cl)
}

// Retained returns the retained messages by topic, but for the broker's
// own $SYS topics, which it rewrites every few seconds.
func (b *Broker) Retained() []RetainedMessage {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if !b.started || b.stopped {
		return nil
	}
	var out []RetainedMessage
	for topic, pk := range b.server.Topics.Retained.GetAll() {
		if strings.HasPrefix(topic, "$") {
			continue
		}
		m := RetainedMessage{Topic: topic, Payload: pk.Payload, QoS: pk.FixedHeader.Qos}
		if pk.Created > 0 {
			m.Created = time.Unix(pk.Created, 0)
		}
		out = append(out, m)
	}
	slices.SortFunc(out, func(x, y RetainedMessage) int { return strings.Compare(x.Topic, y.Topic) })
	return out
}

// DeleteRetained deletes the retained message of a topic, in memory and
// on disk, as an empty retained publish would, without delivering
// anything to subscribers.
func (b *Broker) DeleteRetained(topic string) error {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if !b.started || b.stopped {
		return ErrNotRunning
	}
	if strings.HasPrefix(topic, "$") {
		return fmt.Errorf("%w: %s", errSysRetained, topic)
	}
	if _, ok := b.server.Topics.Retained.Get(topic); !ok {
		return fmt.Errorf("%w: %s", ErrNoRetained, topic)
	}
	b.forgetRetained(topic)
	b.log.Info("retained message deleted by an administrator", "topic", topic)
	return nil
}

// forgetRetained removes one retained message from the index, the store
// and the count.
func (b *Broker) forgetRetained(topic string) {
	b.server.Topics.RetainMessage(packets.Packet{TopicName: topic})
	if b.sessions != nil {
		b.sessions.forgetRetained(topic)
	}
	atomic.StoreInt64(&b.server.Info.Retained, int64(b.server.Topics.Retained.Len()))
}
