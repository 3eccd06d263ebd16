package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

func load(t *testing.T, args []string, env []string) (Config, error) {
	t.Helper()
	c := Default()
	fs := pflag.NewFlagSet("run", pflag.ContinueOnError)
	c.RegisterFlags(fs)
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	err := c.Load(fs, env)
	return c, err
}

func TestPrecedenceDefaultsYAMLEnvFlags(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "piot.yaml")
	yml := "http-addr: \":9000\"\nlog-level: debug\njwt-ttl: 2h\ndata-dir: /from/yaml\n"
	if err := os.WriteFile(file, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := load(t, []string{"--config", file, "--data-dir", "/from/flag"}, []string{"PIOT_LOG_LEVEL=warn", "PIOT_DATA_DIR=/from/env"})
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTP.Addr != ":9000" || c.API.JWTTTL != 2*time.Hour {
		t.Errorf("yaml not applied: %+v", c)
	}
	if c.LogLevel != "warn" {
		t.Errorf("env should override yaml: log-level = %q", c.LogLevel)
	}
	if c.DataDir != "/from/flag" {
		t.Errorf("flag should override env: data-dir = %q", c.DataDir)
	}
	if c.Core.BcryptCost != 12 {
		t.Errorf("default lost: %d", c.Core.BcryptCost)
	}
}

func TestBadValuesAreRefused(t *testing.T) {
	dir := t.TempDir()
	unknown := filepath.Join(dir, "unknown.yaml")
	_ = os.WriteFile(unknown, []byte("http_addr: \":1\"\n"), 0o600)
	cases := []struct {
		name string
		args []string
		env  []string
		want string
	}{
		{"bad duration env", nil, []string{"PIOT_JWT_TTL=forever"}, "PIOT_JWT_TTL"},
		{"ttl too short", []string{"--jwt-ttl", "1s"}, nil, "jwt-ttl"},
		{"bad level", []string{"--log-level", "loud"}, nil, "log-level"},
		{"bad addr", []string{"--http-addr", "8080"}, nil, "http-addr"},
		{"bad port", []string{"--http-addr", ":99999"}, nil, "http-addr"},
		{"bad store uri", []string{"--store-uri", "postgres://x"}, nil, "store-uri"},
		{"short jwt key", nil, []string{"PIOT_JWT_KEY=short"}, "jwt-key"},
		{"unknown yaml key", []string{"--config", unknown}, nil, "unknown key"},
		{"missing yaml", []string{"--config", filepath.Join(dir, "nope.yaml")}, nil, "config file"},
		{"bad bool env", nil, []string{"PIOT_ALLOW_REGISTRATION=maybe"}, "boolean"},
		{"empty data dir", []string{"--data-dir", ""}, nil, "data-dir"},
		{"profiler on the network", []string{"--debug-addr", "0.0.0.0:6060"}, nil, "debug-addr"},
		{"profiler without a port", []string{"--debug-addr", "127.0.0.1"}, nil, "debug-addr"},
		{"trial shorter than the wait", []string{"--update-mark-good-after", "5m", "--update-trial-timeout", "5m"}, nil, "update-trial-timeout"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := load(t, tc.args, tc.env)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want mention of %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error is not one line: %q", err)
			}
		})
	}
}

func TestHelpNamesEveryEnv(t *testing.T) {
	c := Default()
	fs := pflag.NewFlagSet("run", pflag.ContinueOnError)
	c.RegisterFlags(fs)
	usage := fs.FlagUsages()
	for _, o := range c.options() {
		if !strings.Contains(usage, "--"+o.name) || !strings.Contains(usage, o.env(EnvPrefix)) {
			t.Errorf("help lacks --%s or %s", o.name, o.env(EnvPrefix))
		}
	}
}

func TestUnknownEnvReported(t *testing.T) {
	c := Default()
	got := c.UnknownEnv([]string{"PIOT_HTTP_ADDR=:1", "PIOT_HTTP_ADRR=:2", "HOME=/root"})
	if len(got) != 1 || got[0] != "PIOT_HTTP_ADRR" {
		t.Fatalf("unknown = %v", got)
	}
}

// Each option lands in its service's block, so the composition root hands
// the block over as it is.
func TestOptionsFillServiceBlocks(t *testing.T) {
	c, err := load(t, []string{"--mqtt-max-keepalive", "120", "--history-max-bytes", "2147483648",
		"--ssh-addr", ":2022", "--ingest-flush-interval", "2s", "--graphql-max-rows", "50", "--smtp-host", "mail.test"},
		[]string{"PIOT_STORE_URI=mongodb://db.test/piot", "PIOT_ADAPTER_VDGPS_ADDR=:9001", "PIOT_BCRYPT_COST=10"})
	if err != nil {
		t.Fatal(err)
	}
	for name, ok := range map[string]bool{
		"broker":  c.Broker.MaxKeepalive == 120 && c.Broker.MQTTAddr == ":1883",
		"history": c.History.MaxBytes == 2<<30 && c.History.Retention == 30*24*time.Hour,
		"ssh":     c.SSH.Addr == ":2022" && c.SSH.IdleTimeout == 15*time.Minute,
		"ingest":  c.Ingest.FlushInterval == 2*time.Second,
		"api":     c.API.GraphQL.MaxRows == 50 && c.API.MaxQueries == 8,
		"monitor": c.Monitor.SMTP.Host == "mail.test" && c.Monitor.SMTP.Port == 587,
		"store":   c.Store.URI == "mongodb://db.test/piot" && c.Store.Timeout == 10*time.Second,
		"adapter": c.Adapter.VDGPSAddr == ":9001",
		"core":    c.Core.BcryptCost == 10,
	} {
		if !ok {
			t.Errorf("%s block: %+v", name, c)
		}
	}
	if _, err := load(t, []string{"--history-max-bytes", "lots"}, nil); err == nil || !strings.Contains(err.Error(), "history-max-bytes") {
		t.Errorf("bad int64: %v", err)
	}
}
