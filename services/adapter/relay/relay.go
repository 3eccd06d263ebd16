// Package relay is the appliance's side of the edge adapter: device
// packets an edge adapter spooled and forwarded over MQTT are processed
// here exactly like packets received on /adapter and /adapter/vdgps.
//
// An edge adapter publishes each packet at QoS 1 to the reserved topic
// org/<org>/$adapter/<protocol> (thing names cannot start with "$", so it
// never collides with a thing's topic) as an Envelope. The broker's ACL
// already restricts the publisher to its organization's prefix; this
// hook processes the packet inside OnPublish, before the broker sends the
// PUBACK, so an acknowledged packet is in the ingest journal. Envelopes
// are not delivered to subscribers.
//
// Duplicates: the edge adapter resends what was not acknowledged, in
// spool order, so per edge adapter a packet whose sequence number is not
// above the highest one processed is a resend and is dropped. The highest
// number is a mark journaled in the same batch as the packet's readings
// (Marks), so a crash leaves both or neither: a resend is stored exactly
// once even when the appliance loses power mid-packet.
package relay

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"strings"
	"sync"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/piot-appliance/piot/services/adapter"
	"github.com/piot-appliance/piot/services/adapter/relay/wire"
	"github.com/piot-appliance/piot/services/core"
)

// The topics and the envelope are package wire's, which the edge
// adapter writes without core; the names stay here for the appliance.
const (
	Level      = wire.Level
	ProtoPIOT  = wire.ProtoPIOT
	ProtoVDGPS = wire.ProtoVDGPS
	MaxEdgeID  = wire.MaxEdgeID
)

// Envelope is one relayed device packet.
type Envelope = wire.Envelope

// errRetry is why the relay cut an MQTT 3 connection.
var errRetry = errors.New("relay: packet not taken; resend it")

// Handler processes one device packet (adapter.Adapter, vdgps.Handler).
type Handler interface {
	Handle(ctx context.Context, body []byte, src adapter.Source) adapter.Outcome
}

// Results counted by Stats, besides the adapters' own rejection reasons.
const (
	ResultProcessed   = "processed"    // the adapter answered 200
	ResultNotStored   = "not_stored"   // 202: device unassigned or disabled
	ResultRefused     = "refused"      // 4xx: the packet can never be processed
	ResultDuplicate   = "duplicate"    // a resend of a processed packet
	ResultBadEnvelope = "bad_envelope" // not an Envelope; acknowledged and dropped
	ResultUnknown     = "unknown_protocol"
	ResultRetry       = "retry" // 5xx or store trouble: not acknowledged, resent later
)

// Marks keep, per edge adapter, the highest sequence number processed,
// journaled atomically with what the packet stored (ingest.Mark).
type Marks interface {
	// Last is the highest sequence number recorded for key (0: none).
	Last(key string) uint64
	// Message records seq for key when published with a packet's
	// messages (adapter.Source.With).
	Message(key string, seq uint64) adapter.Message
	// Record journals the mark alone, durably, for a packet that stored
	// nothing.
	Record(key string, seq uint64) error
}

// Config tunes the hook.
type Config struct {
	Logger *slog.Logger
}

// Deps are the hook's collaborators.
type Deps struct {
	Core     *core.Core
	Marks    Marks
	Handlers map[string]Handler // by protocol
}

// Hook is the mochi hook; add it before the ingest hook.
type Hook struct {
	mqtt.HookBase
	core     *core.Core
	marks    Marks
	handlers map[string]Handler
	log      *slog.Logger

	locksMu sync.Mutex
	locks   map[string]*sync.Mutex // per edge adapter: packets in order

	mu   sync.Mutex // guards the fields below
	seen map[string]uint64
	// held: per edge adapter, a packet that was not acknowledged
	// (transient trouble). Later packets of that edge adapter are not
	// processed either until it comes again: the edge adapter resends
	// from its oldest unacknowledged packet, and processing a later one
	// first would make that resend look like a duplicate.
	held  map[string]uint64
	stats map[string]uint64
	// closing refuses new packets; busy counts packets being processed,
	// which Close waits for: mochi can still be inside OnPublish after
	// the broker stopped, and the ingest must not stop under a packet.
	closing bool
	busy    sync.WaitGroup
}

// New builds the hook.
func New(cfg Config, deps Deps) (*Hook, error) {
	if deps.Core == nil || deps.Marks == nil || len(deps.Handlers) == 0 {
		return nil, errors.New("relay: core, marks and handlers are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &Hook{
		core: deps.Core, marks: deps.Marks, handlers: deps.Handlers, log: cfg.Logger.With("service", "relay"),
		locks: map[string]*sync.Mutex{}, seen: map[string]uint64{}, held: map[string]uint64{}, stats: map[string]uint64{},
	}, nil
}

// Close refuses further packets and waits for those being processed.
func (h *Hook) Close() error {
	h.mu.Lock()
	h.closing = true
	h.mu.Unlock()
	h.busy.Wait()
	return nil
}

// ID names the hook.
func (h *Hook) ID() string { return "piot-relay" }

// Provides says which events the hook handles.
func (h *Hook) Provides(b byte) bool { return b == mqtt.OnPublish }

// Stats returns the counts by result and by the adapters' reasons.
func (h *Hook) Stats() map[string]uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return maps.Clone(h.stats)
}

func (h *Hook) count(result string) {
	h.mu.Lock()
	h.stats[result]++
	h.mu.Unlock()
}

// parseTopic returns the org, thing (empty for the org-wide form) and
// protocol of org/<org>/[<thing>/]$adapter/<proto>.
func parseTopic(topic string) (org, thing, proto string, ok bool) {
	rest, ok := strings.CutPrefix(topic, "org/")
	if !ok {
		return "", "", "", false
	}
	org, rest, ok = strings.Cut(rest, "/")
	if !ok {
		return "", "", "", false
	}
	if !strings.HasPrefix(rest, Level+"/") {
		thing, rest, ok = strings.Cut(rest, "/")
		if !ok || thing == "" {
			return "", "", "", false
		}
	}
	proto, ok = strings.CutPrefix(rest, Level+"/")
	if !ok || strings.Contains(proto, "/") {
		return "", "", "", false
	}
	return org, thing, proto, true
}

// OnPublish processes relayed packets; other publishes pass untouched.
func (h *Hook) OnPublish(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	org, thing, proto, ok := parseTopic(pk.TopicName)
	if !ok {
		return pk, nil
	}
	switch h.process(org, thing, proto, pk.Payload) {
	case ResultRetry:
		// No acknowledgement: the edge adapter sends the packet again.
		// MQTT 5 says so with a negative PUBACK; before 5 there is none,
		// so the connection is cut: the edge adapter reconnects and
		// resends at once instead of waiting out its acknowledgement
		// timeout.
		if cl != nil && cl.Properties.ProtocolVersion == 5 {
			return pk, packets.ErrUnspecifiedError
		}
		if cl != nil {
			cl.Stop(errRetry)
		}
		return pk, packets.ErrRejectPacket
	default:
		// Acknowledged, and not delivered to subscribers nor journaled.
		return pk, packets.CodeSuccessIgnore
	}
}

func (h *Hook) process(org, thing, proto string, payload []byte) string {
	handler := h.handlers[proto]
	if handler == nil {
		h.count(ResultUnknown)
		h.log.Warn("relayed packet of an unknown protocol dropped", "org", org, "protocol", proto)
		return ResultUnknown
	}
	var env Envelope
	if err := json.Unmarshal(payload, &env); err != nil || env.Edge == "" || len(env.Edge) > MaxEdgeID ||
		strings.ContainsAny(env.Edge, " \n\x00") || env.Seq == 0 || len(env.Body) == 0 {
		h.count(ResultBadEnvelope)
		h.log.Warn("malformed relayed packet dropped", "org", org, "protocol", proto)
		return ResultBadEnvelope
	}
	orgID, ok := h.core.OrgIDByName(org)
	if !ok {
		// The ACL let the publisher in under this prefix, so the org was
		// just renamed or deleted; let the edge adapter try again.
		h.count(ResultRetry)
		return ResultRetry
	}
	h.mu.Lock()
	if h.closing {
		h.mu.Unlock()
		h.count(ResultRetry)
		return ResultRetry
	}
	h.busy.Add(1)
	h.mu.Unlock()
	defer h.busy.Done()
	key := orgID.Hex() + "/" + env.Edge
	lock := h.lock(key)
	lock.Lock()
	defer lock.Unlock()

	h.mu.Lock()
	last, known := h.seen[key]
	held, isHeld := h.held[key]
	h.mu.Unlock()
	if !known {
		last = h.marks.Last(key)
		h.mu.Lock()
		h.seen[key] = last
		h.mu.Unlock()
	}
	if env.Seq <= last {
		h.count(ResultDuplicate)
		return ResultDuplicate
	}
	if isHeld && env.Seq > held {
		h.count(ResultRetry)
		return ResultRetry
	}
	src := adapter.Source{OrgID: orgID, With: []adapter.Message{h.marks.Message(key, env.Seq)}}
	if env.RX > 0 {
		src.Received = time.UnixMilli(env.RX)
	}
	var out adapter.Outcome
	if thing != "" {
		// Published under a thing's own topics: only that device's packets.
		if t, ok := h.core.ThingByName(thing); ok && t.OrgID == orgID {
			src.Device = t.ID
		} else {
			out = adapter.Outcome{Status: http.StatusForbidden, Reason: adapter.ReasonForeignDevice, Msg: "no such device in the organization"}
		}
	}
	if out.Status == 0 {
		out = handler.Handle(context.Background(), env.Body, src)
	}
	result := ResultProcessed
	switch {
	case out.Status >= 500:
		return h.hold(key, env.Seq)
	case out.Status == http.StatusOK:
		// The mark went into the journal with the readings.
	default:
		result = ResultRefused
		if out.Status < 300 {
			result = ResultNotStored
		} else {
			h.log.Info("relayed packet refused", "org", org, "edge", env.Edge, "seq", env.Seq,
				"status", out.Status, "reason", out.Reason, "msg", out.Msg)
		}
		if err := h.marks.Record(key, env.Seq); err != nil {
			h.log.Warn("cannot record relayed packet as processed; waiting for its resend", "err", err)
			return h.hold(key, env.Seq)
		}
	}
	h.mu.Lock()
	h.seen[key] = env.Seq
	delete(h.held, key)
	h.mu.Unlock()
	h.count(result)
	return result
}

// hold leaves a packet unacknowledged, and the edge adapter's later ones
// with it, until it is resent.
func (h *Hook) hold(key string, seq uint64) string {
	h.mu.Lock()
	h.held[key] = seq
	h.mu.Unlock()
	h.count(ResultRetry)
	return ResultRetry
}

func (h *Hook) lock(key string) *sync.Mutex {
	h.locksMu.Lock()
	defer h.locksMu.Unlock()
	l := h.locks[key]
	if l == nil {
		l = &sync.Mutex{}
		h.locks[key] = l
	}
	return l
}
