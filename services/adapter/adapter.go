// Package adapter implements the PIOT device protocol (`POST /adapter`):
// devices post JSON packets, plain or AES-128-ECB encrypted with PKCS#7
// padding, the adapter auto-registers the device and one sensor per reading
// class, and publishes the readings to the broker in-process under
// org/<org>/<thing>/… exactly as the original PIOT server did.
//
// Answers (JSON `{"error":…,"result":…}`):
//
//	200 published (durably: Publish returns after the journal has it), or
//	    a resend of the device's previous packet, byte for byte, whose
//	    readings carry the device's time (acknowledged, not stored again)
//	202 accepted but nothing published: result "device not assigned to an
//	    organization" or "device disabled"
//	400 undecodable packet (bad JSON, bad ciphertext length, bad PKCS#7
//	    padding, empty or invalid device name)
//	403 auto-registration refused: too many unassigned things; relayed
//	    packets only: a device of another organization (foreign_org), or
//	    not the device whose own credentials relayed it (foreign_device)
//	405 not POST
//	409 a thing with the wanted name exists without the packet's piot_id
//	413 body larger than MaxBody
//	429 device sent again within MinInterval; Retry-After in seconds
//	500 core failure
//	503 publishing failed (Retry-After); nothing of the packet was stored
//	507 the appliance's storage is full (Retry-After); nothing of the
//	    packet was stored
//
// Fixes over the reference (§12): plaintext is decoded from the buffered
// body (12.12); a padding error stops processing (12.13); sensors are found by
// piot_id, not name (12.15); a sensor publishes only when it is itself
// assigned and enabled (12.16); registration errors are not ignored (12.17);
// the per-device interval limiter is mutex-protected and bounded (12.26);
// auto-registration is capped (12.7).
//
// Pressure sensors are registered with unit "Pa" (the reference's "mPa" is a
// slip: devices report pascals).
package adapter

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/piot-appliance/piot/services/adapter/protocol"
	"github.com/piot-appliance/piot/services/core"
	"github.com/piot-appliance/piot/services/ingest"
)

// Publisher publishes the messages of one packet, in order, and returns
// once all are journaled: the ingest's "journal, then deliver"
// (*ingest.Ingest), so a 200 to the device means the readings are durable.
type Publisher interface {
	Publish(ctx context.Context, msgs []Message) error
}

// PublisherFunc lets a function be a Publisher (a test's recorder).
type PublisherFunc func(ctx context.Context, msgs []Message) error

// Publish calls f.
func (f PublisherFunc) Publish(ctx context.Context, msgs []Message) error { return f(ctx, msgs) }

// Message is one MQTT message a device packet turns into, with the time
// it was measured; it is the ingest's message, which journals it as is.
type Message = ingest.Message

// Defaults of Config; those the edge adapter shares are package
// protocol's.
const (
	DefaultMinInterval   = protocol.DefaultMinInterval
	DefaultMaxUnassigned = 100
	DefaultMaxBody       = protocol.DefaultMaxBody
	MaxReadings          = protocol.MaxReadings
	DefaultMaxTracked    = protocol.DefaultMaxTracked
)

// Units and classes of auto-registered sensors.
const (
	UnitTemperature = protocol.UnitTemperature
	UnitHumidity    = protocol.UnitHumidity
	UnitPressure    = protocol.UnitPressure
)

// Results of a 202 answer.
const (
	ResultNotAssigned = "device not assigned to an organization"
	ResultDisabled    = "device disabled"
)

// Rejection reasons counted by Stats; those of the checks the edge
// adapter makes too are package protocol's, those of core's device rules
// are the rules' names (Refusal counts a refusal by its rule).
const (
	ReasonMethod         = protocol.ReasonMethod
	ReasonTooLarge       = protocol.ReasonTooLarge
	ReasonRead           = protocol.ReasonRead
	ReasonBadLength      = protocol.ReasonBadLength
	ReasonBadPadding     = protocol.ReasonBadPadding
	ReasonBadJSON        = protocol.ReasonBadJSON
	ReasonEmptyDevice    = protocol.ReasonEmptyDevice
	ReasonInvalidName    = protocol.ReasonInvalidName
	ReasonRateLimited    = protocol.ReasonRateLimited
	ReasonUnassignedCap  = string(core.RuleUnassignedCap)
	ReasonTooManyReads   = protocol.ReasonTooManyReads
	ReasonNameConflict   = "name_conflict"
	ReasonNotAssigned    = string(core.RuleNotAssigned)
	ReasonDisabled       = string(core.RuleDisabled)
	ReasonForeignOrg     = string(core.RuleForeignOrg)
	ReasonForeignDevice  = protocol.ReasonForeignDevice
	ReasonWrongKey       = protocol.ReasonWrongKey
	ReasonPublishFailed  = "publish_failed"
	ReasonStorageFull    = "storage_full"
	ReasonInternal       = "internal_error"
	ReasonLimiterTooBusy = protocol.ReasonLimiterTooBusy
)

// Config tunes the adapter.
type Config struct {
	// AESKey is "" (plaintext only) or exactly 16 bytes (AES-128).
	AESKey string
	// DeviceKeys are devices' own AES-128 keys by piot id, for a checker
	// without core (NewChecker; New takes them from the things). A
	// device listed is accepted only encrypted with its own key.
	DeviceKeys map[string]string
	// MinInterval between two accepted packets of one device; 0 means 1s,
	// negative disables the limit.
	MinInterval time.Duration
	// MaxUnassigned caps auto-registration: new things are refused while
	// this many things are unassigned; 0 means 100.
	MaxUnassigned int
	// MaxBody bounds a request body; 0 means 64 KiB.
	MaxBody int64
	// MaxTracked bounds the rate limiter's table; 0 means 100000.
	MaxTracked int
	Logger     *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Deps are the services the adapter uses.
type Deps struct {
	Core    *core.Core
	Publish Publisher
}

// Adapter serves the PIOT device protocol.
type Adapter struct {
	*protocol.Checker
	cfg     Config
	core    *core.Core
	publish Publisher
	last    *LastPackets
	log     *slog.Logger

	reg *Registry

	rejected Rejections
}

// packet is a decoded packet; package protocol decodes and checks it.
type packet = protocol.Packet

// NewChecker builds the protocol's checker from the adapter's settings
// (Core, Publish and MaxUnassigned unused).
func NewChecker(cfg Config) (*protocol.Checker, error) {
	return protocol.NewChecker(cfg.checker(nil))
}

// New checks the configuration and builds an adapter.
func New(cfg Config, deps Deps) (*Adapter, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if deps.Core == nil || deps.Publish == nil {
		return nil, errors.New("adapter: Core and Publish are required")
	}
	ch, err := protocol.NewChecker(cfg.checker(thingKeys{deps.Core}))
	if err != nil {
		return nil, err
	}
	return &Adapter{
		Checker: ch,
		cfg:     cfg,
		core:    deps.Core,
		publish: deps.Publish,
		last:    NewLastPackets(cfg.MaxTracked),
		log:     cfg.Logger,
		reg:     NewRegistry(deps.Core, cfg.MaxUnassigned),
	}, nil
}

// checker is the part of cfg the protocol's checker takes; keys, if not
// nil, are where the devices' own keys are looked up.
func (cfg Config) checker(keys protocol.Keys) protocol.Config {
	return protocol.Config{AESKey: cfg.AESKey, DeviceKeys: cfg.DeviceKeys, Keys: keys,
		MinInterval: cfg.MinInterval, MaxTracked: cfg.MaxTracked, Now: cfg.Now}
}

// thingKeys are the devices' own keys as core's things hold them.
type thingKeys struct{ c *core.Core }

func (k thingKeys) Key(piotID string) (string, bool) {
	t, ok := k.c.ThingByPiotID(piotID)
	return t.AESKey, ok && t.AESKey != ""
}

func (k thingKeys) Each(fn func(piotID, key string) bool) { k.c.DeviceKeys(fn) }

func (cfg Config) withDefaults() (Config, error) {
	pc, err := cfg.checker(nil).WithDefaults()
	if err != nil {
		return cfg, err
	}
	cfg.MinInterval, cfg.MaxTracked, cfg.Now = pc.MinInterval, pc.MaxTracked, pc.Now
	if cfg.MaxUnassigned <= 0 {
		cfg.MaxUnassigned = DefaultMaxUnassigned
	}
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = DefaultMaxBody
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return cfg, nil
}

// Stats returns the number of rejected packets by reason.
func (a *Adapter) Stats() map[string]uint64 { return a.rejected.Snapshot() }

// Handler serves POST /adapter.
func (a *Adapter) Handler() http.Handler {
	return http.HandlerFunc(a.serve)
}

func (a *Adapter) serve(w http.ResponseWriter, r *http.Request) {
	body, ok := protocol.ReadPOST(w, r, a.cfg.MaxBody, &a.rejected)
	if !ok {
		return
	}
	a.handle(r.Context(), body, r.URL.Query().Get("device"), Source{}).Write(w)
}

// MaxClockAhead is how far in the future a device's own time may be; a
// packet stamped later than that is taken as received now.
const MaxClockAhead = 5 * time.Minute

// Handle processes one packet body (plaintext or encrypted) from src and
// says how to answer it; rejections are counted.
func (a *Adapter) Handle(ctx context.Context, body []byte, src Source) Outcome {
	return a.handle(ctx, body, "", src)
}

func (a *Adapter) handle(ctx context.Context, body []byte, hint string, src Source) Outcome {
	pkt, out := a.Decode(body, hint)
	if out.Status == 0 {
		out = a.process(ctx, pkt, body, src)
	}
	if out.Reason != "" {
		a.rejected.Add(out.Reason)
	}
	return out
}

// measuredAt is when a packet's readings were taken: the device's own
// time if it has one that is not in the future, else when it arrived.
func (a *Adapter) measuredAt(p *packet, src Source) time.Time {
	now := a.cfg.Now()
	if p.Time > 0 {
		if t := time.Unix(p.Time, 0); t.Before(now.Add(MaxClockAhead)) {
			return t
		}
	}
	if !src.Received.IsZero() {
		return src.Received
	}
	return now
}

func (a *Adapter) process(ctx context.Context, p *packet, body []byte, src Source) Outcome {
	if out := p.Validate(); out.Status != 0 {
		return out
	}
	if !src.Relayed() {
		if out := a.Limit(p.Device); out.Status != 0 {
			return out
		}
	}
	if out := CheckDevice(a.core, p.Device, src); out.Status != 0 {
		return out
	}
	dev, sensors, err := a.register(ctx, p, src)
	if err != nil {
		out := Refusal(err)
		if out.Status == http.StatusInternalServerError {
			a.log.Error("adapter: registration failed", "device", p.Device, "err", err)
		}
		return out
	}
	devOrg, out := DeliveryOrg(a.core, dev, src)
	if out.Status != 0 {
		return out
	}
	if p.Time > 0 && a.last.Same(p.Device, body) {
		return AckResend(ctx, a.publish, src)
	}
	at := a.measuredAt(p, src)
	pubs := a.publications(devOrg, dev, p, sensors, src)
	msgs := make([]Message, len(pubs))
	for i, m := range pubs {
		msgs[i] = Message{Topic: m.topic, Payload: []byte(m.payload), At: at}
	}
	msgs = append(msgs, src.With...)
	if err := a.publish.Publish(ctx, msgs); err != nil {
		a.log.Debug("adapter: publish failed", "device", dev.Name, "err", err)
		return PublishRefused(err)
	}
	if p.Time > 0 {
		a.last.Stored(p.Device, body)
	}
	return Outcome{Status: http.StatusOK}
}

type message struct{ topic, payload string }

// publications lists, in order, what an accepted packet of an assigned and
// enabled device publishes.
func (a *Adapter) publications(org string, dev core.Thing, p *packet, sensors []sensorReading, src Source) []message {
	base := "org/" + org + "/" + dev.Name + "/"
	out := []message{{base + "available", "yes"}}
	if p.IP != "" {
		out = append(out, message{base + "net/ip", p.IP})
	}
	if p.WifiSSID != "" {
		out = append(out, message{base + "net/wifi/ssid", p.WifiSSID})
	}
	if p.WifiStrength != nil {
		out = append(out, message{base + "net/wifi/strength", fmt.Sprintf("%f", *p.WifiStrength)})
	}
	for _, s := range sensors {
		// A sensor publishes only when it is itself assigned and enabled.
		d, err := a.core.DeviceDelivery(s.thing, src.core())
		if err != nil || !d.Delivers() {
			continue
		}
		sb := "org/" + d.Org + "/" + s.thing.Name + "/"
		out = append(out,
			message{sb + "available", "yes"},
			message{sb + "value", strconv.FormatFloat(float64(s.value), 'f', -1, 32)},
			message{sb + "value/unit", s.unit},
		)
	}
	return out
}

type sensorReading struct {
	thing core.Thing
	value float32
	unit  string
}

func (a *Adapter) register(ctx context.Context, p *packet, src Source) (core.Thing, []sensorReading, error) {
	a.reg.mu.Lock()
	defer a.reg.mu.Unlock()
	dev, err := a.reg.FindOrCreate(ctx, p.Device, core.ThingDevice, src, nil, func(t *core.Thing) {
		t.AvailabilityTopic = "available"
	})
	if err != nil {
		return dev, nil, err
	}
	if err := a.reg.sensorShare(dev, p, src); err != nil {
		return dev, nil, err
	}
	var out []sensorReading
	for _, rd := range p.Readings {
		for _, m := range rd.Measurements() {
			class, unit := m.Class, m.Unit
			s, err := a.reg.FindOrCreate(ctx, m.Prefix+rd.Address, core.ThingSensor, src, &dev, func(t *core.Thing) {
				t.Sensor.Class, t.Sensor.Unit, t.Sensor.MeasurementTopic = class, unit, "value"
			})
			if err != nil {
				return dev, nil, err
			}
			u := s.Sensor.Unit
			if u == "" {
				u = unit
			}
			out = append(out, sensorReading{thing: s, value: m.Value, unit: u})
		}
	}
	return dev, out, nil
}
