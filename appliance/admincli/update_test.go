package admincli

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/piot-appliance/piot/appliance/update"
)

// flakySource drops the connection half-way through its second opening
// (the first reads the header).
type flakySource struct {
	data    []byte
	opens   atomic.Int32
	resumed atomic.Int64 // the offset of the last opening
}

func (f *flakySource) Size() int64 { return int64(len(f.data)) }

func (f *flakySource) Open(_ context.Context, offset int64) (io.ReadCloser, error) {
	f.resumed.Store(offset)
	r := io.Reader(bytes.NewReader(f.data[offset:]))
	if f.opens.Add(1) == 2 {
		r = io.MultiReader(io.LimitReader(r, int64(len(f.data))/2), errReader{})
	}
	return io.NopCloser(r), nil
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("link dropped") }

func TestUpdateContinuesAfterTheLinkDrops(t *testing.T) {
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	image := make([]byte, 2<<20)
	_, _ = rand.Read(image)
	sum := sha256.Sum256(image)
	var b bytes.Buffer
	m := update.Manifest{Version: "v2.0.0", Target: "x86_64", Slot: update.Slot{File: "piot.efi", SHA256: hex.EncodeToString(sum[:]), Size: int64(len(image))}}
	if err := update.Write(&b, m, key, bytes.NewReader(image)); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "piot-a.efi"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	svc := &update.Service{
		Version: "v1.0.0", Slot: update.SlotA, Slots: update.Slots{Dir: dir},
		Verifier:    update.Verifier{Keys: []ed25519.PublicKey{key.Public().(ed25519.PublicKey)}, Target: "x86_64", Running: "v1.0.0"},
		OutcomeFile: filepath.Join(t.TempDir(), "update.json"),
		Log:         slog.New(slog.DiscardHandler),
	}
	srv := httptest.NewServer(svc.Handler(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Header.Get("Authorization") != "Bearer tok" {
			http.Error(w, "no", http.StatusForbidden)
			return false
		}
		return true
	}))
	defer srv.Close()

	c := &Client{URL: srv.URL, Token: "tok"}
	src := &flakySource{data: b.Bytes()}
	var sent, total int64
	a, err := c.Update(context.Background(), src, func(s, t int64) { sent, total = s, t })
	if err != nil {
		t.Fatal(err)
	}
	if a.Version != "v2.0.0" || a.Slot != update.SlotB {
		t.Errorf("answer %+v", a)
	}
	if opens := src.opens.Load(); opens != 3 {
		t.Errorf("%d openings, want 3 (header, dropped, rest)", opens)
	}
	// Continued where the appliance had saved, not from the start.
	if off := src.resumed.Load(); off < int64(b.Len())/4 {
		t.Errorf("continued from %d of %d", off, b.Len())
	}
	if sent != total || total != int64(b.Len()) {
		t.Errorf("progress %d of %d, bundle %d", sent, total, b.Len())
	}
	got, err := os.ReadFile(filepath.Join(dir, "piot-b+3.efi"))
	if err != nil || !bytes.Equal(got, image) {
		t.Errorf("slot b: %v", err)
	}
	st, err := c.UpdateStatus(context.Background())
	if err != nil || st.LastUpdate == nil || st.LastUpdate.Result != update.ResultInstalled || st.Pending != nil {
		t.Errorf("status %+v %v", st, err)
	}
}
