package config

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/pflag"
)

// EdgeEnvPrefix starts every environment variable of `piot adapter`.
const EdgeEnvPrefix = "PIOT_ADAPTER_"

// Edge is the configuration of `piot adapter`, the standalone edge
// adapter; it is loaded like Config (defaults → YAML → env → flags).
type Edge struct {
	Listen      string // device protocols and /status, /metrics
	VDGPSListen string // legacy VD GPS trackers posting to any path; "" disables

	Uplink   string // mqtts://host:port or mqtt://host:port of the appliance
	Org      string // organization whose reserved topic the packets go to
	Username string // the org's (or a device's) MQTT credentials
	Password string
	CA       string // PEM CA the appliance's certificate must chain to (pinned)

	SpoolDir      string
	SpoolMaxBytes int
	SpoolMaxAge   time.Duration
	SpoolPolicy   string

	AESKey      string
	DeviceKeys  string // file of devices' own AES keys
	MinInterval time.Duration
	MaxBody     int

	Window     int           // packets in flight on the uplink
	AckTimeout time.Duration // a PUBACK later than this restarts the connection
	BackoffMax time.Duration // cap of the reconnect backoff

	LogLevel        string
	LogFormat       string
	ShutdownTimeout time.Duration
}

// DefaultEdge returns the defaults.
func DefaultEdge() Edge {
	return Edge{
		Listen:          ":8080",
		SpoolDir:        "spool",
		SpoolMaxBytes:   256 << 20,
		SpoolMaxAge:     7 * 24 * time.Hour,
		SpoolPolicy:     "drop-oldest",
		MinInterval:     time.Second,
		MaxBody:         64 << 10,
		Window:          32,
		AckTimeout:      30 * time.Second,
		BackoffMax:      time.Minute,
		LogLevel:        "info",
		LogFormat:       "text",
		ShutdownTimeout: 10 * time.Second,
	}
}

func (e *Edge) options() []option {
	return []option{
		{name: "listen", ptr: &e.Listen, help: "HTTP listener for devices (POST /adapter, POST /adapter/vdgps) and GET /status, GET /metrics"},
		{name: "vdgps-listen", ptr: &e.VDGPSListen, help: "extra listener where VD GPS trackers may POST to any path (legacy firmware); empty disables"},
		{name: "uplink", ptr: &e.Uplink, help: "the appliance's MQTT listener: mqtts://host:port (TLS) or mqtt://host:port"},
		{name: "org", ptr: &e.Org, help: "organization the relayed packets belong to"},
		{name: "username", ptr: &e.Username, help: "MQTT user name: the organization's, or a device's own (thing:<name>: only that device's packets are taken)"},
		{name: "password", ptr: &e.Password, secret: true, help: "MQTT password of that user name"},
		{name: "ca", ptr: &e.CA, help: "PEM CA certificate of the appliance (GET /ca.crt); the uplink trusts only it"},
		{name: "spool-dir", ptr: &e.SpoolDir, help: "directory of the on-disk spool; created 0700"},
		{name: "spool-max-bytes", ptr: &e.SpoolMaxBytes, help: "size bound of the spool on disk"},
		{name: "spool-max-age", ptr: &e.SpoolMaxAge, help: "packets older than this are dropped from the spool (0: no bound)"},
		{name: "spool-policy", ptr: &e.SpoolPolicy, help: "when the spool is full: drop-oldest or reject-new (devices get 503)"},
		{name: "aes-key", ptr: &e.AESKey, secret: true, help: "16-byte AES-128 key of encrypted PIOT packets (to check them before spooling)"},
		{name: "device-keys", ptr: &e.DeviceKeys, help: "file of devices' own AES-128 keys, a line \"<device id> <16-byte key>\" each (mode 0600); those devices are accepted only encrypted with their key"},
		{name: "min-interval", ptr: &e.MinInterval, help: "least time between two packets of one device (429 sooner); 0 disables the limit"},
		{name: "max-body", ptr: &e.MaxBody, help: "largest packet accepted, in bytes (413 beyond)"},
		{name: "window", ptr: &e.Window, help: "packets sent on the uplink before waiting for their acknowledgements"},
		{name: "ack-timeout", ptr: &e.AckTimeout, help: "an acknowledgement later than this restarts the uplink connection"},
		{name: "backoff-max", ptr: &e.BackoffMax, help: "longest wait between two uplink connection attempts"},
		{name: "log-level", ptr: &e.LogLevel, help: "debug, info, warn or error"},
		{name: "log-format", ptr: &e.LogFormat, help: "text or json"},
		{name: "shutdown-timeout", ptr: &e.ShutdownTimeout, help: "how long stopping may take"},
	}
}

// RegisterFlags declares every option on fs, with its env name in the help.
func (e *Edge) RegisterFlags(fs *pflag.FlagSet) { registerFlags(fs, e.options(), EdgeEnvPrefix) }

// Load applies the YAML file, environment and changed flags, then
// validates.
func (e *Edge) Load(fs *pflag.FlagSet, environ []string) error {
	if err := loadOptions(fs, environ, e.options(), EdgeEnvPrefix); err != nil {
		return err
	}
	return e.Validate()
}

// AdapterMinInterval is MinInterval as adapter.Config wants it (there 0
// means the default and a negative value disables the limit).
func AdapterMinInterval(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}

// UplinkBroker returns the uplink as a paho broker URL and whether it
// uses TLS.
func (e *Edge) UplinkBroker() (string, bool, error) {
	u, err := url.Parse(e.Uplink)
	if err != nil || u.Host == "" || u.Path != "" && u.Path != "/" {
		return "", false, fmt.Errorf("uplink %q is not mqtts://host:port or mqtt://host:port", e.Uplink)
	}
	if err := validAddr(u.Host); err != nil {
		return "", false, fmt.Errorf("uplink: %w", err)
	}
	switch u.Scheme {
	case "mqtts", "ssl", "tls":
		return "ssl://" + u.Host, true, nil
	case "mqtt", "tcp":
		return "tcp://" + u.Host, false, nil
	}
	return "", false, fmt.Errorf("uplink %q: scheme must be mqtts or mqtt", e.Uplink)
}

// Validate checks every value; the first problem is returned.
func (e *Edge) Validate() error {
	if err := validAddr(e.Listen); err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	if e.VDGPSListen != "" {
		if err := validAddr(e.VDGPSListen); err != nil {
			return fmt.Errorf("vdgps-listen: %w", err)
		}
	}
	_, tls, err := e.UplinkBroker()
	switch {
	case e.Uplink == "":
		return errors.New("uplink is required (mqtts://host:8883)")
	case err != nil:
		return err
	case tls && e.CA == "":
		return errors.New("ca is required with an mqtts uplink: the appliance's CA certificate (GET /ca.crt)")
	case e.Org == "":
		return errors.New("org is required")
	case e.Username == "" || e.Password == "":
		return errors.New("username and password are required (the organization's MQTT credentials, or a device's own)")
	case strings.TrimSpace(e.SpoolDir) == "":
		return errors.New("spool-dir must not be empty")
	case e.SpoolMaxBytes < 64<<10:
		return errors.New("spool-max-bytes must be at least 64 KiB")
	case e.SpoolMaxAge < 0:
		return errors.New("spool-max-age must not be negative")
	case e.SpoolPolicy != "drop-oldest" && e.SpoolPolicy != "reject-new":
		return fmt.Errorf("spool-policy %q: drop-oldest or reject-new", e.SpoolPolicy)
	case e.AESKey != "" && len(e.AESKey) != 16:
		return fmt.Errorf("aes-key must be exactly 16 bytes, got %d", len(e.AESKey))
	case e.MinInterval < 0:
		return errors.New("min-interval must not be negative")
	case e.MaxBody < 64 || e.MaxBody > 16<<20:
		return errors.New("max-body must be between 64 bytes and 16 MiB")
	case e.Window < 1 || e.Window > 1000:
		return errors.New("window must be between 1 and 1000")
	case e.AckTimeout < time.Second:
		return errors.New("ack-timeout must be at least 1s")
	case e.BackoffMax < time.Second:
		return errors.New("backoff-max must be at least 1s")
	case e.ShutdownTimeout <= 0:
		return errors.New("shutdown-timeout must be positive")
	}
	switch e.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("log-level %q: debug, info, warn or error", e.LogLevel)
	}
	if e.LogFormat != "text" && e.LogFormat != "json" {
		return fmt.Errorf("log-format %q: text or json", e.LogFormat)
	}
	return nil
}
