package tests

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/piot-appliance/piot/services/adapter/devsim"
)

// edgeProc is one running `piot adapter`.
type edgeProc struct {
	t    *testing.T
	addr string
	args []string
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan error
}

// startEdge runs `piot adapter` with args on addr and waits until
// GET /status answers.
func startEdge(t *testing.T, addr string, args ...string) *edgeProc {
	t.Helper()
	e := &edgeProc{t: t, addr: addr, args: args, out: &syncBuffer{}, done: make(chan error, 1)}
	e.cmd = exec.Command(piotBin, append([]string{"adapter", "--listen", addr}, args...)...)
	e.cmd.Stdout, e.cmd.Stderr = e.out, e.out
	if err := e.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { e.done <- e.cmd.Wait() }()
	t.Cleanup(func() { e.stop() })
	for deadline := time.Now().Add(20 * time.Second); ; {
		select {
		case err := <-e.done:
			e.done <- err
			t.Fatalf("piot adapter exited during start: %v\n%s", err, e.out)
		default:
		}
		if resp, err := http.Get("http://" + addr + "/status"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return e
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("piot adapter not up after 20s:\n%s", e.out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (e *edgeProc) stop() {
	if e.cmd.ProcessState != nil {
		return
	}
	_ = e.cmd.Process.Signal(os.Interrupt)
	select {
	case err := <-e.done:
		e.done <- err
		if err != nil && !strings.Contains(err.Error(), "killed") {
			e.t.Errorf("piot adapter exited with %v:\n%s", err, e.out)
		}
	case <-time.After(20 * time.Second):
		_ = e.cmd.Process.Kill()
		e.t.Errorf("piot adapter did not stop in 20s:\n%s", e.out)
	}
}

func (e *edgeProc) kill() {
	_ = e.cmd.Process.Signal(syscall.SIGKILL)
	err := <-e.done
	e.done <- err
}

type edgeStatus struct {
	Uplink struct {
		State     string `json:"state"`
		Forwarded uint64 `json:"forwarded"`
	} `json:"uplink"`
	Spool struct {
		Records, Appended, Acked, Dropped, Rejected uint64
		Bytes                                       int64
		MaxBytes                                    int64 `json:"max_bytes"`
		Policy                                      string
	} `json:"spool"`
	Rejected map[string]uint64 `json:"rejected"`
}

func (e *edgeProc) status() edgeStatus {
	e.t.Helper()
	resp, err := http.Get("http://" + e.addr + "/status")
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var s edgeStatus
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		e.t.Fatal(err)
	}
	return s
}

// waitDrained waits until the edge adapter's spool is empty and its
// uplink connected.
func (e *edgeProc) waitDrained(within time.Duration) edgeStatus {
	e.t.Helper()
	deadline := time.Now().Add(within)
	for {
		s := e.status()
		if s.Spool.Records == 0 && s.Uplink.State == "connected" {
			return s
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("spool not drained in %v: %+v\n%s", within, s, e.out)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func caFile(t *testing.T, a *appliance) string {
	t.Helper()
	st, pem := get(t, a.url+"/ca.crt")
	if st != http.StatusOK {
		t.Fatalf("GET /ca.crt: %d", st)
	}
	path := filepath.Join(t.TempDir(), "ca.crt")
	if err := os.WriteFile(path, []byte(pem), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// timedReadings returns a thing's raw readings as "value@ts"; it may run
// outside the test's goroutine, so it reports problems as a reading.
func timedReadings(a *appliance, token, thing string, from int64) []string {
	_, data, code := a.gql(token, `query($id: ID!, $from: Int, $to: Int) { readings(thingId: $id, from: $from, to: $to, step: 0, first: 10000) { ts value } }`,
		map[string]any{"id": thing, "from": from, "to": time.Now().Unix() + 60})
	if code != "" {
		return []string{"error:" + code}
	}
	var out []string
	for _, r := range data["readings"].([]any) {
		m := r.(map[string]any)
		out = append(out, fmt.Sprintf("%v@%.0f", m["value"], m["ts"]))
	}
	return out
}

// The offline test of the edge adapter: 50 simulated devices post to an
// edge adapter that forwards over MQTT/TLS to the appliance. The
// appliance stops for a while, the edge adapter is killed with SIGKILL
// during the outage and restarted, then the appliance comes back, is
// killed with SIGKILL while the backlog flows and comes back again: every
// packet the edge adapter answered 200 is in history exactly once, in
// device order, with the device's own timestamp.
func TestEdgeAdapterRidesOutAnOutage(t *testing.T) {
	const devices, count = 50, 30
	dataDir := t.TempDir()
	mqtts := freeAddr(t)
	a := startAppliance(t, startOpts{dataDir: dataDir, args: []string{"--mqtts-addr", mqtts}})
	tok := a.login("admin@piot.local", a.adminPassword())
	pw := orgWithMQTT(t, a, tok, "site", "site-edge")
	site := orgID(t, a, tok, "site")
	ca := caFile(t, a)

	edgeAddr := freeAddr(t)
	spoolDir := t.TempDir()
	edgeArgs := []string{"--uplink", "mqtts://" + mqtts, "--org", "site", "--username", "site-edge",
		"--ca", ca, "--spool-dir", spoolDir, "--min-interval", "0", "--backoff-max", "1s", "--ack-timeout", "5s"}
	edge := startEdge(t, edgeAddr, append(edgeArgs, "--password", pw)...)

	// First contact through the edge adapter registers every device and
	// sensor into "site", disabled; the admin enables them.
	ctx := context.Background()
	if _, err := devsim.Run(ctx, devsim.Config{URL: "http://" + edgeAddr, Devices: devices, Count: 1, Rate: 0, Prefix: "warm"}); err != nil {
		t.Fatal(err)
	}
	edge.waitDrained(60 * time.Second)
	sensors := map[string]string{}
	for i := 1; i <= devices; i++ {
		dev := devsim.DeviceName("warm", i)
		sensors[dev] = enableDevice(t, a, tok, site, dev)
	}

	// The measured run: device clocks start two hours ago, a minute per
	// packet, so stored timestamps tell device time from arrival time.
	start := time.Now().Add(-2 * time.Hour).Truncate(time.Second)
	var logBuf syncBuffer
	simDone := make(chan error, 1)
	var res devsim.Result
	go func() {
		var err error
		res, err = devsim.Run(ctx, devsim.Config{URL: "http://" + edgeAddr, Devices: devices, Count: count, Rate: 3,
			Prefix: "warm", Start: start, Step: time.Minute, Log: &logBuf})
		simDone <- err
	}()
	time.Sleep(2 * time.Second)
	a.stop() // the uplink is down from here
	time.Sleep(2 * time.Second)
	edge.kill() // power loss at the edge, during the outage
	time.Sleep(500 * time.Millisecond)
	edge = startEdge(t, edgeAddr, append(edgeArgs, "--password", pw)...)
	time.Sleep(2 * time.Second)
	if s := edge.status(); s.Spool.Records == 0 || s.Uplink.State == "connected" {
		t.Fatalf("during the outage the spool should hold packets and the uplink be down: %+v", s)
	}
	a = startAppliance(t, startOpts{dataDir: dataDir, args: []string{"--mqtts-addr", mqtts}})
	// The edge adapter is forwarding its backlog when the appliance loses
	// power: packets journaled but not acknowledged are resent and must
	// not be stored twice.
	waitForwarding(t, edge, 30*time.Second)
	a.kill()
	a = startAppliance(t, startOpts{dataDir: dataDir, args: []string{"--mqtts-addr", mqtts}})
	tok = a.login("admin@piot.local", a.adminPassword())
	if err := <-simDone; err != nil {
		t.Fatal(err)
	}
	if res.OK != devices*count {
		t.Fatalf("simulator: %d of %d packets answered 2xx (%+v)", res.OK, devices*count, res)
	}
	st := edge.waitDrained(90 * time.Second)
	t.Logf("simulator: %d ok, %d retried; edge after restart: %+v", res.OK, res.Retried, st)

	// What the devices were told: 200 for every packet, in order.
	answered := map[string][]int{}
	sc := bufio.NewScanner(strings.NewReader(logBuf.String()))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 4 || f[3] != "200" {
			t.Fatalf("simulator log line %q", sc.Text())
		}
		seq, _ := strconv.Atoi(f[1])
		answered[f[0]] = append(answered[f[0]], seq)
	}
	if len(answered) != devices {
		t.Fatalf("%d devices answered, want %d", len(answered), devices)
	}
	var problems []string
	deadline := time.Now().Add(30 * time.Second)
	for dev, seqs := range answered {
		var want []string
		for _, s := range seqs {
			want = append(want, fmt.Sprintf("%d@%d", s, start.Add(time.Duration(s-1)*time.Minute).Unix()))
		}
		var got []string
		for {
			got = timedReadings(a, tok, sensors[dev], start.Unix()-60)
			if strings.Join(got, " ") == strings.Join(want, " ") || time.Now().After(deadline) {
				break
			}
			time.Sleep(300 * time.Millisecond)
		}
		if g, w := strings.Join(got, " "), strings.Join(want, " "); g != w {
			problems = append(problems, fmt.Sprintf("%s: history %s\n  want %s", dev, g, w))
		}
	}
	if len(problems) > 0 {
		t.Fatalf("%d devices differ:\n%s", len(problems), strings.Join(problems[:min(3, len(problems))], "\n"))
	}
}

// waitForwarding waits until the edge adapter has forwarded a packet
// since the call (or has nothing left to forward).
func waitForwarding(t *testing.T, e *edgeProc, timeout time.Duration) {
	t.Helper()
	from := e.status().Uplink.Forwarded
	deadline := time.Now().Add(timeout)
	for {
		st := e.status()
		if st.Uplink.Forwarded != from {
			return
		}
		if st.Spool.Records == 0 {
			t.Log("the edge adapter's spool was empty before it forwarded anything")
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the edge adapter forwarded nothing in %s: %+v", timeout, st)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A spool that fills up while the uplink is unreachable: drop-oldest
// keeps the newest packets and counts the dropped ones; reject-new
// answers 503 with Retry-After and counts the refusals.
func TestEdgeSpoolFullPolicies(t *testing.T) {
	nowhere := freeAddr(t) // nobody listens: the uplink stays down
	common := []string{"--uplink", "mqtt://" + nowhere, "--org", "site", "--username", "u", "--password", "p",
		"--min-interval", "1ms", "--spool-max-bytes", strconv.Itoa(64 << 10), "--backoff-max", "1s"}
	body := func(dev string, seq int) []byte {
		b, err := devsim.EncodePIOT(dev, seq, time.Now(), nil)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	postPacket := func(addr string, b []byte) *http.Response {
		resp, err := http.Post("http://"+addr+"/adapter", "application/json", bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}

	t.Run("drop-oldest", func(t *testing.T) {
		addr := freeAddr(t)
		e := startEdge(t, addr, append(common, "--spool-dir", t.TempDir())...)
		const n = 2000
		for i := 1; i <= n; i++ {
			if resp := postPacket(addr, body(fmt.Sprintf("d%d", i%20), i)); resp.StatusCode != http.StatusOK {
				t.Fatalf("packet %d: %d", i, resp.StatusCode)
			}
		}
		s := e.status()
		if s.Spool.Appended != n || s.Spool.Dropped == 0 || s.Spool.Records+s.Spool.Dropped != n ||
			s.Spool.Bytes > s.Spool.MaxBytes || s.Spool.Policy != "drop-oldest" {
			t.Fatalf("status %+v", s)
		}
		_, metrics := get(t, "http://"+addr+"/metrics")
		if !strings.Contains(metrics, fmt.Sprintf("piot_edge_spool_dropped_total %d", s.Spool.Dropped)) ||
			!strings.Contains(metrics, "piot_edge_uplink_connected 0") {
			t.Fatalf("metrics lack the drops:\n%s", metrics)
		}
		if !strings.Contains(e.out.String(), "dropped") {
			t.Fatalf("drops not logged:\n%s", e.out)
		}
		t.Logf("2000 packets into 64 KiB: %d kept, %d dropped", s.Spool.Records, s.Spool.Dropped)
	})

	t.Run("reject-new", func(t *testing.T) {
		addr := freeAddr(t)
		e := startEdge(t, addr, append(common, "--spool-dir", t.TempDir(), "--spool-policy", "reject-new")...)
		var ok, refused int
		for i := 1; i <= 2000 && refused < 5; i++ {
			resp := postPacket(addr, body(fmt.Sprintf("d%d", i%20), i))
			switch resp.StatusCode {
			case http.StatusOK:
				ok++
			case http.StatusServiceUnavailable:
				if resp.Header.Get("Retry-After") == "" {
					t.Fatal("503 without Retry-After")
				}
				refused++
			default:
				t.Fatalf("packet %d: %d", i, resp.StatusCode)
			}
		}
		s := e.status()
		if refused != 5 || s.Spool.Rejected != 5 || s.Rejected["spool_full"] != 5 || s.Spool.Dropped != 0 ||
			s.Spool.Records != uint64(ok) {
			t.Fatalf("ok %d, refused %d, status %+v", ok, refused, s)
		}
	})
}

// An edge adapter may log in with a device's own MQTT credentials and
// know the device's own AES key: it forwards only that device's packets,
// encrypted with its key, and the appliance stores them.
func TestEdgeAdapterWithDeviceCredentials(t *testing.T) {
	mqtts := freeAddr(t)
	a := startAppliance(t, startOpts{args: []string{"--mqtts-addr", mqtts}})
	tok := a.login("admin@piot.local", a.adminPassword())
	orgWithMQTT(t, a, tok, "site", "site-edge")
	site := orgID(t, a, tok, "site")
	ca := caFile(t, a)
	dev := devsim.DeviceName("gw", 1)

	// The device first reports directly, so that it exists; the admin
	// assigns and enables it and its sensor and gives it credentials.
	body, err := devsim.EncodePIOT(dev, 1, time.Now(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if st := postBytes(t, a.url+"/adapter", body); st != http.StatusAccepted {
		t.Fatalf("first packet: %d", st)
	}
	sensor := enableDevice(t, a, tok, site, dev)
	_, data, code := a.gql(tok, `mutation($id: ID!) { setThingMqttCredentials(thingId: $id) { username password } }`,
		map[string]any{"id": thingID(t, a, tok, dev)})
	if code != "" {
		t.Fatal(code)
	}
	creds := data["setThingMqttCredentials"].(map[string]any)
	const ownKey = "k3y-of-gw0001..."
	if _, _, code := a.gql(tok, `mutation($id: ID!, $k: String) { setThingAesKey(thingId: $id, key: $k) { id } }`,
		map[string]any{"id": thingID(t, a, tok, dev), "k": ownKey}); code != "" {
		t.Fatal(code)
	}
	keys := filepath.Join(t.TempDir(), "device-keys")
	if err := os.WriteFile(keys, []byte(dev+" "+ownKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	edgeAddr := freeAddr(t)
	startEdge(t, edgeAddr, "--uplink", "mqtts://"+mqtts, "--org", "site", "--username", creds["username"].(string),
		"--password", creds["password"].(string), "--ca", ca, "--spool-dir", t.TempDir(), "--min-interval", "0",
		"--device-keys", keys)
	start := time.Now().Add(-time.Hour).Truncate(time.Second)
	plain, err := devsim.EncodePIOT(dev, 9, start, nil)
	if err != nil {
		t.Fatal(err)
	}
	if st := postBytes(t, "http://"+edgeAddr+"/adapter", plain); st != http.StatusBadRequest {
		t.Fatalf("plaintext packet of a device with its own key: %d", st)
	}
	for seq := 1; seq <= 5; seq++ {
		b, err := devsim.EncodePIOT(dev, seq, start.Add(time.Duration(seq-1)*time.Minute), []byte(ownKey))
		if err != nil {
			t.Fatal(err)
		}
		// The device does not hear the answer to packet 3 and resends it:
		// both copies are spooled and relayed, one is stored.
		for range 1 + btoi(seq == 3) {
			if st := postBytes(t, "http://"+edgeAddr+"/adapter", b); st != http.StatusOK {
				t.Fatalf("packet %d: %d", seq, st)
			}
		}
	}
	other, err := devsim.EncodePIOT(devsim.DeviceName("gw", 2), 1, time.Now(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if st := postBytes(t, "http://"+edgeAddr+"/adapter", other); st != http.StatusForbidden {
		t.Fatalf("another device's packet: %d", st)
	}
	want := "1@" + fmt.Sprint(start.Unix())
	for k := 2; k <= 5; k++ {
		want += fmt.Sprintf(" %d@%d", k, start.Add(time.Duration(k-1)*time.Minute).Unix())
	}
	var got []string
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if got = timedReadings(a, tok, sensor, start.Unix()-60); strings.Join(got, " ") == want {
			return
		}
	}
	t.Fatalf("history %v, want %s", got, want)
}

// enableDevice assigns a simulated device and its sensor to org and
// enables both; it returns the sensor's id.
func enableDevice(t *testing.T, a *appliance, tok, org, dev string) (sensor string) {
	t.Helper()
	for _, name := range []string{dev, devsim.SensorName(dev)} {
		id := thingID(t, a, tok, name)
		if _, _, code := a.gql(tok, `mutation($t: ThingUpdate!) { updateThing(thing: $t) { id } }`,
			map[string]any{"t": map[string]any{"id": id, "orgId": org, "enabled": true}}); code != "" {
			t.Fatal(code)
		}
		sensor = id
	}
	return sensor
}

// postBytes posts a device packet as it is and returns the status.
func postBytes(t *testing.T, url string, body []byte) int {
	t.Helper()
	resp, err := http.Post(url, "application/octet-stream", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
