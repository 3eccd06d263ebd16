package monitor

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/piot-appliance/piot/services/core"
)

const alertToken = "0123456789abcdef0123456789abcdef"

func TestGrafanaAlerts(t *testing.T) {
	e := newEnv(t)
	id := e.thing(t, "T1", e.org, true, 0)
	m, err := New(Config{Logger: e.log}, Deps{Core: e.c, Store: e.st})
	if err != nil {
		t.Fatal(err)
	}
	things := func(org, thing string) (core.ID, bool) { return id, org == "acme" && thing == "T1" }
	h := m.GrafanaAlerts(alertToken, things)
	send := func(method, auth, body string) (int, map[string]any) {
		t.Helper()
		r := httptest.NewRequest(method, "/alerts/grafana", strings.NewReader(body))
		if auth != "" {
			r.Header.Set("Authorization", auth)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		var out map[string]any
		_ = json.Unmarshal(w.Body.Bytes(), &out)
		return w.Code, out
	}
	alert := func(status, org, thing, kind string) string {
		return fmt.Sprintf(`{"alerts":[{"status":%q,"labels":{"piot_alert":%q,"org":%q,"thing":%q}}]}`, status, kind, org, thing)
	}

	for _, tc := range []struct {
		name, method, auth, body string
		want                     int
	}{
		{"GET", http.MethodGet, "Bearer " + alertToken, "", http.StatusMethodNotAllowed},
		{"no token", http.MethodPost, "", `{"alerts":[]}`, http.StatusUnauthorized},
		{"wrong token", http.MethodPost, "Bearer wrong", `{"alerts":[]}`, http.StatusUnauthorized},
		{"not bearer", http.MethodPost, "Basic " + alertToken, `{"alerts":[]}`, http.StatusUnauthorized},
		{"malformed", http.MethodPost, "Bearer " + alertToken, `{"alerts":`, http.StatusBadRequest},
	} {
		if st, _ := send(tc.method, tc.auth, tc.body); st != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, st, tc.want)
		}
	}
	if e.state(t, id).AlarmActive {
		t.Fatal("refused requests raised the alarm")
	}

	st, out := send(http.MethodPost, "Bearer "+alertToken, alert("firing", "acme", "T1", "thing_not_seen"))
	if st != http.StatusOK || out["applied"] != float64(1) || !e.state(t, id).AlarmActive {
		t.Fatalf("firing: %d %v, alarm %v", st, out, e.state(t, id).AlarmActive)
	}
	st, out = send(http.MethodPost, "bearer "+alertToken, alert("resolved", "acme", "T1", "thing_not_seen"))
	if st != http.StatusOK || out["applied"] != float64(1) || e.state(t, id).AlarmActive {
		t.Fatalf("resolved: %d %v, alarm %v", st, out, e.state(t, id).AlarmActive)
	}
	st, out = send(http.MethodPost, "Bearer "+alertToken, alert("firing", "acme", "T2", "thing_not_seen"))
	if st != http.StatusOK || out["applied"] != float64(0) || out["unknown"] != float64(1) {
		t.Fatalf("unknown thing: %d %v", st, out)
	}
	st, out = send(http.MethodPost, "Bearer "+alertToken, alert("firing", "acme", "T1", "disk_full"))
	if st != http.StatusOK || out["applied"] != float64(0) || e.state(t, id).AlarmActive {
		t.Fatalf("another alert: %d %v", st, out)
	}

	// Without a token nothing is accepted, not even an empty bearer.
	r := httptest.NewRequest(http.MethodPost, "/alerts/grafana", strings.NewReader(`{"alerts":[]}`))
	r.Header.Set("Authorization", "Bearer ")
	w := httptest.NewRecorder()
	m.GrafanaAlerts("", things).ServeHTTP(w, r)
	if w.Code != http.StatusUnauthorized {
		t.Fatalf("empty token: %d", w.Code)
	}
}
