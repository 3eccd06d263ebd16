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

// The console of the real binary, opened with OpenSSH in a tmux pane by a
// key listed in <data-dir>/authorized_keys.
func TestConsoleOverOpenSSH(t *testing.T) {
	for _, bin := range []string{"ssh", "tmux"} {
		if _, err := exec.LookPath(bin); err != nil {
			if os.Getenv("PIOT_REQUIRE_MOSQUITTO") != "" {
				t.Fatalf("%s not installed (run tests/deps.sh)", bin)
			}
			t.Skipf("%s not installed", bin)
		}
	}
	dir := t.TempDir()
	keyDir := t.TempDir()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(keyDir, "id_ed25519")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	sshPub, _ := ssh.NewPublicKey(pub)
	if err := os.WriteFile(filepath.Join(dir, "authorized_keys"), ssh.MarshalAuthorizedKey(sshPub), 0o600); err != nil {
		t.Fatal(err)
	}
	a := startAppliance(t, startOpts{dataDir: dir})
	host, port := hostPort(t, a.sshAddr)

	session := fmt.Sprintf("piot-e2e-%d", time.Now().UnixNano())
	cmd := fmt.Sprintf("ssh -tt -p %s -i %s -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o IdentitiesOnly=yes -o BatchMode=yes admin@%s", port, keyFile, host)
	if out, err := exec.Command("tmux", "new-session", "-d", "-s", session, "-x", "100", "-y", "30", cmd).CombinedOutput(); err != nil {
		t.Fatalf("tmux: %v %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("tmux", "kill-session", "-t", session).Run() })
	capture := func() string {
		out, _ := exec.Command("tmux", "capture-pane", "-p", "-t", session).Output()
		return string(out)
	}
	waitFor := func(want string) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for time.Now().Before(deadline) {
			if strings.Contains(capture(), want) {
				return
			}
			time.Sleep(200 * time.Millisecond)
		}
		t.Fatalf("screen never showed %q:\n%s\n--- appliance log ---\n%s", want, capture(), a.out)
	}
	waitFor("Dashboard")
	waitFor("admin@piot.local")
	if err := exec.Command("tmux", "send-keys", "-t", session, "q").Run(); err != nil {
		t.Fatal(err)
	}
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
