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

func TestSSHKeys(t *testing.T) {
	c, _, admin := newCore(t)
	ctx := context.Background()
	u, err := c.CreateUser(ctx, admin, "user@x.cz", "password1", false)
	if err != nil {
		t.Fatal(err)
	}
	user := Actor{UserID: u.ID, Email: u.Email}
	pub, line := newKey(t)
	k, err := c.AddSSHKey(ctx, user, u.ID, line)
	if err != nil || k.Comment != "laptop" || !strings.HasPrefix(k.Fingerprint, "SHA256:") {
		t.Fatalf("add own key: %+v %v", k, err)
	}
	if a, ok := c.ActorBySSHKey(pub); !ok || a.UserID != u.ID || a.Admin {
		t.Fatalf("actor by key: %+v %v", a, ok)
	}
	if _, err := c.AddSSHKey(ctx, admin, admin.UserID, line); CodeOf(err) != CodeConflict {
		t.Fatalf("same key for another user: %v", err)
	}
	if _, err := c.AddSSHKey(ctx, user, admin.UserID, line); CodeOf(err) != CodeForbidden {
		t.Fatalf("key for somebody else: %v", err)
	}
	if _, err := c.AddSSHKey(ctx, user, u.ID, "ssh-rsa garbage"); CodeOf(err) != CodeBadInput {
		t.Fatalf("garbage key: %v", err)
	}
	if _, err := c.AddSSHKey(ctx, user, u.ID, `command="sh" `+line); CodeOf(err) != CodeBadInput {
		t.Fatalf("key with options: %v", err)
	}
	if err := c.RemoveSSHKey(ctx, user, u.ID, k.Fingerprint); err != nil {
		t.Fatal(err)
	}
	if _, ok := c.ActorBySSHKey(pub); ok {
		t.Fatal("removed key still logs in")
	}
	if fa, ok := c.FirstAdmin(); !ok || fa.UserID != admin.UserID {
		t.Fatalf("first admin: %+v", fa)
	}
}
