package api

import (
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"github.com/piot-appliance/piot/services/core"
	"github.com/piot-appliance/piot/services/core/coretest"
)

// onlyReader hides the length of a body, as a chunked upload does.
type onlyReader struct{ io.Reader }

func TestBodiesOverTheLimitGet413(t *testing.T) {
	ts := newTestServer(t, nil)
	tooLarge := fmt.Sprintf("request body larger than %d bytes", MaxBodyBytes)
	big := strings.Repeat("x", MaxBodyBytes+1)
	for _, path := range []string{"/login", "/register", "/query", "/nope"} {
		// Announced in Content-Length, and found while reading.
		wantError(t, ts.serve(http.MethodPost, path, big), http.StatusRequestEntityTooLarge, core.CodeBadInput, tooLarge)
		wantError(t, ts.serve(http.MethodPost, path, onlyReader{strings.NewReader(big)}), http.StatusRequestEntityTooLarge, core.CodeBadInput, tooLarge)
	}
	// A body of exactly the limit reaches the handler, whole.
	pad := strings.Repeat(" ", MaxBodyBytes-len(`{"email":"","password":""}`)-len(coretest.AdminEmail)-len(coretest.AdminPassword))
	body := `{"email":"` + coretest.AdminEmail + `","password":"` + coretest.AdminPassword + `"}` + pad
	if w := ts.serve(http.MethodPost, "/login", onlyReader{strings.NewReader(body)}); w.Code != http.StatusOK {
		t.Fatalf("a body of %d bytes: %d %s", len(body), w.Code, w.Body.String())
	}
}

// The error envelope of the original server, {"error","result"}, with the
// machine-readable code added: every key is always there.
func TestErrorEnvelope(t *testing.T) {
	ts := newTestServer(t, nil)
	w := ts.login(coretest.AdminEmail, "wrong")
	want := `{"error":"` + badLogin + `","result":"","code":"UNAUTHENTICATED"}` + "\n"
	if w.Body.String() != want {
		t.Fatalf("body %q, want %q", w.Body.String(), want)
	}
	checkJSONHeaders(t, w)
	for code, status := range map[core.Code]int{
		core.CodeUnauthenticated: http.StatusUnauthorized,
		core.CodeForbidden:       http.StatusForbidden,
		core.CodeNotFound:        http.StatusNotFound,
		core.CodeBadInput:        http.StatusBadRequest,
		core.CodeConflict:        http.StatusConflict,
		core.CodeRateLimited:     http.StatusTooManyRequests,
		core.CodeUnavailable:     http.StatusServiceUnavailable,
		core.CodeStorageFull:     http.StatusInsufficientStorage,
		core.CodeInternal:        http.StatusInternalServerError,
		core.CodeTimeout:         http.StatusInternalServerError,
	} {
		if got := statusOf(code); got != status {
			t.Errorf("statusOf(%s) = %d, want %d", code, got, status)
		}
	}
}

func TestCORSWithoutOrigins(t *testing.T) {
	ts := newTestServer(t, nil)
	// A page of another origin may send simple requests (the browser
	// withholds the answer from it), but no preflight passes.
	w := ts.serve(http.MethodGet, "/healthz", nil, header("Origin", "https://elsewhere.example"))
	if w.Code != http.StatusOK || w.Header().Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("simple request: %d %v", w.Code, w.Header())
	}
	w = ts.serve(http.MethodOptions, "/query", nil, header("Origin", "https://elsewhere.example"),
		header("Access-Control-Request-Method", "POST"))
	wantError(t, w, http.StatusForbidden, core.CodeForbidden, "origin not allowed (--cors-origins)")
	if w.Header().Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("preflight allowed: %v", w.Header())
	}
	// A preflight without an Origin is refused as well.
	w = ts.serve(http.MethodOptions, "/login", nil, header("Access-Control-Request-Method", "POST"))
	wantError(t, w, http.StatusForbidden, core.CodeForbidden, "origin not allowed (--cors-origins)")
	// OPTIONS that is no preflight goes to the route.
	w = ts.serve(http.MethodOptions, "/login", nil, header("Origin", "https://elsewhere.example"))
	wantError(t, w, http.StatusMethodNotAllowed, core.CodeBadInput, "only POST method is allowed")
}

func TestCORSWithOrigins(t *testing.T) {
	ts := newTestServer(t, func(c *Config, _ *Deps) {
		c.CORSOrigins = []string{"https://manager.example/", "http://localhost:3000"}
	})
	for _, origin := range []string{"https://manager.example", "http://localhost:3000"} {
		w := ts.serve(http.MethodOptions, "/query", nil, header("Origin", origin), header("Access-Control-Request-Method", "POST"))
		if w.Code != http.StatusNoContent || w.Body.Len() != 0 {
			t.Fatalf("%s preflight: %d %q", origin, w.Code, w.Body.String())
		}
		for name, want := range map[string]string{
			"Access-Control-Allow-Origin":  origin,
			"Access-Control-Allow-Methods": "GET, POST, OPTIONS",
			"Access-Control-Allow-Headers": "Authorization, Content-Type",
			"Access-Control-Max-Age":       "600",
			"Vary":                         "Origin",
		} {
			if got := w.Header().Get(name); got != want {
				t.Errorf("%s preflight: %s %q, want %q", origin, name, got, want)
			}
		}
		w = ts.login(coretest.AdminEmail, coretest.AdminPassword, header("Origin", origin))
		if w.Code != http.StatusOK || w.Header().Get("Access-Control-Allow-Origin") != origin || w.Header().Get("Vary") != "Origin" {
			t.Fatalf("%s login: %d %v", origin, w.Code, w.Header())
		}
		if w.Header().Get("Access-Control-Allow-Methods") != "" {
			t.Fatalf("%s login carries preflight headers: %v", origin, w.Header())
		}
	}
	// Origins are compared whole: no prefixes, no other scheme or port.
	for _, origin := range []string{"https://manager.example.evil", "http://manager.example", "http://localhost:3001", "null"} {
		w := ts.serve(http.MethodOptions, "/query", nil, header("Origin", origin), header("Access-Control-Request-Method", "POST"))
		wantError(t, w, http.StatusForbidden, core.CodeForbidden, "origin not allowed (--cors-origins)")
		w = ts.serve(http.MethodGet, "/healthz", nil, header("Origin", origin))
		if w.Code != http.StatusOK || w.Header().Get("Access-Control-Allow-Origin") != "" {
			t.Fatalf("%s: %d %v", origin, w.Code, w.Header())
		}
	}
}

func TestClientAddress(t *testing.T) {
	s := ClientAddr{Trusted: []netip.Prefix{
		netip.MustParsePrefix("192.0.2.0/28"),
		netip.MustParsePrefix("2001:db8::/64"),
	}}
	for _, tc := range []struct {
		name, peer string
		forwarded  []string
		want       string
	}{
		{"no proxy", "203.0.113.5:4000", nil, "203.0.113.5"},
		{"untrusted peer's header is ignored", "203.0.113.5:4000", []string{"198.51.100.7"}, "203.0.113.5"},
		{"trusted proxy", "192.0.2.1:4000", []string{"198.51.100.7"}, "198.51.100.7"},
		{"trusted proxy without the header", "192.0.2.1:4000", nil, "192.0.2.1"},
		{"the last hop the proxies did not add", "192.0.2.1:4000", []string{"203.0.113.66, 198.51.100.7, 192.0.2.2"}, "198.51.100.7"},
		{"several header lines", "192.0.2.1:4000", []string{"203.0.113.66", "198.51.100.7"}, "198.51.100.7"},
		{"only proxies", "192.0.2.1:4000", []string{"192.0.2.3, 192.0.2.2"}, "192.0.2.1"},
		{"garbled last hop", "192.0.2.1:4000", []string{"198.51.100.7, not-an-ip"}, "192.0.2.1"},
		{"garbled before a real hop", "192.0.2.1:4000", []string{"not-an-ip, 198.51.100.7"}, "198.51.100.7"},
		{"just outside the prefix", "192.0.2.16:4000", []string{"198.51.100.7"}, "192.0.2.16"},
		{"IPv6 proxy", "[2001:db8::1]:4000", []string{"2001:db8:1::9"}, "2001:db8:1::9"},
		{"IPv4-mapped proxy", "[::ffff:192.0.2.1]:4000", []string{"198.51.100.7"}, "198.51.100.7"},
		{"peer without a port", "203.0.113.5", []string{"198.51.100.7"}, "203.0.113.5"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, _ := http.NewRequest(http.MethodGet, "/", nil)
			r.RemoteAddr = tc.peer
			for _, v := range tc.forwarded {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := s.Of(r); got != tc.want {
				t.Fatalf("clientAddr = %q, want %q", got, tc.want)
			}
		})
	}
}

// Behind a trusted proxy the failed-login limit applies to each client the
// proxy forwards; a header from anybody else cannot spread one client's
// failures over made-up addresses.
func TestForwardedForCountsOnlyFromTrustedProxies(t *testing.T) {
	ts := newTestServer(t, func(c *Config, _ *Deps) {
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("192.0.2.1/32")}
		c.LoginBurst = 2
	})
	const proxy, stranger = "192.0.2.1:5000", "203.0.113.5:5000"
	for i := range 2 {
		w := ts.login(fmt.Sprintf("user%d@x.test", i), "guess", from(stranger), header("X-Forwarded-For", fmt.Sprintf("198.51.100.%d", i)))
		wantError(t, w, http.StatusUnauthorized, core.CodeUnauthenticated, badLogin)
	}
	w := ts.login(coretest.AdminEmail, coretest.AdminPassword, from(stranger), header("X-Forwarded-For", "198.51.100.99"))
	wantError(t, w, http.StatusTooManyRequests, core.CodeRateLimited, "too many failed login attempts, try again later")

	for i := range 2 {
		w := ts.login(fmt.Sprintf("other%d@x.test", i), "guess", from(proxy), header("X-Forwarded-For", "198.51.100.1"))
		wantError(t, w, http.StatusUnauthorized, core.CodeUnauthenticated, badLogin)
	}
	w = ts.login(coretest.AdminEmail, coretest.AdminPassword, from(proxy), header("X-Forwarded-For", "198.51.100.1"))
	wantError(t, w, http.StatusTooManyRequests, core.CodeRateLimited, "too many failed login attempts, try again later")
	// The proxy's other clients, and the proxy itself, log in.
	if w := ts.login(coretest.AdminEmail, coretest.AdminPassword, from(proxy), header("X-Forwarded-For", "198.51.100.2")); w.Code != http.StatusOK {
		t.Fatalf("another client of the proxy: %d", w.Code)
	}
	if w := ts.login(coretest.AdminEmail, coretest.AdminPassword, from(proxy)); w.Code != http.StatusOK {
		t.Fatalf("the proxy: %d", w.Code)
	}
}
