package authkeys

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
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
	return k, strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k)))
}

func TestParseAndRemoveKeepEveryOtherLine(t *testing.T) {
	k1, l1 := newKey(t)
	_, l2 := newKey(t)
	k3, l3 := newKey(t)
	file := "# console keys\n" + l1 + " alice@laptop\n\n" + l2 + " bob\n" +
		`from="10.0.0.1" ` + l3 + " restricted\n" + "not a key\n" + l1 + " alice-again\n"
	es := Parse([]byte(file))
	if len(es) != 5 {
		t.Fatalf("%d entries, want 5: %+v", len(es), es)
	}
	if es[0].Line != 2 || es[0].Comment != "alice@laptop" || !es[0].Honoured() || es[0].Fingerprint() != ssh.FingerprintSHA256(k1) {
		t.Errorf("first entry %+v", es[0])
	}
	if es[2].Honoured() || es[2].Fingerprint() != ssh.FingerprintSHA256(k3) || len(es[2].Options) != 1 {
		t.Errorf("a line with options must parse but not be honoured: %+v", es[2])
	}
	if es[3].Err == nil || es[3].Honoured() || es[3].Fingerprint() != "" {
		t.Errorf("a bad line must say why: %+v", es[3])
	}

	out, n, err := Remove([]byte(file), ssh.FingerprintSHA256(k1))
	if err != nil || n != 2 {
		t.Fatalf("Remove = %d, %v; want both lines of the key", n, err)
	}
	want := "# console keys\n\n" + l2 + " bob\n" + `from="10.0.0.1" ` + l3 + " restricted\n" + "not a key\n"
	if string(out) != want {
		t.Errorf("after Remove:\n%s\nwant:\n%s", out, want)
	}
	if _, _, err := Remove(out, ssh.FingerprintSHA256(k1)); !errors.Is(err, ErrNoSuchKey) {
		t.Errorf("removing it again: %v, want ErrNoSuchKey", err)
	}
}

func TestReadAndTrusted(t *testing.T) {
	dir := t.TempDir()
	if _, _, err := Read(filepath.Join(dir, "authorized_keys")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	p := filepath.Join(dir, "authorized_keys")
	if err := os.WriteFile(p, []byte("# nothing\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	data, mode, err := Read(p)
	if err != nil || string(data) != "# nothing\n" || !Trusted(mode) {
		t.Errorf("Read = %q, %v, %v", data, mode, err)
	}
	if Trusted(fs.FileMode(0o620)) || Trusted(fs.ModeDir|0o700) {
		t.Error("a group-writable file or a directory must not be trusted")
	}
	big := make([]byte, MaxFileSize+1)
	if err := os.WriteFile(p, big, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Read(p); err == nil {
		t.Error("a file over MaxFileSize must be refused")
	}
}
