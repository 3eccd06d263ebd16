package core

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
)

func newKey(t *testing.T) (ssh.PublicKey, string) {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return k, strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k))) + " laptop"
}

// keyUser is a core with its admin and a user without keys.
func keyUser(t *testing.T) (*Core, Actor, Actor) {
	t.Helper()
	c, _, admin := newCore(t)
	u, err := c.CreateUser(context.Background(), admin, "user@x.cz", "password1", false)
	if err != nil {
		t.Fatal(err)
	}
	return c, admin, Actor{UserID: u.ID, Email: u.Email}
}

func TestSSHKeys(t *testing.T) {
	c, admin, user := keyUser(t)
	ctx := context.Background()
	pub, line := newKey(t)
	k, err := c.AddSSHKey(ctx, user, user.UserID, line)
	if err != nil || k.Comment != "laptop" || !strings.HasPrefix(k.Fingerprint, "SHA256:") {
		t.Fatalf("add own key: %+v %v", k, err)
	}
	if a, ok := c.ActorBySSHKey(pub); !ok || a.UserID != user.UserID || a.Admin {
		t.Fatalf("actor by key: %+v %v", a, ok)
	}
	if _, err := c.AddSSHKey(ctx, admin, admin.UserID, line); CodeOf(err) != CodeConflict {
		t.Fatalf("same key for another user: %v", err)
	}
	if _, err := c.AddSSHKey(ctx, user, admin.UserID, line); CodeOf(err) != CodeForbidden {
		t.Fatalf("key for somebody else: %v", err)
	}
	if _, err := c.AddSSHKey(ctx, user, user.UserID, "ssh-rsa garbage"); CodeOf(err) != CodeBadInput {
		t.Fatalf("garbage key: %v", err)
	}
	if _, err := c.AddSSHKey(ctx, user, user.UserID, `command="sh" `+line); CodeOf(err) != CodeBadInput {
		t.Fatalf("key with options: %v", err)
	}
	if err := c.RemoveSSHKey(ctx, user, user.UserID, k.Fingerprint); err != nil {
		t.Fatal(err)
	}
	if _, ok := c.ActorBySSHKey(pub); ok {
		t.Fatal("removed key still logs in")
	}
	if fa, ok := c.FirstAdmin(); !ok || fa.UserID != admin.UserID {
		t.Fatalf("first admin: %+v", fa)
	}
}

// Keys pasted together (the console's one-line field joins the lines)
// are each added, never one swallowing the next as its comment.
func TestAddSeveralSSHKeys(t *testing.T) {
	c, _, user := keyUser(t)
	ctx := context.Background()
	_, one := newKey(t)
	_, two := newKey(t)
	if _, err := c.AddSSHKey(ctx, user, user.UserID, one+" "+two); CodeOf(err) != CodeBadInput {
		t.Fatalf("two keys on one line for AddSSHKey: %v", err)
	}
	for _, bad := range []string{"", "  \n ", one + " ssh-ed25519 garbage\nnot a key", `command="sh" ` + one + " " + two} {
		if keys, err := c.AddSSHKeys(ctx, user, user.UserID, bad); CodeOf(err) != CodeBadInput || len(keys) != 0 {
			t.Errorf("AddSSHKeys(%q) = %v, %v", bad, keys, err)
		}
	}
	keys, err := c.AddSSHKeys(ctx, user, user.UserID, one+" "+two)
	if err != nil || len(keys) != 2 || keys[0].Comment != "laptop" || keys[1].Comment != "laptop" {
		t.Fatalf("two keys on one line: %+v %v", keys, err)
	}
	if ks, _ := c.SSHKeys(user, user.UserID); len(ks) != 2 {
		t.Fatalf("stored %d keys", len(ks))
	}
	// A comment that names a key type is still a comment.
	_, three := newKey(t)
	keys, err = c.AddSSHKeys(ctx, user, user.UserID, "\n"+strings.TrimSuffix(three, "laptop")+"my ssh-rsa key\n\n")
	if err != nil || len(keys) != 1 || keys[0].Comment != "my ssh-rsa key" {
		t.Fatalf("comment naming a key type: %+v %v", keys, err)
	}
	// Part-way failure: the first is added, the second (taken) is named.
	_, four := newKey(t)
	keys, err = c.AddSSHKeys(ctx, user, user.UserID, four+"\n"+one)
	if CodeOf(err) != CodeConflict || !strings.Contains(err.Error(), "key 2 of 2") || len(keys) != 1 {
		t.Fatalf("second key taken: %+v %v", keys, err)
	}
}
