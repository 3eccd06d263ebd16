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
	"bytes"
	"context"
	"crypto/aes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/piot-appliance/piot/services/core"
)

// Publisher publishes the messages of one packet, in order; it returns
// once all are journaled (the appliance journals them in the ingest with
// their measurement time, then delivers them to subscribers).
type Publisher func(ctx context.Context, msgs []Message) error

// Message is one MQTT message a device packet turns into.
type Message struct {
	Topic   string
	Payload []byte
	At      time.Time // when it was measured
}

// Defaults of Config.
const (
	DefaultMinInterval   = time.Second
	DefaultMaxUnassigned = 100
	DefaultMaxBody       = 64 << 10
	// MaxReadings bounds the readings of one packet: a PIOT chip has a
	// handful of sensors on its bus, and each new address is a thing.
	MaxReadings = 32
	// DefaultMaxTracked bounds the rate limiter's memory (devices seen within
	// MinInterval).
	DefaultMaxTracked = 100_000
)

// Units and classes of auto-registered sensors.
const (
	UnitTemperature = "C"
	UnitHumidity    = "%"
	UnitPressure    = "Pa"
)

// Results of a 202 answer.
const (
	ResultNotAssigned = "device not assigned to an organization"
	ResultDisabled    = "device disabled"
)

// Rejection reasons counted by Stats.
const (
	ReasonMethod         = "method_not_allowed"
	ReasonTooLarge       = "body_too_large"
	ReasonRead           = "read_error"
	ReasonBadLength      = "bad_cipher_length"
	ReasonBadPadding     = "bad_padding"
	ReasonBadJSON        = "bad_json"
	ReasonEmptyDevice    = "empty_device"
	ReasonInvalidName    = "invalid_name"
	ReasonRateLimited    = "rate_limited"
	ReasonUnassignedCap  = "unassigned_cap"
	ReasonTooManyReads   = "too_many_readings"
	ReasonNameConflict   = "name_conflict"
	ReasonNotAssigned    = "not_assigned"
	ReasonDisabled       = "disabled"
	ReasonForeignOrg     = "foreign_org"
	ReasonForeignDevice  = "foreign_device"
	ReasonWrongKey       = "wrong_key"
	ReasonPublishFailed  = "publish_failed"
	ReasonStorageFull    = "storage_full"
	ReasonInternal       = "internal_error"
	ReasonLimiterTooBusy = "limiter_full"
)

// Config tunes the adapter.
type Config struct {
	// AESKey is "" (plaintext only) or exactly 16 bytes (AES-128).
	AESKey string
	// DeviceKeys are devices' own AES-128 keys by piot id, for a checker
	// without core (the edge adapter; New takes them from the things). A
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
	*Checker
	cfg     Config
	core    *core.Core
	publish Publisher
	last    *LastPackets
	log     *slog.Logger

	reg *Registry

	rejected Rejections
}

// Checker decodes packets and applies the per-device rate limit, without
// registering or publishing anything; the edge adapter checks packets
// with it before it spools them.
type Checker struct {
	now     func() time.Time
	key     []byte
	limiter *limiter
	// Devices' own keys; nil where they are not known (the edge).
	devKey  func(piotID string) (string, bool)
	devKeys func(fn func(piotID, key string) bool)
}

// NewChecker builds a checker (Core, Publish and MaxUnassigned unused).
func NewChecker(cfg Config) (*Checker, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	c := &Checker{now: cfg.Now, limiter: newLimiter(cfg.MinInterval, cfg.MaxTracked)}
	if cfg.AESKey != "" {
		c.key = []byte(cfg.AESKey)
	}
	if len(cfg.DeviceKeys) > 0 {
		keys := maps.Clone(cfg.DeviceKeys)
		c.devKey = func(piotID string) (string, bool) {
			k, ok := keys[piotID]
			return k, ok
		}
		c.devKeys = func(fn func(piotID, key string) bool) {
			for id, k := range keys {
				if !fn(id, k) {
					return
				}
			}
		}
	}
	return c, nil
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
	ch, err := NewChecker(cfg)
	if err != nil {
		return nil, err
	}
	ch.devKeys = deps.Core.DeviceKeys
	ch.devKey = func(piotID string) (string, bool) {
		t, ok := deps.Core.ThingByPiotID(piotID)
		return t.AESKey, ok && t.AESKey != ""
	}
	return &Adapter{
		Checker: ch,
		cfg:     cfg,
		core:    deps.Core,
		publish: deps.Publish,
		last:    NewLastPackets(cfg.MaxTracked),
		log:     cfg.Logger,
		reg:     NewRegistry(deps.Core, cfg.MaxUnassigned, cfg.Logger),
	}, nil
}

func (cfg Config) withDefaults() (Config, error) {
	if cfg.AESKey != "" && len(cfg.AESKey) != 16 {
		return cfg, fmt.Errorf("adapter: AES key must be exactly 16 bytes, got %d", len(cfg.AESKey))
	}
	for id, k := range cfg.DeviceKeys {
		if len(k) != 16 {
			return cfg, fmt.Errorf("adapter: the AES key of device %s must be exactly 16 bytes, got %d", id, len(k))
		}
	}
	if cfg.MinInterval == 0 {
		cfg.MinInterval = DefaultMinInterval
	}
	if cfg.MaxUnassigned <= 0 {
		cfg.MaxUnassigned = DefaultMaxUnassigned
	}
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = DefaultMaxBody
	}
	if cfg.MaxTracked <= 0 {
		cfg.MaxTracked = DefaultMaxTracked
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
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
	body, ok := ReadPOST(w, r, a.cfg.MaxBody, &a.rejected)
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
	pkt, out := a.decode(body, hint)
	if out.Status == 0 {
		out = a.process(ctx, pkt, body, src)
	}
	if out.Reason != "" {
		a.rejected.Add(out.Reason)
	}
	return out
}

// Device returns the device id of a packet body, decrypting it if needed
// (hint as in POST /adapter?device=ID); the edge adapter uses it to check
// a packet and apply the rate limit before it spools.
func (a *Checker) Device(body []byte, hint string) (string, Outcome) {
	pkt, out := a.decode(body, hint)
	if out.Status != 0 {
		return "", out
	}
	if out := validate(pkt); out.Status != 0 {
		return "", out
	}
	return pkt.Device, Outcome{}
}

// decode parses a packet, decrypting it with the device's own key or the
// global one. hint, if not empty, names the sending device (POST
// /adapter?device=ID), so its key is tried first; without it the own
// keys are tried one by one, and a key only counts if the packet it
// opens names the key's device. A device with its own key is accepted
// only encrypted with that key: anyone could forge its plaintext, and
// anyone with the global key its global-key packets.
func (a *Checker) decode(body []byte, hint string) (*packet, Outcome) {
	p, err := parsePacket(body)
	if err == nil {
		if a.ownKey(p.Device) != "" {
			return nil, reject(http.StatusBadRequest, ReasonWrongKey, "this device's packets must be encrypted with its own key")
		}
		return p, Outcome{}
	}
	badJSON := reject(http.StatusBadRequest, ReasonBadJSON, "invalid packet: "+err.Error())
	if len(body) == 0 || len(body)%aes.BlockSize != 0 || a.key == nil && a.devKeys == nil {
		if a.key == nil || looksLikeJSON(body) {
			// Not ciphertext, or no key to open it: a broken plaintext.
			return nil, badJSON
		}
		return nil, reject(http.StatusBadRequest, ReasonBadLength, "invalid length of body for decryption")
	}
	if hint != "" {
		if k := a.ownKey(hint); k != "" {
			if p, out := open([]byte(k), body); out.Status == 0 && p.Device == hint {
				return p, out
			}
		}
	}
	var failed Outcome
	if a.key != nil {
		p, out := open(a.key, body)
		if out.Status == 0 {
			if a.ownKey(p.Device) != "" {
				return nil, reject(http.StatusBadRequest, ReasonWrongKey, "this device's packets must be encrypted with its own key")
			}
			return p, out
		}
		failed = out
	}
	var found *packet
	if a.devKeys != nil {
		a.devKeys(func(piotID, key string) bool {
			if p, out := open([]byte(key), body); out.Status == 0 && p.Device == piotID {
				found = p
				return false
			}
			return true
		})
	}
	if found != nil {
		return found, Outcome{}
	}
	if looksLikeJSON(body) {
		// No key opens it and it reads as JSON: the device sent
		// plaintext, and what is wrong is its JSON.
		return nil, badJSON
	}
	if failed.Status == 0 {
		failed = reject(http.StatusBadRequest, ReasonBadPadding, "wrong PKCS#7 padding of encrypted content")
	}
	return nil, failed
}

// looksLikeJSON tells a plaintext packet (a JSON object, maybe after
// white space) from ciphertext, which is random bytes.
func looksLikeJSON(b []byte) bool {
	b = bytes.TrimLeft(b, " \t\r\n")
	return len(b) > 0 && b[0] == '{' && utf8.Valid(b)
}

// open decrypts and parses a packet with one key.
func open(key, body []byte) (*packet, Outcome) {
	plain, err := decryptECB(key, body)
	if err != nil {
		return nil, reject(http.StatusBadRequest, ReasonBadPadding, "wrong PKCS#7 padding of encrypted content")
	}
	p, err := parsePacket(plain)
	if err != nil {
		return nil, reject(http.StatusBadRequest, ReasonBadJSON, "invalid packet: "+err.Error())
	}
	return p, Outcome{}
}

// ownKey returns a device's own key ("" if none or unknown here).
func (a *Checker) ownKey(piotID string) string {
	if a.devKey == nil || piotID == "" {
		return ""
	}
	k, _ := a.devKey(piotID)
	return k
}

// validate checks the names a packet would register.
func validate(p *packet) Outcome {
	if p.Device == "" {
		return reject(http.StatusBadRequest, ReasonEmptyDevice, "device name cannot be empty")
	}
	if err := core.ValidName("thing", p.Device); err != nil {
		return reject(http.StatusBadRequest, ReasonInvalidName, "invalid device name: "+core.Message(err))
	}
	if len(p.Readings) > MaxReadings {
		return reject(http.StatusBadRequest, ReasonTooManyReads, fmt.Sprintf("a packet may carry at most %d readings, this one has %d", MaxReadings, len(p.Readings)))
	}
	for _, rd := range p.Readings {
		for _, m := range rd.measurements() {
			if err := core.ValidName("thing", m.prefix+rd.Address); err != nil {
				return reject(http.StatusBadRequest, ReasonInvalidName, "invalid reading address: "+core.Message(err))
			}
		}
	}
	return Outcome{}
}

// Limit applies the per-device minimum interval.
func (a *Checker) Limit(device string) Outcome {
	ok, wait, full := a.limiter.allow(device, a.now())
	if ok {
		return Outcome{}
	}
	out := reject(http.StatusTooManyRequests, ReasonRateLimited, "exceeded minimum interval between packets of a device")
	if full {
		out = reject(http.StatusTooManyRequests, ReasonLimiterTooBusy, "too many devices, try again later")
	}
	out.RetryAfter = max(wait, time.Second)
	return out
}

// measuredAt is when a packet's readings were taken: the device's own
// time if it has one that is not in the future, else when it arrived.
func (a *Adapter) measuredAt(p *packet, src Source) time.Time {
	now := a.now()
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
	if out := validate(p); out.Status != 0 {
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
	dev, sensors, rerr := a.register(ctx, p, src)
	if rerr != nil {
		if rerr.Status == http.StatusInternalServerError {
			a.log.Error("adapter: registration failed", "device", p.Device, "err", rerr.Err)
		}
		return rerr.Outcome()
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
	if err := a.publish(ctx, msgs); err != nil {
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
		if s.thing.OrgID.IsZero() || !s.thing.Enabled || !src.mayDeliver(s.thing) {
			continue
		}
		org, ok := a.core.OrgNameOf(s.thing.OrgID)
		if !ok {
			continue
		}
		sb := "org/" + org + "/" + s.thing.Name + "/"
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

func (a *Adapter) register(ctx context.Context, p *packet, src Source) (core.Thing, []sensorReading, *RegError) {
	a.reg.mu.Lock()
	defer a.reg.mu.Unlock()
	dev, rerr := a.reg.FindOrCreate(ctx, p.Device, core.ThingDevice, src, func(t core.Thing) (core.Thing, error) {
		avail := "available"
		return a.core.UpdateThing(ctx, core.System, core.ThingUpdate{ID: t.ID, AvailabilityTopic: &avail})
	})
	if rerr != nil {
		return dev, nil, rerr
	}
	if rerr := a.reg.deviceShare(dev, p, src); rerr != nil {
		return dev, nil, rerr
	}
	var out []sensorReading
	for _, rd := range p.Readings {
		for _, m := range rd.measurements() {
			class, unit := m.class, m.unit
			s, rerr := a.reg.FindOrCreate(ctx, m.prefix+rd.Address, core.ThingSensor, src, func(t core.Thing) (core.Thing, error) {
				topic := "value"
				return a.core.UpdateThingSensor(ctx, core.System, core.SensorUpdate{
					ID: t.ID, Class: &class, Unit: &unit, MeasurementTopic: &topic,
				})
			})
			if rerr != nil {
				return dev, nil, rerr
			}
			if s.ParentID != dev.ID && s.OrgID == dev.OrgID && core.MayAdoptSensor(src.Device, s) {
				var err error
				s, err = a.core.UpdateThing(ctx, core.System, core.ThingUpdate{ID: s.ID, SetParent: true, ParentID: dev.ID})
				if err != nil {
					return dev, nil, regFailed("cannot set sensor parent", err)
				}
			}
			u := s.Sensor.Unit
			if u == "" {
				u = unit
			}
			out = append(out, sensorReading{thing: s, value: m.value, unit: u})
		}
	}
	return dev, out, nil
}
