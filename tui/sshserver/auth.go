package sshserver

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"charm.land/ssh"
	"github.com/piot-appliance/piot/internal/authkeys"
	"github.com/piot-appliance/piot/services/core"
	"github.com/piot-appliance/piot/tui"
	gossh "golang.org/x/crypto/ssh"
)

// Permission extensions recorded by the auth callbacks. x/crypto keeps the
// Permissions returned for each key apart and hands the session those of
// the key that actually authenticated, so these are per key, not "the last
// key the callback saw" (the soft-serve impersonation bug class).
const (
	extMethod      = "piot-auth-method" // "publickey" or "password"
	extFingerprint = "piot-key-fingerprint"
	extUser        = "piot-user-id"
)

// errNotVerified is why a session is refused after authentication.
var errNotVerified = errors.New("the authenticated identity could not be verified")

// publicKeyHandler accepts keys registered to a user in core, or listed in
// authorized_keys (as the first admin). It records which key it accepted
// for which user.
func (s *Server) publicKeyHandler(ctx ssh.Context, key ssh.PublicKey) bool {
	perms := ctx.Permissions()
	if perms.Permissions == nil {
		perms.Permissions = &gossh.Permissions{}
	}
	if !s.acceptKey(perms.Permissions, key) {
		s.log.Info("ssh public key refused", "remote", hostOf(ctx.RemoteAddr()), "user", ctx.User(), "key", gossh.FingerprintSHA256(key))
		return false
	}
	s.log.Debug("ssh public key accepted", "remote", hostOf(ctx.RemoteAddr()), "key", gossh.FingerprintSHA256(key), "user_id", perms.Extensions[extUser])
	return true
}

// acceptKey decides on one offered key and, if it is accepted, records in
// perms which key maps to which user.
func (s *Server) acceptKey(perms *gossh.Permissions, key gossh.PublicKey) bool {
	a, ok := s.actorForKey(key)
	if !ok {
		return false
	}
	if perms.Extensions == nil {
		perms.Extensions = map[string]string{}
	}
	perms.Extensions[extMethod] = "publickey"
	perms.Extensions[extFingerprint] = gossh.FingerprintSHA256(key)
	perms.Extensions[extUser] = a.UserID.Hex()
	return true
}

// passwordHandler lets admins in with their email and password when
// enabled, a few attempts per address at a time.
func (s *Server) passwordHandler(ctx ssh.Context, password string) bool {
	host := hostOf(ctx.RemoteAddr())
	if ok, _ := s.pwLimit.Allow(host); !ok {
		s.log.Warn("ssh password attempts rate limited", "remote", host)
		return false
	}
	a, err := s.deps.Core.Login(ctx, ctx.User(), password)
	if err == nil {
		err = core.AuthorizeAdmin(a, core.ActConsolePassword)
	}
	if err != nil {
		s.log.Info("ssh password refused", "remote", host, "user", ctx.User())
		return false
	}
	perms := ctx.Permissions()
	if perms.Permissions == nil {
		perms.Permissions = &gossh.Permissions{}
	}
	if perms.Extensions == nil {
		perms.Extensions = map[string]string{}
	}
	perms.Extensions[extMethod] = "password"
	perms.Extensions[extUser] = a.UserID.Hex()
	return true
}

// actorForKey maps a public key to a user: a key registered in core wins;
// a key in authorized_keys logs in as the first admin. Certificates are not
// accepted.
func (s *Server) actorForKey(key gossh.PublicKey) (core.Actor, bool) {
	if key == nil {
		return core.Anonymous(), false
	}
	if _, isCert := key.(*gossh.Certificate); isCert {
		return core.Anonymous(), false
	}
	if a, ok := s.deps.Core.ActorBySSHKey(key); ok {
		return a, true
	}
	if s.inAuthorizedKeys(key) {
		return s.deps.Core.FirstAdmin()
	}
	return core.Anonymous(), false
}

// inAuthorizedKeys reads <data-dir>/authorized_keys on every check, so
// edits (the console's own removals included) take effect without a
// restart. The rules are internal/authkeys': lines with options are
// skipped rather than half-honoured, and a file others may write is
// ignored, like sshd's StrictModes.
func (s *Server) inAuthorizedKeys(key gossh.PublicKey) bool {
	path := filepath.Join(s.cfg.DataDir, "authorized_keys")
	data, mode, err := authkeys.Read(path)
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			s.log.Warn("authorized_keys unreadable", "path", path, "err", err)
		}
		return false
	}
	if !authkeys.Trusted(mode) {
		s.log.Warn("authorized_keys ignored: it must be a regular file writable only by its owner", "path", path)
		return false
	}
	want := key.Marshal()
	for _, e := range authkeys.Parse(data) {
		switch {
		case e.Err != nil:
			s.log.Warn("authorized_keys: line skipped", "line", e.Line, "err", e.Err)
		case len(e.Options) > 0:
			s.log.Warn("authorized_keys: line with options skipped (not supported)", "line", e.Line)
		case bytes.Equal(e.Key.Marshal(), want):
			return true
		}
	}
	return false
}

// verify checks, once the session exists, that the identity recorded at
// authentication belongs to the key the session really authenticated
// with, and returns an Identity that keeps checking it for the session's
// life (removing the key or the user ends the session).
func (s *Server) verify(perms map[string]string, pub gossh.PublicKey) (tui.Identity, core.Actor, error) {
	uid := perms[extUser]
	switch perms[extMethod] {
	case "publickey":
		if pub == nil {
			return nil, core.Anonymous(), fmt.Errorf("%w: no public key", errNotVerified)
		}
		if fp := gossh.FingerprintSHA256(pub); fp != perms[extFingerprint] {
			return nil, core.Anonymous(), fmt.Errorf("%w: session key %s is not the accepted key %s", errNotVerified, fp, perms[extFingerprint])
		}
		who := func() (core.Actor, error) {
			a, ok := s.actorForKey(pub)
			if !ok {
				return core.Anonymous(), errors.New("your SSH key is no longer registered")
			}
			if a.UserID.Hex() != uid {
				return core.Anonymous(), errors.New("your SSH key now belongs to another account")
			}
			return a, nil
		}
		a, err := who()
		if err != nil {
			return nil, core.Anonymous(), fmt.Errorf("%w: %v", errNotVerified, err)
		}
		return who, a, nil
	case "password":
		if pub != nil {
			return nil, core.Anonymous(), fmt.Errorf("%w: password session with a public key", errNotVerified)
		}
		id, err := core.ParseID(uid)
		if err != nil {
			return nil, core.Anonymous(), fmt.Errorf("%w: bad user id", errNotVerified)
		}
		profile := tui.ProfileIdentity(s.deps.Core, core.Actor{UserID: id})
		who := func() (core.Actor, error) {
			a, err := profile()
			if err != nil {
				return core.Anonymous(), err
			}
			if core.AuthorizeAdmin(a, core.ActConsolePassword) != nil {
				return core.Anonymous(), errors.New("password logins are for admins only")
			}
			return a, nil
		}
		a, err := who()
		if err != nil {
			return nil, core.Anonymous(), fmt.Errorf("%w: %v", errNotVerified, err)
		}
		return who, a, nil
	}
	return nil, core.Anonymous(), fmt.Errorf("%w: unknown authentication method", errNotVerified)
}
