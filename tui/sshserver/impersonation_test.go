package sshserver

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"

	gossh "golang.org/x/crypto/ssh"
)

// offerOnly offers a public key the client cannot sign with: the
// attacker knows the admin's public key, not the private one.
type offerOnly struct{ pub gossh.PublicKey }

func (o offerOnly) PublicKey() gossh.PublicKey { return o.pub }
func (o offerOnly) Sign(io.Reader, []byte) (*gossh.Signature, error) {
	return nil, errors.New("no private key")
}

// sequence authenticates with the given methods in order, whatever the
// server answered before, so the server sees exactly the key queries of
// an impersonation attempt.
func sequence(methods ...gossh.AuthMethod) *gossh.ClientConfig {
	i := 0
	return &gossh.ClientConfig{
		AuthCallback: func(*gossh.ClientAuthContext) (gossh.AuthMethod, error) {
			if i >= len(methods) {
				return nil, errors.New("no more methods")
			}
			i++
			return methods[i-1], nil
		},
	}
}

func dialConfig(s *Server, user string, cfg *gossh.ClientConfig) (*gossh.Client, error) {
	cfg.User = user
	cfg.HostKeyCallback = gossh.FixedHostKey(s.HostKey())
	return gossh.Dial("tcp", s.Addr(), cfg)
}

// TestKeyReverificationImpersonation is the soft-serve impersonation bug
// class (CVE-2024-41956, and x/crypto's CVE-2024-45337): the client offers
// the admin's public key, which the server accepts, and then authenticates
// with another key. The session must belong to the key that signed, never
// to the offered one.
func TestKeyReverificationImpersonation(t *testing.T) {
	ap := newAppliance(t)
	seen := &keyLog{}
	srv := ap.start(t, Config{Logger: slog.New(seen)})
	adminPub := offerOnly{ap.adminKey.PublicKey()}
	adminFP := gossh.FingerprintSHA256(ap.adminKey.PublicKey())
	// offered checks that the server did accept the admin's key during
	// the attempt, so the attempt really was an impersonation.
	offered := func(t *testing.T) {
		t.Helper()
		if !seen.accepted(adminFP) {
			t.Fatal("the server never accepted the offered admin key: the test proves nothing")
		}
		seen.reset()
	}

	t.Run("offer admin key, sign with an unregistered key", func(t *testing.T) {
		cfg := sequence(gossh.PublicKeys(adminPub), gossh.PublicKeys(newKey(t)))
		if c, err := dialConfig(srv, "admin", cfg); err == nil {
			c.Close()
			t.Fatal("logged in by offering the admin's key and signing with an unknown one")
		}
		offered(t)
	})

	orders := map[string][]gossh.AuthMethod{
		// The plain order: the admin key is offered and accepted, then
		// the member's key signs.
		"admin offered first": {gossh.PublicKeys(adminPub), gossh.PublicKeys(ap.memberKey)},
		// The order that fooled servers remembering "the last key the
		// callback saw": member key queried, admin key queried (now the
		// last accepted), then the member key signs from the query cache.
		"member queried, admin queried, member signs": {
			gossh.PublicKeys(offerOnly{ap.memberKey.PublicKey()}), gossh.PublicKeys(adminPub), gossh.PublicKeys(ap.memberKey),
		},
	}
	for name, methods := range orders {
		t.Run(name, func(t *testing.T) {
			c, err := dialConfig(srv, "admin", sequence(methods...))
			if err != nil {
				t.Fatalf("the member's own key was refused: %v", err)
			}
			defer c.Close()
			term := openTerminal(t, c, 80, 24, nil)
			s := term.waitFor("member@acme.test", "[1 Dashboard]")
			if strings.Contains(s, "admin@piot.local") || strings.Contains(s, "(admin)") || strings.Contains(s, "Users") {
				t.Fatalf("impersonated the admin:\n%s", s)
			}
			offered(t)
		})
	}

	// The session-side check itself: what the key callback recorded for
	// the admin's key is refused for a session that authenticated with
	// another key, even one that is registered.
	t.Run("recorded key differs from the session key", func(t *testing.T) {
		perms := &gossh.Permissions{}
		if !srv.acceptKey(perms, ap.adminKey.PublicKey()) {
			t.Fatal("admin key not accepted")
		}
		if _, _, err := srv.verify(perms.Extensions, ap.memberKey.PublicKey()); !errors.Is(err, errNotVerified) {
			t.Fatalf("session with the member's key accepted the admin's record: %v", err)
		}
		if _, _, err := srv.verify(perms.Extensions, newKey(t).PublicKey()); !errors.Is(err, errNotVerified) {
			t.Fatalf("session with an unknown key accepted: %v", err)
		}
		if _, _, err := srv.verify(perms.Extensions, nil); !errors.Is(err, errNotVerified) {
			t.Fatalf("session without a key accepted: %v", err)
		}
		_, a, err := srv.verify(perms.Extensions, ap.adminKey.PublicKey())
		if err != nil || a.Email != "admin@piot.local" {
			t.Fatalf("the admin's own session: %v %v", a, err)
		}
		// A forged record naming the admin for the member's key fails the
		// fresh lookup.
		forged := map[string]string{extMethod: "publickey", extFingerprint: gossh.FingerprintSHA256(ap.memberKey.PublicKey()), extUser: ap.admin.UserID.Hex()}
		if _, _, err := srv.verify(forged, ap.memberKey.PublicKey()); !errors.Is(err, errNotVerified) {
			t.Fatalf("forged user id accepted: %v", err)
		}
		if _, _, err := srv.verify(map[string]string{}, ap.adminKey.PublicKey()); !errors.Is(err, errNotVerified) {
			t.Fatalf("no record accepted: %v", err)
		}
	})
}

// TestRemovedKeyEndsSession: revoking a key cuts the sessions it opened.
func TestRemovedKeyEndsSession(t *testing.T) {
	ap := newAppliance(t)
	srv := ap.start(t, Config{})
	c, err := dial(srv, "x", gossh.PublicKeys(ap.memberKey))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	term := openTerminal(t, c, 80, 24, nil)
	term.waitFor("member@acme.test")
	fp := gossh.FingerprintSHA256(ap.memberKey.PublicKey())
	if err := ap.core.RemoveSSHKey(t.Context(), ap.admin, ap.member.UserID, fp); err != nil {
		t.Fatal(err)
	}
	var exit *gossh.ExitError
	if err := term.wait(10e9); !errors.As(err, &exit) || exit.ExitStatus() != 1 {
		t.Fatalf("session end: %v", err)
	}
	if !strings.Contains(term.output(), "your SSH key is no longer registered") {
		t.Fatalf("no reason given:\n%q", term.output())
	}
}

// keyLog records which keys the server accepted.
type keyLog struct {
	mu   sync.Mutex
	keys []string
}

func (k *keyLog) Enabled(context.Context, slog.Level) bool { return true }
func (k *keyLog) WithAttrs([]slog.Attr) slog.Handler       { return k }
func (k *keyLog) WithGroup(string) slog.Handler            { return k }
func (k *keyLog) Handle(_ context.Context, r slog.Record) error {
	if r.Message != "ssh public key accepted" {
		return nil
	}
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "key" {
			k.mu.Lock()
			k.keys = append(k.keys, a.Value.String())
			k.mu.Unlock()
		}
		return true
	})
	return nil
}

func (k *keyLog) accepted(fp string) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, x := range k.keys {
		if x == fp {
			return true
		}
	}
	return false
}

func (k *keyLog) reset() {
	k.mu.Lock()
	k.keys = nil
	k.mu.Unlock()
}
