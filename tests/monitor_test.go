package tests

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// A thing that goes quiet raises an alarm in the real binary, notifies the
// org's webhook once, can be acknowledged by a member and clears when the
// thing reports again.
func TestMonitorAlarmsThroughTheAppliance(t *testing.T) {
	var mu sync.Mutex
	var events []string
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Event string `json:"event"`
			Thing string `json:"thing"`
		}
		raw, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(raw, &body)
		mu.Lock()
		events = append(events, body.Event+":"+body.Thing)
		mu.Unlock()
	}))
	defer hook.Close()

	a := startAppliance(t, startOpts{})
	tok := a.login("admin@piot.local", a.adminPassword())
	pw := orgWithMQTT(t, a, tok, "farm", "farm-user")
	farm := orgID(t, a, tok, "farm")
	thing := sensorThing(t, a, tok, farm, "T1")
	if _, _, code := a.gql(tok, `mutation($t: ThingUpdate!) { updateThing(thing: $t) { id } }`,
		map[string]any{"t": map[string]any{"id": thing, "last_seen_interval": 1}}); code != "" {
		t.Fatal(code)
	}
	if _, _, code := a.gql(tok, `mutation($o: ID!, $u: String) { setOrgNotifications(orgId: $o, webhook_url: $u) { webhook_url } }`,
		map[string]any{"o": farm, "u": hook.URL}); code != "" {
		t.Fatal(code)
	}
	c := mqttClient(t, a.mqttAddr, "farm-user", pw, "monitor")
	defer c.Disconnect(100)
	publish := func(v string) {
		if p := c.Publish("org/farm/T1/value", 1, false, v); !p.WaitTimeout(5*time.Second) || p.Error() != nil {
			t.Fatalf("publish: %v", p.Error())
		}
	}
	publish("1")

	activeAlarm := func() string {
		_, data, code := a.gql(tok, `{ alarms(active: true) { id thingName active } }`, nil)
		if code != "" {
			t.Fatal(code)
		}
		for _, al := range data["alarms"].([]any) {
			m := al.(map[string]any)
			if m["thingName"] == "T1" && m["active"] == true {
				return m["id"].(string)
			}
		}
		return ""
	}
	var id string
	for deadline := time.Now().Add(15 * time.Second); id == ""; {
		if id = activeAlarm(); id == "" {
			if time.Now().After(deadline) {
				t.Fatalf("no alarm after 15s\n%s", a.out)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	_, data, _ := a.gql(tok, `query($id: ID!) { thing(id: $id) { alarm_active available } }`, map[string]any{"id": thing})
	if th := data["thing"].(map[string]any); th["alarm_active"] != true || th["available"] != false {
		t.Fatalf("thing during alarm: %v", th)
	}
	st, out := post(t, a.url+"/query", tok, map[string]any{"query": `mutation($id: ID!) { acknowledgeAlarm(id: $id) { acknowledgedBy } }`, "variables": map[string]any{"id": id}})
	d, _ := out["data"].(map[string]any)
	ack, _ := d["acknowledgeAlarm"].(map[string]any)
	if st != 200 || ack["acknowledgedBy"] != "admin@piot.local" {
		t.Fatalf("acknowledge: %d %v", st, out)
	}

	publish("2")
	for deadline := time.Now().Add(15 * time.Second); activeAlarm() != ""; {
		if time.Now().After(deadline) {
			t.Fatal("alarm did not clear after the thing reported")
		}
		time.Sleep(200 * time.Millisecond)
	}
	for deadline := time.Now().Add(15 * time.Second); ; {
		mu.Lock()
		got := append([]string(nil), events...)
		mu.Unlock()
		if len(got) >= 2 {
			if got[0] != "alarm_raised:T1" || got[1] != "alarm_cleared:T1" {
				t.Fatalf("webhook events %v", got)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("webhook events %v", got)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
