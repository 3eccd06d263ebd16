// Package config is the appliance's one typed configuration. Every option
// is declared once, in options(), with its flag name, environment variable,
// YAML key (the flag name), default and help; values are applied in the
// order defaults → YAML file → environment → flags, and then validated.
// Any unknown key or unparsable value stops start-up with a one-line
// reason: nothing is silently ignored.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"

	"github.com/piot-appliance/piot/services/broker"
	"github.com/piot-appliance/piot/services/core"
	"github.com/piot-appliance/piot/services/history"
	"github.com/piot-appliance/piot/services/ingest"
	"github.com/piot-appliance/piot/tui/sshserver"
)

// EnvPrefix starts every environment variable of the appliance.
const EnvPrefix = "PIOT_"

// DefaultMemoryBudget keeps piot run near 200 MB resident under the load
// of a thousand things (the binary's own pages are about 40 MB of that).
const DefaultMemoryBudget = 128 << 20

// Config is the configuration of `piot run`, one block per service.
// Where a service's own Config holds the options as users give them
// (broker, ingest, history, the SSH console, core) the block is that
// type, so nothing is copied field by field; the composition root only
// adds what the process decides (data directory, logger, version). The
// other blocks are declared here because the service wants a different
// form (parsed prefixes, a key as bytes, a CA pool read from a file, 0
// meaning "off" rather than "default") or, for the store, because only
// core and the root may import it.
type Config struct {
	DataDir         string
	LogLevel        string
	LogFormat       string
	ShutdownTimeout time.Duration
	// DebugAddr serves Go's profiler; empty (the default) does not.
	DebugAddr string
	// MemoryBudget is the Go heap's soft limit in bytes while the live
	// heap is under half of it (internal/memlimit); 0 sets none.
	MemoryBudget int64

	Store    Store
	Core     core.Config
	Admin    Admin
	HTTP     HTTP
	API      API
	Broker   broker.Config
	Ingest   ingest.Config
	History  history.Config
	Adapter  Adapter
	Exporter Exporter
	Monitor  Monitor
	SSH      sshserver.Config
	Update   Updates

	// OS is applied by `piot init` in the appliance image; `piot run`
	// only checks it, so one file configures the whole appliance.
	OS OS
}

// Store is where the configuration lives (services/store).
type Store struct {
	// URI is an external MongoDB-compatible store; empty runs FerretDB
	// embedded in the data directory.
	URI     string
	Timeout time.Duration
}

// Admin is the first admin, created when the store has no users.
type Admin struct {
	Email string
	// Password empty generates one into <data-dir>/admin-password.
	Password string
}

// HTTP is the listener of the API, the web pages, the device adapters and
// /metrics.
type HTTP struct {
	Addr      string
	HTTPSAddr string
	// TrustedProxies are addresses or CIDRs (TrustedProxyPrefixes).
	TrustedProxies []string
	CORSOrigins    []string
}

// API is the GraphQL API and its logins.
type API struct {
	JWTTTL time.Duration
	// JWTKey empty uses <data-dir>/jwt.key, generated at first start.
	JWTKey              string
	AllowRegistration   bool
	LoginRate           int
	LoginBurst          int
	MaxQueries          int
	MaxQueriesPerCaller int
	QueryTimeout        time.Duration
	GraphQL             GraphQL
}

// GraphQL bounds what one GraphQL request may ask for.
type GraphQL struct {
	MaxDepth      int
	MaxComplexity int
	MaxRows       int
}

// Adapter is the device adapters (PIOT at /adapter, VD GPS).
type Adapter struct {
	AESKey string
	// MinInterval 0 disables the limit (AdapterMinInterval).
	MinInterval   time.Duration
	MaxUnassigned int
	// VDGPSAddr is an extra listener for legacy VD GPS firmware.
	VDGPSAddr string
}

// Updates is GET/POST /update (appliance/update): installing signed
// bundles into the inactive system slot.
type Updates struct {
	// SlotsDir is where the system slots are (the EFI system partition's
	// EFI/Linux, which piot init mounts); empty disables updates.
	SlotsDir string
	// Keys is the PEM file of the public keys whose bundles are trusted.
	Keys string
	// MarkGoodAfter is how long piot run must stay ready (/readyz) on a
	// newly installed slot before piot init trusts it; TrialTimeout is how
	// long that may take before the boot counts as failed and piot init
	// reboots, spending one of the slot's tries. piot init reads both.
	MarkGoodAfter time.Duration
	TrialTimeout  time.Duration
}

// Exporter is /metrics.
type Exporter struct {
	// Token empty uses <data-dir>/metrics-token, generated at first start.
	Token string
}

// Monitor is the alarms' notifications and Grafana's alert webhook.
type Monitor struct {
	SMTP          SMTP
	NotifyTimeout time.Duration
	// AlertToken empty uses <data-dir>/alert-token, generated at first
	// start.
	AlertToken string
}

// SMTP is the mail relay of alarm e-mails; CAFile is read at start.
type SMTP struct {
	Host     string
	Port     int
	Username string
	Password string
	From     string
	StartTLS bool
	CAFile   string
}

// OS are the operating system settings of the appliance image.
type OS struct {
	Hostname string
	// Network is "dhcp" (every Ethernet interface) or "static" (NetAddress
	// on NetInterface, DHCP on the others).
	Network      string
	NetInterface string
	NetAddress   string // CIDR, e.g. 192.168.1.20/24
	NetGateway   string
	NetDNS       []string
	NTPServers   []string
	Timezone     string
}

// Default returns the built-in defaults.
func Default() Config {
	return Config{
		DataDir:         "/var/lib/piot",
		LogLevel:        "info",
		LogFormat:       "text",
		ShutdownTimeout: 15 * time.Second,
		MemoryBudget:    DefaultMemoryBudget,

		Store: Store{Timeout: 10 * time.Second},
		Core:  core.Config{BcryptCost: 12, AuditRetention: core.DefaultAuditRetention, AuditMaxEntries: core.DefaultAuditMaxEntries},
		Admin: Admin{Email: "admin@piot.local"},
		HTTP:  HTTP{Addr: ":8080"},
		API: API{
			JWTTTL:              4 * time.Hour,
			LoginRate:           10,
			LoginBurst:          5,
			MaxQueries:          8,
			MaxQueriesPerCaller: 4,
			QueryTimeout:        30 * time.Second,
			GraphQL:             GraphQL{MaxDepth: 10, MaxComplexity: 1000, MaxRows: 20000},
		},
		Broker: broker.Config{
			MQTTAddr:       ":1883",
			MQTTSAddr:      ":8883",
			WSAddr:         ":8083",
			MaxPacketSize:  256 << 10,
			MaxClients:     1000,
			MaxInflight:    100,
			MaxQueuedBytes: 1 << 20,
			PaceWait:       broker.DefaultPaceWait,
			MaxRetained:    10000,
			MaxKeepalive:   3600,
			SessionExpiry:  24 * time.Hour,
		},
		Ingest:  ingest.Config{FlushInterval: ingest.DefaultFlushInterval, HistoryInterval: time.Second, MaxPendingPoints: ingest.DefaultMaxPendingPoints, BusyCommitInterval: ingest.DefaultBusyCommitInterval},
		Update:  Updates{Keys: "/etc/piot/update-keys.pem", MarkGoodAfter: 30 * time.Second, TrialTimeout: 10 * time.Minute},
		History: history.Config{Retention: 30 * 24 * time.Hour, MaxBytes: 1 << 30},
		Adapter: Adapter{MinInterval: time.Second, MaxUnassigned: 100},
		Monitor: Monitor{
			SMTP:          SMTP{Port: 587, StartTLS: true},
			NotifyTimeout: 10 * time.Second,
		},
		SSH: sshserver.Config{
			Addr:        ":2222",
			IdleTimeout: 15 * time.Minute,
			MaxTimeout:  12 * time.Hour,
		},

		OS: OS{
			Hostname:   "piot",
			Network:    "dhcp",
			NTPServers: []string{"pool.ntp.org"},
			Timezone:   "UTC",
		},
	}
}

// option binds one setting to its names.
type option struct {
	name   string // flag and YAML key
	help   string
	secret bool // never printed
	ptr    any  // *string, *bool, *int, *int64, *time.Duration, *[]string
}

func (o option) env(prefix string) string {
	return prefix + strings.ToUpper(strings.ReplaceAll(o.name, "-", "_"))
}

func (c *Config) options() []option {
	return []option{
		{name: "data-dir", ptr: &c.DataDir, help: "directory for all state (store, secrets, TLS); created 0700"},
		{name: "http-addr", ptr: &c.HTTP.Addr, help: "HTTP listener (API, GraphiQL, health) as host:port"},
		{name: "store-uri", ptr: &c.Store.URI, help: "external MongoDB-compatible store (mongodb://host:port/database, database piot when omitted); empty runs FerretDB embedded in <data-dir>/store"},
		{name: "log-level", ptr: &c.LogLevel, help: "debug, info, warn or error"},
		{name: "debug-addr", ptr: &c.DebugAddr, help: "loopback address of Go's profiler (/debug/pprof/), to see where a loaded appliance spends its time; empty disables"},
		{name: "log-format", ptr: &c.LogFormat, help: "text or json"},
		{name: "jwt-ttl", ptr: &c.API.JWTTTL, help: "lifetime of API tokens (1m to 720h)"},
		{name: "jwt-key", ptr: &c.API.JWTKey, secret: true, help: "JWT signing key (at least 32 bytes); empty uses <data-dir>/jwt.key, generated at first start"},
		{name: "trusted-proxies", ptr: &c.HTTP.TrustedProxies, help: "reverse proxies (addresses or CIDRs, comma-separated) whose X-Forwarded-For names the client for login limits and logs; empty trusts none"},
		{name: "cors-origins", ptr: &c.HTTP.CORSOrigins, help: "origins (scheme://host[:port], comma-separated) whose pages may call the API from a browser; empty allows the appliance's own pages only"},
		{name: "allow-registration", ptr: &c.API.AllowRegistration, help: "enable self-registration at POST /register"},
		{name: "admin-email", ptr: &c.Admin.Email, help: "email of the admin created at first start"},
		{name: "admin-password", ptr: &c.Admin.Password, secret: true, help: "password of the admin created at first start; empty generates one into <data-dir>/admin-password"},
		{name: "shutdown-timeout", ptr: &c.ShutdownTimeout, help: "how long services may take to stop"},
		{name: "memory-budget", ptr: &c.MemoryBudget, help: "bytes of memory the Go runtime aims to stay within: the collector works harder near it, until the live data needs more than half of it, and then keeps twice the live data; 0 sets no limit (GOMEMLIMIT, when set, replaces it)"},
		{name: "store-timeout", ptr: &c.Store.Timeout, help: "how long to wait for the store at start"},
		{name: "login-rate", ptr: &c.API.LoginRate, help: "failed logins allowed per source address and per account per minute (successful logins are not counted)"},
		{name: "login-burst", ptr: &c.API.LoginBurst, help: "failed logins allowed in a burst per source address and per account"},
		{name: "bcrypt-cost", ptr: &c.Core.BcryptCost, help: "bcrypt cost of password hashes (10 to 16)"},
		{name: "graphql-max-depth", ptr: &c.API.GraphQL.MaxDepth, help: "maximum nesting depth of a GraphQL query"},
		{name: "graphql-max-complexity", ptr: &c.API.GraphQL.MaxComplexity, help: "maximum complexity of a GraphQL query (one point per field; readings fields once per 100 rows of first)"},
		{name: "graphql-max-rows", ptr: &c.API.GraphQL.MaxRows, help: "history rows one GraphQL request may read over all its readings fields"},
		{name: "api-max-queries", ptr: &c.API.MaxQueries, help: "GraphQL requests running at once; more wait up to 5s, then get 503 with Retry-After"},
		{name: "api-max-queries-per-caller", ptr: &c.API.MaxQueriesPerCaller, help: "GraphQL requests running at once per user (anonymous: per address); more wait up to 5s, then get 429 with Retry-After"},
		{name: "api-query-timeout", ptr: &c.API.QueryTimeout, help: "GraphQL requests running longer are stopped (extensions.code TIMEOUT)"},
		{name: "mqtt-addr", ptr: &c.Broker.MQTTAddr, help: "MQTT over TCP listener; empty disables"},
		{name: "mqtts-addr", ptr: &c.Broker.MQTTSAddr, help: "MQTT over TLS listener; empty disables"},
		{name: "mqtt-ws-addr", ptr: &c.Broker.WSAddr, help: "MQTT over WebSocket listener; empty disables"},
		{name: "tls-cert", ptr: &c.Broker.TLSCertFile, help: "PEM certificate for MQTT over TLS; empty uses one signed by the appliance's own CA (<data-dir>/tls)"},
		{name: "tls-key", ptr: &c.Broker.TLSKeyFile, help: "PEM key for --tls-cert"},
		{name: "tls-names", ptr: &c.Broker.TLSNames, help: "extra DNS names and IP addresses for the generated server certificate (comma-separated)"},
		{name: "mqtt-monitor-password", ptr: &c.Broker.MonitorPassword, secret: true, help: "enables the read-only MQTT user \"monitor\" for $SYS/# with this password"},
		{name: "mqtt-max-packet-size", ptr: &c.Broker.MaxPacketSize, help: "largest MQTT packet accepted, in bytes"},
		{name: "mqtt-max-clients", ptr: &c.Broker.MaxClients, help: "most MQTT clients connected at once"},
		{name: "mqtt-max-inflight", ptr: &c.Broker.MaxInflight, help: "most unacknowledged QoS 1/2 messages per client"},
		{name: "mqtt-max-queued-bytes", ptr: &c.Broker.MaxQueuedBytes, help: "bytes waiting to be sent to one client, and with them its queue of packets (one per 256 bytes, 8 bytes reserved each); beyond half QoS 0 deliveries are dropped, beyond all the client is disconnected as too slow (at least two maximum-size packets)"},
		{name: "mqtt-pace-wait", ptr: &c.Broker.PaceWait, help: "longest one publish waits for a subscriber whose QoS 0 deliveries fill a quarter of its queue, so that a subscriber a little slower than a publisher gets every message; a publisher waits at most half its time, and never for a subscriber that stopped reading; 0 never waits (deliveries beyond half the queue are dropped)"},
		{name: "mqtt-max-retained", ptr: &c.Broker.MaxRetained, help: "most retained messages kept"},
		{name: "mqtt-max-keepalive", ptr: &c.Broker.MaxKeepalive, help: "longest keepalive a client may ask for, in seconds"},
		{name: "mqtt-strict-keepalive", ptr: &c.Broker.StrictKeepalive, help: "refuse MQTT 3.1.1 clients that ask for no keepalive (0); by default they are accepted, as mosquitto does"},
		{name: "mqtt-session-expiry", ptr: &c.Broker.SessionExpiry, help: "how long a disconnected persistent session is kept"},
		{name: "update-slots-dir", ptr: &c.Update.SlotsDir, help: "directory of the A/B system slots (the EFI system partition's EFI/Linux; piot init sets it in the image); empty disables POST /update"},
		{name: "update-keys", ptr: &c.Update.Keys, help: "PEM file of the ed25519 public keys whose update bundles are installed (the image's, written by make image)"},
		{name: "update-mark-good-after", ptr: &c.Update.MarkGoodAfter, help: "image: how long piot run must stay ready on a newly installed slot before it is marked good"},
		{name: "update-trial-timeout", ptr: &c.Update.TrialTimeout, help: "image: a newly installed slot not marked good this long after boot (or whose piot run exits 3 times first) reboots, spending one of its tries; after the last the previous slot boots again"},
		{name: "metrics-token", ptr: &c.Exporter.Token, secret: true, help: "bearer token for GET /metrics (sees everything; at least 32 bytes); empty uses <data-dir>/metrics-token, generated at first start"},
		{name: "alert-token", ptr: &c.Monitor.AlertToken, secret: true, help: "bearer token Grafana sends to POST /alerts/grafana (at least 32 bytes); empty uses <data-dir>/alert-token, generated at first start"},
		{name: "adapter-aes-key", ptr: &c.Adapter.AESKey, secret: true, help: "16-byte AES-128 key of the PIOT device protocol at POST /adapter (legacy devices); empty accepts plaintext only"},
		{name: "adapter-min-interval", ptr: &c.Adapter.MinInterval, help: "least time between two packets of one device at POST /adapter and /adapter/vdgps (429 sooner); 0 disables the limit"},
		{name: "adapter-max-unassigned", ptr: &c.Adapter.MaxUnassigned, help: "most unassigned things auto-registration may create (403 beyond)"},
		{name: "adapter-vdgps-addr", ptr: &c.Adapter.VDGPSAddr, help: "extra HTTP listener where VD GPS trackers may POST to any path (legacy firmware); empty disables"},
		{name: "smtp-host", ptr: &c.Monitor.SMTP.Host, help: "mail relay for alarm e-mails; empty disables e-mail"},
		{name: "smtp-port", ptr: &c.Monitor.SMTP.Port, help: "mail relay port"},
		{name: "smtp-username", ptr: &c.Monitor.SMTP.Username, help: "AUTH PLAIN user name (only over TLS)"},
		{name: "smtp-password", ptr: &c.Monitor.SMTP.Password, secret: true, help: "AUTH PLAIN password"},
		{name: "smtp-from", ptr: &c.Monitor.SMTP.From, help: "sender address of alarm e-mails"},
		{name: "smtp-starttls", ptr: &c.Monitor.SMTP.StartTLS, help: "require STARTTLS (it is used when offered anyway)"},
		{name: "smtp-ca-file", ptr: &c.Monitor.SMTP.CAFile, help: "PEM CA certificates to verify the mail relay (default: system roots)"},
		{name: "notify-timeout", ptr: &c.Monitor.NotifyTimeout, help: "timeout of one e-mail or webhook delivery"},
		{name: "ssh-addr", ptr: &c.SSH.Addr, help: "SSH listener of the console; empty disables"},
		{name: "ssh-idle-timeout", ptr: &c.SSH.IdleTimeout, help: "console sessions without keyboard input are closed after this long"},
		{name: "ssh-max-timeout", ptr: &c.SSH.MaxTimeout, help: "console sessions are closed after this long"},
		{name: "ssh-password-auth", ptr: &c.SSH.PasswordAuth, help: "allow admins to log in to the console with email and password (rate-limited)"},
		{name: "ingest-flush-interval", ptr: &c.Ingest.FlushInterval, help: "how often changed thing state is written to the store (it is live in memory and in the journal meanwhile; a backup writes it first)"},
		{name: "journal-busy-commit-interval", ptr: &c.Ingest.BusyCommitInterval, help: "under load (a journal commit of 32 messages or more from 8 publishers or more), the least time from the start of one commit to the next: fewer, larger fsyncs cost less per message, and a message waits up to this much longer for its PUBACK; 0 commits back to back"},
		{name: "history-write-interval", ptr: &c.Ingest.HistoryInterval, help: "least time between two history writes: longer collects more readings per thing into each write, which costs less per reading, and holds them in memory (and the journal) longer"},
		{name: "history-max-pending", ptr: &c.Ingest.MaxPendingPoints, help: "most readings waiting for their history write; when history falls this far behind, MQTT acknowledgements wait"},
		{name: "audit-retention", ptr: &c.Core.AuditRetention, help: "how long the audit trail of changes is kept"},
		{name: "audit-max-entries", ptr: &c.Core.AuditMaxEntries, help: "most audit entries kept; the oldest are dropped first"},
		{name: "history-retention", ptr: &c.History.Retention, help: "how long history is kept"},
		{name: "history-max-bytes", ptr: &c.History.MaxBytes, help: "size cap of history; the oldest data is dropped first"},
		{name: "https-addr", ptr: &c.HTTP.HTTPSAddr, help: "HTTPS listener (the HTTP routes with the appliance's TLS certificate); empty disables"},
		{name: "hostname", ptr: &c.OS.Hostname, help: "image: host name of the appliance"},
		{name: "network", ptr: &c.OS.Network, help: "image: dhcp, or static (net-address on net-interface, DHCP on the other interfaces)"},
		{name: "net-interface", ptr: &c.OS.NetInterface, help: "image: interface of the static address; empty is the first Ethernet interface"},
		{name: "net-address", ptr: &c.OS.NetAddress, help: "image: static address with prefix length, e.g. 192.168.1.20/24"},
		{name: "net-gateway", ptr: &c.OS.NetGateway, help: "image: default gateway of the static address"},
		{name: "net-dns", ptr: &c.OS.NetDNS, help: "image: DNS servers of the static address (comma-separated)"},
		{name: "ntp-servers", ptr: &c.OS.NTPServers, help: "image: NTP servers (comma-separated, host or host:port)"},
		{name: "timezone", ptr: &c.OS.Timezone, help: "image: time zone of the console's clock (IANA name, e.g. Europe/Prague)"},
	}
}

// RegisterFlags declares every option on fs, with its env name in the help.
func (c *Config) RegisterFlags(fs *pflag.FlagSet) { registerFlags(fs, c.options(), EnvPrefix) }

// Load applies the YAML file, environment and changed flags over c, then
// validates. environ is os.Environ() in production.
func (c *Config) Load(fs *pflag.FlagSet, environ []string) error {
	if err := loadOptions(fs, environ, c.options(), EnvPrefix); err != nil {
		return err
	}
	return c.Validate()
}

// registerFlags declares opts on fs; prefix starts their env names.
func registerFlags(fs *pflag.FlagSet, opts []option, prefix string) {
	fs.String("config", "", "YAML configuration file (keys are the flag names) [env "+prefix+"CONFIG]")
	for _, o := range opts {
		help := fmt.Sprintf("%s [env %s]", o.help, o.env(prefix))
		switch p := o.ptr.(type) {
		case *string:
			def := *p
			if o.secret {
				def = ""
			}
			fs.String(o.name, def, help)
		case *bool:
			fs.Bool(o.name, *p, help)
		case *int:
			fs.Int(o.name, *p, help)
		case *int64:
			fs.Int64(o.name, *p, help)
		case *time.Duration:
			fs.Duration(o.name, *p, help)
		case *[]string:
			fs.String(o.name, strings.Join(*p, ","), help)
		}
	}
}

// loadOptions applies the YAML file, environment and changed flags to opts.
func loadOptions(fs *pflag.FlagSet, environ []string, opts []option, prefix string) error {
	env := map[string]string{}
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = v
		}
	}
	path := env[prefix+"CONFIG"]
	if f := fs.Lookup("config"); f != nil && f.Changed {
		path = f.Value.String()
	}
	if path != "" {
		if err := loadYAML(path, opts); err != nil {
			return err
		}
	}
	for _, o := range opts {
		if v, ok := env[o.env(prefix)]; ok {
			if err := set(o, v); err != nil {
				return fmt.Errorf("environment %s: %w", o.env(prefix), err)
			}
		}
	}
	for _, o := range opts {
		if f := fs.Lookup(o.name); f != nil && f.Changed {
			if err := set(o, f.Value.String()); err != nil {
				return fmt.Errorf("flag --%s: %w", o.name, err)
			}
		}
	}
	return nil
}

func loadYAML(path string, opts []option) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config file: %w", err)
	}
	return decodeYAML(path, raw, opts)
}

// decodeYAML applies the YAML document raw (read from path) to opts.
func decodeYAML(path string, raw []byte, opts []option) error {
	var doc map[string]yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&doc); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("config file %s: %w", path, err)
	}
	byName := map[string]option{}
	for _, o := range opts {
		byName[o.name] = o
	}
	keys := make([]string, 0, len(doc))
	for k := range doc {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		o, ok := byName[k]
		if !ok {
			return fmt.Errorf("config file %s: unknown key %q", path, k)
		}
		n := doc[k]
		if n.Kind != yaml.ScalarNode {
			return fmt.Errorf("config file %s: key %q must be a scalar", path, k)
		}
		if err := set(o, n.Value); err != nil {
			return fmt.Errorf("config file %s: key %q: %w", path, k, err)
		}
	}
	return nil
}

func set(o option, v string) error {
	switch p := o.ptr.(type) {
	case *string:
		*p = v
	case *bool:
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("%q is not a boolean", v)
		}
		*p = b
	case *int:
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil {
			return fmt.Errorf("%q is not an integer", v)
		}
		*p = n
	case *int64:
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil {
			return fmt.Errorf("%q is not an integer", v)
		}
		*p = n
	case *time.Duration:
		d, err := time.ParseDuration(strings.TrimSpace(v))
		if err != nil {
			return fmt.Errorf("%q is not a duration (e.g. 30s, 4h)", v)
		}
		*p = d
	case *[]string:
		*p = nil
		for _, item := range strings.Split(v, ",") {
			if item = strings.TrimSpace(item); item != "" {
				*p = append(*p, item)
			}
		}
	}
	return nil
}

// Validate checks every value; the first problem is returned.
func (c *Config) Validate() error {
	if strings.TrimSpace(c.DataDir) == "" {
		return errors.New("data-dir must not be empty")
	}
	if err := validAddr(c.HTTP.Addr); err != nil {
		return fmt.Errorf("http-addr: %w", err)
	}
	if c.DebugAddr != "" {
		host, _, err := net.SplitHostPort(c.DebugAddr)
		if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
			return fmt.Errorf("debug-addr %q: want a loopback address and port, e.g. 127.0.0.1:6060 (the profiler is not for the network)", c.DebugAddr)
		}
	}
	if c.HTTP.HTTPSAddr != "" {
		if err := validAddr(c.HTTP.HTTPSAddr); err != nil {
			return fmt.Errorf("https-addr: %w", err)
		}
	}
	if err := c.OS.Validate(); err != nil {
		return err
	}
	if _, err := c.HTTP.TrustedProxyPrefixes(); err != nil {
		return err
	}
	for _, o := range c.HTTP.CORSOrigins {
		if u, err := url.Parse(o); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Path != "" && u.Path != "/" {
			return fmt.Errorf("cors-origins %q: want scheme://host[:port]", o)
		}
	}
	if c.Store.URI != "" && !strings.HasPrefix(c.Store.URI, "mongodb://") && !strings.HasPrefix(c.Store.URI, "mongodb+srv://") {
		return errors.New("store-uri must start with mongodb:// or mongodb+srv://")
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("log-level %q: want debug, info, warn or error", c.LogLevel)
	}
	switch c.LogFormat {
	case "text", "json":
	default:
		return fmt.Errorf("log-format %q: want text or json", c.LogFormat)
	}
	if c.API.JWTTTL < time.Minute || c.API.JWTTTL > 720*time.Hour {
		return fmt.Errorf("jwt-ttl %s: must be between 1m and 720h", c.API.JWTTTL)
	}
	if c.Update.MarkGoodAfter < time.Second || c.Update.TrialTimeout < c.Update.MarkGoodAfter+time.Minute {
		return fmt.Errorf("update-mark-good-after %s, update-trial-timeout %s: want at least 1s, and a trial timeout at least a minute longer", c.Update.MarkGoodAfter, c.Update.TrialTimeout)
	}
	if c.API.JWTKey != "" && len(c.API.JWTKey) < 32 {
		return errors.New("jwt-key must have at least 32 bytes")
	}
	if c.Admin.Password != "" && len(c.Admin.Password) < 8 {
		return errors.New("admin-password must have at least 8 characters")
	}
	if c.ShutdownTimeout <= 0 || c.Store.Timeout <= 0 {
		return errors.New("shutdown-timeout and store-timeout must be positive")
	}
	if c.API.LoginRate < 1 || c.API.LoginBurst < 1 {
		return errors.New("login-rate and login-burst must be at least 1")
	}
	if c.Core.BcryptCost < 4 || c.Core.BcryptCost > 16 {
		return fmt.Errorf("bcrypt-cost %d: must be between 4 and 16", c.Core.BcryptCost)
	}
	if c.Core.AuditRetention < time.Hour || c.Core.AuditMaxEntries < 100 {
		return errors.New("audit-retention must be at least 1h and audit-max-entries at least 100")
	}
	if c.API.GraphQL.MaxDepth < 2 || c.API.GraphQL.MaxComplexity < 10 {
		return errors.New("graphql-max-depth must be at least 2 and graphql-max-complexity at least 10")
	}
	if c.API.GraphQL.MaxRows < 1 || c.API.MaxQueries < 1 || c.API.MaxQueriesPerCaller < 1 || c.API.QueryTimeout < time.Second {
		return errors.New("graphql-max-rows, api-max-queries and api-max-queries-per-caller must be at least 1 and api-query-timeout at least 1s")
	}
	if c.Exporter.Token != "" && len(c.Exporter.Token) < 32 || c.Monitor.AlertToken != "" && len(c.Monitor.AlertToken) < 32 {
		return errors.New("metrics-token and alert-token must have at least 32 bytes")
	}
	if c.Adapter.AESKey != "" && len(c.Adapter.AESKey) != 16 {
		return fmt.Errorf("adapter-aes-key must be exactly 16 bytes, got %d", len(c.Adapter.AESKey))
	}
	if c.Adapter.VDGPSAddr != "" {
		if err := validAddr(c.Adapter.VDGPSAddr); err != nil {
			return fmt.Errorf("adapter-vdgps-addr: %w", err)
		}
	}
	if c.Adapter.MinInterval < 0 || c.Adapter.MaxUnassigned < 0 {
		return errors.New("adapter-min-interval and adapter-max-unassigned must not be negative")
	}
	if c.Monitor.NotifyTimeout < time.Second || c.Monitor.NotifyTimeout > 5*time.Minute {
		return errors.New("notify-timeout must be between 1s and 5m")
	}
	if c.Monitor.SMTP.CAFile != "" {
		if _, err := os.Stat(c.Monitor.SMTP.CAFile); err != nil {
			return fmt.Errorf("smtp-ca-file: %w", err)
		}
	}
	if c.SSH.IdleTimeout < time.Minute || c.SSH.MaxTimeout < time.Minute {
		return errors.New("ssh-idle-timeout and ssh-max-timeout must be at least 1m")
	}
	for name, a := range map[string]string{"mqtt-addr": c.Broker.MQTTAddr, "mqtts-addr": c.Broker.MQTTSAddr, "mqtt-ws-addr": c.Broker.WSAddr, "ssh-addr": c.SSH.Addr} {
		if a == "" {
			continue
		}
		if err := validAddr(a); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	if (c.Broker.TLSCertFile == "") != (c.Broker.TLSKeyFile == "") {
		return errors.New("tls-cert and tls-key must be given together")
	}
	for _, f := range []struct {
		name string
		path string
	}{{"tls-cert", c.Broker.TLSCertFile}, {"tls-key", c.Broker.TLSKeyFile}} {
		if f.path == "" {
			continue
		}
		if _, err := os.Stat(f.path); err != nil {
			return fmt.Errorf("%s: %w", f.name, err)
		}
	}
	if c.MemoryBudget != 0 && c.MemoryBudget < 32<<20 {
		return errors.New("memory-budget must be 0 (no limit) or at least 32 MiB")
	}
	if c.Broker.MonitorPassword != "" && len(c.Broker.MonitorPassword) < 12 {
		return errors.New("mqtt-monitor-password must have at least 12 characters")
	}
	switch {
	case c.Broker.MaxPacketSize < 1024 || c.Broker.MaxPacketSize > 256<<20:
		return errors.New("mqtt-max-packet-size must be between 1 KiB and 256 MiB")
	case c.Broker.MaxClients < 1:
		return errors.New("mqtt-max-clients must be at least 1")
	case c.Broker.MaxInflight < 1 || c.Broker.MaxInflight > 65535:
		return errors.New("mqtt-max-inflight must be between 1 and 65535")
	case c.Broker.MaxQueuedBytes < 64<<10:
		return errors.New("mqtt-max-queued-bytes must be at least 64 KiB")
	case c.Broker.PaceWait < 0 || c.Broker.PaceWait > broker.MaxPaceWait:
		return fmt.Errorf("mqtt-pace-wait must be between 0 and %v", broker.MaxPaceWait)
	case c.Broker.MaxRetained < 0:
		return errors.New("mqtt-max-retained must not be negative")
	case c.Broker.MaxKeepalive < 10 || c.Broker.MaxKeepalive > 65535:
		return errors.New("mqtt-max-keepalive must be between 10 and 65535 seconds")
	case c.Broker.SessionExpiry < 0:
		return errors.New("mqtt-session-expiry must not be negative")
	case c.Ingest.FlushInterval < 10*time.Millisecond || c.Ingest.FlushInterval > time.Minute:
		return errors.New("ingest-flush-interval must be between 10ms and 1m")
	case c.Ingest.BusyCommitInterval < 0 || c.Ingest.BusyCommitInterval > ingest.MaxBusyCommitInterval:
		return fmt.Errorf("journal-busy-commit-interval must be between 0 and %v", ingest.MaxBusyCommitInterval)
	case c.Ingest.HistoryInterval < 100*time.Millisecond || c.Ingest.HistoryInterval > time.Minute:
		return errors.New("history-write-interval must be between 100ms and 1m")
	case c.Ingest.MaxPendingPoints < 1000 || c.Ingest.MaxPendingPoints > 10_000_000:
		return errors.New("history-max-pending must be between 1000 and 10000000")
	case c.History.Retention < time.Hour:
		return errors.New("history-retention must be at least 1h")
	case c.History.MaxBytes < 1<<20:
		return errors.New("history-max-bytes must be at least 1 MiB")
	}
	return nil
}

func validAddr(a string) error {
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		return fmt.Errorf("%q is not host:port", a)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("%q: bad port", a)
	}
	if host != "" && net.ParseIP(host) == nil && strings.ContainsAny(host, " /") {
		return fmt.Errorf("%q: bad host", a)
	}
	return nil
}

// UnknownEnv lists PIOT_ variables that match no option, so a typo is
// reported instead of silently ignored.
func (c *Config) UnknownEnv(environ []string, extra ...string) []string {
	known := map[string]bool{EnvPrefix + "CONFIG": true}
	for _, o := range c.options() {
		known[o.env(EnvPrefix)] = true
	}
	for _, e := range extra {
		known[e] = true
	}
	var out []string
	for _, kv := range environ {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, EnvPrefix) && !known[k] {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// LoadFile reads a YAML configuration file over the defaults, without
// environment or flags, and validates it; `piot init` reads the image's
// /data/piot.yaml this way.
func LoadFile(path string) (Config, error) {
	c := Default()
	if err := loadYAML(path, c.options()); err != nil {
		return c, err
	}
	return c, c.Validate()
}

// TrustedProxyPrefixes parses trusted-proxies; a bare address is a /32
// (or /128).
func (h *HTTP) TrustedProxyPrefixes() ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, v := range h.TrustedProxies {
		if p, err := netip.ParsePrefix(v); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(v)
		if err != nil {
			return nil, fmt.Errorf("trusted-proxies %q: not an address or CIDR", v)
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out, nil
}

// RegisterConsoleFlags declares `piot console`'s flags (--config,
// --data-dir, --ssh-addr) with the same names and environment variables
// as `piot run`'s.
func (c *Config) RegisterConsoleFlags(fs *pflag.FlagSet) {
	// Where the running appliance keeps its data and where its SSH
	// console listens; the rest of the file is read but not declared.
	var opts []option
	for _, o := range c.options() {
		if o.name == "data-dir" || o.name == "ssh-addr" {
			opts = append(opts, o)
		}
	}
	registerFlags(fs, opts, EnvPrefix)
}

// LoadConsole reads the configuration the way `piot run` does (defaults <
// YAML < environment < flags), so the console finds the appliance that the
// same file and environment started. It does not validate options the
// console does not use.
func (c *Config) LoadConsole(fs *pflag.FlagSet, environ []string) error {
	return loadOptions(fs, environ, c.options(), EnvPrefix)
}
