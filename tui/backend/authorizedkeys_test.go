package backend

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/piot-appliance/piot/internal/authkeys"
	"github.com/piot-appliance/piot/services/core"
	gossh "golang.org/x/crypto/ssh"
)

// authorizedKeyLine is a fresh ed25519 key in authorized_keys form.
func authorizedKeyLine(t *testing.T) string {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k, err := gossh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(gossh.MarshalAuthorizedKey(k)))
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// keyFingerprints are the fingerprints of the file's keys, in order.
func keyFingerprints(t *testing.T, path string) []string {
	t.Helper()
	data, _, err := authkeys.Read(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range authkeys.Parse(data) {
		if fp := e.Fingerprint(); fp != "" {
			out = append(out, fp)
		}
	}
	return out
}

func TestAuthorizedKeysListAndRemove(t *testing.T) {
	ctx := core.WithSource(context.Background(), core.Source{Via: core.ViaConsole, Addr: "192.0.2.7"})
	dir := t.TempDir()
	path := filepath.Join(dir, "authorized_keys")
	keep, gone, opts := authorizedKeyLine(t), authorizedKeyLine(t), authorizedKeyLine(t)
	content := "# provisioned\n" + keep + " piot.admin_key\n" + gone + " old-laptop\n" +
		`command="true" ` + opts + " restricted\n" + "garbage\n"
	writeFile(t, path, content)
	k := NewAuthorizedKeys(fx.c, dir)

	f, err := k.List(ctx, fx.admin)
	if err != nil {
		t.Fatal(err)
	}
	if f.Path != path || f.Ignored != "" || len(f.Keys) != 4 {
		t.Fatalf("List = %+v", f)
	}
	if f.Keys[1].Comment != "old-laptop" || f.Keys[1].Type != "ssh-ed25519" || f.Keys[1].Skipped != "" || f.Keys[1].Line != 3 {
		t.Errorf("second key %+v", f.Keys[1])
	}
	if !strings.Contains(f.Keys[2].Skipped, "options") || !strings.Contains(f.Keys[3].Skipped, "not a key") || f.Keys[3].Fingerprint != "" {
		t.Errorf("skipped lines must say why: %+v %+v", f.Keys[2], f.Keys[3])
	}

	fp := f.Keys[1].Fingerprint
	if n, err := k.Remove(ctx, fx.admin, fp); err != nil || n != 1 {
		t.Fatalf("Remove = %d, %v", n, err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want := "# provisioned\n" + keep + " piot.admin_key\n" + `command="true" ` + opts + " restricted\n" + "garbage\n"
	if string(got) != want {
		t.Errorf("file after removal:\n%s\nwant:\n%s", got, want)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600 kept (the SSH server ignores a file others may write)", st.Mode())
	}
	entries, err := fx.c.AuditLog(ctx, fx.admin, core.AuditQuery{Contains: "removeAuthorizedKey"})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range entries {
		found = found || (e.Action == "removeAuthorizedKey" && strings.Contains(e.Target, fp) && strings.HasPrefix(e.Source, "console"))
	}
	if !found {
		t.Errorf("the removal is not in the audit trail: %+v", entries)
	}

	for _, bad := range []struct{ fp, code string }{
		{fp, string(core.CodeNotFound)},
		{"MD5:aa:bb", string(core.CodeBadInput)},
	} {
		if _, err := k.Remove(ctx, fx.admin, bad.fp); string(core.CodeOf(err)) != bad.code {
			t.Errorf("Remove(%q) = %v, want %s", bad.fp, err, bad.code)
		}
	}

	if err := os.Chmod(path, 0o664); err != nil {
		t.Fatal(err)
	}
	if f, err := k.List(ctx, fx.admin); err != nil || !strings.Contains(f.Ignored, "others may write") {
		t.Errorf("a group-writable file must be reported as ignored: %+v, %v", f, err)
	}
	if f, err := NewAuthorizedKeys(fx.c, t.TempDir()).List(ctx, fx.admin); err != nil || len(f.Keys) != 0 {
		t.Errorf("no file: %+v, %v", f, err)
	}
}
