package broker

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// Message is one message routed by the broker, as a follower sees it.
type Message struct {
	Time     time.Time // when the broker routed it (for retained replays: when followed)
	Topic    string
	Payload  []byte
	QoS      byte
	Retained bool
}

// DefaultFollowBuffer is the channel size of a follower when Follow is
// given none.
const DefaultFollowBuffer = 256

// MaxFollowFilter bounds the length of a followed filter.
const MaxFollowFilter = 1024

// ErrBadFilter is returned (wrapped) by Follow for a filter that is not a
// valid MQTT topic filter.
var ErrBadFilter = errors.New("broker: invalid topic filter")

// followPoll is how often a follower checks that the broker still runs
// (mochi has no stop notification for inline subscriptions).
const followPoll = 500 * time.Millisecond

// followIDBase starts the identifiers of inline subscriptions. mochi keys
// inline subscriptions by identifier (per filter, and merged across
// filters when routing), so every follower needs its own; the high base
// keeps them apart from any identifier another part of the appliance
// might pick.
const followIDBase = 1 << 24

// FollowStats count the followers of one broker.
type FollowStats struct {
	Active  int64  // followers now
	Dropped uint64 // messages dropped because a follower was not reading
}

// followCounters count a broker's followers (Broker.follows).
type followCounters struct {
	ids     atomic.Int64 // identifiers handed out, from followIDBase
	active  atomic.Int64
	dropped atomic.Uint64
}

// FollowStats returns the broker's follower counters.
func (b *Broker) FollowStats() FollowStats {
	c := &b.follows
	return FollowStats{Active: c.active.Load(), Dropped: c.dropped.Load()}
}

// Running reports whether the broker is between Start and Stop.
func (b *Broker) Running() bool {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.started && !b.stopped
}

// follower is one Follow call: an inline subscription feeding a channel.
type follower struct {
	id      int
	filter  string
	sys     bool // the filter may match $ topics (it does not start with a wildcard)
	dropped atomic.Uint64
	total   *followCounters

	mu     sync.RWMutex // senders hold it shared, close exclusively
	closed bool
	ch     chan Message
}

// deliver hands a message to the follower without ever waiting: the
// caller is the publishing client's goroutine.
func (f *follower) deliver(pk packets.Packet, retained bool) {
	if !f.sys && strings.HasPrefix(pk.TopicName, "$") {
		return // [MQTT-4.7.2-1]: wildcards at the first level do not match $ topics
	}
	m := Message{
		Time: time.Now(), Topic: pk.TopicName, Payload: append([]byte(nil), pk.Payload...),
		QoS: pk.FixedHeader.Qos, Retained: retained,
	}
	f.mu.RLock()
	defer f.mu.RUnlock()
	if f.closed {
		return
	}
	select {
	case f.ch <- m:
	default:
		f.dropped.Add(1)
		f.total.dropped.Add(1)
	}
}

func (f *follower) close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.closed {
		f.closed = true
		close(f.ch)
	}
}

// Follow delivers every message the broker routes on topics matching
// filter, retained messages first, until ctx ends or the broker stops;
// then the channel is closed. It authorizes nothing: the caller (the
// console) must apply the tenancy rules before following on a user's
// behalf.
//
// The broker never waits for a follower: when the channel (buf messages,
// DefaultFollowBuffer if buf <= 0) is full, messages are dropped and
// counted (FollowStats). Followers use mochi's inline subscriptions
// directly on the topic index, not Server.Subscribe, so that no hook sees
// them: the session store would otherwise persist them as subscriptions
// of the inline client and restore them as a network subscription.
func (b *Broker) Follow(ctx context.Context, filter string, buf int) (<-chan Message, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if !validFollowFilter(filter) {
		return nil, fmt.Errorf("%w: %q", ErrBadFilter, filter)
	}
	if buf <= 0 {
		buf = DefaultFollowBuffer
	}
	f := &follower{
		id: followIDBase + int(b.follows.ids.Add(1)), filter: filter, sys: filter[0] != '+' && filter[0] != '#',
		total: &b.follows, ch: make(chan Message, buf),
	}
	b.mu.RLock()
	if !b.started || b.stopped {
		b.mu.RUnlock()
		return nil, ErrNotRunning
	}
	b.server.Topics.InlineSubscribe(mqtt.InlineSubscription{
		Subscription: packets.Subscription{Filter: filter, Identifier: f.id},
		Handler:      func(_ *mqtt.Client, _ packets.Subscription, pk packets.Packet) { f.deliver(pk, pk.FixedHeader.Retain) },
	})
	for _, pk := range b.server.Topics.Messages(filter) {
		f.deliver(pk, true)
	}
	b.mu.RUnlock()
	f.total.active.Add(1)
	go b.follow(ctx, f)
	return f.ch, nil
}

// validFollowFilter accepts the MQTT topic filters a follower may use:
// wildcards only as whole levels ('#' last), no shared subscriptions, no
// NUL.
func validFollowFilter(filter string) bool {
	if filter == "" || len(filter) > MaxFollowFilter || strings.IndexByte(filter, 0) >= 0 || !mqtt.IsValidFilter(filter, false) {
		return false
	}
	levels := strings.Split(filter, "/")
	if strings.EqualFold(levels[0], mqtt.SharePrefix) {
		return false
	}
	for i, l := range levels {
		if strings.ContainsAny(l, "+#") && l != "+" && l != "#" || l == "#" && i != len(levels)-1 {
			return false
		}
	}
	return true
}

// follow ends a follower when its context ends or the broker stops.
func (b *Broker) follow(ctx context.Context, f *follower) {
	t := time.NewTicker(followPoll)
	defer t.Stop()
	for running := true; running; {
		select {
		case <-ctx.Done():
			running = false
		case <-t.C:
			running = b.Running()
		}
	}
	b.server.Topics.InlineUnsubscribe(f.id, f.filter)
	f.close()
	f.total.active.Add(-1)
	if n := f.dropped.Load(); n > 0 {
		b.log.Info("live follower ended; it could not keep up", "filter", f.filter, "dropped", n)
	}
}

// ServerCertificate returns the certificate the TLS listener presents to
// new connections (nil if none could be parsed).
func (b *Broker) ServerCertificate() *x509.Certificate {
	c := b.certs.current.Load()
	if c == nil || len(c.Certificate) == 0 {
		return nil
	}
	if c.Leaf != nil {
		return c.Leaf
	}
	leaf, err := x509.ParseCertificate(c.Certificate[0])
	if err != nil {
		return nil
	}
	return leaf
}

// ErrUserCertificate is returned by RegenerateServerCertificate when the
// TLS certificate comes from files given in the configuration.
var ErrUserCertificate = errors.New("the TLS certificate is configured from files; replace them and reload instead")

// RegenerateServerCertificate issues a new server certificate from the
// appliance CA (new key, current host names and addresses) and puts it in
// use for new handshakes. The CA stays, so devices that trust it keep
// working. Certificates configured from files are not touched
// (ErrUserCertificate).
func (b *Broker) RegenerateServerCertificate() error {
	if err := b.certs.regenerate(); err != nil {
		return fmt.Errorf("broker: regenerate TLS certificate: %w", err)
	}
	b.log.Info("TLS server certificate regenerated")
	return nil
}

func (c *certStore) regenerate() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.userCert != "" {
		return ErrUserCertificate
	}
	certPath, keyPath := filepath.Join(c.dir, serverCertFile), filepath.Join(c.dir, serverKeyFile)
	names := wantedNames(c.extraNames)
	if err := c.ca.issueServerCert(certPath, keyPath, names); err != nil {
		return err
	}
	cert, err := tls.LoadX509KeyPair(certPath, keyPath)
	if err != nil {
		return fmt.Errorf("load TLS certificate: %w", err)
	}
	c.current.Store(&cert)
	return nil
}
