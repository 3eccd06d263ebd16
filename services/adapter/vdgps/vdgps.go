// Package vdgps implements the VD GPS tracker protocol (`POST /adapter/vdgps`):
// trackers upload batches of fixes in a binary packet (see Parse); the
// adapter auto-registers the tracker as a device thing named "VD"+ID, keeps
// its voltage on the thing, and publishes every fix, in packet order, to
// org/<org>/<thing>/location as JSON {"ts":<unix>,"lat":…,"lng":…,"sat":…}.
//
// Answers (JSON `{"error":…,"result":…}`):
//
//	200 every fix published (durably: Publish returns after the journal has it)
//	202 accepted but nothing published: result "device not assigned to an
//	    organization" or "device disabled" (the voltage is still recorded)
//	400 undecodable packet (fewer than 5 blocks, empty id or flags, bad
//	    voltage) or a device id that is not a valid thing name
//	403 auto-registration refused: too many unassigned things
//	405 not POST
//	409 a thing named "VD"+ID exists without that piot_id
//	413 body larger than MaxBody
//	500 core failure
//	503 publishing failed; the remaining fixes were not sent, the device
//	    should resend the packet
//
// Fixes over the reference (§12.21): short or truncated packets are answered
// 400 instead of panicking; the voltage is kept on the thing; unassigned and
// disabled trackers get a distinct 202 instead of a silent 200; a publish
// failure is 503 (retryable), not 400. Auto-registration is capped like the
// PIOT adapter's (§12.7), and the registered location topic is thing-relative
// ("location"), which is what the appliance's ingest matches (§12.14).
//
// Coordinates are unsigned in the device format, so trackers cannot report
// southern latitudes or western longitudes; see Fix.
package vdgps

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"

	"github.com/piot-appliance/piot/services/adapter"
	"github.com/piot-appliance/piot/services/core"
	"github.com/piot-appliance/piot/services/store"
)

// Defaults of Config.
const (
	DefaultMaxBody       = 64 << 10
	DefaultMaxUnassigned = 100
)

// NamePrefix is prepended to the device id to form the thing's name and
// piot_id.
const NamePrefix = "VD"

// Location topic and JSON paths set on auto-registered trackers.
const (
	LocTopic = "location"
	LocLat   = "lat"
	LocLng   = "lng"
	LocSat   = "sat"
	LocTs    = "ts"
)

// Results of a 202 answer.
const (
	ResultNotAssigned = adapter.ResultNotAssigned
	ResultDisabled    = adapter.ResultDisabled
)

// Rejection reasons counted by Stats.
const (
	ReasonMethod        = adapter.ReasonMethod
	ReasonTooLarge      = adapter.ReasonTooLarge
	ReasonRead          = adapter.ReasonRead
	ReasonBadPacket     = "bad_packet"
	ReasonInvalidName   = "invalid_name"
	ReasonUnassignedCap = "unassigned_cap"
	ReasonNameConflict  = "name_conflict"
	ReasonNotAssigned   = adapter.ReasonNotAssigned
	ReasonDisabled      = adapter.ReasonDisabled
	ReasonPublishFailed = "publish_failed"
	ReasonInternal      = "internal_error"
)

// Config tunes the adapter.
type Config struct {
	// MaxBody bounds a request body; 0 means 64 KiB.
	MaxBody int64
	// MaxUnassigned caps auto-registration: new things are refused while
	// this many things are unassigned; 0 means 100.
	MaxUnassigned int
	Logger        *slog.Logger
}

// Deps are the services the adapter uses.
type Deps struct {
	Core *core.Core
	// Publish publishes one message; the appliance passes the broker's
	// in-process, QoS 1 Publish, which returns once the message is journaled.
	Publish func(ctx context.Context, topic string, payload []byte) error
}

// Handler serves POST /adapter/vdgps.
type Handler struct {
	cfg     Config
	core    *core.Core
	publish func(ctx context.Context, topic string, payload []byte) error
	log     *slog.Logger

	regMu sync.Mutex // serializes lookup-or-register

	rejected adapter.Rejections
}

// New checks the configuration and builds the handler.
func New(cfg Config, deps Deps) (*Handler, error) {
	if deps.Core == nil || deps.Publish == nil {
		return nil, errors.New("vdgps: Core and Publish are required")
	}
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = DefaultMaxBody
	}
	if cfg.MaxUnassigned <= 0 {
		cfg.MaxUnassigned = DefaultMaxUnassigned
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &Handler{
		cfg:     cfg,
		core:    deps.Core,
		publish: deps.Publish,
		log:     cfg.Logger,
	}, nil
}

// Stats returns the number of rejected packets by reason.
func (h *Handler) Stats() map[string]uint64 { return h.rejected.Snapshot() }

func writeJSON(w http.ResponseWriter, status int, errMsg, result string) {
	adapter.WriteAnswer(w, status, errMsg, result)
}

func (h *Handler) fail(w http.ResponseWriter, status int, reason, msg string) {
	h.rejected.Reject(w, status, reason, msg)
}

// location is the published JSON of one fix; field order is the reference's.
type location struct {
	TS  int64   `json:"ts"`
	Lat float64 `json:"lat"`
	Lng float64 `json:"lng"`
	Sat int     `json:"sat"`
}

// ServeHTTP serves POST /adapter/vdgps.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, ok := adapter.ReadPOST(w, r, h.cfg.MaxBody, &h.rejected)
	if !ok {
		return
	}
	p, err := Parse(body)
	if err != nil {
		h.fail(w, http.StatusBadRequest, ReasonBadPacket, "invalid packet: "+err.Error())
		return
	}
	name := NamePrefix + p.ID
	if err := core.ValidName("thing", name); err != nil {
		h.fail(w, http.StatusBadRequest, ReasonInvalidName, "invalid device id: "+core.Message(err))
		return
	}
	ctx := r.Context()
	dev, rerr := h.register(ctx, name)
	if rerr != nil {
		h.fail(w, rerr.status, rerr.reason, rerr.msg)
		if rerr.status >= 500 {
			h.log.Error("vdgps: registration failed", "device", name, "err", rerr.err)
		}
		return
	}
	volt := p.Voltage
	h.core.UpdateThingState(dev.ID, func(t *store.Thing) bool {
		if t.Voltage == volt {
			return false
		}
		t.Voltage = volt
		return true
	})
	h.log.Debug("vdgps: packet", "device", name, "voltage", p.Voltage,
		"flags", fmt.Sprintf("%08b", p.Flags), "fixes", len(p.Fixes))

	org, ok := adapter.DeliveryOrg(w, h.core, dev, &h.rejected)
	if !ok {
		return
	}
	topic := "org/" + org + "/" + dev.Name + "/" + LocTopic
	for _, f := range p.Fixes {
		payload, err := json.Marshal(f.toLocation())
		if err != nil { // unreachable: finite floats and ints only
			h.fail(w, http.StatusInternalServerError, ReasonInternal, "cannot encode fix")
			return
		}
		if err := h.publish(ctx, topic, payload); err != nil {
			h.log.Warn("vdgps: publish failed", "topic", topic, "err", err)
			h.fail(w, http.StatusServiceUnavailable, ReasonPublishFailed, "publishing failed, try again later")
			return
		}
	}
	writeJSON(w, http.StatusOK, "", "")
}

func (f Fix) toLocation() location {
	return location(f)
}

type regError struct {
	status int
	reason string
	msg    string
	err    error
}

// register finds the tracker by piot_id or registers it: name = piot_id =
// "VD"+ID, type device, unassigned and disabled, location topic "location"
// with paths lat/lng/sat/ts.
func (h *Handler) register(ctx context.Context, name string) (core.Thing, *regError) {
	h.regMu.Lock()
	defer h.regMu.Unlock()
	if t, ok := h.core.ThingByPiotID(name); ok {
		return t, nil
	}
	if _, taken := h.core.ThingByName(name); taken {
		return core.Thing{}, &regError{http.StatusConflict, ReasonNameConflict,
			fmt.Sprintf("a thing named %q exists without this piot id", name), nil}
	}
	if h.core.UnassignedThings() >= h.cfg.MaxUnassigned {
		return core.Thing{}, &regError{http.StatusForbidden, ReasonUnassignedCap,
			"auto-registration refused: too many unassigned things", nil}
	}
	t, err := h.core.CreateThing(ctx, core.System, name, store.ThingDevice)
	if err != nil {
		if core.CodeOf(err) == core.CodeConflict {
			return core.Thing{}, &regError{http.StatusConflict, ReasonNameConflict, core.Message(err), err}
		}
		return core.Thing{}, &regError{http.StatusInternalServerError, ReasonInternal, "cannot register thing", err}
	}
	pid, topic, lat, lng, sat, ts := name, LocTopic, LocLat, LocLng, LocSat, LocTs
	t, err = h.core.UpdateThing(ctx, core.System, core.ThingUpdate{
		ID: t.ID, PiotID: &pid,
		LocMQTTTopic: &topic, LocMQTTLatValue: &lat, LocMQTTLngValue: &lng,
		LocMQTTSatValue: &sat, LocMQTTTsValue: &ts,
	})
	if err != nil {
		return core.Thing{}, &regError{http.StatusInternalServerError, ReasonInternal, "cannot register thing", err}
	}
	h.log.Info("vdgps: registered thing", "name", name)
	return t, nil
}
