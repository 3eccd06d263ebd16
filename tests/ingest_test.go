package tests

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// sensorThing creates an enabled sensor thing in org whose value arrives on
// org/<org>/<name>/value.
func sensorThing(t *testing.T, a *appliance, token, orgID, name string) string {
	t.Helper()
	_, data, code := a.gql(token, `mutation($n: String!) { createThing(name: $n, type: "sensor") { id } }`, map[string]any{"n": name})
	if code != "" {
		t.Fatalf("createThing: %s", code)
	}
	id := data["createThing"].(map[string]any)["id"].(string)
	if _, _, code := a.gql(token, `mutation($t: ThingUpdate!) { updateThing(thing: $t) { id } }`,
		map[string]any{"t": map[string]any{"id": id, "orgId": orgID, "enabled": true}}); code != "" {
		t.Fatalf("updateThing: %s", code)
	}
	if _, _, code := a.gql(token, `mutation($d: ThingSensorDataUpdate!) { updateThingSensorData(data: $d) { id } }`,
		map[string]any{"d": map[string]any{"id": id, "class": "temperature", "measurement_topic": name + "/value", "unit": "C"}}); code != "" {
		t.Fatalf("updateThingSensorData: %s", code)
	}
	return id
}

func orgID(t *testing.T, a *appliance, token, name string) string {
	t.Helper()
	_, data, _ := a.gql(token, `{ orgs { id name } }`, nil)
	for _, o := range data["orgs"].([]any) {
		if o.(map[string]any)["name"] == name {
			return o.(map[string]any)["id"].(string)
		}
	}
	t.Fatalf("no org %s", name)
	return ""
}

func readings(t *testing.T, a *appliance, token, thing string) []string {
	t.Helper()
	_, data, code := a.gql(token, `query($id: ID!, $to: Int) { readings(thingId: $id, to: $to, step: 0, first: 10000) { ts value } }`,
		map[string]any{"id": thing, "to": time.Now().Unix() + 60})
	if code != "" {
		t.Fatalf("readings: %s", code)
	}
	var out []string
	for _, r := range data["readings"].([]any) {
		out = append(out, r.(map[string]any)["value"].(string))
	}
	return out
}

// newPaho is a clean-session client that does not reconnect by itself.
func newPaho(addr, user, pw, id string) paho.Client {
	return paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(id).
		SetUsername(user).SetPassword(pw).SetCleanSession(true).SetAutoReconnect(false).
		SetConnectRetry(false).SetWriteTimeout(5 * time.Second))
}

func mqttClient(t *testing.T, addr, user, pw, id string) paho.Client {
	t.Helper()
	c := newPaho(addr, user, pw, id)
	tok := c.Connect()
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("mqtt connect: %v", tok.Error())
	}
	return c
}

// A value published over MQTT becomes the thing's state and history.
func TestIngestEndToEnd(t *testing.T) {
	a := startAppliance(t, startOpts{})
	tok := a.login("admin@piot.local", a.adminPassword())
	pw := orgWithMQTT(t, a, tok, "farm", "farm-user")
	thing := sensorThing(t, a, tok, orgID(t, a, tok, "farm"), "T1")
	c := mqttClient(t, a.mqttAddr, "farm-user", pw, "e2e")
	defer c.Disconnect(100)
	for _, v := range []string{"20.5", "21.5"} {
		if p := c.Publish("org/farm/T1/value", 1, false, v); !p.WaitTimeout(5*time.Second) || p.Error() != nil {
			t.Fatalf("publish: %v", p.Error())
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, data, code := a.gql(tok, `query($id: ID!) { thing(id: $id) { last_seen sensor { value unit } } }`, map[string]any{"id": thing})
		if code != "" {
			t.Fatal(code)
		}
		th := data["thing"].(map[string]any)
		s := th["sensor"].(map[string]any)
		if s["value"] == "21.5" && s["unit"] == "C" && th["last_seen"].(float64) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("thing never showed the value: %v", th)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// History is written asynchronously; both points arrive.
	for deadline := time.Now().Add(10 * time.Second); ; {
		got := readings(t, a, tok, thing)
		if len(got) == 2 && got[0] == "20.5" && got[1] == "21.5" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("history = %v", got)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Every reading that got a PUBACK survives kill -9 at a random moment.
func TestCrashKeepsAcknowledgedReadings(t *testing.T) {
	const total = 10000
	for run := 0; run < 3; run++ {
		t.Run(fmt.Sprintf("run%d", run), func(t *testing.T) {
			dir := t.TempDir()
			a := startAppliance(t, startOpts{dataDir: dir})
			tok := a.login("admin@piot.local", a.adminPassword())
			pw := orgWithMQTT(t, a, tok, "farm", "farm-user")
			thing := sensorThing(t, a, tok, orgID(t, a, tok, "farm"), "T1")
			c := mqttClient(t, a.mqttAddr, "farm-user", pw, "crash")

			killAt := int64(500 + rand.IntN(total-1500))
			var acked atomic.Int64
			var mu sync.Mutex
			ackedVals := map[string]bool{}
			killed := make(chan struct{})
			var once sync.Once
			var wg sync.WaitGroup
			for i := 0; i < total; i++ {
				v := strconv.Itoa(i)
				p := c.Publish("org/farm/T1/value", 1, false, v)
				wg.Add(1)
				go func() {
					defer wg.Done()
					if p.WaitTimeout(60*time.Second) && p.Error() == nil {
						mu.Lock()
						ackedVals[v] = true
						mu.Unlock()
						if acked.Add(1) >= killAt {
							once.Do(func() {
								_ = a.cmd.Process.Kill()
								close(killed)
							})
						}
					}
				}()
				select {
				case <-killed:
					i = total
				default:
				}
			}
			select {
			case <-killed:
			case <-time.After(120 * time.Second):
				t.Fatalf("only %d acks in 120s", acked.Load())
			}
			<-a.done
			a.done <- nil // the kill was ours
			c.Disconnect(0)
			wg.Wait()
			mu.Lock()
			n := len(ackedVals)
			mu.Unlock()
			t.Logf("killed after %d acknowledged readings (target %d)", n, killAt)

			b := startAppliance(t, startOpts{dataDir: dir})
			deadline := time.Now().Add(60 * time.Second)
			for {
				got := map[string]bool{}
				for _, v := range readings(t, b, tok, thing) {
					got[v] = true
				}
				missing := 0
				for v := range ackedVals {
					if !got[v] {
						missing++
					}
				}
				if missing == 0 {
					t.Logf("all %d acknowledged readings in history (%d stored)", n, len(got))
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%d of %d acknowledged readings missing from history\n%s", missing, n, b.out)
				}
				time.Sleep(300 * time.Millisecond)
			}
		})
	}
}
