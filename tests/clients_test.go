package tests

import (
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// The Clients view over OpenSSH at 80×24 with the real broker: a member
// of farm sees farm's clients, persistent session and retained message
// and none of other's, and disconnects farm's device; the admin sees
// every org's and deletes a retained message; both actions are in the
// audit trail.
func TestConsoleClientsOverOpenSSH(t *testing.T) {
	requireTools(t, "ssh", "tmux")
	dir := t.TempDir()
	adminKey := consoleKey(t, dir)
	a := startAppliance(t, startOpts{dataDir: dir})
	tok := a.login("admin@piot.local", a.adminPassword())
	farmPW := orgWithMQTT(t, a, tok, "farm", "farm-user")
	otherPW := orgWithMQTT(t, a, tok, "other", "other-user")

	// A persistent session, offline.
	logger := paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + a.mqttAddr).SetClientID("farm-logger").
		SetUsername("farm-user").SetPassword(farmPW).SetCleanSession(false).SetAutoReconnect(false).SetConnectRetry(false))
	if tok := logger.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	if tok := logger.Subscribe("org/farm/#", 1, nil); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	logger.Disconnect(100)

	farm := mqttClient(t, a.mqttAddr, "farm-user", farmPW, "farm-dev")
	defer farm.Disconnect(100)
	other := mqttClient(t, a.mqttAddr, "other-user", otherPW, "other-dev")
	defer other.Disconnect(100)
	if tok := farm.Subscribe("org/farm/cmd/#", 1, nil); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	for c, topic := range map[paho.Client]string{farm: "org/farm/config", other: "org/other/config"} {
		if pub := c.Publish(topic, 1, true, `{"v":1}`); !pub.WaitTimeout(5*time.Second) || pub.Error() != nil {
			t.Fatalf("publish: %v", pub.Error())
		}
	}

	_, data, code := a.gql(tok, `mutation { createUser(email: "m@farm.test", password: "member-password") { id } }`, nil)
	if code != "" {
		t.Fatal(code)
	}
	member := data["createUser"].(map[string]any)["id"]
	if _, _, code := a.gql(tok, `mutation($o: ID!, $u: ID!) { addOrgUser(orgId: $o, userId: $u) }`, map[string]any{"o": orgID(t, a, tok, "farm"), "u": member}); code != "" {
		t.Fatal(code)
	}
	memberKey, memberPub := keyPair(t)
	if _, _, code := a.gql(tok, `mutation($u: ID!, $k: String!) { addSshKey(userId: $u, key: $k) { fingerprint } }`, map[string]any{"u": member, "k": memberPub}); code != "" {
		t.Fatal(code)
	}

	p := openSSHConsole(t, a, adminKey, 80, 24)
	p.waitFor("Dashboard", "admin@piot.local")
	p.keys("5")
	p.waitFor("[5 Live]", "C clients")
	p.keys("C")
	s := p.waitFor("[Connected (2)]", "Sessions (1)", "Retained (2)", "farm-dev", "other-dev", "127.0.0.1:")
	fills(t, s, 24)
	if !strings.Contains(lineOf(s, "farm-dev"), "farm-user") || !strings.Contains(lineOf(s, "farm-dev"), "3.1.1") {
		t.Fatalf("farm-dev's row:\n%s", s)
	}

	// The admin's pane stays open: a tmux server whose last session just
	// ended refuses new ones.
	m := openSSHConsole(t, a, memberKey, 80, 24)
	m.waitFor("Dashboard", "m@farm.test")
	m.keys("5")
	m.waitFor("[5 Live]", "org/farm/#")
	m.keys("C")
	s = m.waitFor("[Connected (1)]", "farm-dev", "Sessions (1)", "Retained (1)")
	fills(t, s, 24)
	if strings.Contains(s, "other") {
		t.Fatalf("the member sees the other org's client:\n%s", s)
	}
	m.keys("Enter")
	m.waitFor("Connected — farm-user/farm-dev", "org/farm/cmd/#  QoS 1")
	m.keys("Escape")
	m.waitFor("[Connected (1)]")
	m.keys("Tab")
	s = m.waitFor("[Sessions (1)]", "farm-logger")
	fills(t, s, 24)
	m.keys("s")
	s = m.waitFor("[Retained (1)]", "org/farm/config")
	fills(t, s, 24)
	if strings.Contains(s, "org/other") {
		t.Fatalf("the member sees the other org's retained message:\n%s", s)
	}
	m.keys("s")
	m.waitFor("[Connected (1)]", "farm-dev")
	m.keys("d")
	m.waitFor(`Disconnect client "farm-dev" of farm?`)
	m.keys("y")
	m.waitFor("disconnected farm-dev", "[Connected (0)]")
	for deadline := time.Now().Add(10 * time.Second); farm.IsConnected(); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("farm-dev still connected")
		}
	}
	if !other.IsConnected() {
		t.Fatal("other-dev was disconnected")
	}
	m.keys("Escape")
	m.waitFor("[5 Live]", "org/farm/#")
	m.keys("q")

	p.keys("s", "s")
	p.waitFor("[Retained (2)]", "org/other/config")
	p.slash("org/other")
	p.waitFor("filter: org/other")
	p.keys("d")
	p.waitFor("Delete the retained message of org/other/config?")
	p.keys("y")
	s = p.waitFor("deleted the retained message of org/other/config")
	fills(t, s, 24)

	_, data, code = a.gql(tok, `{ auditLog(first: 10) { actor action target } }`, nil)
	if code != "" {
		t.Fatal(code)
	}
	var seen []string
	for _, e := range data["auditLog"].([]any) {
		e := e.(map[string]any)
		seen = append(seen, e["actor"].(string)+" "+e["action"].(string)+" "+e["target"].(string))
	}
	got := strings.Join(seen, "\n")
	for _, want := range []string{
		"m@farm.test disconnectMqttClient mqtt client farm-user/farm-dev of org farm",
		"admin@piot.local deleteRetainedMessage retained message org/other/config",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("audit trail misses %q:\n%s", want, got)
		}
	}

	// The retained message stays deleted for new subscribers.
	got2 := make(chan string, 4)
	if tok := other.Subscribe("org/other/#", 1, func(_ paho.Client, msg paho.Message) { got2 <- msg.Topic() }); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	select {
	case topic := <-got2:
		t.Fatalf("deleted retained message delivered on %s", topic)
	case <-time.After(500 * time.Millisecond):
	}
	p.keys("q")
}
