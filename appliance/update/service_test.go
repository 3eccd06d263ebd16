package update

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

type serviceFixture struct {
	*fixture
	svc *Service
	srv *httptest.Server
}

func newServiceFixture(t *testing.T, slot string) *serviceFixture {
	t.Helper()
	f := newFixture(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "piot-a.efi"), []byte("slot a"), 0o644); err != nil {
		t.Fatal(err)
	}
	svc := &Service{
		Version:     "v1.2.0",
		Slot:        slot,
		Slots:       Slots{Dir: dir},
		Verifier:    f.install.Verifier,
		OutcomeFile: filepath.Join(t.TempDir(), "update.json"),
		Log:         slog.New(slog.DiscardHandler),
	}
	srv := httptest.NewServer(svc.Handler(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Header.Get("Authorization") != "Bearer admin" {
			http.Error(w, "admins only", http.StatusForbidden)
			return false
		}
		return true
	}))
	t.Cleanup(srv.Close)
	return &serviceFixture{fixture: f, svc: svc, srv: srv}
}

func (sf *serviceFixture) post(t *testing.T, body []byte, contentRange string) (int, answer) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, sf.srv.URL+"/update", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer admin")
	if contentRange != "" {
		req.Header.Set("Content-Range", contentRange)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var a answer
	if err := json.NewDecoder(resp.Body).Decode(&a); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, a
}

func (sf *serviceFixture) status(t *testing.T) Status {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, sf.srv.URL+"/update", nil)
	req.Header.Set("Authorization", "Bearer admin")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st Status
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	return st
}

func TestPostUpdateInstallsIntoTheInactiveSlot(t *testing.T) {
	sf := newServiceFixture(t, SlotA)
	code, a := sf.post(t, sf.bundle(t, sf.manifest(), sf.key), "")
	if code != http.StatusOK || a.Slot != SlotB || a.Version != "v1.3.0" {
		t.Fatalf("%d %+v", code, a)
	}
	if got := files(t, sf.svc.Slots.Dir); !slices.Equal(got, []string{"piot-a.efi", "piot-b+3.efi"}) {
		t.Errorf("slots: %v", got)
	}
	if data, _ := os.ReadFile(filepath.Join(sf.svc.Slots.Dir, "piot-b+3.efi")); !bytes.Equal(data, sf.image) {
		t.Error("slot b differs from the bundle's image")
	}
	st := sf.status(t)
	if st.Slot != SlotA || st.OtherSlotState != StateTrying || st.LastUpdate == nil ||
		st.LastUpdate.Result != ResultInstalled || st.LastUpdate.Version != "v1.3.0" || st.Pending != nil {
		t.Errorf("status %+v (last %+v)", st, st.LastUpdate)
	}
}

func TestPostUpdateRefusesBeforeWriting(t *testing.T) {
	sf := newServiceFixture(t, SlotB)
	b := sf.bundle(t, sf.manifest(), sf.key)
	b[len(Magic)+KeyIDSize] ^= 1
	code, a := sf.post(t, b, "")
	if code != http.StatusUnprocessableEntity || a.Code != "REFUSED" {
		t.Fatalf("%d %+v", code, a)
	}
	if got := files(t, sf.svc.Slots.Dir); !slices.Equal(got, []string{"piot-a.efi"}) {
		t.Errorf("slots after a refused bundle: %v", got)
	}
	if st := sf.status(t); st.LastUpdate == nil || st.LastUpdate.Result != ResultRefused {
		t.Errorf("last update %+v", st.LastUpdate)
	}
	code, a = sf.post(t, b[:50], "")
	if code != http.StatusUnprocessableEntity || a.Code != "REFUSED" {
		t.Fatalf("truncated header: %d %+v", code, a)
	}
}

func TestPostUpdateResumes(t *testing.T) {
	sf := newServiceFixture(t, SlotA)
	b := sf.bundle(t, sf.manifest(), sf.key)
	half := int64(len(b) / 2)
	code, a := sf.post(t, b[:half], "")
	if code != http.StatusConflict || a.Code != "INTERRUPTED" || a.Offset == nil {
		t.Fatalf("interrupted: %d %+v", code, a)
	}
	st := sf.status(t)
	if st.Pending == nil || st.Pending.Offset != *a.Offset || st.Pending.Version != "v1.3.0" || st.LastUpdate != nil {
		t.Fatalf("status while pending: %+v %+v", st.Pending, st.LastUpdate)
	}
	off := st.Pending.Offset
	code, a = sf.post(t, b[off-1:], fmt.Sprintf("bytes %d-%d/%d", off-1, len(b)-1, len(b)))
	if code != http.StatusRequestedRangeNotSatisfiable || a.Offset == nil || *a.Offset != off {
		t.Fatalf("wrong offset: %d %+v", code, a)
	}
	code, a = sf.post(t, b[off:], fmt.Sprintf("bytes %d-%d/%d", off, len(b)-1, len(b)))
	if code != http.StatusOK || a.Slot != SlotB {
		t.Fatalf("resumed: %d %+v", code, a)
	}
	if data, _ := os.ReadFile(filepath.Join(sf.svc.Slots.Dir, "piot-b+3.efi")); !bytes.Equal(data, sf.image) {
		t.Error("resumed slot b differs from the bundle's image")
	}
}

func TestPostUpdateAuthorizes(t *testing.T) {
	sf := newServiceFixture(t, SlotA)
	resp, err := http.Post(sf.srv.URL+"/update", "application/octet-stream", bytes.NewReader(sf.bundle(t, sf.manifest(), sf.key)))
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("without a token: %d", resp.StatusCode)
	}
	if got := files(t, sf.svc.Slots.Dir); !slices.Equal(got, []string{"piot-a.efi"}) {
		t.Errorf("slots after an unauthorized post: %v", got)
	}
}

func TestPostUpdateWithoutSlot(t *testing.T) {
	sf := newServiceFixture(t, "")
	code, a := sf.post(t, sf.bundle(t, sf.manifest(), sf.key), "")
	if code != http.StatusServiceUnavailable {
		t.Fatalf("%d %+v", code, a)
	}
}

// TestPostUpdateOutlastsTheServerTimeout: a slow upload is cut off only
// when it stalls, not by the server's deadline for a whole request.
func TestPostUpdateOutlastsTheServerTimeout(t *testing.T) {
	sf := newServiceFixture(t, SlotA)
	srv := httptest.NewUnstartedServer(sf.svc.Handler(func(http.ResponseWriter, *http.Request) bool { return true }))
	srv.Config.ReadTimeout = 300 * time.Millisecond
	srv.Start()
	defer srv.Close()
	sf.svc.Idle = 5 * time.Second
	b := sf.bundle(t, sf.manifest(), sf.key)
	pr, pw := io.Pipe()
	go func() {
		const parts = 8
		for i := range parts {
			_, _ = pw.Write(b[i*len(b)/parts : (i+1)*len(b)/parts])
			time.Sleep(100 * time.Millisecond)
		}
		pw.Close()
	}()
	resp, err := http.Post(srv.URL+"/update", "application/octet-stream", pr)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		data, _ := io.ReadAll(resp.Body)
		t.Fatalf("%d %s", resp.StatusCode, data)
	}
}
