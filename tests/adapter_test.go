package tests

import (
	"bytes"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

func thingID(t *testing.T, a *appliance, token, name string) string {
	t.Helper()
	_, data, code := a.gql(token, `query($n: String) { things(all: true, filter: {name: $n}) { id } }`, map[string]any{"n": name})
	if code != "" {
		t.Fatal(code)
	}
	list := data["things"].([]any)
	if len(list) != 1 {
		t.Fatalf("thing %s: %v", name, list)
	}
	return list[0].(map[string]any)["id"].(string)
}

// A PIOT device posting to /adapter registers itself and its sensor; once
// an admin assigns and enables them, its readings flow through the broker
// and ingest into the sensor thing.
func TestPIOTDeviceThroughTheAdapter(t *testing.T) {
	a := startAppliance(t, startOpts{args: []string{"--adapter-min-interval", "1s"}})
	tok := a.login("admin@piot.local", a.adminPassword())
	orgWithMQTT(t, a, tok, "farm", "farm-user")
	farm := orgID(t, a, tok, "farm")

	packet := func(v float64) map[string]any {
		return map[string]any{"device": "CHIP1", "wifi-ssid": "barn", "readings": []any{map[string]any{"address": "A1", "t": v}}}
	}
	first := time.Now()
	st, out := post(t, a.url+"/adapter", "", packet(4.5))
	if st != http.StatusAccepted || out["result"] != "device not assigned to an organization" {
		t.Fatalf("first packet: %d %v", st, out)
	}
	for _, name := range []string{"CHIP1", "TA1"} {
		id := thingID(t, a, tok, name)
		if _, _, code := a.gql(tok, `mutation($t: ThingUpdate!) { updateThing(thing: $t) { id } }`,
			map[string]any{"t": map[string]any{"id": id, "orgId": farm, "enabled": true}}); code != "" {
			t.Fatal(code)
		}
	}
	sensor := thingID(t, a, tok, "TA1")
	time.Sleep(time.Until(first.Add(1100 * time.Millisecond))) // the device's minimum interval
	st, out = post(t, a.url+"/adapter", "", packet(21.5))
	if st != http.StatusOK {
		t.Fatalf("assigned packet: %d %v", st, out)
	}
	if st, _ := post(t, a.url+"/adapter", "", packet(22)); st != http.StatusTooManyRequests {
		t.Fatalf("packet within the minimum interval: %d", st)
	}
	for deadline := time.Now().Add(10 * time.Second); ; {
		_, data, code := a.gql(tok, `query($id: ID!) { thing(id: $id) { parent { name } sensor { value unit class } } }`, map[string]any{"id": sensor})
		if code != "" {
			t.Fatal(code)
		}
		th := data["thing"].(map[string]any)
		s := th["sensor"].(map[string]any)
		if s["value"] == "21.5" && s["unit"] == "C" && s["class"] == "temperature" && th["parent"].(map[string]any)["name"] == "CHIP1" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("sensor never showed the reading: %v", th)
		}
		time.Sleep(150 * time.Millisecond)
	}
	if st, _ := get(t, a.url+"/adapter"); st != http.StatusMethodNotAllowed {
		t.Fatalf("GET /adapter: %d", st)
	}
}

// A VD GPS tracker's real upload (69 fixes) reaches the thing's location.
func TestVDGPSTrackerThroughTheAdapter(t *testing.T) {
	capture, err := os.ReadFile("../services/adapter/vdgps/testdata/vdgps-capture-69-fixes.bin")
	if err != nil {
		t.Fatal(err)
	}
	legacy := freeAddr(t)
	a := startAppliance(t, startOpts{args: []string{"--adapter-vdgps-addr", legacy, "--adapter-min-interval", "0"}})
	tok := a.login("admin@piot.local", a.adminPassword())
	orgWithMQTT(t, a, tok, "fleet", "fleet-user")
	fleet := orgID(t, a, tok, "fleet")
	postRaw := func() int {
		resp, err := http.Post(a.url+"/adapter/vdgps", "application/octet-stream", bytes.NewReader(capture))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if st := postRaw(); st != http.StatusAccepted {
		t.Fatalf("unknown tracker: %d", st)
	}
	id := thingID(t, a, tok, "VDBCKPX")
	if _, _, code := a.gql(tok, `mutation($t: ThingUpdate!) { updateThing(thing: $t) { id } }`,
		map[string]any{"t": map[string]any{"id": id, "orgId": fleet, "enabled": true}}); code != "" {
		t.Fatal(code)
	}
	if st := postRaw(); st != http.StatusOK {
		t.Fatalf("assigned tracker: %d", st)
	}
	// Legacy firmware posts to whatever path it was given, on its own port.
	resp, err := http.Post("http://"+legacy+"/gps/upload.php", "application/octet-stream", bytes.NewReader(capture))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("legacy listener: %d", resp.StatusCode)
	}
	resp, err = http.Post(a.url+"/adapter/vdgps", "application/octet-stream", strings.NewReader("KEY|ID|3928"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("short packet: %d", resp.StatusCode)
	}
	for deadline := time.Now().Add(10 * time.Second); ; {
		_, data, code := a.gql(tok, `query($id: ID!) { thing(id: $id) { voltage location_lat location_lng location_ts } }`, map[string]any{"id": id})
		if code != "" {
			t.Fatal(code)
		}
		th := data["thing"].(map[string]any)
		if th["voltage"] == float64(3928) && th["location_ts"].(float64) > 1.58e9 && th["location_lat"].(float64) > 49 && th["location_lat"].(float64) < 50 && th["location_lng"].(float64) > 16 && th["location_lng"].(float64) < 18 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("tracker location never arrived: %v", th)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The capture is from 2020: its fixes are older than the history
	// retention, so they update the thing but are not kept as history.
}
