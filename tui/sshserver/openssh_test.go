package sshserver

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/piot-appliance/piot/services/core"
	gossh "golang.org/x/crypto/ssh"
)

// tmux runs OpenSSH's ssh in a detached tmux pane, types with send-keys
// and reads the pane with capture-pane: a real terminal, a real client.
type tmux struct {
	t    *testing.T
	sock string
}

func newTmux(t *testing.T) *tmux {
	t.Helper()
	for _, bin := range []string{"ssh", "tmux"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("%s not installed (bash tests/deps.sh installs openssh-client and tmux)", bin)
		}
	}
	// A short socket path: unix sockets are limited to ~100 bytes.
	dir, err := os.MkdirTemp("", "piot-tmux")
	if err != nil {
		t.Fatal(err)
	}
	tm := &tmux{t: t, sock: filepath.Join(dir, "s")}
	t.Cleanup(func() {
		_ = exec.Command("tmux", "-S", tm.sock, "kill-server").Run()
		_ = os.RemoveAll(dir)
	})
	return tm
}

func (tm *tmux) run(args ...string) string {
	tm.t.Helper()
	out, err := exec.Command("tmux", append([]string{"-S", tm.sock, "-f", "/dev/null"}, args...)...).CombinedOutput()
	if err != nil {
		tm.t.Fatalf("tmux %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// start opens a pane running command; the pane stays after the command
// ends so its last words can be read.
func (tm *tmux) start(name, command string) {
	tm.run("new-session", "-d", "-s", name, "-x", "80", "-y", "24", "-e", "TERM=xterm-256color",
		command+"; echo SSH-EXIT=$?; sleep 60")
}

func (tm *tmux) keys(name string, keys ...string) {
	for _, k := range keys {
		tm.run("send-keys", "-t", name, k)
		time.Sleep(40 * time.Millisecond)
	}
}

func (tm *tmux) waitFor(name string, want ...string) string {
	tm.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		s := tm.run("capture-pane", "-p", "-t", name)
		ok := true
		for _, w := range want {
			if !strings.Contains(s, w) {
				ok = false
			}
		}
		if ok {
			return s
		}
		if time.Now().After(deadline) {
			tm.t.Fatalf("the pane never showed %q:\n%s", want, s)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// writeKey stores a key pair in OpenSSH's formats and returns the signer.
func writeKey(t *testing.T, path string, withPrivate bool) gossh.Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := gossh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	if withPrivate {
		block, err := gossh.MarshalPrivateKey(priv, "")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(path+".pub", gossh.MarshalAuthorizedKey(signer.PublicKey()), 0o644); err != nil {
		t.Fatal(err)
	}
	return signer
}

func TestOpenSSHInTmux(t *testing.T) {
	tm := newTmux(t)
	ap := newAppliance(t)
	ap.thing(t, "boiler", core.ID{})
	seen := &keyLog{}
	srv := ap.start(t, Config{Logger: slog.New(seen)})
	dir := t.TempDir()

	// The admin's key, as an operator would have it in ~/.ssh.
	adminKey := writeKey(t, filepath.Join(dir, "id_admin"), true)
	if _, err := ap.core.AddSSHKey(t.Context(), ap.admin, ap.admin.UserID, authorized(adminKey)); err != nil {
		t.Fatal(err)
	}
	host, port, err := net.SplitHostPort(srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	known := filepath.Join(dir, "known_hosts")
	line := fmt.Sprintf("[%s]:%s %s", host, port, gossh.MarshalAuthorizedKey(srv.HostKey()))
	if err := os.WriteFile(known, []byte(line), 0o600); err != nil {
		t.Fatal(err)
	}
	ssh := func(identities ...string) string {
		cmd := "ssh -F /dev/null -o IdentitiesOnly=yes -o IdentityAgent=none -o BatchMode=yes -o LogLevel=ERROR" +
			" -o StrictHostKeyChecking=yes -o UserKnownHostsFile=" + known + " -p " + port
		for _, id := range identities {
			cmd += " -i " + id
		}
		return cmd + " console@" + host
	}

	tm.start("admin", ssh(filepath.Join(dir, "id_admin")))
	tm.waitFor("admin", "[1 Dashboard]", "admin@piot.local (admin)")
	tm.keys("admin", "2")
	tm.waitFor("admin", "[2 Things]", "boiler")
	tm.keys("admin", "3", "n", "globex", "Enter", "Enter")
	tm.waitFor("admin", "created organization globex")
	tm.keys("admin", "2", "o", "Right", "Right")
	tm.waitFor("admin", "< globex >")
	tm.keys("admin", "Enter")
	s := tm.waitFor("admin", "boiler assigned to globex")
	if !strings.Contains(lineWith(s, "boiler  "), "globex") && !strings.Contains(s, "globex  ") {
		t.Errorf("the list does not show the assignment:\n%s", s)
	}
	tm.keys("admin", "q")
	tm.waitFor("admin", "SSH-EXIT=0")

	// An unknown key is refused by OpenSSH too.
	writeKey(t, filepath.Join(dir, "id_stranger"), true)
	tm.start("stranger", ssh(filepath.Join(dir, "id_stranger")))
	tm.waitFor("stranger", "Permission denied (publickey)", "SSH-EXIT=255")

	// Impersonation with a real client: OpenSSH offers the admin's public
	// key (it has no private half, so it cannot sign) and then the
	// member's key, which signs. The session is the member's.
	// ("id_offer" holds the public key in place of a private one: OpenSSH
	// offers it, then fails to load it for signing and moves on.)
	offer := filepath.Join(dir, "id_offer")
	for _, p := range []string{offer, offer + ".pub"} {
		if err := os.WriteFile(p, gossh.MarshalAuthorizedKey(adminKey.PublicKey()), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	memberKey := writeKey(t, filepath.Join(dir, "id_member"), true)
	if _, err := ap.core.AddSSHKey(t.Context(), ap.admin, ap.member.UserID, authorized(memberKey)); err != nil {
		t.Fatal(err)
	}
	seen.reset()
	tm.start("member", ssh(offer, filepath.Join(dir, "id_member")))
	s = tm.waitFor("member", "member@acme.test", "[1 Dashboard]")
	if strings.Contains(s, "admin@piot.local") || strings.Contains(s, "Users") {
		t.Fatalf("OpenSSH session impersonated the admin:\n%s", s)
	}
	if !seen.accepted(gossh.FingerprintSHA256(adminKey.PublicKey())) {
		t.Fatal("OpenSSH never offered the admin's key: the check above proves nothing")
	}
	tm.keys("member", "q")
	tm.waitFor("member", "SSH-EXIT=0")
}
