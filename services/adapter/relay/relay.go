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
// numbers are kept in a small log in the data directory, written after
// the packet's readings are journaled; a crash between the two can let
// one packet per edge adapter through twice.
package relay

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/piot-appliance/piot/services/fileutil"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/piot-appliance/piot/services/adapter"
	"github.com/piot-appliance/piot/services/core"
)

// Level is the topic level that marks relayed packets.
const Level = "$adapter"

// Protocols, the last topic level.
const (
	ProtoPIOT  = "piot"
	ProtoVDGPS = "vdgps"
)

// Topic is where an edge adapter of org publishes packets of proto.
func Topic(org, proto string) string { return "org/" + org + "/" + Level + "/" + proto }

// Envelope is one relayed device packet.
type Envelope struct {
	// Edge identifies the edge adapter (generated at its first start).
	Edge string `json:"edge"`
	// Seq grows with every packet the edge adapter accepted.
	Seq uint64 `json:"seq"`
	// RX is when the edge adapter received the packet, Unix milliseconds.
	RX int64 `json:"rx"`
	// Body is the packet as the device sent it (base64 in JSON).
	Body []byte `json:"body"`
}

// MaxEdgeID bounds Envelope.Edge.
const MaxEdgeID = 64

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

// Config tunes the hook.
type Config struct {
	// DataDir is the appliance data directory; the log of processed
	// sequence numbers is DataDir/adapter/relay-seen.log.
	DataDir string
	Logger  *slog.Logger
}

// Deps are the hook's collaborators.
type Deps struct {
	Core     *core.Core
	Handlers map[string]Handler // by protocol
}

// Hook is the mochi hook; add it before the ingest hook.
type Hook struct {
	mqtt.HookBase
	core     *core.Core
	handlers map[string]Handler
	log      *slog.Logger
	path     string

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
	f     *os.File
	size  int64
	stats map[string]uint64
	// closing refuses new packets; busy counts packets being processed,
	// which Close waits for: mochi can still be inside OnPublish after
	// the broker stopped, and a packet whose readings are journaled must
	// get its sequence number recorded, or its resend is stored twice.
	closing bool
	busy    sync.WaitGroup
}

// compactAt is the size at which the log is rewritten with one line per
// edge adapter.
const compactAt = 1 << 20

// New opens (and compacts) the log of processed sequence numbers.
func New(cfg Config, deps Deps) (*Hook, error) {
	if deps.Core == nil || len(deps.Handlers) == 0 || cfg.DataDir == "" {
		return nil, errors.New("relay: data directory, core and handlers are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	dir := filepath.Join(cfg.DataDir, "adapter")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("relay: %w", err)
	}
	h := &Hook{
		core: deps.Core, handlers: deps.Handlers, log: cfg.Logger.With("service", "relay"),
		path: filepath.Join(dir, "relay-seen.log"), locks: map[string]*sync.Mutex{},
		seen: map[string]uint64{}, held: map[string]uint64{}, stats: map[string]uint64{},
	}
	if err := h.load(); err != nil {
		return nil, err
	}
	if err := h.compact(); err != nil {
		return nil, err
	}
	return h, nil
}

// load reads the log; a torn last line (a crash mid-write) is ignored.
func (h *Hook) load() error {
	f, err := os.Open(h.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("relay: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		key, seqText, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		seq, err := strconv.ParseUint(seqText, 10, 64)
		if err != nil {
			continue
		}
		h.seen[key] = max(h.seen[key], seq)
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("relay: read %s: %w", h.path, err)
	}
	return nil
}

// compact rewrites the log with one line per edge adapter. Callers hold
// mu (or own h exclusively).
func (h *Hook) compact() error {
	var b bytes.Buffer
	for k, v := range h.seen {
		fmt.Fprintf(&b, "%s %d\n", k, v)
	}
	if err := fileutil.WriteFile(h.path, b.Bytes(), 0o600); err != nil {
		return fmt.Errorf("relay: %w", err)
	}
	if h.f != nil {
		h.f.Close()
	}
	f, err := os.OpenFile(h.path, os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("relay: %w", err)
	}
	h.f, h.size = f, int64(b.Len())
	return nil
}

// Close refuses further packets, waits for those being processed and
// closes the log.
func (h *Hook) Close() error {
	h.mu.Lock()
	h.closing = true
	h.mu.Unlock()
	h.busy.Wait()
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.f == nil {
		return nil
	}
	err := h.f.Close()
	h.f = nil
	return err
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

// parseTopic returns the org and protocol of org/<org>/$adapter/<proto>.
func parseTopic(topic string) (org, proto string, ok bool) {
	rest, ok := strings.CutPrefix(topic, "org/")
	if !ok {
		return "", "", false
	}
	org, rest, ok = strings.Cut(rest, "/")
	if !ok {
		return "", "", false
	}
	proto, ok = strings.CutPrefix(rest, Level+"/")
	if !ok || strings.Contains(proto, "/") {
		return "", "", false
	}
	return org, proto, true
}

// OnPublish processes relayed packets; other publishes pass untouched.
func (h *Hook) OnPublish(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	org, proto, ok := parseTopic(pk.TopicName)
	if !ok {
		return pk, nil
	}
	switch h.process(org, proto, pk.Payload) {
	case ResultRetry:
		// No acknowledgement: the edge adapter sends the packet again.
		if cl != nil && cl.Properties.ProtocolVersion == 5 {
			return pk, packets.ErrUnspecifiedError
		}
		return pk, packets.ErrRejectPacket
	default:
		// Acknowledged, and not delivered to subscribers nor journaled.
		return pk, packets.CodeSuccessIgnore
	}
}

func (h *Hook) process(org, proto string, payload []byte) string {
	handler := h.handlers[proto]
	if handler == nil {
		h.count(ResultUnknown)
		h.log.Warn("relayed packet of an unknown protocol dropped", "org", org, "protocol", proto)
		return ResultUnknown
	}
	var env Envelope
	if err := json.Unmarshal(payload, &env); err != nil || env.Edge == "" || len(env.Edge) > MaxEdgeID ||
		strings.ContainsAny(env.Edge, " \n") || env.Seq == 0 || len(env.Body) == 0 {
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
	last := h.seen[key]
	held, isHeld := h.held[key]
	h.mu.Unlock()
	if env.Seq <= last {
		h.count(ResultDuplicate)
		return ResultDuplicate
	}
	if isHeld && env.Seq > held {
		h.count(ResultRetry)
		return ResultRetry
	}
	src := adapter.Source{OrgID: orgID}
	if env.RX > 0 {
		src.Received = time.UnixMilli(env.RX)
	}
	out := handler.Handle(context.Background(), env.Body, src)
	result := ResultProcessed
	switch {
	case out.Status >= 500:
		h.mu.Lock()
		h.held[key] = env.Seq
		h.mu.Unlock()
		h.count(ResultRetry)
		return ResultRetry
	case out.Status == http.StatusOK:
	case out.Status < 300:
		result = ResultNotStored
	default:
		result = ResultRefused
		h.log.Info("relayed packet refused", "org", org, "edge", env.Edge, "seq", env.Seq,
			"status", out.Status, "reason", out.Reason, "msg", out.Msg)
	}
	if err := h.markSeen(key, env.Seq); err != nil {
		// The readings are journaled; a resend after a restart would be
		// stored twice, which beats refusing the edge adapter forever.
		h.log.Error("cannot record relayed packet as processed", "err", err)
	}
	h.count(result)
	return result
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

// markSeen records seq as processed for key, durably.
func (h *Hook) markSeen(key string, seq uint64) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.seen[key] = seq
	delete(h.held, key)
	if h.f == nil {
		return errors.New("relay: closed")
	}
	line := key + " " + strconv.FormatUint(seq, 10) + "\n"
	if _, err := h.f.WriteString(line); err != nil {
		return err
	}
	if err := h.f.Sync(); err != nil {
		return err
	}
	h.size += int64(len(line))
	if h.size > compactAt {
		return h.compact()
	}
	return nil
}
