// Package protocol is what the PIOT device protocol (`POST /adapter`)
// needs without the appliance: decoding packets (JSON, plain or
// AES-128-ECB encrypted with PKCS#7 padding), the checks of the names
// they carry, the per-device minimum interval, reading a request body
// and the answer envelope (`{"error":…,"result":…}`) with its counted
// reasons. The appliance's adapter (package adapter) registers and
// publishes what this package lets through; the edge adapter checks
// packets with it before it spools them, without core or the store.
package protocol

import "time"

// Defaults of Config, and the limits of a request and a packet.
const (
	DefaultMinInterval = time.Second
	// DefaultMaxBody bounds a request body where the caller sets none.
	DefaultMaxBody = 64 << 10
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

// Reasons of the refusals this package answers (counted by Rejections),
// and ReasonForeignDevice, which the appliance and the edge adapter both
// answer.
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
	ReasonTooManyReads   = "too_many_readings"
	ReasonForeignDevice  = "foreign_device"
	ReasonWrongKey       = "wrong_key"
	ReasonLimiterTooBusy = "limiter_full"
)
