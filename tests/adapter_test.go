package tests

import (
	"net/http"
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
	a := startAppliance(t, startOpts{args: []string{"--adapter-min-interval", "100ms"}})
	tok := a.login("admin@piot.local", a.adminPassword())
	orgWithMQTT(t, a, tok, "farm", "farm-user")
	farm := orgID(t, a, tok, "farm")

	packet := func(v float64) map[string]any {
		return map[string]any{"device": "CHIP1", "wifi-ssid": "barn", "readings": []any{map[string]any{"address": "A1", "t": v}}}
	}
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
	time.Sleep(200 * time.Millisecond)
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
		time.Sleep(100 * time.Millisecond)
	}
	if st, _ := get(t, a.url+"/adapter"); st != http.StatusMethodNotAllowed {
		t.Fatalf("GET /adapter: %d", st)
	}
}
