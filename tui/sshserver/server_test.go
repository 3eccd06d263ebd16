package sshserver

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/piot-appliance/piot/services/core"
	gossh "golang.org/x/crypto/ssh"
)

// TestConsoleOverSSH is the admin's walk through the console: log in with
// a registered key, see the dashboard, go to Things, create an org, assign
// a thing to it and see the list change.
func TestConsoleOverSSH(t *testing.T) {
	ap := newAppliance(t)
	th := ap.thing(t, "boiler", core.ID{})
	srv := ap.start(t, Config{})
	c, err := dial(srv, "admin", gossh.PublicKeys(ap.adminKey))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	term := openTerminal(t, c, 80, 24, nil)
	term.waitFor("[1 Dashboard]", "v-test", "admin@piot.local (admin)", "1 things, 1 orgs, 2 users")
	term.footerOnRow(t, 24)

	// The terminal grows and shrinks: the console redraws to fit.
	for _, size := range [][2]int{{120, 40}, {80, 24}} {
		term.resize(t, size[0], size[1])
		term.footerOnRow(t, size[1])
	}

	term.send("2")
	s := term.waitFor("[2 Things]", "boiler", "1 all things")
	if strings.Contains(lineWith(s, "boiler"), "globex") {
		t.Fatal("unexpected org")
	}

	term.send("3")
	term.waitFor("[3 Orgs]", "acme")
	term.send("n")
	term.waitFor("New organization")
	term.send("g", "l", "o", "b", "e", "x", "\r", "\r")
	term.waitFor("created organization globex", "2 organizations")

	term.send("2")
	term.waitFor("boiler")
	term.send("o")
	term.waitFor("Assign boiler to an organization", "(none: unassigned)")
	// The orgs are offered in name order: acme, globex.
	term.send("\x1b[C", "\x1b[C")
	term.waitFor("< globex >")
	term.send("\r")
	s = term.waitFor("boiler assigned to globex")
	if !strings.Contains(lineWith(s, "boiler"), "globex") {
		t.Fatalf("the list does not show the new org:\n%s", s)
	}
	got, err := ap.core.Thing(ap.admin, th.ID)
	if err != nil {
		t.Fatal(err)
	}
	if name, _ := ap.core.OrgNameOf(got.OrgID); name != "globex" {
		t.Fatalf("core has the thing in org %q", name)
	}

	// A change made elsewhere (the API) shows up without a key press.
	if _, err := ap.core.CreateThing(context.Background(), ap.admin, "from-the-api", "switch"); err != nil {
		t.Fatal(err)
	}
	term.waitFor("from-the-api", "2 all things")

	term.send("q")
	if err := term.wait(5 * time.Second); err != nil {
		t.Fatalf("quit: %v", err)
	}
}

func lineWith(s, needle string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, needle) {
			return l
		}
	}
	return ""
}

func TestUnregisteredKeyRefused(t *testing.T) {
	ap := newAppliance(t)
	srv := ap.start(t, Config{})
	_, err := dial(srv, "admin", gossh.PublicKeys(newKey(t)))
	if err == nil || !strings.Contains(err.Error(), "unable to authenticate") {
		t.Fatalf("an unknown key got in: %v", err)
	}
	// No password method unless enabled.
	_, err = dial(srv, "admin@piot.local", gossh.Password("admin-password"))
	if err == nil {
		t.Fatal("password login works although disabled")
	}
}

func TestMemberSeesOnlyTheirOrg(t *testing.T) {
	ap := newAppliance(t)
	globex, err := ap.core.CreateOrg(context.Background(), ap.admin, "globex", "")
	if err != nil {
		t.Fatal(err)
	}
	ap.thing(t, "acme-boiler", ap.acme.ID)
	ap.thing(t, "globex-boiler", globex.ID)
	srv := ap.start(t, Config{})
	c, err := dial(srv, "whatever", gossh.PublicKeys(ap.memberKey))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	term := openTerminal(t, c, 80, 24, nil)
	s := term.waitFor("member@acme.test", "[1 Dashboard]", "org      acme")
	if strings.Contains(s, "Users") || strings.Contains(s, "System") || strings.Contains(s, "(admin)") {
		t.Fatalf("a member sees admin tabs:\n%s", s)
	}
	term.send("2")
	s = term.waitFor("acme-boiler", "things of your organization")
	if strings.Contains(s, "globex") {
		t.Fatalf("a member sees another org's thing:\n%s", s)
	}
	term.send("d")
	term.waitFor("only admins may delete things (FORBIDDEN)")
	term.send("3")
	s = term.waitFor("* acme")
	if strings.Contains(s, "globex") {
		t.Fatalf("a member sees another org:\n%s", s)
	}
}

func TestAuthorizedKeysFileLogsInAsFirstAdmin(t *testing.T) {
	ap := newAppliance(t)
	key := newKey(t)
	path := filepath.Join(ap.dataDir, "authorized_keys")
	content := "# console keys\n" +
		"from=\"10.0.0.1\" " + authorized(newKey(t)) + " restricted\n" +
		authorized(key) + " ops@laptop\n"
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := ap.start(t, Config{})
	c, err := dial(srv, "root", gossh.PublicKeys(key))
	if err != nil {
		t.Fatal(err)
	}
	term := openTerminal(t, c, 80, 24, nil)
	term.waitFor("admin@piot.local (admin)")
	c.Close()

	// A file others may write is ignored.
	if err := os.Chmod(path, 0o666); err != nil {
		t.Fatal(err)
	}
	if _, err := dial(srv, "root", gossh.PublicKeys(key)); err == nil {
		t.Fatal("a world-writable authorized_keys was honoured")
	}
}

func TestIdleTimeoutClosesSession(t *testing.T) {
	ap := newAppliance(t)
	srv := ap.start(t, Config{IdleTimeout: 1500 * time.Millisecond})
	c, err := dial(srv, "admin", gossh.PublicKeys(ap.adminKey))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	term := openTerminal(t, c, 80, 24, nil)
	term.waitFor("[1 Dashboard]")
	// Typing keeps the session alive, although the screen refreshes
	// itself every 200 ms either way.
	for range 4 {
		time.Sleep(600 * time.Millisecond)
		term.send("2")
	}
	start := time.Now()
	err = term.wait(10 * time.Second)
	var exit *gossh.ExitError
	if !errors.As(err, &exit) || exit.ExitStatus() != 1 {
		t.Fatalf("session end: %v", err)
	}
	if d := time.Since(start); d < time.Second {
		t.Fatalf("the session ended %s after the last key, before the idle timeout", d)
	}
	if !strings.Contains(term.output(), "closed after 1.5s without input") {
		t.Fatalf("no idle message in the output:\n%q", term.output())
	}
}

func TestNoPTYNoExecNoForwarding(t *testing.T) {
	ap := newAppliance(t)
	srv := ap.start(t, Config{})
	c, err := dial(srv, "admin", gossh.PublicKeys(ap.adminKey))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	// A shell without a PTY: a message and exit status 1.
	var exit *gossh.ExitError
	sess2, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	var buf strings.Builder
	sess2.Stdout, sess2.Stderr = &buf, &buf
	if err := sess2.Shell(); err != nil {
		t.Fatal(err)
	}
	err = sess2.Wait()
	if !errors.As(err, &exit) || exit.ExitStatus() != 1 || !strings.Contains(buf.String(), "needs a terminal") {
		t.Fatalf("shell without PTY: %v %q", err, buf.String())
	}

	// exec is refused.
	sess3, _ := c.NewSession()
	if err := sess3.Start("id"); err == nil {
		t.Fatal("exec accepted")
	}
	// subsystems (sftp) are refused.
	sess4, _ := c.NewSession()
	if err := sess4.RequestSubsystem("sftp"); err == nil {
		t.Fatal("sftp subsystem accepted")
	}
	// Local and remote port forwarding are refused.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if conn, err := c.Dial("tcp", ln.Addr().String()); err == nil {
		conn.Close()
		t.Fatal("local port forwarding accepted")
	}
	if l, err := c.Listen("tcp", "127.0.0.1:0"); err == nil {
		l.Close()
		t.Fatal("remote port forwarding accepted")
	}
	// Other channel types are refused.
	if _, _, err := c.OpenChannel("x11", nil); err == nil {
		t.Fatal("x11 channel accepted")
	}
}

func TestConnectionRateLimit(t *testing.T) {
	ap := newAppliance(t)
	srv := ap.start(t, Config{ConnRate: 0.001, ConnBurst: 2})
	for i := range 2 {
		c, err := dial(srv, "admin", gossh.PublicKeys(ap.adminKey))
		if err != nil {
			t.Fatalf("connection %d: %v", i+1, err)
		}
		c.Close()
	}
	if c, err := dial(srv, "admin", gossh.PublicKeys(ap.adminKey)); err == nil {
		c.Close()
		t.Fatal("third connection in a burst of 2 was accepted")
	}
}

func TestPasswordAuthAdminsOnlyRateLimited(t *testing.T) {
	ap := newAppliance(t)
	srv := ap.start(t, Config{PasswordAuth: true})
	c, err := dial(srv, "admin@piot.local", gossh.Password("admin-password"))
	if err != nil {
		t.Fatal(err)
	}
	term := openTerminal(t, c, 80, 24, nil)
	term.waitFor("admin@piot.local (admin)")
	c.Close()
	if _, err := dial(srv, "member@acme.test", gossh.Password("member-password")); err == nil {
		t.Fatal("a member logged in with a password")
	}
	// Guessing is slowed down per address: after a handful of wrong
	// passwords even the right one is refused for a while.
	for range 6 {
		_, _ = dial(srv, "admin@piot.local", gossh.Password("wrong-password"))
	}
	if c, err := dial(srv, "admin@piot.local", gossh.Password("admin-password")); err == nil {
		c.Close()
		t.Fatal("password attempts are not rate limited")
	}
}

func TestNoColorHonoured(t *testing.T) {
	ap := newAppliance(t)
	srv := ap.start(t, Config{})
	sgrColour := regexp.MustCompile(`\x1b\[([0-9;:]*)m`)
	coloured := func(out string) bool {
		for _, m := range sgrColour.FindAllStringSubmatch(out, -1) {
			for _, p := range strings.FieldsFunc(m[1], func(r rune) bool { return r == ';' || r == ':' }) {
				switch {
				case len(p) == 2 && (p[0] == '3' || p[0] == '4' || p[0] == '9') && p[1] >= '0' && p[1] <= '8',
					len(p) == 3 && p[0] == '1' && p[1] == '0':
					return true
				}
			}
		}
		return false
	}
	run := func(env map[string]string, org string) string {
		c, err := dial(srv, "admin", gossh.PublicKeys(ap.adminKey))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		term := openTerminal(t, c, 80, 24, env)
		term.waitFor("[1 Dashboard]")
		term.send("3", "n", org, "\r", "\r")
		term.waitFor("created organization " + org)
		term.send("q")
		_ = term.wait(5 * time.Second)
		return term.output()
	}
	if out := run(nil, "y"); !coloured(out) {
		t.Fatal("no colour without NO_COLOR: the check below proves nothing")
	}
	if out := run(map[string]string{"NO_COLOR": "1"}, "z"); coloured(out) {
		t.Fatal("colours sent although the client set NO_COLOR")
	}
}

func TestHostKeyPersistsWithOwnerOnlyMode(t *testing.T) {
	ap := newAppliance(t)
	dir := t.TempDir()
	s1, err := New(Config{Addr: "127.0.0.1:0", DataDir: dir}, Deps{Core: ap.core})
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(filepath.Join(dir, HostKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("host key mode %v", st.Mode().Perm())
	}
	s2, err := New(Config{Addr: "127.0.0.1:0", DataDir: dir}, Deps{Core: ap.core})
	if err != nil {
		t.Fatal(err)
	}
	if gossh.FingerprintSHA256(s1.HostKey()) != gossh.FingerprintSHA256(s2.HostKey()) {
		t.Fatal("the host key changed across restarts")
	}
	pub, err := os.ReadFile(filepath.Join(dir, HostKeyFile+".pub"))
	if err != nil || !strings.HasPrefix(string(pub), "ssh-ed25519 ") {
		t.Fatalf("public host key: %q %v", pub, err)
	}
}

func TestStopEndsSessions(t *testing.T) {
	ap := newAppliance(t)
	srv, err := New(Config{Addr: "127.0.0.1:0", DataDir: t.TempDir()}, Deps{Core: ap.core})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	c, err := dial(srv, "admin", gossh.PublicKeys(ap.adminKey))
	if err != nil {
		t.Fatal(err)
	}
	term := openTerminal(t, c, 80, 24, nil)
	term.waitFor("[1 Dashboard]")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	_ = term.wait(5 * time.Second)
	if _, err := dial(srv, "admin", gossh.PublicKeys(ap.adminKey)); err == nil {
		t.Fatal("connected after Stop")
	}
	select {
	case err := <-srv.Err():
		t.Fatalf("Err after a clean stop: %v", err)
	default:
	}
}
