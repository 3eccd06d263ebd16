package sshserver

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/charmbracelet/x/vt"
	"github.com/piot-appliance/piot/services/core"
	"github.com/piot-appliance/piot/services/core/coretest"
	"github.com/piot-appliance/piot/tui"
	gossh "golang.org/x/crypto/ssh"
)

// appliance is a real core on a real embedded store with an admin, a
// member of org "acme" and their console keys.
type appliance struct {
	core      *core.Core
	admin     core.Actor
	member    core.Actor
	acme      core.Org
	adminKey  gossh.Signer
	memberKey gossh.Signer
	dataDir   string
	backups   tui.Backups // nil: the server has none
}

func newAppliance(t *testing.T) *appliance {
	t.Helper()
	ctx := context.Background()
	fx := coretest.Open(t, coretest.Options{AdminEmail: "admin@piot.local", AdminPassword: "admin-password", Org: "acme"})
	c, admin, acme := fx.Core, fx.Admin, fx.Org
	member := fx.Member(t, "member@acme.test", "member-password")
	ap := &appliance{core: c, admin: admin, member: member, acme: acme, adminKey: newKey(t), memberKey: newKey(t), dataDir: t.TempDir()}
	if _, err := c.AddSSHKey(ctx, admin, admin.UserID, authorized(ap.adminKey)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.AddSSHKey(ctx, admin, member.UserID, authorized(ap.memberKey)); err != nil {
		t.Fatal(err)
	}
	return ap
}

func newKey(t *testing.T) gossh.Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := gossh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func authorized(s gossh.Signer) string {
	return strings.TrimSpace(string(gossh.MarshalAuthorizedKey(s.PublicKey())))
}

func (ap *appliance) thing(t *testing.T, name string, org core.ID) core.Thing {
	t.Helper()
	ctx := context.Background()
	th, err := ap.core.CreateThing(ctx, ap.admin, name, "sensor")
	if err != nil {
		t.Fatal(err)
	}
	if !org.IsZero() {
		if th, err = ap.core.UpdateThing(ctx, ap.admin, core.ThingUpdate{ID: th.ID, SetOrg: true, OrgID: org}); err != nil {
			t.Fatal(err)
		}
	}
	return th
}

// start runs a server on a free loopback port.
func (ap *appliance) start(t *testing.T, cfg Config) *Server {
	t.Helper()
	cfg.Addr = "127.0.0.1:0"
	if cfg.DataDir == "" {
		cfg.DataDir = ap.dataDir
	}
	if cfg.ConnBurst == 0 {
		cfg.ConnBurst = 100
		cfg.ConnRate = 100
	}
	if cfg.Logger == nil && testing.Verbose() {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	s, err := New(cfg, Deps{Core: ap.core, Version: "v-test", Refresh: 200 * time.Millisecond, Backups: ap.backups})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Stop(ctx); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	return s
}

func dial(s *Server, user string, auth ...gossh.AuthMethod) (*gossh.Client, error) {
	return gossh.Dial("tcp", s.Addr(), &gossh.ClientConfig{
		User:            user,
		Auth:            auth,
		HostKeyCallback: gossh.FixedHostKey(s.HostKey()),
		Timeout:         5 * time.Second,
	})
}

// terminal is an SSH session with a PTY whose output is rendered by a
// terminal emulator, so tests read the screen a person would see.
type terminal struct {
	t    *testing.T
	sess *gossh.Session
	in   io.WriteCloser

	mu  sync.Mutex
	emu *vt.Emulator
	raw bytes.Buffer

	wmu  sync.Mutex
	done chan error
}

func openTerminal(t *testing.T, c *gossh.Client, cols, rows int, env map[string]string) *terminal {
	t.Helper()
	sess, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range env {
		if err := sess.Setenv(k, v); err != nil {
			t.Fatal(err)
		}
	}
	if err := sess.RequestPty("xterm-256color", rows, cols, gossh.TerminalModes{gossh.ECHO: 0}); err != nil {
		t.Fatal(err)
	}
	in, err := sess.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	term := &terminal{t: t, sess: sess, in: in, emu: vt.NewEmulator(cols, rows), done: make(chan error, 1)}
	sess.Stdout = term
	sess.Stderr = term
	// The emulator answers the program's terminal queries; the answers go
	// back as input, like a real terminal's.
	go func() {
		buf := make([]byte, 1024)
		for {
			n, err := term.emu.Read(buf)
			if n > 0 {
				term.wmu.Lock()
				_, _ = term.in.Write(buf[:n])
				term.wmu.Unlock()
			}
			if err != nil {
				return
			}
		}
	}()
	if err := sess.Shell(); err != nil {
		t.Fatal(err)
	}
	go func() { term.done <- sess.Wait() }()
	t.Cleanup(func() { _ = sess.Close(); _ = term.emu.Close() })
	return term
}

func (term *terminal) Write(p []byte) (int, error) {
	term.mu.Lock()
	defer term.mu.Unlock()
	term.raw.Write(p)
	return term.emu.Write(p)
}

func (term *terminal) screen() string {
	term.mu.Lock()
	defer term.mu.Unlock()
	return term.emu.String()
}

func (term *terminal) output() string {
	term.mu.Lock()
	defer term.mu.Unlock()
	return term.raw.String()
}

// send types keys: runes as they are, and \r, \t, \x1b[C (right) as
// written.
func (term *terminal) send(keys ...string) {
	for _, k := range keys {
		term.wmu.Lock()
		_, err := io.WriteString(term.in, k)
		term.wmu.Unlock()
		if err != nil {
			term.t.Fatalf("send %q: %v", k, err)
		}
		// Keys typed one by one, as a person does: Bubble Tea reads an
		// escape sequence split across reads as separate keys otherwise.
		time.Sleep(30 * time.Millisecond)
	}
}

func (term *terminal) waitFor(want ...string) string {
	term.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s := term.screen()
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
			term.t.Fatalf("the screen never showed %q:\n%s", missing, s)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// wait returns the session's end within d.
func (term *terminal) wait(d time.Duration) error {
	term.t.Helper()
	select {
	case err := <-term.done:
		return err
	case <-time.After(d):
		term.t.Fatalf("the session did not end within %s; screen:\n%s", d, term.screen())
		return errors.New("timeout")
	}
}

// resize changes the window like a terminal emulator does: the local
// screen and the remote PTY together.
func (term *terminal) resize(t *testing.T, cols, rows int) {
	t.Helper()
	term.mu.Lock()
	term.emu.Resize(cols, rows)
	term.mu.Unlock()
	if err := term.sess.WindowChange(rows, cols); err != nil {
		t.Fatal(err)
	}
}

// footerOnRow waits until the key hint line is the last row of the
// screen, which shows the frame fills the window exactly.
func (term *terminal) footerOnRow(t *testing.T, rows int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		lines := strings.Split(term.screen(), "\n")
		if len(lines) >= rows && strings.Contains(lines[rows-1], "q quit") && strings.Contains(lines[0], "PIOT") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the frame does not fill %d rows:\n%s", rows, term.screen())
		}
		time.Sleep(25 * time.Millisecond)
	}
}
