package protocol

import (
	"bytes"
	"crypto/aes"
	"fmt"
	"maps"
	"net/http"
	"time"
	"unicode/utf8"

	"github.com/piot-appliance/piot/internal/ratelimit"
	"github.com/piot-appliance/piot/services/names"
)

// Config tunes a Checker.
type Config struct {
	// AESKey is "" (plaintext only) or exactly 16 bytes (AES-128).
	AESKey string
	// DeviceKeys are devices' own AES-128 keys by piot id, where they are
	// known up front (the edge adapter). A device listed is accepted
	// only encrypted with its own key.
	DeviceKeys map[string]string
	// Keys, if set, looks the devices' own keys up instead of DeviceKeys
	// (the appliance's change with its things).
	Keys Keys
	// MinInterval between two accepted packets of one device; 0 means 1s,
	// negative disables the limit.
	MinInterval time.Duration
	// MaxTracked bounds the rate limiter's table; 0 means 100000.
	MaxTracked int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Keys are devices' own AES-128 keys by piot id.
type Keys interface {
	// Key returns a device's own key; ok is false when it has none.
	Key(piotID string) (key string, ok bool)
	// Each calls fn with every device that has its own key until fn
	// returns false.
	Each(fn func(piotID, key string) bool)
}

// keyMap is Config.DeviceKeys as Keys.
type keyMap map[string]string

func (m keyMap) Key(piotID string) (string, bool) {
	k, ok := m[piotID]
	return k, ok
}

func (m keyMap) Each(fn func(piotID, key string) bool) {
	for id, k := range m {
		if !fn(id, k) {
			return
		}
	}
}

// WithDefaults checks the keys and fills in what is unset.
func (cfg Config) WithDefaults() (Config, error) {
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
	if cfg.MaxTracked <= 0 {
		cfg.MaxTracked = DefaultMaxTracked
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return cfg, nil
}

// Checker decodes packets and applies the per-device rate limit, without
// registering or publishing anything; the edge adapter checks packets
// with it before it spools them, the appliance's adapter before it
// registers and publishes.
type Checker struct {
	key     []byte
	limiter *ratelimit.Interval // the per-device minimum interval
	// Devices' own keys; nil where none are known.
	keys Keys
}

// NewChecker builds a checker.
func NewChecker(cfg Config) (*Checker, error) {
	cfg, err := cfg.WithDefaults()
	if err != nil {
		return nil, err
	}
	c := &Checker{limiter: ratelimit.NewInterval(cfg.MinInterval, cfg.MaxTracked, cfg.Now), keys: cfg.Keys}
	if cfg.AESKey != "" {
		c.key = []byte(cfg.AESKey)
	}
	if c.keys == nil && len(cfg.DeviceKeys) > 0 {
		c.keys = keyMap(maps.Clone(cfg.DeviceKeys))
	}
	return c, nil
}

// Device returns the device id of a packet body, decrypting it if needed
// (hint as in POST /adapter?device=ID); the edge adapter uses it to check
// a packet and apply the rate limit before it spools.
func (a *Checker) Device(body []byte, hint string) (string, Outcome) {
	pkt, out := a.Decode(body, hint)
	if out.Status != 0 {
		return "", out
	}
	if out := pkt.Validate(); out.Status != 0 {
		return "", out
	}
	return pkt.Device, Outcome{}
}

// Decode parses a packet, decrypting it with the device's own key or the
// global one. hint, if not empty, names the sending device (POST
// /adapter?device=ID), so its key is tried first; without it the own
// keys are tried one by one, and a key only counts if the packet it
// opens names the key's device. A device with its own key is accepted
// only encrypted with that key: anyone could forge its plaintext, and
// anyone with the global key its global-key packets.
func (a *Checker) Decode(body []byte, hint string) (*Packet, Outcome) {
	p, err := parsePacket(body)
	if err == nil {
		if a.ownKey(p.Device) != "" {
			return nil, Refused(http.StatusBadRequest, ReasonWrongKey, "this device's packets must be encrypted with its own key")
		}
		return p, Outcome{}
	}
	badJSON := Refused(http.StatusBadRequest, ReasonBadJSON, "invalid packet: "+err.Error())
	if len(body) == 0 || len(body)%aes.BlockSize != 0 || a.key == nil && a.keys == nil {
		if a.key == nil || looksLikeJSON(body) {
			// Not ciphertext, or no key to open it: a broken plaintext.
			return nil, badJSON
		}
		return nil, Refused(http.StatusBadRequest, ReasonBadLength, "invalid length of body for decryption")
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
				return nil, Refused(http.StatusBadRequest, ReasonWrongKey, "this device's packets must be encrypted with its own key")
			}
			return p, out
		}
		failed = out
	}
	var found *Packet
	if a.keys != nil {
		a.keys.Each(func(piotID, key string) bool {
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
		failed = Refused(http.StatusBadRequest, ReasonBadPadding, "wrong PKCS#7 padding of encrypted content")
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
func open(key, body []byte) (*Packet, Outcome) {
	plain, err := decryptECB(key, body)
	if err != nil {
		return nil, Refused(http.StatusBadRequest, ReasonBadPadding, "wrong PKCS#7 padding of encrypted content")
	}
	p, err := parsePacket(plain)
	if err != nil {
		return nil, Refused(http.StatusBadRequest, ReasonBadJSON, "invalid packet: "+err.Error())
	}
	return p, Outcome{}
}

// ownKey returns a device's own key ("" if none or unknown here).
func (a *Checker) ownKey(piotID string) string {
	if a.keys == nil || piotID == "" {
		return ""
	}
	k, _ := a.keys.Key(piotID)
	return k
}

// Validate checks the names a packet would register.
func (p *Packet) Validate() Outcome {
	if p.Device == "" {
		return Refused(http.StatusBadRequest, ReasonEmptyDevice, "device name cannot be empty")
	}
	if err := names.Valid("thing", p.Device); err != nil {
		return Refused(http.StatusBadRequest, ReasonInvalidName, "invalid device name: "+err.Error())
	}
	if len(p.Readings) > MaxReadings {
		return Refused(http.StatusBadRequest, ReasonTooManyReads, fmt.Sprintf("a packet may carry at most %d readings, this one has %d", MaxReadings, len(p.Readings)))
	}
	for _, rd := range p.Readings {
		for _, m := range rd.Measurements() {
			if err := names.Valid("thing", m.Prefix+rd.Address); err != nil {
				return Refused(http.StatusBadRequest, ReasonInvalidName, "invalid reading address: "+err.Error())
			}
		}
	}
	return Outcome{}
}

// Limit applies the per-device minimum interval.
func (a *Checker) Limit(device string) Outcome {
	ok, wait, full := a.limiter.Allow(device)
	if ok {
		return Outcome{}
	}
	out := Refused(http.StatusTooManyRequests, ReasonRateLimited, "exceeded minimum interval between packets of a device")
	if full {
		out = Refused(http.StatusTooManyRequests, ReasonLimiterTooBusy, "too many devices, try again later")
	}
	out.RetryAfter = max(wait, time.Second)
	return out
}
