package update

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestBundleFromURL reads a bundle over HTTP from an offset, as a resumed
// install from a URL does.
func TestBundleFromURL(t *testing.T) {
	data := make([]byte, 100000)
	_, _ = rand.Read(data)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "piot-v2.bundle"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	files := httptest.NewServer(http.FileServer(http.Dir(dir)))
	defer files.Close()
	src, err := OpenBundle(context.Background(), files.Client(), files.URL+"/piot-v2.bundle")
	if err != nil {
		t.Fatal(err)
	}
	if src.Size() != int64(len(data)) {
		t.Errorf("size %d", src.Size())
	}
	for _, off := range []int64{0, 12345} {
		r, err := src.Open(context.Background(), off)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(r)
		r.Close()
		if err != nil || !bytes.Equal(got, data[off:]) {
			t.Errorf("from %d: %d bytes, %v", off, len(got), err)
		}
	}
	if _, err := OpenBundle(context.Background(), files.Client(), files.URL+"/missing.bundle"); err == nil {
		t.Error("a missing bundle was opened")
	}
}

// TestFetchResumesAfterTheLinkDrops: the appliance downloads a bundle
// itself (the console's install from a URL); the first response breaks
// off half-way, and the next asks for the rest only.
func TestFetchResumesAfterTheLinkDrops(t *testing.T) {
	sf := newServiceFixture(t, SlotA)
	bundle := sf.bundle(t, sf.manifest(), sf.key)
	var requests atomic.Int32
	var mu sync.Mutex
	var ranges []string
	files := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			n := requests.Add(1)
			mu.Lock()
			ranges = append(ranges, r.Header.Get("Range"))
			mu.Unlock()
			if n == 2 { // the first GET after the header's
				w.Header().Set("Content-Length", strconv.Itoa(len(bundle)))
				_, _ = w.Write(bundle[:len(bundle)/2])
				w.(http.Flusher).Flush()
				panic(http.ErrAbortHandler)
			}
		}
		http.ServeContent(w, r, "piot.bundle", time.Time{}, bytes.NewReader(bundle))
	}))
	defer files.Close()
	if err := sf.svc.StartFetch(context.Background(), files.Client(), files.URL+"/piot.bundle"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for p := sf.svc.Progress(); p.Running; p = sf.svc.Progress() {
		if time.Now().After(deadline) {
			t.Fatalf("still downloading: %+v", p)
		}
		time.Sleep(20 * time.Millisecond)
	}
	p := sf.svc.Progress()
	if p.Err != "" || p.Done != int64(len(bundle)) || p.Total != int64(len(bundle)) {
		t.Fatalf("progress %+v", p)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(ranges) != 3 || ranges[1] != "" || !strings.HasPrefix(ranges[2], "bytes=") || ranges[2] == "bytes=0-" {
		t.Fatalf("requests' ranges: %q", ranges)
	}
	st := sf.status(t)
	if st.LastUpdate == nil || st.LastUpdate.Result != ResultInstalled || st.OtherSlotState != StateTrying || st.Fetch == nil {
		t.Fatalf("status %+v", st)
	}
	if data, _ := os.ReadFile(filepath.Join(sf.svc.Slots.Dir, "piot-b+3.efi")); !bytes.Equal(data, sf.image) {
		t.Error("slot b differs from the bundle's image")
	}
	t.Logf("resumed with %s of %d bytes", ranges[2], len(bundle))
}
