package appliance

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/piot-appliance/piot/appliance/config"
)

func testConfig(t *testing.T) config.Config {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.HTTP.Addr = "127.0.0.1:0"
	cfg.Broker.MQTTAddr, cfg.Broker.MQTTSAddr, cfg.Broker.WSAddr = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	cfg.SSH.Addr = "127.0.0.1:0"
	cfg.Core.BcryptCost = 4
	cfg.Admin.Password = "password123"
	return cfg
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// run runs a until the test ends and returns once every service started.
func run(t *testing.T, a *Appliance) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("run: %v", err)
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for a.sup.Ready() != nil {
		if time.Now().After(deadline) {
			t.Fatalf("not started: %v", a.sup.Ready())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Every path of the routes table and the API's own is served on the
// HTTP listener once the appliance runs.
func TestRunServesTheRoutes(t *testing.T) {
	a, err := New(context.Background(), testConfig(t), quiet, "test")
	if err != nil {
		t.Fatal(err)
	}
	run(t, a)
	if a.SSHAddr() == "" || len(a.MQTTAddrs()) != 3 {
		t.Fatalf("listeners: ssh %q, mqtt %v", a.SSHAddr(), a.MQTTAddrs())
	}
	base := "http://" + a.HTTPAddr()
	for _, path := range []string{"/healthz", "/readyz", "/query", "/login", "/gql/", "/",
		"/metrics", "/grafana.tar.gz", "/alerts/grafana", "/adapter", "/adapter/vdgps", "/ca.crt"} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode == http.StatusNotFound {
			t.Errorf("%s: not served", path)
		}
	}
	resp, err := http.Get(base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/readyz: %d", resp.StatusCode)
	}
	if err := a.ReloadTLS(); err != nil {
		t.Fatalf("reload TLS: %v", err)
	}
}

// A New that fails names the service and closes what it opened, so the
// same data directory opens again.
func TestNewFailsNamedAndClean(t *testing.T) {
	cfg := testConfig(t)
	bad := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(bad, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg.Monitor.SMTP.CAFile = bad
	if _, err := New(context.Background(), cfg, quiet, "test"); err == nil || !strings.HasPrefix(err.Error(), "monitor: smtp-ca-file") {
		t.Fatalf("err = %v, want monitor: smtp-ca-file…", err)
	}
	cfg.Monitor.SMTP.CAFile = ""
	a, err := New(context.Background(), cfg, quiet, "test")
	if err != nil {
		t.Fatal(err)
	}
	run(t, a)
}
