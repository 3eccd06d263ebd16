package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/piot-appliance/piot/appliance/update"
)

// TestBundleInstallsWithTheTrustedKeys: what build.sh does — a development
// key generated once, its public half written for the image, a bundle
// signed with it — gives a bundle the image's keys install.
func TestBundleInstallsWithTheTrustedKeys(t *testing.T) {
	dir := t.TempDir()
	keyDir := filepath.Join(dir, "keys")
	key, err := devKey(keyDir)
	if err != nil {
		t.Fatal(err)
	}
	if again, err := devKey(keyDir); err != nil || again != key {
		t.Fatalf("second call: %s, %v; want the same key", again, err)
	}
	if fi, err := os.Stat(key); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("signing key mode: %v %v", fi.Mode(), err)
	}
	trusted := filepath.Join(dir, "update-keys.pem")
	if err := keysCmd([]string{"-dir", keyDir, "-trusted-out", trusted}); err != nil {
		t.Fatal(err)
	}
	slot := filepath.Join(dir, "piot-a.efi")
	image := []byte("MZ not really a kernel, but bytes all the same")
	if err := os.WriteFile(slot, image, 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "piot-v1.bundle")
	if err := bundleCmd([]string{"-slot", slot, "-name", "piot.efi", "-key", key, "-version", "v1.0.0", "-o", out}); err != nil {
		t.Fatal(err)
	}

	pem, err := os.ReadFile(trusted)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := update.ParsePublicKeys(pem)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	in := update.Installer{
		Verifier: update.Verifier{Keys: keys, Target: "x86_64", Running: "v0.9.0"},
		Partial:  filepath.Join(dir, "slot.partial"),
	}
	res, err := in.Install(b, 0)
	if err != nil {
		t.Fatal(err)
	}
	if res.Manifest.Version != "v1.0.0" || res.Manifest.Slot.File != "piot.efi" || res.Manifest.Slot.Size != int64(len(image)) {
		t.Errorf("manifest %+v", res.Manifest)
	}
	if got, _ := os.ReadFile(in.Partial); string(got) != string(image) {
		t.Error("installed slot differs")
	}
}

// TestTrustedKeysMustIncludeTheSigningKey: an image that cannot install
// its own bundles is refused at build time.
func TestTrustedKeysMustIncludeTheSigningKey(t *testing.T) {
	dir := t.TempDir()
	if _, err := devKey(dir); err != nil {
		t.Fatal(err)
	}
	_, other, err := update.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	trusted := filepath.Join(dir, "other.pem")
	if err := os.WriteFile(trusted, other, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := keysCmd([]string{"-dir", dir, "-trusted", trusted}); err == nil {
		t.Fatal("trusted keys without the signing key were accepted")
	}
}
