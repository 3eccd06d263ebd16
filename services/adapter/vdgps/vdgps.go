// Package vdgps implements the VD GPS tracker protocol (`POST /adapter/vdgps`):
// trackers upload batches of fixes in a binary packet (see Parse); the
// adapter auto-registers the tracker as a device thing named "VD"+ID, keeps
// its voltage on the thing, and publishes every fix, in packet order, to
// org/<org>/<thing>/location as JSON {"ts":<unix>,"lat":…,"lng":…,"sat":…}.
//
// Answers (JSON `{"error":…,"result":…}`):
//
//	200 every fix published (durably: Publish returns after the journal has it),
//	    or the upload is the tracker's previous one resent (not stored again)
//	202 accepted but nothing published: result "device not assigned to an
//	    organization" or "device disabled" (the voltage is still recorded)
//	400 undecodable packet (fewer than 5 blocks, empty id or flags, bad
//	    voltage) or a device id that is not a valid thing name
//	403 auto-registration refused: too many unassigned things
//	405 not POST
//	409 a thing named "VD"+ID exists without that piot_id
//	413 body larger than MaxBody
//	429 faster than the per-device minimum interval (Deps.Limit; Retry-After)
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
// southern latitudes or western longitudes; see upload.Fix.
package vdgps

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/piot-appliance/piot/services/adapter"
	"github.com/piot-appliance/piot/services/adapter/protocol"
	"github.com/piot-appliance/piot/services/adapter/vdgps/upload"
	"github.com/piot-appliance/piot/services/core"
)

// Defaults of Config.
const (
	DefaultMaxBody       = 64 << 10
	DefaultMaxUnassigned = 100
)

// NamePrefix is prepended to the device id to form the thing's name and
// piot_id.
const NamePrefix = upload.NamePrefix

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
	ReasonBadPacket     = upload.ReasonBadPacket
	ReasonInvalidName   = adapter.ReasonInvalidName
	ReasonUnassignedCap = "unassigned_cap"
	ReasonNameConflict  = "name_conflict"
	ReasonNotAssigned   = adapter.ReasonNotAssigned
	ReasonDisabled      = adapter.ReasonDisabled
	ReasonForeignOrg    = adapter.ReasonForeignOrg
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
	// Publish publishes one fix, measured at its time.
	Publish adapter.Publisher
	// Limit applies the per-device minimum interval to uploads received
	// directly (adapter.Checker.Limit); nil: no limit.
	Limit func(device string) adapter.Outcome
}

// Handler serves POST /adapter/vdgps.
type Handler struct {
	cfg     Config
	core    *core.Core
	publish adapter.Publisher
	limit   func(device string) adapter.Outcome
	last    *adapter.LastPackets
	log     *slog.Logger
	reg     *adapter.Registry

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
		limit:   deps.Limit,
		last:    adapter.NewLastPackets(0),
		log:     cfg.Logger,
		reg:     adapter.NewRegistry(deps.Core, cfg.MaxUnassigned),
	}, nil
}

// Stats returns the number of rejected packets by reason.
func (h *Handler) Stats() map[string]uint64 { return h.rejected.Snapshot() }

// location is the published JSON of one fix; field order is the reference's.
type location struct {
	TS  int64   `json:"ts"`
	Lat float64 `json:"lat"`
	Lng float64 `json:"lng"`
	Sat int     `json:"sat"`
}

// ServeHTTP serves POST /adapter/vdgps.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, ok := protocol.ReadPOST(w, r, h.cfg.MaxBody, &h.rejected)
	if !ok {
		return
	}
	h.Handle(r.Context(), body, adapter.Source{}).Write(w)
}

// Handle processes one upload from src and says how to answer it;
// rejections are counted.
func (h *Handler) Handle(ctx context.Context, body []byte, src adapter.Source) adapter.Outcome {
	out := h.handle(ctx, body, src)
	if out.Reason != "" {
		h.rejected.Add(out.Reason)
	}
	return out
}

func (h *Handler) handle(ctx context.Context, body []byte, src adapter.Source) adapter.Outcome {
	name, out := upload.Device(body)
	if out.Status != 0 {
		return out
	}
	if h.limit != nil && !src.Relayed() {
		// Relayed uploads were limited where they arrived, the edge.
		if out := h.limit(name); out.Status != 0 {
			return out
		}
	}
	if out := adapter.CheckDevice(h.core, name, src); out.Status != 0 {
		return out
	}
	p, _ := upload.Parse(body) // parsed fine in Device
	dev, err := h.register(ctx, name, src)
	if err != nil {
		out := adapter.Refusal(err)
		if out.Status == http.StatusInternalServerError {
			h.log.Error("vdgps: registration failed", "device", name, "err", err)
		}
		return out
	}
	org, out := adapter.DeliveryOrg(h.core, dev, src)
	if out.Status != 0 {
		if out.Status == http.StatusForbidden {
			return out // another organization's tracker: not even its voltage
		}
		h.setVoltage(dev, p.Voltage)
		return out
	}
	h.setVoltage(dev, p.Voltage)
	h.log.Debug("vdgps: packet", "device", name, "voltage", p.Voltage,
		"flags", fmt.Sprintf("%08b", p.Flags), "fixes", len(p.Fixes))
	if h.last.Same(name, body) {
		return adapter.AckResend(ctx, h.publish, src) // its fixes are stored
	}
	topic := "org/" + org + "/" + dev.Name + "/" + LocTopic
	msgs := make([]adapter.Message, 0, len(p.Fixes))
	for _, f := range p.Fixes {
		payload, err := json.Marshal(location(f))
		if err != nil { // unreachable: finite floats and ints only
			return adapter.Outcome{Status: http.StatusInternalServerError, Reason: ReasonInternal, Msg: "cannot encode fix"}
		}
		at := time.Unix(f.TS, 0)
		if f.TS <= 0 || at.After(time.Now().Add(adapter.MaxClockAhead)) {
			at = time.Now()
		}
		msgs = append(msgs, adapter.Message{Topic: topic, Payload: payload, At: at})
	}
	msgs = append(msgs, src.With...)
	if err := h.publish.Publish(ctx, msgs); err != nil {
		h.log.Debug("vdgps: publish failed", "topic", topic, "err", err)
		return adapter.PublishRefused(err)
	}
	h.last.Stored(name, body)
	return adapter.Outcome{Status: http.StatusOK}
}

func (h *Handler) setVoltage(dev core.Thing, volt float64) {
	h.core.UpdateThingState(dev.ID, func(t *core.Thing) bool {
		if t.Voltage == volt {
			return false
		}
		t.Voltage = volt
		return true
	})
}

// register finds the tracker by piot_id or registers it: name = piot_id =
// "VD"+ID, type device, unassigned and disabled, location topic "location"
// with paths lat/lng/sat/ts.
func (h *Handler) register(ctx context.Context, name string, src adapter.Source) (core.Thing, error) {
	h.reg.Lock()
	defer h.reg.Unlock()
	return h.reg.FindOrCreate(ctx, name, core.ThingDevice, src, nil, func(t *core.Thing) {
		t.LocMQTTTopic, t.LocMQTTLatValue, t.LocMQTTLngValue = LocTopic, LocLat, LocLng
		t.LocMQTTSatValue, t.LocMQTTTsValue = LocSat, LocTs
	})
}
