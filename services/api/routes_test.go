package api

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/piot-appliance/piot/services/core"
	"github.com/piot-appliance/piot/services/core/coretest"
)

// Every route of the table with the methods it refuses: the answer names
// the allowed methods in Allow and comes in the JSON error envelope.
func TestRoutesRefuseOtherMethods(t *testing.T) {
	ts := newTestServer(t, nil)
	for _, tc := range []struct {
		method, path, allow string
	}{
		{http.MethodGet, "/login", "POST"},
		{http.MethodPut, "/login", "POST"},
		{http.MethodGet, "/refresh", "POST"},
		{http.MethodGet, "/api/login", "POST"},
		{http.MethodDelete, "/api/refresh", "POST"},
		{http.MethodPost, "/", "GET, HEAD"},
		{http.MethodDelete, "/", "GET, HEAD"},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			w := ts.serve(tc.method, tc.path, nil)
			msg := "only POST method is allowed"
			if tc.allow != "POST" {
				msg = "only GET method is allowed"
			}
			wantError(t, w, http.StatusMethodNotAllowed, core.CodeBadInput, msg)
			if got := w.Header().Get("Allow"); got != tc.allow {
				t.Fatalf("Allow %q, want %q", got, tc.allow)
			}
		})
	}
}

func TestRoutesServeTheirPages(t *testing.T) {
	metrics := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("piot_up 1\n")) })
	ts := newTestServer(t, func(_ *Config, d *Deps) { d.Routes = map[string]http.Handler{"/metrics": metrics} })

	w := ts.serve(http.MethodGet, "/", nil)
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), "Version: v-test") ||
		w.Header().Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("GET /: %d %q %q", w.Code, w.Header().Get("Content-Type"), w.Body.String())
	}
	if w := ts.serve(http.MethodHead, "/", nil); w.Code != http.StatusOK {
		t.Fatalf("HEAD /: %d", w.Code)
	}
	if w := ts.serve(http.MethodGet, "/gql/", nil); w.Code != http.StatusOK || !strings.Contains(w.Body.String(), "<html") {
		t.Fatalf("GET /gql/: %d %.100q", w.Code, w.Body.String())
	}
	if w := ts.serve(http.MethodGet, "/metrics", nil); w.Code != http.StatusOK || w.Body.String() != "piot_up 1\n" {
		t.Fatalf("extra route: %d %q", w.Code, w.Body.String())
	}
	// The original manager's paths behind its reverse proxy.
	if w := ts.login(coretest.AdminEmail, coretest.AdminPassword); w.Code != http.StatusOK {
		t.Fatalf("/login: %d %s", w.Code, w.Body.String())
	}
	w = ts.serve(http.MethodPost, "/api/login", credentials{Email: coretest.AdminEmail, Password: coretest.AdminPassword})
	if w.Code != http.StatusOK {
		t.Fatalf("/api/login: %d %s", w.Code, w.Body.String())
	}
	w = ts.serve(http.MethodPost, "/api/query", map[string]string{"query": "{ userProfile { email } }"}, bearerToken(ts.token(ts.env.Admin)))
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), coretest.AdminEmail) {
		t.Fatalf("/api/query: %d %s", w.Code, w.Body.String())
	}
}

func TestUnknownPathsAreNotFound(t *testing.T) {
	ts := newTestServer(t, nil)
	wantError(t, ts.serve(http.MethodGet, "/nope", nil), http.StatusNotFound, core.CodeNotFound, "no such path")
	wantError(t, ts.serve(http.MethodPost, "/login/extra", nil), http.StatusNotFound, core.CodeNotFound, "no such path")
	// Below /api/ only the API's own routes exist.
	if w := ts.serve(http.MethodGet, "/api/healthz", nil); w.Code != http.StatusNotFound {
		t.Fatalf("/api/healthz: %d", w.Code)
	}
}

func TestHealthz(t *testing.T) {
	ts := newTestServer(t, func(_ *Config, d *Deps) {
		d.Ready = func(context.Context) error { return errors.New("store unreachable") }
	})
	w := ts.serve(http.MethodGet, "/healthz", nil)
	var body map[string]string
	decode(t, w, &body)
	if w.Code != http.StatusOK || len(body) != 1 || body["status"] != "ok" {
		t.Fatalf("healthz while not ready: %d %v", w.Code, body)
	}
	checkJSONHeaders(t, w)
}

func TestReadyz(t *testing.T) {
	var failing error
	var deadline time.Duration
	ts := newTestServer(t, func(_ *Config, d *Deps) {
		d.Ready = func(ctx context.Context) error {
			dl, _ := ctx.Deadline()
			deadline = time.Until(dl)
			return failing
		}
	})
	w := ts.serve(http.MethodGet, "/readyz", nil)
	var body map[string]string
	decode(t, w, &body)
	if w.Code != http.StatusOK || len(body) != 1 || body["status"] != "ready" {
		t.Fatalf("ready: %d %v", w.Code, body)
	}
	// The check may not hang the probe.
	if deadline <= 0 || deadline > 3*time.Second {
		t.Fatalf("Ready's deadline is %v away", deadline)
	}
	failing = errors.New("the journal cannot write: no space left on device")
	w = ts.serve(http.MethodGet, "/readyz", nil)
	body = nil
	decode(t, w, &body)
	if w.Code != http.StatusServiceUnavailable || body["status"] != "not ready" || body["reason"] != failing.Error() {
		t.Fatalf("not ready: %d %v", w.Code, body)
	}
	checkJSONHeaders(t, w)

	// Without a readiness check the server is ready once it serves.
	ts = newTestServer(t, nil)
	if w := ts.serve(http.MethodGet, "/readyz", nil); w.Code != http.StatusOK {
		t.Fatalf("no check: %d", w.Code)
	}
}

// A panicking handler answers 500 in the envelope instead of dropping the
// connection; http.ErrAbortHandler still aborts.
func TestPanicsAnswerInternalError(t *testing.T) {
	var logs strings.Builder // the handler runs on the test's goroutine
	ts := newTestServer(t, func(c *Config, d *Deps) {
		c.Logger = slog.New(slog.NewTextHandler(&logs, nil))
		d.Routes = map[string]http.Handler{
			"/boom":  http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("boom") }),
			"/abort": http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic(http.ErrAbortHandler) }),
		}
	})
	wantError(t, ts.serve(http.MethodGet, "/boom", nil), http.StatusInternalServerError, core.CodeInternal, "internal error")
	if !strings.Contains(logs.String(), "panic in HTTP handler") || !strings.Contains(logs.String(), "path=/boom") {
		t.Fatalf("logs: %s", logs.String())
	}
	defer func() {
		if v := recover(); v != http.ErrAbortHandler {
			t.Fatalf("recovered %v, want http.ErrAbortHandler", v)
		}
	}()
	ts.serve(http.MethodGet, "/abort", nil)
	t.Fatal("ErrAbortHandler did not reach the http.Server")
}
