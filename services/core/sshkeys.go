package core

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/piot-appliance/piot/services/store"
	"golang.org/x/crypto/ssh"
)

// MaxSSHKeysPerUser bounds how many keys one user may register.
const MaxSSHKeysPerUser = 32

// SSHKeys lists a user's keys (admins, or the user).
func (c *Core) SSHKeys(a Actor, userID ID) ([]SSHKey, error) {
	if err := requireAuth(a); err != nil {
		return nil, err
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	if !c.canReadUser(a, userID) {
		return nil, errForbidden
	}
	u, ok := c.users[userID]
	if !ok {
		return nil, errf(CodeNotFound, "user does not exist")
	}
	return sshKeysFromDocs(u.SSHKeys), nil
}

// AddSSHKey registers an OpenSSH public key for a user (admins, or the
// user). A key belongs to at most one user: it is an identity.
func (c *Core) AddSSHKey(ctx context.Context, a Actor, userID ID, authorizedKey string) (SSHKey, error) {
	if err := requireAuth(a); err != nil {
		return SSHKey{}, err
	}
	if !a.Admin && a.UserID != userID {
		return SSHKey{}, errForbidden
	}
	if len(authorizedKey) > 16<<10 {
		return SSHKey{}, errf(CodeBadInput, "key is too long")
	}
	pub, comment, options, rest, err := ssh.ParseAuthorizedKey([]byte(strings.TrimSpace(authorizedKey)))
	if err != nil || len(options) > 0 || len(strings.TrimSpace(string(rest))) > 0 {
		return SSHKey{}, errf(CodeBadInput, "not a single OpenSSH public key (\"ssh-ed25519 AAAA... comment\")")
	}
	if len(keyStarts(strings.Fields(comment))) > 0 {
		// A second key pasted on the same line parses as the first one's
		// comment; registering it so would lose it silently.
		return SSHKey{}, errf(CodeBadInput, "more than one key: add them one at a time")
	}
	k := SSHKey{
		Fingerprint: ssh.FingerprintSHA256(pub),
		Key:         strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pub))),
		Comment:     comment,
		Added:       c.unix(),
	}
	if err := validText("comment", comment); err != nil {
		return SSHKey{}, err
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.mu.RLock()
	cur, ok := c.users[userID]
	owner, taken := c.userBySSHKey(k.Fingerprint)
	c.mu.RUnlock()
	switch {
	case !ok && a.Admin:
		return SSHKey{}, errf(CodeNotFound, "user does not exist")
	case !ok:
		return SSHKey{}, errForbidden
	case taken && owner == userID:
		return SSHKey{}, errf(CodeConflict, "the user already has this key")
	case taken:
		// Writes are serialized by wmu, so this check cannot race.
		return SSHKey{}, errf(CodeConflict, "this key belongs to another user")
	case len(cur.SSHKeys) >= MaxSSHKeysPerUser:
		return SSHKey{}, errf(CodeBadInput, "a user may have at most %d keys", MaxSSHKeysPerUser)
	}
	n := *cur
	n.SSHKeys = append(slices.Clone(cur.SSHKeys), sshKeyDoc(k))
	if err := update(ctx, c.st.Users, n.ID, cur, &n, "user"); err != nil {
		return SSHKey{}, err
	}
	c.mu.Lock()
	c.putUser(&n)
	c.mu.Unlock()
	c.emit(Event{Kind: UserChanged, ID: n.ID})
	c.audit(ctx, a, "addSshKey", "user "+cur.Email+" key "+k.Fingerprint)
	return k, nil
}

// AddSSHKeys registers every key of text, one key per line or several
// pasted on one line (a single-line input joins the lines). Each key must
// parse before any is added; it returns the keys added, and on an error
// part-way the ones added before it.
func (c *Core) AddSSHKeys(ctx context.Context, a Actor, userID ID, text string) ([]SSHKey, error) {
	if len(text) > 64<<10 {
		return nil, errf(CodeBadInput, "too much text for keys")
	}
	var lines []string
	for _, l := range strings.Split(text, "\n") {
		words := strings.Fields(l)
		starts := keyStarts(words)
		if len(starts) == 0 || starts[0] > 0 {
			// No key, or options before one: kept whole for AddSSHKey to
			// refuse with its reason.
			if len(words) > 0 {
				lines = append(lines, l)
			}
			continue
		}
		for i, start := range starts {
			end := len(words)
			if i+1 < len(starts) {
				end = starts[i+1]
			}
			lines = append(lines, strings.Join(words[start:end], " "))
		}
	}
	if len(lines) == 0 {
		return nil, errf(CodeBadInput, "no key given")
	}
	for i, l := range lines {
		if _, _, _, _, err := ssh.ParseAuthorizedKey([]byte(l)); err != nil && len(lines) > 1 {
			return nil, errf(CodeBadInput, "key %d of %d is not an OpenSSH public key", i+1, len(lines))
		}
	}
	var added []SSHKey
	for i, l := range lines {
		k, err := c.AddSSHKey(ctx, a, userID, l)
		var ce *Error
		switch {
		case err == nil:
		case len(lines) == 1:
			return nil, err
		case errors.As(err, &ce):
			// Which key failed, and that the ones before it stay, go into
			// the message: it is all the user is shown.
			msg := fmt.Sprintf("key %d of %d: %s", i+1, len(lines), ce.Msg)
			if i > 0 {
				msg += fmt.Sprintf(" (the %d before it were added)", i)
			}
			return added, &Error{Code: ce.Code, Msg: msg, Err: ce.Err}
		default:
			return added, fmt.Errorf("key %d of %d: %w", i+1, len(lines), err)
		}
		added = append(added, k)
	}
	return added, nil
}

// keyStarts finds where keys begin among words: a key type followed by a
// blob that decodes to a key of that type. A comment that merely names a
// key type ("my ssh-rsa key") is no key.
func keyStarts(words []string) []int {
	var out []int
	for i := 0; i+1 < len(words); i++ {
		blob, err := base64.StdEncoding.DecodeString(words[i+1])
		if err != nil {
			continue
		}
		pub, err := ssh.ParsePublicKey(blob)
		if err != nil || pub.Type() != words[i] {
			continue
		}
		out = append(out, i)
		i++
	}
	return out
}

// RemoveSSHKey deletes a user's key by fingerprint (admins, or the user).
func (c *Core) RemoveSSHKey(ctx context.Context, a Actor, userID ID, fingerprint string) error {
	if err := requireAuth(a); err != nil {
		return err
	}
	if !a.Admin && a.UserID != userID {
		return errForbidden
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.mu.RLock()
	cur, ok := c.users[userID]
	c.mu.RUnlock()
	if !ok {
		if a.Admin {
			return errf(CodeNotFound, "user does not exist")
		}
		return errForbidden
	}
	i := slices.IndexFunc(cur.SSHKeys, func(k store.SSHKey) bool { return k.Fingerprint == fingerprint })
	if i < 0 {
		return errf(CodeNotFound, "the user has no key with this fingerprint")
	}
	n := *cur
	n.SSHKeys = slices.Delete(slices.Clone(cur.SSHKeys), i, i+1)
	if err := update(ctx, c.st.Users, n.ID, cur, &n, "user"); err != nil {
		return err
	}
	c.mu.Lock()
	c.putUser(&n)
	c.mu.Unlock()
	c.emit(Event{Kind: UserChanged, ID: n.ID})
	c.audit(ctx, a, "removeSshKey", "user "+cur.Email+" key "+fingerprint)
	return nil
}

// userBySSHKey finds the owner of a key; callers hold c.mu.
func (c *Core) userBySSHKey(fingerprint string) (ID, bool) {
	for id, u := range c.users {
		for _, k := range u.SSHKeys {
			if k.Fingerprint == fingerprint {
				return id, true
			}
		}
	}
	var zero ID
	return zero, false
}

// ActorBySSHKey authenticates a console session by its public key.
func (c *Core) ActorBySSHKey(pub ssh.PublicKey) (Actor, bool) {
	fp := ssh.FingerprintSHA256(pub)
	c.mu.RLock()
	defer c.mu.RUnlock()
	id, ok := c.userBySSHKey(fp)
	if !ok {
		return Anonymous(), false
	}
	u := c.users[id]
	return Actor{UserID: u.ID, Email: u.Email, Admin: u.IsAdmin, TokenVersion: u.TokenVersion}, true
}

// FirstAdmin is the actor of keys listed in <data-dir>/authorized_keys:
// the oldest admin account.
func (c *Core) FirstAdmin() (Actor, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	var best *store.User
	for _, u := range c.users {
		if u.IsAdmin && (best == nil || u.Created < best.Created || u.Created == best.Created && u.ID.Hex() < best.ID.Hex()) {
			best = u
		}
	}
	if best == nil {
		return Anonymous(), false
	}
	return Actor{UserID: best.ID, Email: best.Email, Admin: true, TokenVersion: best.TokenVersion}, true
}
