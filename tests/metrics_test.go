package tests

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func getAuth(t *testing.T, u, token string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// /metrics of the real binary, scraped by a real Prometheus, with the
// global token and an org's own token; Grafana's webhook raises an alarm.
func TestMetricsScrapedByPrometheus(t *testing.T) {
	promBin, err := exec.LookPath("prometheus")
	if err != nil {
		if os.Getenv("PIOT_REQUIRE_MOSQUITTO") != "" {
			t.Fatal("prometheus not installed (run tests/deps.sh)")
		}
		t.Skip("prometheus not installed")
	}
	a := startAppliance(t, startOpts{})
	tok := a.login("admin@piot.local", a.adminPassword())
	pw := orgWithMQTT(t, a, tok, "farm", "farm-user")
	farm := orgID(t, a, tok, "farm")
	orgWithMQTT(t, a, tok, "shop", "shop-user")
	thing := sensorThing(t, a, tok, farm, "T1")
	sensorThing(t, a, tok, orgID(t, a, tok, "shop"), "S1")
	c := mqttClient(t, a.mqttAddr, "farm-user", pw, "metrics")
	if p := c.Publish("org/farm/T1/value", 1, false, "21.5"); !p.WaitTimeout(5*time.Second) || p.Error() != nil {
		t.Fatalf("publish: %v", p.Error())
	}
	c.Disconnect(100)

	raw, err := os.ReadFile(filepath.Join(a.dataDir, "metrics-token"))
	if err != nil {
		t.Fatal(err)
	}
	global := strings.TrimSpace(string(raw))
	if st, _ := getAuth(t, a.url+"/metrics", ""); st != http.StatusUnauthorized {
		t.Fatalf("no token: %d", st)
	}
	if st, _ := getAuth(t, a.url+"/metrics", "wrong-token"); st != http.StatusUnauthorized {
		t.Fatalf("wrong token: %d", st)
	}
	// A device packet the adapter refuses is counted by reason.
	if resp, err := http.Post(a.url+"/adapter", "application/json", strings.NewReader("not a packet")); err != nil {
		t.Fatal(err)
	} else {
		resp.Body.Close()
	}
	// The real appliance's output passes promtool and covers every part.
	st0, full := getAuth(t, a.url+"/metrics", global)
	if st0 != 200 {
		t.Fatalf("global scrape: %d", st0)
	}
	for _, want := range []string{"piot_build_info", "piot_mqtt_clients_connected", "piot_ingest_messages_total",
		`piot_adapter_packets_refused_total{protocol="piot",reason="bad_json"} 1`, `piot_store_operation_duration_seconds_bucket{operation="find"`, `piot_sensor_value{class="temperature",org="farm",thing="T1",unit="C"} 21.5`, "go_goroutines"} {
		if !strings.Contains(full, want) {
			t.Errorf("global scrape lacks %s", want)
		}
	}
	if promtool, err := exec.LookPath("promtool"); err == nil {
		check := exec.Command(promtool, "check", "metrics")
		check.Stdin = strings.NewReader(full)
		if out, err := check.CombinedOutput(); err != nil {
			t.Fatalf("promtool check metrics: %v\n%s", err, out)
		}
	} else if os.Getenv("PIOT_REQUIRE_MOSQUITTO") != "" {
		t.Fatal("promtool not installed")
	}
	_, data, code := a.gql(tok, `mutation($o: ID!) { createMetricsToken(orgId: $o) { token } }`, map[string]any{"o": farm})
	if code != "" {
		t.Fatal(code)
	}
	orgTok := data["createMetricsToken"].(map[string]any)["token"].(string)
	st, body := getAuth(t, a.url+"/metrics", orgTok)
	if st != 200 || !strings.Contains(body, `thing="T1"`) || strings.Contains(body, `thing="S1"`) || strings.Contains(body, "piot_mqtt_") {
		t.Fatalf("org token scrape: %d\n%s", st, body)
	}

	// A real Prometheus scrapes the appliance with the global token.
	dir := t.TempDir()
	promAddr := freeAddr(t)
	u, _ := url.Parse(a.url)
	cfg := fmt.Sprintf(`global:
  scrape_interval: 1s
scrape_configs:
  - job_name: piot
    authorization:
      credentials: %q
    static_configs:
      - targets: [%q]
`, global, u.Host)
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	prom := exec.CommandContext(ctx, promBin, "--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+promAddr)
	var promOut syncBuffer
	prom.Stdout, prom.Stderr = &promOut, &promOut
	if err := prom.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); _ = prom.Wait() }()
	query := func(q string) string {
		resp, err := http.Get("http://" + promAddr + "/api/v1/query?query=" + url.QueryEscape(q))
		if err != nil {
			return ""
		}
		defer resp.Body.Close()
		var r struct {
			Data struct {
				Result []struct {
					Value []any `json:"value"`
				} `json:"result"`
			} `json:"data"`
		}
		if json.NewDecoder(resp.Body).Decode(&r) != nil || len(r.Data.Result) == 0 {
			return ""
		}
		v, _ := r.Data.Result[0].Value[1].(string)
		return v
	}
	deadline := time.Now().Add(40 * time.Second)
	for query(`piot_sensor_value{org="farm",thing="T1"}`) != "21.5" {
		if time.Now().After(deadline) {
			t.Fatalf("Prometheus never saw the sensor value\n%s", promOut.String())
		}
		time.Sleep(500 * time.Millisecond)
	}
	if query(`up{job="piot"}`) != "1" {
		t.Fatal("scrape target not up")
	}

	// Grafana's "thing not seen" notification raises and clears the alarm.
	at, err := os.ReadFile(filepath.Join(a.dataDir, "alert-token"))
	if err != nil {
		t.Fatal(err)
	}
	alert := func(status string) {
		t.Helper()
		body := fmt.Sprintf(`{"status":%q,"alerts":[{"status":%q,"labels":{"piot_alert":"thing_not_seen","org":"farm","thing":"T1"}}]}`, status, status)
		st, out := post(t, a.url+"/alerts/grafana", strings.TrimSpace(string(at)), body)
		if st != 200 || out["applied"] != float64(1) {
			t.Fatalf("alert %s: %d %v", status, st, out)
		}
	}
	if st, _ := post(t, a.url+"/alerts/grafana", "wrong", `{"alerts":[]}`); st != http.StatusUnauthorized {
		t.Fatalf("alert with a wrong token: %d", st)
	}
	alarm := func() bool {
		_, d, code := a.gql(tok, `query($id: ID!) { thing(id: $id) { alarm_active } }`, map[string]any{"id": thing})
		if code != "" {
			t.Fatal(code)
		}
		return d["thing"].(map[string]any)["alarm_active"].(bool)
	}
	alert("firing")
	if !alarm() {
		t.Fatal("firing alert did not raise the alarm")
	}
	alert("resolved")
	if alarm() {
		t.Fatal("resolved alert did not clear the alarm")
	}
	if st, body := get(t, a.url+"/grafana.tar.gz"); st != 200 || len(body) < 100 {
		t.Fatalf("grafana bundle: %d (%d bytes)", st, len(body))
	}
}
