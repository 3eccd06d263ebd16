package appliance

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/piot-appliance/piot/appliance/dataformat"
	"github.com/piot-appliance/piot/appliance/update"
)

// TestUpdateIsForAdmins: /update exists when the slots are configured,
// and answers only admins (core.ActUpdate).
func TestUpdateIsForAdmins(t *testing.T) {
	cfg := testConfig(t)
	cfg.Update.SlotsDir = t.TempDir()
	_, pub, err := update.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	cfg.Update.Keys = filepath.Join(t.TempDir(), "keys.pem")
	if err := os.WriteFile(cfg.Update.Keys, pub, 0o644); err != nil {
		t.Fatal(err)
	}
	a, err := New(context.Background(), cfg, quiet, "v1.0.0")
	if err != nil {
		t.Fatal(err)
	}
	run(t, a)
	base := "http://" + a.HTTPAddr()
	var doPath func(method, path, token string) *http.Response

	do := func(method, token string) *http.Response {
		t.Helper()
		return doPath(method, "/update", token)
	}
	doPath = func(method, path, token string) *http.Response {
		t.Helper()
		// Larger than the API's body limit: /update streams its body.
		req, _ := http.NewRequest(method, base+path, bytes.NewReader(make([]byte, 3<<20)))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	for _, tc := range []struct{ method, path, token string }{
		{http.MethodGet, "/update", ""}, {http.MethodPost, "/update", ""}, {http.MethodPost, "/update", "not-a-token"},
		{http.MethodPost, "/update/reboot", ""}, {http.MethodDelete, "/update/reboot", "not-a-token"},
	} {
		if resp := doPath(tc.method, tc.path, tc.token); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s %s with token %q: %d", tc.method, tc.path, tc.token, resp.StatusCode)
		}
	}

	body, _ := json.Marshal(map[string]string{"email": cfg.Admin.Email, "password": cfg.Admin.Password})
	resp, err := http.Post(base+"/login", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var login struct{ Token string }
	_ = json.NewDecoder(resp.Body).Decode(&login)
	resp.Body.Close()
	if login.Token == "" {
		t.Fatal("no admin token")
	}
	resp = do(http.MethodGet, login.Token)
	var st update.Status
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil || resp.StatusCode != http.StatusOK || st.Version != "v1.0.0" {
		t.Fatalf("admin status: %d %+v %v", resp.StatusCode, st, err)
	}
	// This machine was not booted from a slot by systemd-boot.
	if _, err := os.Stat(filepath.Join(efivars, update.LoaderEntrySelected)); err == nil {
		t.Skip("the test machine was booted by systemd-boot")
	}
	if resp := do(http.MethodPost, login.Token); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("admin POST without a slot: %d", resp.StatusCode)
	}
	// Outside the image nothing can reboot; a bad time is the caller's.
	if resp := doPath(http.MethodPost, "/update/reboot", login.Token); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("reboot outside the image: %d", resp.StatusCode)
	}
	if resp := doPath(http.MethodPost, "/update/reboot?at=tomorrow", login.Token); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("reboot at tomorrow: %d", resp.StatusCode)
	}
	if resp := doPath(http.MethodGet, "/update/reboot", login.Token); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET /update/reboot: %d", resp.StatusCode)
	}
}

// TestDataTooNewIsRefused: a version does not start on data of a newer
// format (an update that migrated it, then a rollback without the
// snapshot) rather than misread it (issue 14).
func TestDataTooNewIsRefused(t *testing.T) {
	cfg := testConfig(t)
	a, err := New(context.Background(), cfg, quiet, "v1.0.0")
	if err != nil {
		t.Fatal(err)
	}
	run(t, a)
	f, ok, err := dataformat.Read(cfg.DataDir)
	if err != nil || !ok || f.Format != dataFormat || f.WrittenBy != "v1.0.0" {
		t.Fatalf("format file after the first start: %+v %v %v", f, ok, err)
	}

	cfg2 := testConfig(t)
	v := dataformat.Version{Name: "v9.0.0", Current: dataFormat + 1}
	if err := v.Prepare(context.Background(), cfg2.DataDir, nil); err != nil {
		t.Fatal(err)
	}
	_, err = New(context.Background(), cfg2, quiet, "v1.0.0")
	if !errors.Is(err, dataformat.ErrTooNew) || !strings.Contains(err.Error(), "written by v9.0.0") {
		t.Fatalf("New on newer data: %v", err)
	}
}

// Data of format 1 (before the history's hot hours) is snapshotted and
// raised to the current format at the first start of this version.
func TestFormatOneDataIsRaised(t *testing.T) {
	cfg := testConfig(t)
	old := dataformat.Version{Name: "v0.9.0", Current: 1}
	if err := old.Prepare(context.Background(), cfg.DataDir, nil); err != nil {
		t.Fatal(err)
	}
	a, err := New(context.Background(), cfg, quiet, "v1.0.0")
	if err != nil {
		t.Fatal(err)
	}
	run(t, a)
	f, ok, err := dataformat.Read(cfg.DataDir)
	if err != nil || !ok || f.Format != 2 || f.WrittenBy != "v1.0.0" {
		t.Fatalf("format file after the migration: %+v %v %v", f, ok, err)
	}
	if _, err := os.Stat(dataformat.SnapshotPath(cfg.DataDir, 1)); err != nil {
		t.Fatalf("no snapshot of the format 1 data: %v", err)
	}
}
