package tests

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// mosquitto returns the path of a mosquitto client, skipping the test only
// when it is missing and not required (make test requires it).
func mosquitto(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("PIOT_REQUIRE_MOSQUITTO") != "" {
			t.Fatalf("%s not installed (run tests/deps.sh)", name)
		}
		t.Skipf("%s not installed", name)
	}
	return p
}

// orgWithMQTT creates an org and its MQTT credentials through the API.
func orgWithMQTT(t *testing.T, a *appliance, token, org, user string) string {
	t.Helper()
	_, data, code := a.gql(token, `mutation($n: String!) { createOrg(name: $n, description: "") { id } }`, map[string]any{"n": org})
	if code != "" {
		t.Fatalf("createOrg: %s", code)
	}
	id := data["createOrg"].(map[string]any)["id"].(string)
	_, data, code = a.gql(token, `mutation($o: ID!, $u: String!) { setOrgMqttCredentials(orgId: $o, username: $u) { username password } }`, map[string]any{"o": id, "u": user})
	if code != "" {
		t.Fatalf("setOrgMqttCredentials: %s", code)
	}
	return data["setOrgMqttCredentials"].(map[string]any)["password"].(string)
}

func hostPort(t *testing.T, addr string) (string, string) {
	t.Helper()
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return h, p
}

// The appliance's broker with real mosquitto clients: tenancy, TLS with the
// downloadable CA, reload on SIGHUP, and retained messages across restarts.
func TestMQTTThroughTheAppliance(t *testing.T) {
	pub, sub := mosquitto(t, "mosquitto_pub"), mosquitto(t, "mosquitto_sub")
	dir := t.TempDir()
	a := startAppliance(t, startOpts{dataDir: dir})
	tok := a.login("admin@piot.local", a.adminPassword())
	pwA := orgWithMQTT(t, a, tok, "farm", "farm-user")
	pwB := orgWithMQTT(t, a, tok, "shop", "shop-user")
	host, port := hostPort(t, a.mqttAddr)

	// Retained message of org A on its own topic.
	run := func(args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, args[0], args[1:]...).CombinedOutput()
		return string(out), err
	}
	if out, err := run(pub, "-h", host, "-p", port, "-u", "farm-user", "-P", pwA, "-t", "org/farm/T1/value", "-m", "21.5", "-r", "-q", "1"); err != nil {
		t.Fatalf("publish retained: %v %s", err, out)
	}
	got, err := run(sub, "-h", host, "-p", port, "-u", "farm-user", "-P", pwA, "-t", "org/farm/#", "-C", "1", "-W", "5", "-v")
	if err != nil || !strings.Contains(got, "org/farm/T1/value 21.5") {
		t.Fatalf("own retained message: %v %q", err, got)
	}
	// Org B can neither read A's topics nor see A's retained message.
	got, _ = run(sub, "-h", host, "-p", port, "-u", "shop-user", "-P", pwB, "-t", "org/farm/#", "-C", "1", "-W", "2", "-v")
	if strings.Contains(got, "21.5") {
		t.Fatalf("org B read org A's retained message: %q", got)
	}
	if out, err := run(pub, "-h", host, "-p", port, "-u", "farm-user", "-P", "wrong-password", "-t", "org/farm/x", "-m", "1"); err == nil {
		t.Fatalf("wrong password accepted: %s", out)
	}
	if out, err := run(pub, "-h", host, "-p", port, "-t", "org/farm/x", "-m", "1"); err == nil {
		t.Fatalf("anonymous accepted: %s", out)
	}

	// A device with its own credentials feeds its thing, and only it.
	farm := orgID(t, a, tok, "farm")
	sensor := sensorThing(t, a, tok, farm, "S9")
	_, data, code := a.gql(tok, `mutation($id: ID!) { setThingMqttCredentials(thingId: $id) { username password } }`, map[string]any{"id": sensor})
	if code != "" {
		t.Fatalf("setThingMqttCredentials: %s", code)
	}
	dev := data["setThingMqttCredentials"].(map[string]any)
	devUser, devPW := dev["username"].(string), dev["password"].(string)
	if out, err := run(pub, "-h", host, "-p", port, "-u", devUser, "-P", devPW, "-t", "org/farm/S9/value", "-m", "7.25", "-q", "1"); err != nil {
		t.Fatalf("device publish: %v %s", err, out)
	}
	if out, err := run(pub, "-h", host, "-p", port, "-u", devUser, "-P", devPW, "-t", "org/farm/T1/value", "-m", "99", "-q", "1"); err == nil {
		t.Fatalf("device published to another thing: %s", out)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		_, data, _ := a.gql(tok, `query($id: ID!) { thing(id: $id) { sensor { value } } }`, map[string]any{"id": sensor})
		if data["thing"].(map[string]any)["sensor"].(map[string]any)["value"] == "7.25" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("device reading not ingested: %v", data)
		}
	}

	// TLS with the CA downloaded from the API, before and after SIGHUP.
	st, caPEM := get(t, a.url+"/ca.crt")
	if st != 200 || !strings.Contains(caPEM, "BEGIN CERTIFICATE") {
		t.Fatalf("GET /ca.crt: %d %.60q", st, caPEM)
	}
	ca := filepath.Join(t.TempDir(), "ca.crt")
	if err := os.WriteFile(ca, []byte(caPEM), 0o600); err != nil {
		t.Fatal(err)
	}
	_, tlsPort := hostPort(t, a.mqttsAddr)
	tlsPub := func() (string, error) {
		return run(pub, "-h", "127.0.0.1", "-p", tlsPort, "--cafile", ca, "-u", "farm-user", "-P", pwA, "-t", "org/farm/tls", "-m", "ok", "-q", "1")
	}
	if out, err := tlsPub(); err != nil {
		t.Fatalf("TLS publish with the pinned CA: %v %s", err, out)
	}
	if err := a.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(a.out.String(), "TLS certificate reloaded"); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no reload logged:\n%s", a.out)
		}
	}
	if out, err := tlsPub(); err != nil {
		t.Fatalf("TLS publish after SIGHUP: %v %s\n%s", err, out, a.out)
	}

	// Retained messages survive a restart of the appliance.
	a.stop()
	b := startAppliance(t, startOpts{dataDir: dir})
	host, port = hostPort(t, b.mqttAddr)
	got, err = run(sub, "-h", host, "-p", port, "-u", "farm-user", "-P", pwA, "-t", "org/farm/#", "-C", "1", "-W", "5", "-v")
	if err != nil || !strings.Contains(got, "org/farm/T1/value 21.5") {
		t.Fatalf("retained message after restart: %v %q", err, got)
	}
}
