package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/piot-appliance/piot/internal/fileutil/testdisk"
)

// dialV5 connects an MQTT 5 client (paho.golang) with a clean start.
func dialV5(t *testing.T, addr, user, pw, id string) *paho.Client {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c := paho.NewClient(paho.ClientConfig{Conn: conn, OnClientError: func(error) {}})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := c.Connect(ctx, &paho.Connect{ClientID: id, KeepAlive: 30, CleanStart: true,
		Username: user, UsernameFlag: true, Password: []byte(pw), PasswordFlag: true}); err != nil {
		t.Fatalf("v5 connect: %v", err)
	}
	t.Cleanup(func() { _ = c.Disconnect(&paho.Disconnect{}); conn.Close() })
	return c
}

// publishV5 publishes at QoS 1 and returns the PUBACK reason code.
func publishV5(t *testing.T, c *paho.Client, topic, payload string) byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pr, err := c.Publish(ctx, &paho.Publish{Topic: topic, QoS: 1, Payload: []byte(payload)})
	if pr != nil {
		return pr.ReasonCode
	}
	t.Fatalf("publish %s: no PUBACK: %v", payload, err)
	return 0
}

// postPacket posts a device packet and returns the status and the
// Retry-After header.
func postPacket(t *testing.T, url string, packet any) (int, string) {
	t.Helper()
	body, _ := json.Marshal(packet)
	resp, err := http.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("Retry-After")
}

// A full disk is an error everybody hears about, and nothing accepted is
// lost (issue 11, DoS 4): MQTT 5 publishers get PUBACK 0x97, MQTT 3.1.1
// publishers are disconnected, /adapter answers 507 with Retry-After,
// /readyz says why it is not ready, the metric shows it, the log says it
// once; when space returns everything resumes by itself, and every
// acknowledged reading is in the history.
func TestFullDisk(t *testing.T) {
	disk := testdisk.Mount(t, 96<<20)
	a := startAppliance(t, startOpts{dataDir: filepath.Join(disk, "data"), args: []string{"--adapter-min-interval", "1s"}})
	tok := a.login("admin@piot.local", a.adminPassword())
	pw := orgWithMQTT(t, a, tok, "farm", "farm-user")
	farm := orgID(t, a, tok, "farm")
	thing := sensorThing(t, a, tok, farm, "T1")
	packet := map[string]any{"device": "CHIP1", "readings": []any{map[string]any{"address": "A1", "t": 20.5}}}
	if st, _ := postPacket(t, a.url+"/adapter", packet); st != http.StatusAccepted {
		t.Fatalf("registering packet: %d", st)
	}
	for _, name := range []string{"CHIP1", "TA1"} {
		if _, _, code := a.gql(tok, `mutation($t: ThingUpdate!) { updateThing(thing: $t) { id } }`,
			map[string]any{"t": map[string]any{"id": thingID(t, a, tok, name), "orgId": farm, "enabled": true}}); code != "" {
			t.Fatal(code)
		}
	}
	v5 := dialV5(t, a.mqttAddr, "farm-user", pw, "v5")
	v3 := mqttClient(t, a.mqttAddr, "farm-user", pw, "v3")
	var acked []string
	for i := 0; i < 10; i++ {
		if rc := publishV5(t, v5, "org/farm/T1/value", fmt.Sprint(i)); rc != 0 {
			t.Fatalf("publish before the disk filled: %#x", rc)
		}
		acked = append(acked, fmt.Sprint(i))
	}

	filler := filepath.Join(disk, "filler")
	testdisk.Fill(t, filler)
	refused := byte(0)
	for i := 10; i < 200000 && refused == 0; i++ {
		v := fmt.Sprint(i)
		if rc := publishV5(t, v5, "org/farm/T1/value", v); rc != 0 {
			refused = rc
		} else {
			acked = append(acked, v)
		}
	}
	if refused != 0x97 {
		t.Fatalf("MQTT 5 publish on a full disk: PUBACK %#x, want 0x97 (quota exceeded)", refused)
	}
	t.Logf("%d readings acknowledged, then PUBACK 0x97", len(acked))
	// The MQTT 5 client keeps its connection and is refused again.
	if rc := publishV5(t, v5, "org/farm/T1/value", "refused"); rc != 0x97 {
		t.Fatalf("second publish: %#x", rc)
	}
	// MQTT 3.1.1 has no negative PUBACK: the client is disconnected.
	tk := v3.Publish("org/farm/T1/value", 1, false, "v3-refused")
	if !tk.WaitTimeout(10*time.Second) || tk.Error() == nil {
		t.Fatalf("3.1.1 publish on a full disk: done %v, err %v; want the connection closed", tk.WaitTimeout(0), tk.Error())
	}
	time.Sleep(1100 * time.Millisecond) // the device's minimum interval
	if st, retry := postPacket(t, a.url+"/adapter", packet); st != http.StatusInsufficientStorage || retry == "" {
		t.Fatalf("/adapter on a full disk: %d, Retry-After %q; want 507 with Retry-After", st, retry)
	}
	st, body := get(t, a.url+"/readyz")
	if st != http.StatusServiceUnavailable || !strings.Contains(body, "full") && !strings.Contains(body, "no space") {
		t.Fatalf("/readyz on a full disk: %d %s", st, body)
	}
	if m := metricsText(t, a); !strings.Contains(m, `piot_ingest_write_failing{stage="history"} 1`) &&
		!strings.Contains(m, `piot_ingest_write_failing{stage="journal"} 1`) {
		t.Fatalf("no failing stage in the metrics:\n%s", grepLines(m, "write_failing"))
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		if st, _ := get(t, a.url+"/readyz"); st == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			st, body := get(t, a.url+"/readyz")
			t.Fatalf("not ready 60 s after space returned: %d %s", st, body)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if rc := publishV5(t, v5, "org/farm/T1/value", "after"); rc != 0 {
		t.Fatalf("publish after space returned: %#x", rc)
	}
	acked = append(acked, "after")
	time.Sleep(1100 * time.Millisecond) // the device's minimum interval since its refused packet
	if st, _ := postPacket(t, a.url+"/adapter", packet); st != http.StatusOK {
		t.Fatalf("/adapter after space returned: %d", st)
	}

	// Every acknowledged reading is stored, once.
	var got []string
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(300 * time.Millisecond) {
		if got = allReadings(t, a, tok, thing); len(got) >= len(acked) {
			break
		}
	}
	have := map[string]int{}
	for _, v := range got {
		have[v]++
	}
	for _, v := range acked {
		if have[v] == 0 {
			t.Fatalf("acknowledged reading %s missing from the history (%d stored, %d acknowledged)", v, len(got), len(acked))
		}
		if have[v] > 1 {
			t.Fatalf("acknowledged reading %s stored %d times", v, have[v])
		}
	}
	out := a.out.String()
	t.Log(grepLines(out, "level=ERROR") + "\n" + grepLines(out, "works again") + grepLines(out, "writable again"))
	for _, line := range []string{"journal cannot write", "writing history to the store fails", "storing thing state and the journal checkpoint fails"} {
		if n := strings.Count(out, line); n > 1 {
			t.Errorf("%q logged %d times, want at most once per failure", line, n)
		}
	}
	if !strings.Contains(out, "level=ERROR") {
		t.Error("the full disk was not logged as an error")
	}
}

// metricsText scrapes /metrics with the appliance's token.
func metricsText(t *testing.T, a *appliance) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(a.dataDir, "metrics-token"))
	if err != nil {
		t.Fatal(err)
	}
	st, body := getAuth(t, a.url+"/metrics", strings.TrimSpace(string(raw)))
	if st != http.StatusOK {
		t.Fatalf("/metrics: %d", st)
	}
	return body
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// allReadings reads a thing's raw history past the API's 10 000 readings a
// query, a page at a time from the last page's last second (readings come
// oldest first); the readings of that second, read twice, are counted
// once.
func allReadings(t *testing.T, a *appliance, token, thing string) []string {
	t.Helper()
	var out []string
	var overlap map[string]bool // the values of the previous page's last second
	from := time.Now().Add(-time.Hour).Unix()
	for {
		_, data, code := a.gql(token, `query($id: ID!, $from: Int, $to: Int) { readings(thingId: $id, from: $from, to: $to, step: 0, first: 10000) { ts value } }`,
			map[string]any{"id": thing, "from": from, "to": time.Now().Unix() + 60})
		if code != "" {
			t.Fatalf("readings: %s", code)
		}
		page := data["readings"].([]any)
		last := int64(0)
		if len(page) > 0 {
			last = int64(page[len(page)-1].(map[string]any)["ts"].(float64))
		}
		next := map[string]bool{}
		for _, r := range page {
			m := r.(map[string]any)
			v, ts := m["value"].(string), int64(m["ts"].(float64))
			if ts == from && overlap[v] {
				continue
			}
			out = append(out, v)
			if ts == last {
				next[v] = true
			}
		}
		if len(page) < 10000 {
			return out
		}
		if last <= from {
			t.Fatalf("more than 10 000 readings in the second %d", from)
		}
		from, overlap = last, next
	}
}
