// Package broker is the appliance's MQTT broker: mochi-mqtt with the
// listeners (TCP, TLS, WebSocket), the tenancy policy, limits and
// persistence of the appliance.
//
// Tenancy: every organisation authenticates with its MQTT credentials
// (core.VerifyMQTT) and may publish and subscribe only under
// org/<its org name>/. The rules are checked on every path a message can
// take (subscribe, publish, delivery, retained replay, will, resumed
// session) against core's current state, so rotating credentials or
// renaming or deleting an org takes effect at once: affected sessions are
// cut and discarded. The appliance's own services publish through mochi's
// inline client, which no network client can reach or impersonate: client
// IDs are namespaced by username ("<username>/<client id>") internally.
//
// When the store is unhealthy every CONNECT and every ACL check is denied.
package broker

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/piot-appliance/piot/internal/ratelimit"
	"github.com/piot-appliance/piot/services/core"
	"github.com/piot-appliance/piot/services/durable"
)

// Config configures the broker. Zero limits take the Default* values.
type Config struct {
	// DataDir holds the broker's state in DataDir/broker and its TLS
	// material in DataDir/tls.
	DataDir string
	// Listener addresses; "" disables that listener.
	MQTTAddr, MQTTSAddr, WSAddr string
	// TLSCertFile and TLSKeyFile replace the generated server certificate.
	TLSCertFile, TLSKeyFile string
	// TLSNames are extra DNS names or IP addresses for the generated
	// server certificate, besides the host name, localhost, loopback and
	// the machine's addresses.
	TLSNames []string
	// MonitorPassword enables the read-only user "monitor" for $SYS/#.
	MonitorPassword string

	MaxPacketSize int
	MaxClients    int
	MaxInflight   int
	MaxRetained   int
	// MaxQueuedBytes bounds each client's outbound queue (see
	// DefaultMaxQueuedBytes).
	MaxQueuedBytes int
	// PaceWait is the longest one publish waits for a subscriber whose
	// queue of QoS 0 deliveries is a quarter full (pace.go); 0: publishers
	// never wait, deliveries beyond half the queue are dropped.
	PaceWait time.Duration
	// MaxKeepalive is in seconds; an int like the other limits, so a
	// configuration holds it as given, and clamped to MQTT's 16 bits.
	MaxKeepalive int
	// StrictKeepalive refuses MQTT 3.1.1 clients that ask for no
	// keepalive (0), which many device firmwares send and mosquitto
	// accepts.
	StrictKeepalive bool
	SessionExpiry   time.Duration
	// FailedLogins per source address and minute (DefaultFailedLogins).
	FailedLogins int
	// socketBuffer sets the kernel's send and receive buffers of client
	// sockets, so that tests see the broker's own queues fill, and
	// publishers slowed down, without first filling megabytes of the
	// kernel's.
	socketBuffer int

	Logger *slog.Logger
}

// Deps are the broker's collaborators.
type Deps struct {
	Core *core.Core
	// StoreHealthy reports whether the store answers; it is called on every
	// CONNECT and ACL check, so it must be cheap (a cached flag). When it
	// reports false the broker denies everything. Nil means always healthy.
	StoreHealthy func() bool
}

// Broker is the MQTT broker service.
type Broker struct {
	cfg      Config
	core     *core.Core
	log      *slog.Logger
	server   *mqtt.Server
	policy   *policy
	certs    *certStore
	sessions *sessionStore
	errc     chan error

	// Clients whose outbound queue overflowed, and QoS 0 deliveries
	// dropped because a queue was half full.
	slowClients, queueDropped atomic.Int64
	follows                   followCounters // Follow's subscribers

	inlineMu sync.Mutex
	inline   map[string]*mqtt.Client // in-process clients by ID

	mu           sync.RWMutex // guards the fields below against Stop
	listeners    []*listener
	cancelEvents func()
	started      bool
	stopped      bool
}

// ErrNotRunning is returned by Publish outside Start..Stop.
var ErrNotRunning = errors.New("broker is not running")

// New prepares the broker: it creates the TLS material on first use and
// the policy hook, but binds nothing until Start.
func New(cfg Config, deps Deps) (*Broker, error) {
	if cfg.DataDir == "" {
		return nil, errors.New("broker: DataDir is required")
	}
	if deps.Core == nil {
		return nil, errors.New("broker: Core is required")
	}
	cfg = cfg.withDefaults()
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(filepath.Join(cfg.DataDir, "broker"), 0o700); err != nil {
		return nil, fmt.Errorf("broker: %w", err)
	}
	certs, err := openCertStore(filepath.Join(cfg.DataDir, "tls"), cfg.TLSCertFile, cfg.TLSKeyFile, cfg.TLSNames, log)
	if err != nil {
		return nil, fmt.Errorf("broker: TLS: %w", err)
	}
	healthy := deps.StoreHealthy
	if healthy == nil {
		healthy = func() bool { return true }
	}
	server := mqtt.New(&mqtt.Options{
		InlineClient:           true,
		Capabilities:           cfg.capabilities(),
		Logger:                 slog.New(quietPackets{log.Handler()}).With("component", "mochi"),
		SysTopicResendInterval: sysTopicInterval,
	})
	b := &Broker{
		cfg:    cfg,
		core:   deps.Core,
		log:    log,
		server: server,
		certs:  certs,
		errc:   make(chan error, 1),
	}
	b.policy = &policy{
		server:          server,
		core:            deps.Core,
		healthy:         healthy,
		monitorPassword: []byte(cfg.MonitorPassword),
		maxKeepalive:    uint16(cfg.MaxKeepalive),
		strictKeepalive: cfg.StrictKeepalive,
		maxRetained:     cfg.MaxRetained,
		failures:        ratelimit.NewBuckets(ratelimit.BucketsConfig{Rate: ratelimit.PerMinute(cfg.FailedLogins), Burst: cfg.FailedLogins, MaxKeys: 10000}),
		ids:             newIdentities(),
		log:             log,
		expire:          b.expireSession,
		pacer: &pacer{maxWait: cfg.PaceWait, inline: func(id string) bool {
			cl, ok := server.Clients.Get(id)
			return !ok || cl.Net.Inline
		}},
	}
	if err := server.AddHook(b.policy, nil); err != nil {
		return nil, fmt.Errorf("broker: %w", err)
	}
	return b, nil
}

// Name identifies the service to the supervisor.
func (b *Broker) Name() string { return "broker" }

// Err reports a listener that stopped accepting connections.
func (b *Broker) Err() <-chan error { return b.errc }

// AddHook attaches another mochi hook (ingest) before Start. Hooks that
// authenticate or authorize are refused: mochi allows whatever any hook
// allows, so a second policy hook could only widen access.
func (b *Broker) AddHook(h mqtt.Hook, cfg any) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.started {
		return errors.New("broker: hooks must be added before Start")
	}
	if h.Provides(mqtt.OnConnectAuthenticate) || h.Provides(mqtt.OnACLCheck) {
		return fmt.Errorf("broker: hook %s may not authenticate or authorize", h.ID())
	}
	if err := b.server.AddHook(h, cfg); err != nil {
		return fmt.Errorf("broker: add hook %s: %w", h.ID(), err)
	}
	return nil
}

// Start binds the listeners, restores persisted sessions and retained
// messages, and starts serving. A Broker starts once.
func (b *Broker) Start(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.started {
		return errors.New("broker: already started")
	}
	b.started = true
	served := false
	abort := func(err error) error {
		// A failed Start leaves nothing running, and Stop has nothing to do.
		b.stopped = true
		if b.cancelEvents != nil {
			b.cancelEvents()
		}
		b.closeListeners()
		if served {
			_ = b.server.Close()
		} else if b.sessions != nil {
			_ = b.sessions.Stop()
		}
		return fmt.Errorf("broker: %w", err)
	}

	tlsConfig := b.certs.serverConfig()
	specs := []struct {
		id, addr string
		tls, ws  bool
	}{
		{ListenerTCP, b.cfg.MQTTAddr, false, false},
		{ListenerTLS, b.cfg.MQTTSAddr, true, false},
		{ListenerWS, b.cfg.WSAddr, false, true},
	}
	for _, s := range specs {
		if s.addr == "" {
			continue
		}
		tc := tlsConfig
		if !s.tls {
			tc = nil
		}
		l, err := listen(s.id, s.addr, tc, s.ws, b.connLimits(), b.log, b.fail)
		if err != nil {
			return abort(err)
		}
		b.listeners = append(b.listeners, l)
	}

	live := func(cl *mqtt.Client) bool { _, ok := b.policy.ids.get(cl); return ok }
	sessions, err := openSessionStore(b.server, filepath.Join(b.cfg.DataDir, "broker"), live)
	if err != nil {
		return abort(err)
	}
	b.sessions = sessions
	// Serve with no listener attached yet: it loads the persisted state,
	// which must get its identities before any client can connect.
	if err := b.server.Serve(); err != nil {
		return abort(err)
	}
	served = true
	b.adoptRestored()
	b.cancelEvents = b.core.Subscribe(b.onCoreEvent)

	for _, l := range b.listeners {
		if err := b.server.AddListener(l); err != nil {
			return abort(err)
		}
		b.server.Listeners.Serve(l.ID(), b.server.EstablishConnection)
	}
	b.log.Info("mqtt broker started", "addrs", b.addrsLocked(), "sessions", b.policy.ids.len(),
		"retained", b.server.Topics.Retained.Len())
	return nil
}

// Stop disconnects every client (MQTT 5 clients get DISCONNECT 0x8B
// "server shutting down"), waits for their goroutines and closes the
// session store.
func (b *Broker) Stop(ctx context.Context) error {
	b.mu.Lock()
	if !b.started || b.stopped {
		b.mu.Unlock()
		return nil
	}
	b.stopped = true
	cancel := b.cancelEvents
	b.mu.Unlock()
	if cancel != nil {
		cancel()
	}

	done := make(chan struct{})
	go func() {
		defer close(done)
		b.closeListeners()
		_ = b.server.Close() // stops the hooks, persistence last
	}()
	select {
	case <-done:
		b.log.Info("mqtt broker stopped")
		return nil
	case <-ctx.Done():
		return fmt.Errorf("broker: stop: %w", ctx.Err())
	}
}

// closeListeners closes the listeners and waits for their connections.
func (b *Broker) closeListeners() {
	for _, l := range b.listeners {
		l.Close(b.disconnectClients)
	}
}

// disconnectClients ends the connections of one listener on shutdown.
func (b *Broker) disconnectClients(listenerID string) {
	for _, cl := range b.server.Clients.GetAll() {
		if cl.Net.Listener != listenerID || cl.Closed() {
			continue
		}
		if cl.Properties.ProtocolVersion == 5 {
			_ = b.server.DisconnectClient(cl, packets.ErrServerShuttingDown)
		} else {
			cl.Stop(packets.ErrServerShuttingDown)
		}
	}
}

// fail reports a listener that died, once.
func (b *Broker) fail(err error) {
	b.log.Error("mqtt listener failed", "err", err)
	select {
	case b.errc <- err:
	default:
	}
}

// Publish sends a message from the appliance itself (QoS 1 towards
// subscribers, not retained). It bypasses the ACL: the caller is trusted
// code, e.g. core's switch commands.
func (b *Broker) Publish(ctx context.Context, topic string, payload []byte) error {
	return b.PublishMessage(ctx, topic, payload, 1, false)
}

// PublishMessage sends a message from the appliance with the given QoS
// towards subscribers and retained flag. Like Publish it bypasses the
// ACL, so the caller decides who may publish where (the console asks
// core); the hooks still run, so ingest journals it and the retained
// quota applies.
func (b *Broker) PublishMessage(ctx context.Context, topic string, payload []byte, qos byte, retain bool) error {
	if qos > 2 {
		return fmt.Errorf("broker: publish: invalid QoS %d", qos)
	}
	return b.publishing(ctx, topic, func() error { return b.server.Publish(topic, payload, retain, qos) })
}

// PublishIngested delivers a message to subscribers that the ingest has
// already journaled (the device adapters submit readings with their
// measurement time first): it comes from the in-process client
// durable.IngestedClient, whose publishes the ingest hook passes over.
func (b *Broker) PublishIngested(ctx context.Context, topic string, payload []byte) error {
	const clientID = durable.IngestedClient
	return b.publishing(ctx, topic, func() error {
		b.inlineMu.Lock()
		cl := b.inline[clientID]
		if cl == nil {
			cl = b.server.NewClient(nil, "local", clientID, true)
			if b.inline == nil {
				b.inline = map[string]*mqtt.Client{}
			}
			b.inline[clientID] = cl
		}
		b.inlineMu.Unlock()
		return b.server.InjectPacket(cl, packets.Packet{
			FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 1},
			TopicName:   topic,
			Payload:     payload,
			PacketID:    1, // not used by inline clients, but must be valid
		})
	})
}

// publishing runs publish for the appliance's own messages: a valid
// topic, and the broker running throughout.
func (b *Broker) publishing(ctx context.Context, topic string, publish func() error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if topic == "" || !mqtt.IsValidFilter(topic, true) {
		return fmt.Errorf("broker: publish: invalid topic %q", topic)
	}
	b.mu.RLock()
	defer b.mu.RUnlock()
	if !b.started || b.stopped {
		return ErrNotRunning
	}
	if err := publish(); err != nil {
		return fmt.Errorf("broker: publish %s: %w", topic, err)
	}
	return nil
}

// ReloadTLS re-reads the TLS certificate (and reissues the generated one
// if needed). Connected clients keep their connection; new handshakes use
// the new certificate. On error the old certificate stays in use.
func (b *Broker) ReloadTLS() error {
	if err := b.certs.reload(); err != nil {
		return fmt.Errorf("broker: reload TLS: %w", err)
	}
	b.log.Info("TLS certificate reloaded")
	return nil
}

// TLSConfig serves the appliance's certificate (as MQTTS does) for other
// TLS listeners such as HTTPS; reloads apply to both.
func (b *Broker) TLSConfig() *tls.Config { return b.certs.serverConfig() }

// CACertPEM is the appliance CA certificate, for devices to pin.
func (b *Broker) CACertPEM() []byte {
	return append([]byte(nil), b.certs.ca.pem...)
}

// Addrs returns the bound address of each enabled listener, keyed by
// ListenerTCP, ListenerTLS and ListenerWS; empty before Start.
func (b *Broker) Addrs() map[string]string {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.addrsLocked()
}

func (b *Broker) addrsLocked() map[string]string {
	m := make(map[string]string, len(b.listeners))
	for _, l := range b.listeners {
		m[l.ID()] = l.Address()
	}
	return m
}
