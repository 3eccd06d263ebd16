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
)

// EnvPrefix starts every environment variable of the appliance.
const EnvPrefix = "PIOT_"

// Config is the configuration of `piot run`.
type Config struct {
	DataDir           string
	HTTPAddr          string
	HTTPSAddr         string
	StoreURI          string
	LogLevel          string
	LogFormat         string
	JWTTTL            time.Duration
	JWTKey            string
	AllowRegistration bool
	TrustedProxies    []string
	CORSOrigins       []string
	AdminEmail        string
	AdminPassword     string
	ShutdownTimeout   time.Duration
	StoreTimeout      time.Duration
	LoginRate         int
	LoginBurst        int
	BcryptCost        int
	GraphQLMaxDepth   int
	GraphQLMaxCost    int
	GraphQLMaxRows    int
	APIMaxQueries     int
	APIMaxPerCaller   int
	APIQueryTimeout   time.Duration

	MQTTAddr            string
	MQTTSAddr           string
	MQTTWSAddr          string
	TLSCert             string
	TLSKey              string
	TLSNames            []string
	MQTTMonitorPassword string
	MQTTMaxPacketSize   int
	MQTTMaxClients      int
	MQTTMaxInflight     int
	MQTTMaxQueuedBytes  int
	MQTTMaxRetained     int
	MQTTMaxKeepalive    int
	MQTTStrictKeepalive bool
	MQTTSessionExpiry   time.Duration

	MetricsToken string
	AlertToken   string

	AdapterAESKey        string
	AdapterMinInterval   time.Duration
	AdapterMaxUnassigned int
	AdapterVDGPSAddr     string

	SMTPHost      string
	SMTPPort      int
	SMTPUsername  string
	SMTPPassword  string
	SMTPFrom      string
	SMTPStartTLS  bool
	SMTPCAFile    string
	NotifyTimeout time.Duration

	SSHAddr         string
	SSHIdleTimeout  time.Duration
	SSHMaxTimeout   time.Duration
	SSHPasswordAuth bool

	IngestFlushInterval time.Duration
	HistoryRetention    time.Duration
	HistoryMaxBytes     int

	// OS is applied by `piot init` in the appliance image; `piot run`
	// only checks it, so one file configures the whole appliance.
	OS OS
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
		HTTPAddr:        ":8080",
		LogLevel:        "info",
		LogFormat:       "text",
		JWTTTL:          4 * time.Hour,
		AdminEmail:      "admin@piot.local",
		ShutdownTimeout: 15 * time.Second,
		StoreTimeout:    10 * time.Second,
		LoginRate:       10,
		LoginBurst:      5,
		BcryptCost:      12,
		GraphQLMaxDepth: 10,
		GraphQLMaxCost:  1000,
		GraphQLMaxRows:  20000,
		APIMaxQueries:   8,
		APIMaxPerCaller: 4,
		APIQueryTimeout: 30 * time.Second,

		MQTTAddr:           ":1883",
		MQTTSAddr:          ":8883",
		MQTTWSAddr:         ":8083",
		MQTTMaxPacketSize:  256 << 10,
		MQTTMaxClients:     1000,
		MQTTMaxInflight:    100,
		MQTTMaxQueuedBytes: 1 << 20,
		MQTTMaxRetained:    10000,
		MQTTMaxKeepalive:   3600,
		MQTTSessionExpiry:  24 * time.Hour,

		AdapterMinInterval:   time.Second,
		AdapterMaxUnassigned: 100,

		SMTPPort:      587,
		SMTPStartTLS:  true,
		NotifyTimeout: 10 * time.Second,

		SSHAddr:        ":2222",
		SSHIdleTimeout: 15 * time.Minute,
		SSHMaxTimeout:  12 * time.Hour,

		IngestFlushInterval: time.Second,
		HistoryRetention:    30 * 24 * time.Hour,
		HistoryMaxBytes:     1 << 30,

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
	ptr    any  // *string, *bool, *int, *time.Duration
}

func (o option) env(prefix string) string {
	return prefix + strings.ToUpper(strings.ReplaceAll(o.name, "-", "_"))
}

func (c *Config) options() []option {
	return []option{
		{name: "data-dir", ptr: &c.DataDir, help: "directory for all state (store, secrets, TLS); created 0700"},
		{name: "http-addr", ptr: &c.HTTPAddr, help: "HTTP listener (API, GraphiQL, health) as host:port"},
		{name: "store-uri", ptr: &c.StoreURI, help: "external MongoDB-compatible store (mongodb://host:port/database, database piot when omitted); empty runs FerretDB embedded in <data-dir>/store"},
		{name: "log-level", ptr: &c.LogLevel, help: "debug, info, warn or error"},
		{name: "log-format", ptr: &c.LogFormat, help: "text or json"},
		{name: "jwt-ttl", ptr: &c.JWTTTL, help: "lifetime of API tokens (1m to 720h)"},
		{name: "jwt-key", ptr: &c.JWTKey, secret: true, help: "JWT signing key (at least 32 bytes); empty uses <data-dir>/jwt.key, generated at first start"},
		{name: "trusted-proxies", ptr: &c.TrustedProxies, help: "reverse proxies (addresses or CIDRs, comma-separated) whose X-Forwarded-For names the client for login limits and logs; empty trusts none"},
		{name: "cors-origins", ptr: &c.CORSOrigins, help: "origins (scheme://host[:port], comma-separated) whose pages may call the API from a browser; empty allows the appliance's own pages only"},
		{name: "allow-registration", ptr: &c.AllowRegistration, help: "enable self-registration at POST /register"},
		{name: "admin-email", ptr: &c.AdminEmail, help: "email of the admin created at first start"},
		{name: "admin-password", ptr: &c.AdminPassword, secret: true, help: "password of the admin created at first start; empty generates one into <data-dir>/admin-password"},
		{name: "shutdown-timeout", ptr: &c.ShutdownTimeout, help: "how long services may take to stop"},
		{name: "store-timeout", ptr: &c.StoreTimeout, help: "how long to wait for the store at start"},
		{name: "login-rate", ptr: &c.LoginRate, help: "failed logins allowed per source address and per account per minute (successful logins are not counted)"},
		{name: "login-burst", ptr: &c.LoginBurst, help: "failed logins allowed in a burst per source address and per account"},
		{name: "bcrypt-cost", ptr: &c.BcryptCost, help: "bcrypt cost of password hashes (10 to 16)"},
		{name: "graphql-max-depth", ptr: &c.GraphQLMaxDepth, help: "maximum nesting depth of a GraphQL query"},
		{name: "graphql-max-complexity", ptr: &c.GraphQLMaxCost, help: "maximum complexity of a GraphQL query (one point per field; readings fields once per 100 rows of first)"},
		{name: "graphql-max-rows", ptr: &c.GraphQLMaxRows, help: "history rows one GraphQL request may read over all its readings fields"},
		{name: "api-max-queries", ptr: &c.APIMaxQueries, help: "GraphQL requests running at once; more wait up to 5s, then get 503 with Retry-After"},
		{name: "api-max-queries-per-caller", ptr: &c.APIMaxPerCaller, help: "GraphQL requests running at once per user (anonymous: per address); more wait up to 5s, then get 429 with Retry-After"},
		{name: "api-query-timeout", ptr: &c.APIQueryTimeout, help: "GraphQL requests running longer are stopped (extensions.code TIMEOUT)"},
		{name: "mqtt-addr", ptr: &c.MQTTAddr, help: "MQTT over TCP listener; empty disables"},
		{name: "mqtts-addr", ptr: &c.MQTTSAddr, help: "MQTT over TLS listener; empty disables"},
		{name: "mqtt-ws-addr", ptr: &c.MQTTWSAddr, help: "MQTT over WebSocket listener; empty disables"},
		{name: "tls-cert", ptr: &c.TLSCert, help: "PEM certificate for MQTT over TLS; empty uses one signed by the appliance's own CA (<data-dir>/tls)"},
		{name: "tls-key", ptr: &c.TLSKey, help: "PEM key for --tls-cert"},
		{name: "tls-names", ptr: &c.TLSNames, help: "extra DNS names and IP addresses for the generated server certificate (comma-separated)"},
		{name: "mqtt-monitor-password", ptr: &c.MQTTMonitorPassword, secret: true, help: "enables the read-only MQTT user \"monitor\" for $SYS/# with this password"},
		{name: "mqtt-max-packet-size", ptr: &c.MQTTMaxPacketSize, help: "largest MQTT packet accepted, in bytes"},
		{name: "mqtt-max-clients", ptr: &c.MQTTMaxClients, help: "most MQTT clients connected at once"},
		{name: "mqtt-max-inflight", ptr: &c.MQTTMaxInflight, help: "most unacknowledged QoS 1/2 messages per client"},
		{name: "mqtt-max-queued-bytes", ptr: &c.MQTTMaxQueuedBytes, help: "bytes waiting to be sent to one client; beyond half QoS 0 deliveries are dropped, beyond all the client is disconnected as too slow (at least two maximum-size packets)"},
		{name: "mqtt-max-retained", ptr: &c.MQTTMaxRetained, help: "most retained messages kept"},
		{name: "mqtt-max-keepalive", ptr: &c.MQTTMaxKeepalive, help: "longest keepalive a client may ask for, in seconds"},
		{name: "mqtt-strict-keepalive", ptr: &c.MQTTStrictKeepalive, help: "refuse MQTT 3.1.1 clients that ask for no keepalive (0); by default they are accepted, as mosquitto does"},
		{name: "mqtt-session-expiry", ptr: &c.MQTTSessionExpiry, help: "how long a disconnected persistent session is kept"},
		{name: "metrics-token", ptr: &c.MetricsToken, secret: true, help: "bearer token for GET /metrics (sees everything; at least 32 bytes); empty uses <data-dir>/metrics-token, generated at first start"},
		{name: "alert-token", ptr: &c.AlertToken, secret: true, help: "bearer token Grafana sends to POST /alerts/grafana (at least 32 bytes); empty uses <data-dir>/alert-token, generated at first start"},
		{name: "adapter-aes-key", ptr: &c.AdapterAESKey, secret: true, help: "16-byte AES-128 key of the PIOT device protocol at POST /adapter (legacy devices); empty accepts plaintext only"},
		{name: "adapter-min-interval", ptr: &c.AdapterMinInterval, help: "least time between two packets of one device at POST /adapter and /adapter/vdgps (429 sooner); 0 disables the limit"},
		{name: "adapter-max-unassigned", ptr: &c.AdapterMaxUnassigned, help: "most unassigned things auto-registration may create (403 beyond)"},
		{name: "adapter-vdgps-addr", ptr: &c.AdapterVDGPSAddr, help: "extra HTTP listener where VD GPS trackers may POST to any path (legacy firmware); empty disables"},
		{name: "smtp-host", ptr: &c.SMTPHost, help: "mail relay for alarm e-mails; empty disables e-mail"},
		{name: "smtp-port", ptr: &c.SMTPPort, help: "mail relay port"},
		{name: "smtp-username", ptr: &c.SMTPUsername, help: "AUTH PLAIN user name (only over TLS)"},
		{name: "smtp-password", ptr: &c.SMTPPassword, secret: true, help: "AUTH PLAIN password"},
		{name: "smtp-from", ptr: &c.SMTPFrom, help: "sender address of alarm e-mails"},
		{name: "smtp-starttls", ptr: &c.SMTPStartTLS, help: "require STARTTLS (it is used when offered anyway)"},
		{name: "smtp-ca-file", ptr: &c.SMTPCAFile, help: "PEM CA certificates to verify the mail relay (default: system roots)"},
		{name: "notify-timeout", ptr: &c.NotifyTimeout, help: "timeout of one e-mail or webhook delivery"},
		{name: "ssh-addr", ptr: &c.SSHAddr, help: "SSH listener of the console; empty disables"},
		{name: "ssh-idle-timeout", ptr: &c.SSHIdleTimeout, help: "console sessions without keyboard input are closed after this long"},
		{name: "ssh-max-timeout", ptr: &c.SSHMaxTimeout, help: "console sessions are closed after this long"},
		{name: "ssh-password-auth", ptr: &c.SSHPasswordAuth, help: "allow admins to log in to the console with email and password (rate-limited)"},
		{name: "ingest-flush-interval", ptr: &c.IngestFlushInterval, help: "how often thing state and history are written to the store"},
		{name: "history-retention", ptr: &c.HistoryRetention, help: "how long history is kept"},
		{name: "history-max-bytes", ptr: &c.HistoryMaxBytes, help: "size cap of history; the oldest data is dropped first"},
		{name: "https-addr", ptr: &c.HTTPSAddr, help: "HTTPS listener (the HTTP routes with the appliance's TLS certificate); empty disables"},
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
	if err := validAddr(c.HTTPAddr); err != nil {
		return fmt.Errorf("http-addr: %w", err)
	}
	if c.HTTPSAddr != "" {
		if err := validAddr(c.HTTPSAddr); err != nil {
			return fmt.Errorf("https-addr: %w", err)
		}
	}
	if err := c.OS.Validate(); err != nil {
		return err
	}
	if _, err := c.TrustedProxyPrefixes(); err != nil {
		return err
	}
	for _, o := range c.CORSOrigins {
		if u, err := url.Parse(o); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Path != "" && u.Path != "/" {
			return fmt.Errorf("cors-origins %q: want scheme://host[:port]", o)
		}
	}
	if c.StoreURI != "" && !strings.HasPrefix(c.StoreURI, "mongodb://") && !strings.HasPrefix(c.StoreURI, "mongodb+srv://") {
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
	if c.JWTTTL < time.Minute || c.JWTTTL > 720*time.Hour {
		return fmt.Errorf("jwt-ttl %s: must be between 1m and 720h", c.JWTTTL)
	}
	if c.JWTKey != "" && len(c.JWTKey) < 32 {
		return errors.New("jwt-key must have at least 32 bytes")
	}
	if c.AdminPassword != "" && len(c.AdminPassword) < 8 {
		return errors.New("admin-password must have at least 8 characters")
	}
	if c.ShutdownTimeout <= 0 || c.StoreTimeout <= 0 {
		return errors.New("shutdown-timeout and store-timeout must be positive")
	}
	if c.LoginRate < 1 || c.LoginBurst < 1 {
		return errors.New("login-rate and login-burst must be at least 1")
	}
	if c.BcryptCost < 4 || c.BcryptCost > 16 {
		return fmt.Errorf("bcrypt-cost %d: must be between 4 and 16", c.BcryptCost)
	}
	if c.GraphQLMaxDepth < 2 || c.GraphQLMaxCost < 10 {
		return errors.New("graphql-max-depth must be at least 2 and graphql-max-complexity at least 10")
	}
	if c.GraphQLMaxRows < 1 || c.APIMaxQueries < 1 || c.APIMaxPerCaller < 1 || c.APIQueryTimeout < time.Second {
		return errors.New("graphql-max-rows, api-max-queries and api-max-queries-per-caller must be at least 1 and api-query-timeout at least 1s")
	}
	if c.MetricsToken != "" && len(c.MetricsToken) < 32 || c.AlertToken != "" && len(c.AlertToken) < 32 {
		return errors.New("metrics-token and alert-token must have at least 32 bytes")
	}
	if c.AdapterAESKey != "" && len(c.AdapterAESKey) != 16 {
		return fmt.Errorf("adapter-aes-key must be exactly 16 bytes, got %d", len(c.AdapterAESKey))
	}
	if c.AdapterVDGPSAddr != "" {
		if err := validAddr(c.AdapterVDGPSAddr); err != nil {
			return fmt.Errorf("adapter-vdgps-addr: %w", err)
		}
	}
	if c.AdapterMinInterval < 0 || c.AdapterMaxUnassigned < 0 {
		return errors.New("adapter-min-interval and adapter-max-unassigned must not be negative")
	}
	if c.NotifyTimeout < time.Second || c.NotifyTimeout > 5*time.Minute {
		return errors.New("notify-timeout must be between 1s and 5m")
	}
	if c.SMTPCAFile != "" {
		if _, err := os.Stat(c.SMTPCAFile); err != nil {
			return fmt.Errorf("smtp-ca-file: %w", err)
		}
	}
	if c.SSHIdleTimeout < time.Minute || c.SSHMaxTimeout < time.Minute {
		return errors.New("ssh-idle-timeout and ssh-max-timeout must be at least 1m")
	}
	for name, a := range map[string]string{"mqtt-addr": c.MQTTAddr, "mqtts-addr": c.MQTTSAddr, "mqtt-ws-addr": c.MQTTWSAddr, "ssh-addr": c.SSHAddr} {
		if a == "" {
			continue
		}
		if err := validAddr(a); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return errors.New("tls-cert and tls-key must be given together")
	}
	for _, f := range []struct {
		name string
		path string
	}{{"tls-cert", c.TLSCert}, {"tls-key", c.TLSKey}} {
		if f.path == "" {
			continue
		}
		if _, err := os.Stat(f.path); err != nil {
			return fmt.Errorf("%s: %w", f.name, err)
		}
	}
	if c.MQTTMonitorPassword != "" && len(c.MQTTMonitorPassword) < 12 {
		return errors.New("mqtt-monitor-password must have at least 12 characters")
	}
	switch {
	case c.MQTTMaxPacketSize < 1024 || c.MQTTMaxPacketSize > 256<<20:
		return errors.New("mqtt-max-packet-size must be between 1 KiB and 256 MiB")
	case c.MQTTMaxClients < 1:
		return errors.New("mqtt-max-clients must be at least 1")
	case c.MQTTMaxInflight < 1 || c.MQTTMaxInflight > 65535:
		return errors.New("mqtt-max-inflight must be between 1 and 65535")
	case c.MQTTMaxQueuedBytes < 64<<10:
		return errors.New("mqtt-max-queued-bytes must be at least 64 KiB")
	case c.MQTTMaxRetained < 0:
		return errors.New("mqtt-max-retained must not be negative")
	case c.MQTTMaxKeepalive < 10 || c.MQTTMaxKeepalive > 65535:
		return errors.New("mqtt-max-keepalive must be between 10 and 65535 seconds")
	case c.MQTTSessionExpiry < 0:
		return errors.New("mqtt-session-expiry must not be negative")
	case c.IngestFlushInterval < 10*time.Millisecond || c.IngestFlushInterval > time.Minute:
		return errors.New("ingest-flush-interval must be between 10ms and 1m")
	case c.HistoryRetention < time.Hour:
		return errors.New("history-retention must be at least 1h")
	case c.HistoryMaxBytes < 1<<20:
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
func (c *Config) TrustedProxyPrefixes() ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, v := range c.TrustedProxies {
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
