package exporter

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/piot-appliance/piot/services/core"
)

// TestPrometheusScrapesThings runs Debian's Prometheus against the handler
// on loopback, scraping every second with the global bearer token, and
// reads a sensor value back through its HTTP query API; then changes the
// value and waits for the new one.
func TestPrometheusScrapesThings(t *testing.T) {
	bin := tool(t, "/usr/bin/prometheus")
	f := newFixture(t)
	e := newExporter(t, fakeSources(f.core))

	target := httptest.NewUnstartedServer(nil)
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", e.Handler(BearerAuthorizer(globalToken, f.orgToken)))
	target.Config.Handler = mux
	target.Start()
	t.Cleanup(target.Close)

	// A second job scrapes with the farm's token into its own job label.
	api := startPrometheus(t, bin, fmt.Sprintf(`
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: piot
    authorization:
      credentials: %q
    static_configs:
      - targets: [%q]
  - job_name: farm
    authorization:
      credentials: %q
    static_configs:
      - targets: [%q]
`, globalToken, target.Listener.Addr().String(), farmToken, target.Listener.Addr().String()))

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	waitFor(ctx, t, api, `piot_sensor_value{job="piot",org="farm",thing="Greenhouse",class="temperature",unit="°C"}`, "21.5")
	waitFor(ctx, t, api, `piot_sensor_value{job="piot",org="city",thing="t-city"}`, "7")
	waitFor(ctx, t, api, `count(piot_sensor_value{job="farm"})`, "1")
	waitFor(ctx, t, api, `count({job="farm",__name__=~"piot_build_info|piot_mqtt_.*|go_.*|process_.*"}) or vector(0)`, "0")
	waitFor(ctx, t, api, `up{job="piot"}`, "1")

	f.state(t, f.things["t-sensor"], func(th *core.Thing) { th.Sensor.Value = "22.25" })
	waitFor(ctx, t, api, `piot_sensor_value{job="piot",thing="Greenhouse"}`, "22.25")
}

// startPrometheus runs Prometheus with config on a free loopback port and
// returns its base URL once it is ready.
func startPrometheus(t *testing.T, bin, config string) string {
	t.Helper()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfg, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	cmd := exec.Command(bin,
		"--config.file="+cfg,
		"--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr,
		"--log.level=warn",
	)
	var logs lockedBuffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("prometheus log:\n%s", logs.String())
		}
	})
	base := "http://" + addr
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(base + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return base
			}
		}
		select {
		case <-done:
			t.Fatalf("prometheus exited:\n%s", logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("prometheus not ready: %v\n%s", err, logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitFor polls an instant query until its only sample has value want.
func waitFor(ctx context.Context, t *testing.T, api, query, want string) {
	t.Helper()
	var last string
	for {
		got, err := instantQuery(ctx, api, query)
		if err == nil && got == want {
			return
		}
		last = fmt.Sprintf("%q (err %v)", got, err)
		select {
		case <-ctx.Done():
			t.Fatalf("%s: want %s, last got %s", query, want, last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// instantQuery returns the value of the single sample a query yields ("" if
// none, an error if several).
func instantQuery(ctx context.Context, api, query string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, api+"/api/v1/query?query="+url.QueryEscape(query), nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var r struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
				Value  [2]any            `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return "", err
	}
	if r.Status != "success" {
		return "", fmt.Errorf("query: %s", r.Error)
	}
	switch len(r.Data.Result) {
	case 0:
		return "", nil
	case 1:
		v, _ := r.Data.Result[0].Value[1].(string)
		return v, nil
	}
	return "", fmt.Errorf("%d samples", len(r.Data.Result))
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// lockedBuffer collects a process's output from its copying goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Clone(l.b.String())
}
