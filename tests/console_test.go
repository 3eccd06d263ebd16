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
	p.keys("/")
	p.keys("-l", "ssh console listening")
	p.keys("Enter")
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
