package tests

import (
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// The Live screen over OpenSSH at 80×24, as a member of farm: only farm's
// traffic shows, a message opens in full, pause keeps counting, and a
// publish reaches a real MQTT subscriber of farm while one under another
// org is refused; the admin reads the publish in the audit trail.
func TestConsoleLiveOverOpenSSH(t *testing.T) {
	requireTools(t, "ssh", "tmux")
	dir := t.TempDir()
	consoleKey(t, dir)
	a := startAppliance(t, startOpts{dataDir: dir})
	tok := a.login("admin@piot.local", a.adminPassword())
	farmPW := orgWithMQTT(t, a, tok, "farm", "farm-user")
	otherPW := orgWithMQTT(t, a, tok, "other", "other-user")
	member := gqlID(t, a, tok, "createUser", `mutation { createUser(email: "m@farm.test", password: "member-password") { id } }`, nil)
	if _, _, code := a.gql(tok, `mutation($o: ID!, $u: ID!) { addOrgUser(orgId: $o, userId: $u) }`, map[string]any{"o": orgID(t, a, tok, "farm"), "u": member}); code != "" {
		t.Fatal(code)
	}
	memberKey, memberPub := keyPair(t)
	if _, _, code := a.gql(tok, `mutation($u: ID!, $k: String!) { addSshKey(userId: $u, key: $k) { fingerprint } }`, map[string]any{"u": member, "k": memberPub}); code != "" {
		t.Fatal(code)
	}

	farm := mqttClient(t, a.mqttAddr, "farm-user", farmPW, "live-farm")
	defer farm.Disconnect(100)
	other := mqttClient(t, a.mqttAddr, "other-user", otherPW, "live-other")
	defer other.Disconnect(100)
	got := make(chan string, 10)
	if tk := farm.Subscribe("org/farm/cmd/#", 1, func(_ paho.Client, m paho.Message) {
		got <- m.Topic() + " " + string(m.Payload())
	}); !tk.WaitTimeout(5*time.Second) || tk.Error() != nil {
		t.Fatalf("subscribe: %v", tk.Error())
	}
	pub := func(c paho.Client, topic, payload string) {
		t.Helper()
		if tk := c.Publish(topic, 1, false, payload); !tk.WaitTimeout(5*time.Second) || tk.Error() != nil {
			t.Fatalf("publish %s: %v", topic, tk.Error())
		}
	}

	m := openSSHConsole(t, a, memberKey, 80, 24)
	m.waitFor("Dashboard", "m@farm.test")
	m.keys("5")
	m.waitFor("[5 Live]", "org/farm/#", "following")
	pub(other, "org/other/secret/value", "other-org-payload")
	pub(farm, "org/farm/boiler/state", `{"t":21.5,"rh":40}`)
	s := m.waitFor(`org/farm/boiler/state {"t":21.5,"rh":40}`, "1 messages kept")
	if strings.Contains(s, "other-org") || strings.Contains(s, "org/other") {
		t.Fatalf("the member sees another org's traffic:\n%s", s)
	}
	fills(t, s, 24)

	m.keys("Enter")
	s = m.waitFor("Message 1 of 1", "topic     org/farm/boiler/state", "QoS       1", "JSON, pretty-printed", `  "rh": 40`)
	fills(t, s, 24)
	m.keys("x")
	m.waitFor("hex dump", `7b 22 74 22`)
	m.keys("Escape")
	m.waitFor("1 messages kept")

	m.keys("Space")
	m.waitFor("PAUSED, 0 new")
	pub(farm, "org/farm/boiler/state", `{"t":21.6}`)
	pub(farm, "org/farm/boiler/state", `{"t":21.7}`)
	s = m.waitFor("PAUSED, 2 new", "3 messages kept")
	if strings.Contains(s, "21.7") {
		t.Fatalf("a paused screen shows new messages:\n%s", s)
	}
	m.keys("Space")
	m.waitFor("following", `{"t":21.7}`)

	// Publish: the form offers farm's prefix; enter walks to the end.
	m.keys("s")
	m.waitFor("Publish a message", "org/farm/")
	m.keys("-l", "cmd/pump")
	m.keys("Enter")
	m.keys("-l", "start")
	m.keys("Enter", "Enter", "Enter")
	m.waitFor("published 5 B to org/farm/cmd/pump")
	select {
	case g := <-got:
		if g != "org/farm/cmd/pump start" {
			t.Fatalf("the subscriber got %q", g)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the console's publish did not reach farm's subscriber")
	}
	m.waitFor("org/farm/cmd/pump start")

	// Under another org: refused in the form, nothing published.
	m.keys("s")
	m.waitFor("Publish a message", "org/farm/cmd/pump")
	m.keys("C-u")
	m.keys("-l", "org/other/cmd/pump")
	m.keys("Enter", "Enter", "Enter", "Enter")
	s = m.waitFor("error: you may only publish topics under org/<your organization>/")
	fills(t, s, 24)
	m.keys("Escape")
	m.waitFor("following")
	m.keys("q")

	_, data, code := a.gql(tok, `{ auditLog(first: 5) { actor action target source } }`, nil)
	if code != "" {
		t.Fatal(code)
	}
	var publishes []map[string]any
	for _, e := range data["auditLog"].([]any) {
		if e := e.(map[string]any); e["action"] == "publishMessage" {
			publishes = append(publishes, e)
		}
	}
	if len(publishes) != 1 {
		t.Fatalf("audit entries of publishMessage: %v", publishes)
	}
	e := publishes[0]
	if e["actor"] != "m@farm.test" || e["target"] != "topic org/farm/cmd/pump (5 B, QoS 0)" || !strings.HasPrefix(e["source"].(string), "console") {
		t.Fatalf("audit entry %v", e)
	}
}
