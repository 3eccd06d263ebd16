package tests

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// consoleKey writes a new key pair: the private key in a file of its
// own, the public one in <dataDir>/authorized_keys, which logs in as the
// first admin.
func consoleKey(t *testing.T, dataDir string) string {
	t.Helper()
	keyFile, authorized := keyPair(t)
	if err := os.WriteFile(filepath.Join(dataDir, "authorized_keys"), []byte(authorized+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return keyFile
}

// keyPair writes a new private key to a file of its own and returns the
// file and the public key's authorized_keys line.
func keyPair(t *testing.T) (keyFile, authorized string) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	keyFile = filepath.Join(t.TempDir(), "id_ed25519")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	sshPub, _ := ssh.NewPublicKey(pub)
	return keyFile, strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sshPub)))
}

// pane is the console of a running appliance in a tmux pane, reached
// with the OpenSSH client.
type pane struct {
	t       *testing.T
	a       *appliance
	session string
}

func requireTools(t *testing.T, bins ...string) {
	t.Helper()
	for _, bin := range bins {
		if _, err := exec.LookPath(bin); err != nil {
			if os.Getenv("PIOT_REQUIRE_MOSQUITTO") != "" {
				t.Fatalf("%s not installed (run tests/deps.sh)", bin)
			}
			t.Skipf("%s not installed", bin)
		}
	}
}

func openSSHConsole(t *testing.T, a *appliance, keyFile string, width, height int) *pane {
	t.Helper()
	host, port := hostPort(t, a.sshAddr)
	session := fmt.Sprintf("piot-e2e-%d", time.Now().UnixNano())
	cmd := fmt.Sprintf("ssh -tt -p %s -i %s -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o IdentitiesOnly=yes -o BatchMode=yes admin@%s", port, keyFile, host)
	if out, err := exec.Command("tmux", "new-session", "-d", "-s", session, "-x", fmt.Sprint(width), "-y", fmt.Sprint(height), cmd).CombinedOutput(); err != nil {
		t.Fatalf("tmux: %v %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("tmux", "kill-session", "-t", session).Run() })
	return &pane{t: t, a: a, session: session}
}

func (p *pane) capture() string {
	out, _ := exec.Command("tmux", "capture-pane", "-p", "-t", p.session).Output()
	return string(out)
}

// waitFor waits until the pane shows every one of want.
func (p *pane) waitFor(want ...string) string {
	p.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		s := p.capture()
		missing := ""
		for _, w := range want {
			if !strings.Contains(s, w) {
				missing = w
				break
			}
		}
		if missing == "" {
			return s
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("screen never showed %q:\n%s\n--- appliance log ---\n%s", missing, s, p.a.out)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// keys sends tmux key names ("Enter", "Escape", "Right") or literal text
// with -l.
func (p *pane) keys(args ...string) {
	p.t.Helper()
	if err := exec.Command("tmux", append([]string{"send-keys", "-t", p.session}, args...)...).Run(); err != nil {
		p.t.Fatal(err)
	}
}

// slash types text after "/" (a list's filter, the log's search) and
// enter.
func (p *pane) slash(text string) {
	p.t.Helper()
	p.keys("/")
	p.keys("-l", text)
	p.keys("Enter")
}

// The console of the real binary, opened with OpenSSH in a tmux pane by a
// key listed in <data-dir>/authorized_keys.
func TestConsoleOverOpenSSH(t *testing.T) {
	requireTools(t, "ssh", "tmux")
	dir := t.TempDir()
	keyFile := consoleKey(t, dir)
	a := startAppliance(t, startOpts{dataDir: dir})
	p := openSSHConsole(t, a, keyFile, 100, 30)
	p.waitFor("Dashboard", "admin@piot.local")
	p.keys("q")
}

// The Logs and History screens over OpenSSH at 80×24: search the log,
// then chart a sensor's readings and switch the range.
func TestConsoleLogsAndHistoryOverOpenSSH(t *testing.T) {
	requireTools(t, "ssh", "tmux")
	dir := t.TempDir()
	keyFile := consoleKey(t, dir)
	a := startAppliance(t, startOpts{dataDir: dir})
	tok := a.login("admin@piot.local", a.adminPassword())
	pw := orgWithMQTT(t, a, tok, "farm", "farm-user")
	thing := sensorThing(t, a, tok, orgID(t, a, tok, "farm"), "T1")
	c := mqttClient(t, a.mqttAddr, "farm-user", pw, "e2e-console")
	defer c.Disconnect(100)
	for _, v := range []string{"20.5", "21.25", "22.125"} {
		if pub := c.Publish("org/farm/T1/value", 1, false, v); !pub.WaitTimeout(5*time.Second) || pub.Error() != nil {
			t.Fatalf("publish: %v", pub.Error())
		}
	}
	for deadline := time.Now().Add(10 * time.Second); len(readings(t, a, tok, thing)) < 3; {
		if time.Now().After(deadline) {
			t.Fatalf("history = %v", readings(t, a, tok, thing))
		}
		time.Sleep(200 * time.Millisecond)
	}

	p := openSSHConsole(t, a, keyFile, 80, 24)
	p.waitFor("Dashboard", "admin@piot.local")
	p.keys("8")
	p.waitFor("following", "level ≥ DEBUG")
	p.slash("ssh console listening")
	s := p.waitFor(`search "ssh console listening"`, "paused")
	if !strings.Contains(lineOf(s, "> "), "ssh console listening") {
		t.Fatalf("the search did not select the line:\n%s", s)
	}
	p.keys("Enter")
	p.waitFor("Line ", "host_key=SHA256:", "esc or enter closes")
	p.keys("Escape")
	// A key right behind Escape would arrive as alt+key.
	p.waitFor(`search "ssh console listening"`)

	p.keys("9")
	p.waitFor("History — pick a thing", "T1")
	p.keys("Enter")
	s = p.waitFor("T1", "[24 h]", "3 readings", "min 20.5", "max 22.12 C", "┤")
	if strings.Contains(s, "21.291") {
		t.Fatalf("unrounded average:\n%s", s)
	}
	p.keys("Left")
	p.waitFor("[1 h]", "3 readings", "┤")
	p.keys("v", "v")
	p.waitFor("Time", "Value", "22.12")
	p.keys("q")
}

// Navigation over OpenSSH at 80×24 with the real monitor: the Alarms tab
// counts the open alarms the viewer may see (a member only their org's),
// enter on an alarm opens its thing, and a device registered through
// /adapter links to its sensor and back.
func TestConsoleNavigationOverOpenSSH(t *testing.T) {
	requireTools(t, "ssh", "tmux")
	dir := t.TempDir()
	keyFile := consoleKey(t, dir)
	a := startAppliance(t, startOpts{dataDir: dir})
	tok := a.login("admin@piot.local", a.adminPassword())
	mutate := func(query string, vars map[string]any) map[string]any {
		t.Helper()
		_, data, code := a.gql(tok, query, vars)
		if code != "" {
			t.Fatalf("%s: %s", query, code)
		}
		return data
	}
	type org struct{ name, id, pw, quiet string }
	orgs := []*org{{name: "farm", quiet: "F1"}, {name: "other", quiet: "O1"}}
	for _, o := range orgs {
		o.pw = orgWithMQTT(t, a, tok, o.name, o.name+"-user")
		o.id = orgID(t, a, tok, o.name)
	}
	farm := orgs[0]
	// CHIP1 registers itself and its sensor TA1 through /adapter.
	if st, out := post(t, a.url+"/adapter", "", map[string]any{"device": "CHIP1", "readings": []any{map[string]any{"address": "A1", "t": 4.5}}}); st != 202 {
		t.Fatalf("adapter packet: %d %v", st, out)
	}
	for _, name := range []string{"CHIP1", "TA1"} {
		mutate(`mutation($t: ThingUpdate!) { updateThing(thing: $t) { id } }`,
			map[string]any{"t": map[string]any{"id": thingID(t, a, tok, name), "orgId": farm.id, "enabled": true}})
	}
	// A quiet sensor in each org raises an alarm.
	for _, o := range orgs {
		id := sensorThing(t, a, tok, o.id, o.quiet)
		mutate(`mutation($t: ThingUpdate!) { updateThing(thing: $t) { id } }`,
			map[string]any{"t": map[string]any{"id": id, "last_seen_interval": 1}})
		c := mqttClient(t, a.mqttAddr, o.name+"-user", o.pw, "nav-"+o.quiet)
		if pub := c.Publish("org/"+o.name+"/"+o.quiet+"/value", 1, false, "1"); !pub.WaitTimeout(5*time.Second) || pub.Error() != nil {
			t.Fatalf("publish: %v", pub.Error())
		}
		c.Disconnect(100)
	}
	for deadline := time.Now().Add(20 * time.Second); ; {
		data := mutate(`{ alarms(active: true) { id } }`, nil)
		if len(data["alarms"].([]any)) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("alarms: %v\n%s", data, a.out)
		}
		time.Sleep(200 * time.Millisecond)
	}
	member := mutate(`mutation { createUser(email: "member@farm.test", password: "member-password-1") { id } }`, nil)["createUser"].(map[string]any)["id"]
	mutate(`mutation($o: ID!, $u: ID!) { addOrgUser(orgId: $o, userId: $u) }`, map[string]any{"o": farm.id, "u": member})
	memberKey, memberPub := keyPair(t)
	mutate(`mutation($u: ID!, $k: String!) { addSshKey(userId: $u, key: $k) { fingerprint } }`, map[string]any{"u": member, "k": memberPub})

	p := openSSHConsole(t, a, keyFile, 80, 24)
	p.waitFor("admin@piot.local", "6 Ala(2)")
	p.keys("6")
	p.waitFor("[6 Alarms(2)]", "Active (2)", "F1", "O1")
	p.slash("F1")
	p.waitFor("filter: F1")
	p.keys("Enter")
	p.waitFor("[2 Things]", "F1 — sensor", "organization", "farm")
	p.keys("Escape")
	p.waitFor("all things")
	p.slash("CHIP1")
	p.waitFor("filter: CHIP1")
	p.keys("Enter")
	p.waitFor("CHIP1 — device", "sensors:[TA1]")
	p.keys("Enter")
	p.waitFor("TA1 — sensor", "parent device:[CHIP1]")
	p.keys("Enter")
	s := p.waitFor("CHIP1 — device", "sensors:[TA1]")
	fills(t, s, 24)

	// The admin's pane stays open: its ending could take the tmux server
	// down while the member's session is being created.
	m := openSSHConsole(t, a, memberKey, 80, 24)
	s = m.waitFor("member@farm.test", "6 Alarms(1)")
	if strings.Contains(s, "(2)") {
		t.Fatalf("the member's badge counts the other org's alarm:\n%s", s)
	}
	m.keys("6")
	s = m.waitFor("[6 Alarms(1)]", "Active (1)", "F1")
	if strings.Contains(s, "O1") {
		t.Fatalf("the member sees the other org's alarm:\n%s", s)
	}
	m.keys("Enter")
	s = m.waitFor("[2 Things]", "F1 — sensor")
	fills(t, s, 24)
	m.keys("q")
}

// fills checks a captured pane is the console's whole frame: the tab bar
// on the first row, the key hints on the last.
func fills(t *testing.T, s string, rows int) {
	t.Helper()
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) != rows || !strings.Contains(lines[0], "PIOT") || !strings.Contains(lines[rows-1], "q quit") {
		t.Fatalf("the frame does not fill %d rows:\n%s", rows, s)
	}
}

// lineOf is the first line of s containing needle.
func lineOf(s, needle string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, needle) {
			return l
		}
	}
	return ""
}

// `piot console` on the box's own terminal: the same console, reached
// through the data directory's key.
func TestLocalConsoleCommand(t *testing.T) {
	if _, err := exec.LookPath("tmux"); err != nil {
		if os.Getenv("PIOT_REQUIRE_MOSQUITTO") != "" {
			t.Fatal("tmux not installed (run tests/deps.sh)")
		}
		t.Skip("tmux not installed")
	}
	a := startAppliance(t, startOpts{})
	session := fmt.Sprintf("piot-local-%d", time.Now().UnixNano())
	cmd := fmt.Sprintf("%s console --data-dir %s --ssh-addr %s", piotBin, a.dataDir, a.sshAddr)
	if out, err := exec.Command("tmux", "new-session", "-d", "-s", session, "-x", "90", "-y", "28", cmd).CombinedOutput(); err != nil {
		t.Fatalf("tmux: %v %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("tmux", "kill-session", "-t", session).Run() })
	deadline := time.Now().Add(20 * time.Second)
	var screen string
	for time.Now().Before(deadline) {
		out, _ := exec.Command("tmux", "capture-pane", "-p", "-t", session).Output()
		screen = string(out)
		if strings.Contains(screen, "Dashboard") && strings.Contains(screen, "admin@piot.local") {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if !strings.Contains(screen, "Dashboard") {
		t.Fatalf("local console never showed the dashboard:\n%s\n--- log ---\n%s", screen, a.out)
	}
	st, err := os.Stat(filepath.Join(a.dataDir, "console_ed25519"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("console key: %v %v", st, err)
	}
}
