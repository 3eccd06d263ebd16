package update

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"
)

type fixture struct {
	key     ed25519.PrivateKey
	image   []byte
	install Installer
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	image := make([]byte, 3<<20+17) // not a multiple of any buffer
	if _, err := rand.Read(image); err != nil {
		t.Fatal(err)
	}
	return &fixture{
		key:   key,
		image: image,
		install: Installer{
			Verifier: Verifier{Keys: []ed25519.PublicKey{key.Public().(ed25519.PublicKey)}, Target: "x86_64", Running: "v1.2.0"},
			Partial:  filepath.Join(t.TempDir(), "slot.partial"),
			// Small, so that an interrupted stream has saved state.
			SyncEvery: 256 << 10,
		},
	}
}

func (f *fixture) manifest() Manifest {
	sum := sha256.Sum256(f.image)
	return Manifest{
		Version:   "v1.3.0",
		BuildTime: time.Date(2026, 12, 6, 17, 0, 0, 0, time.UTC),
		Target:    "x86_64",
		Slot:      Slot{File: "piot.efi", SHA256: hex.EncodeToString(sum[:]), Size: int64(len(f.image))},
	}
}

func (f *fixture) bundle(t *testing.T, m Manifest, key ed25519.PrivateKey) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := Write(&b, m, key, bytes.NewReader(f.image)); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func (f *fixture) installed(t *testing.T) []byte {
	t.Helper()
	data, err := os.ReadFile(f.install.Partial)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func (f *fixture) assertNothingWritten(t *testing.T) {
	t.Helper()
	for _, p := range []string{f.install.Partial, f.install.statePath()} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s exists after a refused bundle (%v)", p, err)
		}
	}
}

func TestInstallWritesTheSlotImage(t *testing.T) {
	f := newFixture(t)
	res, err := f.install.Install(bytes.NewReader(f.bundle(t, f.manifest(), f.key)), 0)
	if err != nil {
		t.Fatal(err)
	}
	if res.Manifest.Version != "v1.3.0" || res.Resumed != 0 {
		t.Errorf("result %+v", res)
	}
	if !bytes.Equal(f.installed(t), f.image) {
		t.Error("slot image differs from the bundle's")
	}
	if p, err := f.install.Pending(); p != nil || err != nil {
		t.Errorf("pending after a complete install: %+v %v", p, err)
	}
}

// TestRefusedBeforeWriting: every bundle that must not be installed is
// refused with its own error before the slot file exists.
func TestRefusedBeforeWriting(t *testing.T) {
	f := newFixture(t)
	_, stranger, _ := ed25519.GenerateKey(rand.Reader)
	good := f.bundle(t, f.manifest(), f.key)
	head := fixedHeader + int(binary.BigEndian.Uint32(good[fixedHeader-4:]))

	flip := func(at int) []byte {
		b := bytes.Clone(good)
		b[at] ^= 1
		return b
	}
	withManifest := func(edit func(*Manifest)) []byte {
		m := f.manifest()
		edit(&m)
		return f.bundle(t, m, f.key)
	}
	// A manifest this program would not write, validly signed.
	signedRaw := func(raw string) []byte {
		h := &Header{KeyID: KeyIDOf(f.key.Public().(ed25519.PublicKey)), Signature: ed25519.Sign(f.key, []byte(raw)), Raw: []byte(raw)}
		b, err := h.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		return append(b, f.image...)
	}
	sum := f.manifest().Slot.SHA256

	for _, tc := range []struct {
		name   string
		bundle []byte
		want   error
	}{
		{"empty", nil, ErrTruncated},
		{"truncated in the fixed header", good[:40], ErrTruncated},
		{"truncated in the manifest", good[:head-3], ErrTruncated},
		{"not a bundle", append([]byte("MZ\x90\x00"), good[4:]...), ErrMalformed},
		{"manifest length zero", append(bytes.Clone(good[:fixedHeader-4]), 0, 0, 0, 0), ErrMalformed},
		{"manifest length huge", append(bytes.Clone(good[:fixedHeader-4]), 0x7f, 0, 0, 0), ErrMalformed},
		{"bad signature", flip(len(Magic) + KeyIDSize + 3), ErrBadSignature},
		{"manifest changed after signing", flip(head - 5), ErrBadSignature},
		{"unknown key", f.bundle(t, f.manifest(), stranger), ErrUnknownKey},
		{"unknown key claiming a trusted id", func() []byte {
			b := f.bundle(t, f.manifest(), stranger)
			id := KeyIDOf(f.key.Public().(ed25519.PublicKey))
			copy(b[len(Magic):], id[:])
			return b
		}(), ErrBadSignature},
		{"other target", withManifest(func(m *Manifest) { m.Target = "aarch64" }), ErrWrongTarget},
		{"running version below the minimum", withManifest(func(m *Manifest) { m.MinVersion = "v1.2.1" }), ErrTooOld},
		{"minimum that cannot be compared", withManifest(func(m *Manifest) { m.MinVersion = "c9e8a12" }), ErrTooOld},
		{"manifest not JSON", signedRaw("format: 1"), ErrMalformed},
		{"manifest of another format", signedRaw(`{"format":2,"version":"v2","target":"x86_64","slot":{"file":"a","sha256":"` + sum + `","size":5}}`), ErrMalformed},
		{"manifest with an unknown field", signedRaw(`{"format":1,"version":"v2","target":"x86_64","slot":{"file":"a","sha256":"` + sum + `","size":5},"preinstall":"rm -rf /"}`), ErrMalformed},
		{"manifest without a version", signedRaw(`{"format":1,"target":"x86_64","slot":{"file":"a","sha256":"` + sum + `","size":5}}`), ErrMalformed},
		{"manifest with a negative size", signedRaw(`{"format":1,"version":"v2","target":"x86_64","slot":{"file":"a","sha256":"` + sum + `","size":-1}}`), ErrMalformed},
		{"manifest with a bad hash", signedRaw(`{"format":1,"version":"v2","target":"x86_64","slot":{"file":"a","sha256":"abc","size":5}}`), ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.install.Install(bytes.NewReader(tc.bundle), 0)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			f.assertNothingWritten(t)
		})
	}
}

func TestMinimumVersionAllowsNewerRunning(t *testing.T) {
	f := newFixture(t)
	for _, running := range []string{"v1.2.0", "v1.2.0-3-gabc1234", "v1.10.0", "1.2.0-dirty"} {
		f.install.Verifier.Running = running
		m := f.manifest()
		m.MinVersion = "v1.2.0"
		if _, err := f.install.Install(bytes.NewReader(f.bundle(t, m, f.key)), 0); err != nil {
			t.Errorf("running %s: %v", running, err)
		}
	}
}

func TestHashMismatchDiscardsThePartialImage(t *testing.T) {
	f := newFixture(t)
	b := f.bundle(t, f.manifest(), f.key)
	b[len(b)-100] ^= 0xff // the payload is not signed itself: its hash is
	_, err := f.install.Install(bytes.NewReader(b), 0)
	if !errors.Is(err, ErrHashMismatch) {
		t.Fatalf("got %v, want %v", err, ErrHashMismatch)
	}
	f.assertNothingWritten(t)
}

func TestTrailingDataIsRefused(t *testing.T) {
	f := newFixture(t)
	b := append(f.bundle(t, f.manifest(), f.key), 0)
	if _, err := f.install.Install(bytes.NewReader(b), 0); !errors.Is(err, ErrMalformed) {
		t.Fatalf("got %v, want %v", err, ErrMalformed)
	}
	f.assertNothingWritten(t)
}

// failingReader gives n bytes of r, then fails as a dropped connection does.
type failingReader struct {
	r io.Reader
	n int64
}

func (fr *failingReader) Read(p []byte) (int, error) {
	if fr.n <= 0 {
		return 0, errors.New("connection reset")
	}
	if int64(len(p)) > fr.n {
		p = p[:fr.n]
	}
	n, err := fr.r.Read(p)
	fr.n -= int64(n)
	return n, err
}

func TestResumeContinuesWhereTheStreamStopped(t *testing.T) {
	for _, tc := range []struct {
		name string
		cut  func([]byte, int64) io.Reader
		want error
	}{
		{"stream ends", func(b []byte, n int64) io.Reader { return bytes.NewReader(b[:n]) }, ErrTruncated},
		{"connection drops", func(b []byte, n int64) io.Reader { return &failingReader{r: bytes.NewReader(b), n: n} }, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			b := f.bundle(t, f.manifest(), f.key)
			cut := int64(len(b)/2 + 12345)
			_, err := f.install.Install(tc.cut(b, cut), 0)
			if err == nil || (tc.want != nil && !errors.Is(err, tc.want)) {
				t.Fatalf("interrupted install: got %v, want %v", err, tc.want)
			}
			p, err := f.install.Pending()
			if err != nil || p == nil || p.Version != "v1.3.0" || p.Size != int64(len(b)) {
				t.Fatalf("pending: %+v %v", p, err)
			}
			offset := p.Offset
			// Everything read was saved: nothing is fetched twice.
			if offset != cut {
				t.Errorf("resume offset %d, want %d", offset, cut)
			}
			var oe *OffsetError
			if _, err := f.install.Install(bytes.NewReader(b[offset-10:]), offset-10); !errors.As(err, &oe) || oe.Want != offset {
				t.Fatalf("resume at a wrong offset: %v", err)
			}
			// A second interruption, then the rest.
			second := offset + 1000
			if _, err := f.install.Install(bytes.NewReader(b[offset:second]), offset); !errors.Is(err, ErrTruncated) {
				t.Fatalf("second interruption: %v", err)
			}
			res, err := f.install.Install(bytes.NewReader(b[second:]), second)
			if err != nil {
				t.Fatal(err)
			}
			if res.Resumed != second {
				t.Errorf("resumed at %d, want %d", res.Resumed, second)
			}
			if !bytes.Equal(f.installed(t), f.image) {
				t.Error("resumed slot image differs from the bundle's")
			}
			if p, _ := f.install.Pending(); p != nil {
				t.Error("still pending after completion")
			}
		})
	}
}

// TestResumeAfterPowerCut: bytes written after the last state save may be
// garbage after a power cut; the resume writes them again.
func TestResumeAfterPowerCut(t *testing.T) {
	f := newFixture(t)
	b := f.bundle(t, f.manifest(), f.key)
	if _, err := f.install.Install(bytes.NewReader(b[:len(b)/2]), 0); !errors.Is(err, ErrTruncated) {
		t.Fatal(err)
	}
	p, _ := f.install.Pending()
	offset := p.Offset
	part, err := os.OpenFile(f.install.Partial, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := part.Write(bytes.Repeat([]byte{0xee}, 5000)); err != nil {
		t.Fatal(err)
	}
	part.Close()
	if _, err := f.install.Install(bytes.NewReader(b[offset:]), offset); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(f.installed(t), f.image) {
		t.Error("slot image differs from the bundle's")
	}
}

func TestResumeWithoutPartialInstall(t *testing.T) {
	f := newFixture(t)
	b := f.bundle(t, f.manifest(), f.key)
	var oe *OffsetError
	if _, err := f.install.Install(bytes.NewReader(b[100:]), 100); !errors.As(err, &oe) || oe.Want != 0 {
		t.Fatalf("got %v, want an offset error asking for 0", err)
	}
	f.assertNothingWritten(t)
}

// TestResumeRefusedWhenKeysChanged: the saved header is verified again.
func TestResumeRefusedWhenKeysChanged(t *testing.T) {
	f := newFixture(t)
	b := f.bundle(t, f.manifest(), f.key)
	if _, err := f.install.Install(bytes.NewReader(b[:len(b)/2]), 0); !errors.Is(err, ErrTruncated) {
		t.Fatal(err)
	}
	p, _ := f.install.Pending()
	offset := p.Offset
	other, _, _ := ed25519.GenerateKey(rand.Reader)
	f.install.Verifier.Keys = []ed25519.PublicKey{other}
	if _, err := f.install.Install(bytes.NewReader(b[offset:]), offset); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("got %v, want %v", err, ErrUnknownKey)
	}
}

func TestNewBundleReplacesPartialInstall(t *testing.T) {
	f := newFixture(t)
	b := f.bundle(t, f.manifest(), f.key)
	if _, err := f.install.Install(bytes.NewReader(b[:len(b)/2]), 0); !errors.Is(err, ErrTruncated) {
		t.Fatal(err)
	}
	if _, err := f.install.Install(bytes.NewReader(b), 0); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(f.installed(t), f.image) {
		t.Error("slot image differs from the bundle's")
	}
}

func TestKeysRoundTrip(t *testing.T) {
	priv, pub, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	key, err := ParsePrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	priv2, _, _ := GenerateKey()
	key2, _ := ParsePrivateKey(priv2)
	pub2, _ := PublicKeyPEM(key2)
	keys, err := ParsePublicKeys(append(pub, pub2...))
	if err != nil || len(keys) != 2 {
		t.Fatalf("%d keys, %v", len(keys), err)
	}
	if !keys[0].Equal(key.Public()) || !keys[1].Equal(key2.Public()) {
		t.Error("public keys do not match the private ones")
	}
	if _, err := ParsePublicKeys(priv); err == nil {
		t.Error("a private key was read as public keys")
	}
}

func TestOlderThan(t *testing.T) {
	for _, tc := range []struct {
		a, b  string
		older bool
	}{
		{"v1.2.3", "v1.2.4", true},
		{"v1.2.4", "v1.2.3", false},
		{"v1.2.3", "v1.2.3", false},
		{"v1.2.3", "v1.2.3-1-gabc", true},
		{"v1.2.3-2-gabc", "v1.2.3-10-gdef", true},
		{"v1.9", "v1.10", true},
		{"v2", "v1.99.99", false},
		{"v1.2.3-dirty", "v1.2.3", false},
	} {
		older, err := olderThan(tc.a, tc.b)
		if err != nil || older != tc.older {
			t.Errorf("olderThan(%s, %s) = %v, %v; want %v", tc.a, tc.b, older, err, tc.older)
		}
	}
	for _, bad := range []string{"dev", "c9e8a12", "4519285", "4519285-dirty", "v1.2.3.4", "v1.x", "v1.2.3-rc1"} {
		if _, err := olderThan(bad, "v1.0.0"); err == nil {
			t.Errorf("%q was ordered", bad)
		}
	}
}
