package web

import (
	"bytes"
	"crypto/tls"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/piot-appliance/piot/services/api"
	"github.com/piot-appliance/piot/services/core/coretest"
)

// testWeb is the web manager over a real core on the embedded store.
type testWeb struct {
	t   *testing.T
	env *coretest.Env
	srv *Server
}

func newTestWeb(t *testing.T) *testWeb {
	t.Helper()
	env := coretest.New(t)
	tokens, err := api.NewTokens(bytes.Repeat([]byte("k"), 32), time.Hour, nil)
	if err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.DiscardHandler)
	srv, err := New(Config{Version: "v-test", Logger: quiet}, Deps{
		Core: env.Core, Tokens: tokens, Guard: api.NewLoginGuard(10, 5, nil),
		CSRFKey: bytes.Repeat([]byte("c"), 32),
	})
	if err != nil {
		t.Fatal(err)
	}
	return &testWeb{t: t, env: env, srv: srv}
}

// do serves one request; form, when not nil, is sent url-encoded.
func (tw *testWeb) do(method, target string, form url.Values, edit ...func(*http.Request)) *httptest.ResponseRecorder {
	tw.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	r := httptest.NewRequest(method, target, body)
	if form != nil {
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for _, e := range edit {
		e(r)
	}
	w := httptest.NewRecorder()
	tw.srv.ServeHTTP(w, r)
	return w
}

func withCookie(c *http.Cookie) func(*http.Request) {
	return func(r *http.Request) { r.AddCookie(c) }
}

// signIn signs the admin in and returns the session cookie and the form
// token of its pages.
func (tw *testWeb) signIn(edit ...func(*http.Request)) (*http.Cookie, string) {
	tw.t.Helper()
	w := tw.do(http.MethodPost, "/signin", url.Values{"email": {coretest.AdminEmail}, "password": {coretest.AdminPassword}, "next": {"/"}}, edit...)
	if w.Code != http.StatusSeeOther {
		tw.t.Fatalf("sign in: %d %s", w.Code, w.Body.String())
	}
	var c *http.Cookie
	for _, k := range w.Result().Cookies() {
		if k.Name == cookieName {
			c = k
		}
	}
	if c == nil {
		tw.t.Fatal("no session cookie")
	}
	page := tw.do(http.MethodGet, "/", nil, withCookie(c))
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(page.Body.String())
	if m == nil {
		tw.t.Fatalf("no form token on the overview: %d %s", page.Code, page.Body.String())
	}
	return c, m[1]
}

func TestPagesNeedASession(t *testing.T) {
	tw := newTestWeb(t)
	w := tw.do(http.MethodGet, "/", nil)
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/signin?next=%2F" {
		t.Fatalf("anonymous overview: %d %q", w.Code, w.Header().Get("Location"))
	}
	if w := tw.do(http.MethodPost, "/logout", url.Values{}); w.Code != http.StatusUnauthorized {
		t.Fatalf("anonymous POST: %d", w.Code)
	}
}

func TestSecurityHeaders(t *testing.T) {
	tw := newTestWeb(t)
	c, _ := tw.signIn()
	for _, p := range []string{"/signin", "/", "/no-such-page"} {
		w := tw.do(http.MethodGet, p, nil, withCookie(c))
		csp := w.Header().Get("Content-Security-Policy")
		if !strings.Contains(csp, "script-src 'self';") || strings.Contains(csp, "unsafe-inline") || !strings.Contains(csp, "frame-ancestors 'none'") {
			t.Errorf("%s: CSP %q", p, csp)
		}
		if w.Header().Get("X-Content-Type-Options") != "nosniff" || w.Header().Get("Referrer-Policy") != "same-origin" {
			t.Errorf("%s: headers %v", p, w.Header())
		}
		if strings.Contains(w.Body.String(), "<script>") || strings.Contains(w.Body.String(), " onclick=") {
			t.Errorf("%s: inline script in the page", p)
		}
	}
}

func TestSessionCookieFlags(t *testing.T) {
	tw := newTestWeb(t)
	plain, _ := tw.signIn()
	if !plain.HttpOnly || plain.SameSite != http.SameSiteStrictMode || plain.Path != "/" || plain.Secure {
		t.Fatalf("cookie over HTTP: %+v", plain)
	}
	if d := time.Until(plain.Expires); d < 59*time.Minute || d > time.Hour+time.Minute {
		t.Fatalf("cookie expires in %v, want the token's hour", d)
	}
	overTLS, _ := tw.signIn(func(r *http.Request) { r.TLS = &tls.ConnectionState{} })
	if !overTLS.Secure || !overTLS.HttpOnly || overTLS.SameSite != http.SameSiteStrictMode {
		t.Fatalf("cookie over TLS: %+v", overTLS)
	}
}

func TestCSRF(t *testing.T) {
	tw := newTestWeb(t)
	c, tok := tw.signIn()
	_, otherTok := tw.signIn()
	for name, tc := range map[string]struct {
		form url.Values
		edit func(*http.Request)
	}{
		"no token":               {url.Values{}, func(*http.Request) {}},
		"wrong token":            {url.Values{"csrf": {"x" + tok}}, func(*http.Request) {}},
		"another session's":      {url.Values{"csrf": {otherTok}}, func(*http.Request) {}},
		"another origin":         {url.Values{"csrf": {tok}}, func(r *http.Request) { r.Header.Set("Origin", "http://evil.example") }},
		"another referer":        {url.Values{"csrf": {tok}}, func(r *http.Request) { r.Header.Set("Referer", "http://evil.example/x") }},
		"sandboxed (null) frame": {url.Values{"csrf": {tok}}, func(r *http.Request) { r.Header.Set("Origin", "null") }},
	} {
		t.Run(name, func(t *testing.T) {
			w := tw.do(http.MethodPost, "/logout", tc.form, withCookie(c), tc.edit)
			if w.Code != http.StatusForbidden {
				t.Fatalf("status %d, want 403", w.Code)
			}
		})
	}
	// Still signed in: nothing above signed out.
	if w := tw.do(http.MethodGet, "/", nil, withCookie(c)); w.Code != http.StatusOK {
		t.Fatalf("after refused requests: %d", w.Code)
	}
}

func TestLogoutRevokesTheToken(t *testing.T) {
	tw := newTestWeb(t)
	c, tok := tw.signIn()
	w := tw.do(http.MethodPost, "/logout", url.Values{"csrf": {tok}}, withCookie(c),
		func(r *http.Request) { r.Header.Set("Origin", "http://example.com") })
	if w.Code != http.StatusSeeOther {
		t.Fatalf("logout: %d %s", w.Code, w.Body.String())
	}
	// The old cookie, replayed, is refused and removed.
	w = tw.do(http.MethodGet, "/", nil, withCookie(c))
	if w.Code != http.StatusSeeOther || !strings.HasPrefix(w.Header().Get("Location"), "/signin") {
		t.Fatalf("revoked cookie: %d %q", w.Code, w.Header().Get("Location"))
	}
	if _, _, err := tw.srv.deps.Tokens.Actor(tw.env.Core, c.Value); err == nil || !strings.Contains(err.Error(), "signing out") {
		t.Fatalf("the token still resolves: %v", err)
	}
}

func TestSigninFailuresAreLimited(t *testing.T) {
	tw := newTestWeb(t)
	bad := url.Values{"email": {coretest.AdminEmail}, "password": {"wrong"}}
	for i := range 5 {
		if w := tw.do(http.MethodPost, "/signin", bad); w.Code != http.StatusUnauthorized {
			t.Fatalf("failure %d: %d", i, w.Code)
		}
	}
	w := tw.do(http.MethodPost, "/signin", url.Values{"email": {coretest.AdminEmail}, "password": {coretest.AdminPassword}})
	if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") == "" {
		t.Fatalf("after the burst: %d %v", w.Code, w.Header())
	}
}

func TestRedirectsStayLocal(t *testing.T) {
	for in, want := range map[string]string{
		"/orgs": "/orgs", "": "/", "https://evil.example/": "/", "//evil.example": "/", `/\evil.example`: "/", "orgs": "/",
	} {
		if got := localPath(in); got != want {
			t.Errorf("localPath(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestAssetsAreHashedAndCached(t *testing.T) {
	tw := newTestWeb(t)
	u, err := tw.srv.assets.url("app.css")
	if err != nil {
		t.Fatal(err)
	}
	w := tw.do(http.MethodGet, u, nil)
	if w.Code != http.StatusOK || !strings.HasPrefix(w.Header().Get("Content-Type"), "text/css") ||
		!strings.Contains(w.Header().Get("Cache-Control"), "immutable") {
		t.Fatalf("%s: %d %v", u, w.Code, w.Header())
	}
	if w := tw.do(http.MethodGet, "/static/app.css", nil); w.Code != http.StatusNotFound {
		t.Fatalf("unhashed name: %d", w.Code)
	}
}
