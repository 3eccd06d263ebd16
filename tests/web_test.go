package tests

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// xssName is markup a user or a device could put into a name; every page
// must show it as text.
const xssName = `<img src=x onerror=alert(1)>`

// browser is one headless Chromium driven over its DevTools pipe, with
// the JavaScript dialogs it saw.
type browser struct {
	t   *testing.T
	ctx context.Context
	url string

	mu sync.Mutex
	// alerts are alert() calls: none may happen (an injected script's).
	alerts []string
	// confirms are the confirmation questions asked (answered yes).
	confirms []string
}

// newBrowser starts Chromium for the test: headless, no sandbox (the
// tests run as root), no GPU, a profile of its own. It skips without
// Chromium unless PIOT_REQUIRE_MOSQUITTO says the suite must be complete.
func newBrowser(t *testing.T, base string) *browser {
	t.Helper()
	bin, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("PIOT_REQUIRE_MOSQUITTO") != "" {
			t.Fatal("chromium not installed (run tests/deps.sh)")
		}
		t.Skip("chromium not installed")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 800),
		// Everything the tests load is on loopback; no proxy, no
		// component updates or other traffic of the browser's own.
		chromedp.Flag("no-proxy-server", true),
		chromedp.Flag("disable-component-update", true),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil { // starts the browser without a deadline
		t.Fatalf("start chromium: %v", err)
	}
	b := &browser{t: t, ctx: ctx, url: base}
	dialogs := chromedp.Events(ctx, page.JavascriptDialogOpening)
	go func() {
		for ev, err := range dialogs {
			if err != nil {
				return
			}
			b.mu.Lock()
			switch ev.Type {
			case page.DialogTypeAlert:
				b.alerts = append(b.alerts, ev.Message)
			case page.DialogTypeConfirm:
				b.confirms = append(b.confirms, ev.Message)
			}
			b.mu.Unlock()
			// Confirmations (deleting, rotating) are answered yes.
			_, _ = chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true})
		}
	}()
	return b
}

// do runs steps with a deadline of their own.
func (b *browser) do(steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.t.Fatalf("browser: %v", err)
	}
}

// open navigates to a path and returns the document's HTTP status.
func (b *browser) open(path string) int64 {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	resp, err := chromedp.Run(ctx, chromedp.NavigateResponse(b.url+path))
	if err != nil {
		b.t.Fatalf("open %s: %v", path, err)
	}
	return resp.Status
}

// submit clicks a form's button and waits for the page it leads to.
func (b *browser) submit(button string) int64 {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	resp, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(button)))
	if err != nil {
		b.t.Fatalf("submit %s: %v", button, err)
	}
	return resp.Status
}

func (b *browser) eval(js string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[string](js))
	if err != nil {
		b.t.Fatalf("evaluate %s: %v", js, err)
	}
	return v
}

func (b *browser) location() string {
	b.t.Helper()
	u, err := chromedp.Run(b.ctx, chromedp.Location())
	if err != nil {
		b.t.Fatal(err)
	}
	return u
}

// signIn fills the sign-in form the browser is on.
func (b *browser) signIn(email, password string) {
	b.t.Helper()
	b.do(chromedp.WaitVisible(chromedp.ID("email")),
		chromedp.SendKeys(chromedp.ID("email"), email),
		chromedp.SendKeys(chromedp.ID("password"), password))
	if st := b.submit("form[action='/signin'] button"); st != http.StatusOK {
		b.t.Fatalf("sign in as %s: status %d at %s", email, st, b.location())
	}
}

// weigh sums the bytes the browser receives while fn runs: what a first
// visit costs over the wire (headers and bodies, as encoded).
func (b *browser) weigh(fn func()) (bytes float64, requests int) {
	ctx, cancel := context.WithCancel(b.ctx)
	events := chromedp.Events(ctx, network.LoadingFinished)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev, err := range events {
			if err != nil {
				return
			}
			bytes += ev.EncodedDataLength
			requests++
		}
	}()
	fn()
	time.Sleep(300 * time.Millisecond) // the deferred script and the style sheet finish
	cancel()
	<-done
	return bytes, requests
}

// screenshots writes the page at desktop and phone width into
// docs/screenshots, viewport only, so the files stay small.
func (b *browser) screenshots(name string) {
	b.t.Helper()
	dir := filepath.Join("..", "docs", "screenshots")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.t.Fatal(err)
	}
	for _, size := range []struct {
		label         string
		width, height int64
	}{{"desktop", 1280, 800}, {"phone", 390, 844}} {
		b.do(chromedp.EmulateViewport(size.width, size.height), chromedp.Sleep(100*time.Millisecond))
		png, err := chromedp.Run(b.ctx, chromedp.CaptureScreenshot())
		if err != nil {
			b.t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name+"-"+size.label+".png"), png, 0o644); err != nil {
			b.t.Fatal(err)
		}
	}
	b.do(chromedp.EmulateViewport(1280, 800))
}

func (b *browser) noAlerts() {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.alerts) > 0 {
		b.t.Fatalf("a script ran alert(): %q (markup was not escaped)", b.alerts)
	}
}

// noRedirect is a client that shows redirects instead of following them.
func noRedirect() *http.Client {
	return &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// The web manager in a real browser against the real binary: an admin
// signs in, creates an org with MQTT credentials and a user in it, signs
// out (the old cookie stops working), and the user signs in and cannot
// reach the admin pages by typing their URLs.
func TestWebManagerInBrowser(t *testing.T) {
	a := startAppliance(t, startOpts{})
	b := newBrowser(t, a.url)
	adminPW := a.adminPassword()

	var signinStatus int64
	signinBytes, signinReqs := b.weigh(func() { signinStatus = b.open("/") })
	if signinStatus != http.StatusOK || !strings.Contains(b.location(), "/signin?next=") {
		t.Fatalf("anonymous /: %d at %s", signinStatus, b.location())
	}
	t.Logf("page weight: sign-in page, first load: %.0f bytes in %d requests", signinBytes, signinReqs)
	b.screenshots("signin")

	b.do(chromedp.WaitVisible(chromedp.ID("email")),
		chromedp.SendKeys(chromedp.ID("email"), "admin@piot.local"),
		chromedp.SendKeys(chromedp.ID("password"), adminPW))
	homeBytes, homeReqs := b.weigh(func() {
		if st := b.submit("form[action='/signin'] button"); st != http.StatusOK {
			t.Fatalf("sign in: %d", st)
		}
	})
	t.Logf("page weight: first page after sign-in: %.0f bytes in %d requests (style and script cached from the sign-in page)", homeBytes, homeReqs)
	// The same page with nothing cached, as a bookmark opened in a new
	// browser would load it.
	if _, err := chromedp.Call(b.ctx, network.SetCacheDisabled, network.SetCacheDisabledParams{CacheDisabled: true}); err != nil {
		t.Fatal(err)
	}
	coldBytes, coldReqs := b.weigh(func() { b.open("/") })
	if _, err := chromedp.Call(b.ctx, network.SetCacheDisabled, network.SetCacheDisabledParams{CacheDisabled: false}); err != nil {
		t.Fatal(err)
	}
	t.Logf("page weight: first page after sign-in, nothing cached: %.0f bytes in %d requests", coldBytes, coldReqs)
	for _, w := range []float64{signinBytes, homeBytes, coldBytes} {
		if w > 150*1024 {
			t.Errorf("a first page weighs %.0f bytes, over 150 KB", w)
		}
	}
	if got := b.eval(`document.querySelector("nav a[href='/users']") ? "yes" : "no"`); got != "yes" {
		t.Fatal("the admin sees no Users item")
	}

	// An organization with MQTT credentials, shown once.
	b.open("/orgs/new")
	b.do(chromedp.SendKeys(chromedp.ID("name"), "farm"), chromedp.SendKeys(chromedp.ID("description"), "North farm"))
	if st := b.submit("form[action='/orgs'] button"); st != http.StatusOK {
		t.Fatalf("create org: %d", st)
	}
	orgPath := strings.TrimPrefix(strings.SplitN(b.location(), "?", 2)[0], a.url)
	if !regexp.MustCompile(`^/orgs/[0-9a-f]{24}$`).MatchString(orgPath) {
		t.Fatalf("after creating the org the browser is at %s", b.location())
	}
	b.do(chromedp.SetValue(chromedp.ID("mqtt-username"), "farm-devices"))
	if st := b.submit("form[action$='/mqtt'] button"); st != http.StatusOK {
		t.Fatalf("set MQTT credentials: %d", st)
	}
	if pw := b.eval(`document.getElementById("mqtt-password").textContent`); len(pw) < 16 {
		t.Fatalf("MQTT password shown: %q", pw)
	}
	b.screenshots("org-mqtt-credentials")

	// A user created into the org.
	b.open("/users/new")
	b.do(chromedp.SendKeys(chromedp.ID("email"), "alice@farm.example"),
		chromedp.SendKeys(chromedp.ID("password"), "correct horse battery"),
		chromedp.SetValue(chromedp.ID("org"), strings.TrimPrefix(orgPath, "/orgs/")))
	if st := b.submit("form[action='/users'] button"); st != http.StatusOK {
		t.Fatalf("create user: %d", st)
	}
	b.open(orgPath)
	if txt := b.eval(`document.querySelector("main").innerText`); !strings.Contains(txt, "alice@farm.example") {
		t.Fatalf("alice is not a member of farm:\n%s", txt)
	}
	b.screenshots("org-edit")

	// Markup in a name is text, not an element, and runs nothing.
	b.open("/orgs/new")
	b.do(chromedp.SendKeys(chromedp.ID("name"), xssName))
	if st := b.submit("form[action='/orgs'] button"); st != http.StatusOK {
		t.Fatalf("create the org with markup in its name: %d", st)
	}
	otherOrgPath := strings.TrimPrefix(strings.SplitN(b.location(), "?", 2)[0], a.url)
	b.open("/orgs")
	if n := b.eval(`String(document.images.length)`); n != "0" {
		t.Fatalf("%s images in the orgs list: the name became an element", n)
	}
	if txt := b.eval(`document.querySelector("main").innerText`); !strings.Contains(txt, xssName) {
		t.Fatalf("the name is not shown as text:\n%s", txt)
	}
	b.noAlerts()
	b.screenshots("orgs")

	// Live refresh: an org created through the API appears in the open
	// list without a reload.
	b.do(chromedp.Evaluate[chromedp.Void](`window.notReloaded = true`))
	apiToken := a.login("admin@piot.local", adminPW)
	if _, _, code := a.gql(apiToken, `mutation($n: String!) { createOrg(name: $n, description: "") { id } }`, map[string]any{"n": "live"}); code != "" {
		t.Fatalf("create org over the API: %s", code)
	}
	live, cancelLive := context.WithTimeout(b.ctx, 10*time.Second)
	_, err := chromedp.Run(live, chromedp.Poll[bool](`[...document.querySelectorAll("main td a")].some(a => a.textContent === "live") && window.notReloaded === true`))
	cancelLive()
	if err != nil {
		t.Fatalf("the new org did not appear in the open list: %v", err)
	}
	b.open("/users")
	b.screenshots("users")

	// The org switcher: choosing an org makes it the active one (the
	// script submits on change).
	b.open("/")
	if got := b.eval(`document.getElementById("org-switch").value`); got != "" {
		t.Fatalf("the admin has no active org yet, the switcher says %q", got)
	}
	switched, cancelSwitch := context.WithTimeout(b.ctx, 20*time.Second)
	_, err = chromedp.RunResponse(switched, chromedp.Evaluate[chromedp.Void](`(() => {
		const s = document.getElementById("org-switch");
		s.value = "`+strings.TrimPrefix(orgPath, "/orgs/")+`";
		s.dispatchEvent(new Event("change", { bubbles: true }));
	})()`))
	cancelSwitch()
	if err != nil {
		t.Fatalf("switch org: %v", err)
	}
	if got := b.eval(`document.querySelector("main h2").textContent`); got != "farm" {
		t.Fatalf("after switching, the overview shows %q", got)
	}
	b.screenshots("overview")

	// Signing out revokes the token: the cookie, replayed, is refused.
	cookies, err := chromedp.Call(b.ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{a.url}})
	if err != nil {
		t.Fatal(err)
	}
	var session string
	for _, c := range cookies.Cookies {
		if c.Name == "piot_session" {
			session = c.Value
			if !c.HTTPOnly || c.SameSite != network.CookieSameSiteStrict {
				t.Errorf("session cookie flags: httpOnly %v, sameSite %q", c.HTTPOnly, c.SameSite)
			}
		}
	}
	if session == "" {
		t.Fatal("no session cookie in the browser")
	}
	if st := b.submit("form[action='/logout'] button"); st != http.StatusOK || !strings.Contains(b.location(), "/signin") {
		t.Fatalf("sign out: %d at %s", st, b.location())
	}
	req, _ := http.NewRequest(http.MethodGet, a.url+"/", nil)
	req.AddCookie(&http.Cookie{Name: "piot_session", Value: session})
	resp, err := noRedirect().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/signin") {
		t.Fatalf("the signed-out cookie replayed: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if st, out := post(t, a.url+"/refresh", session, map[string]any{}); st != http.StatusUnauthorized {
		t.Fatalf("the signed-out token as a bearer token: %d %v", st, out)
	}

	// The member: no admin navigation, no admin page by its URL, no
	// other org.
	b.signIn("alice@farm.example", "correct horse battery")
	if got := b.eval(`document.querySelector("nav a[href='/users'], nav a[href='/orgs']") ? "yes" : "no"`); got != "no" {
		t.Fatal("a member sees admin navigation")
	}
	if txt := b.eval(`document.querySelector("main").innerText`); !strings.Contains(txt, "farm") {
		t.Fatalf("alice's overview does not show her org:\n%s", txt)
	}
	b.screenshots("overview-member")
	for _, p := range []string{"/users", "/users/new", "/orgs/new", otherOrgPath, orgPath + "/delete"} {
		if st := b.open(p); st != http.StatusForbidden {
			t.Errorf("member opens %s: %d, want 403", p, st)
		}
	}
	b.open("/users")
	b.screenshots("forbidden")
	b.noAlerts()
}

// Security of the web manager over plain HTTP requests: CSRF, cookie
// flags (Secure on the HTTPS listener), the CSP on every page, /query
// staying bearer-only, and the API's paths untouched.
func TestWebSecurity(t *testing.T) {
	httpsAddr := freeAddr(t)
	a := startAppliance(t, startOpts{args: []string{"--https-addr", httpsAddr}})
	client := noRedirect()

	signIn := func(c *http.Client, base string) *http.Cookie {
		t.Helper()
		form := url.Values{"email": {"admin@piot.local"}, "password": {a.adminPassword()}}
		req, _ := http.NewRequest(http.MethodPost, base+"/signin", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", base)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("sign in at %s: %d", base, resp.StatusCode)
		}
		for _, k := range resp.Cookies() {
			if k.Name == "piot_session" {
				return k
			}
		}
		t.Fatalf("no session cookie from %s", base)
		return nil
	}
	get := func(path string, cookie *http.Cookie) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, a.url+path, nil)
		if cookie != nil {
			req.AddCookie(cookie)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp, string(body)
	}
	postForm := func(path string, cookie *http.Cookie, form url.Values, origin string) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, a.url+path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		req.AddCookie(cookie)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}

	cookie := signIn(client, a.url)
	t.Run("cookie flags over HTTP", func(t *testing.T) {
		if !cookie.HttpOnly || cookie.SameSite != http.SameSiteStrictMode || cookie.Path != "/" || cookie.Secure {
			t.Fatalf("cookie %+v: want HttpOnly, SameSite=Strict, Path=/, not Secure on plain HTTP", cookie)
		}
	})
	t.Run("cookie flags over HTTPS", func(t *testing.T) {
		resp, body := get("/ca.crt", nil)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("/ca.crt: %d", resp.StatusCode)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM([]byte(body)) {
			t.Fatal("bad CA")
		}
		tlsClient := noRedirect()
		tlsClient.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
		c := signIn(tlsClient, "https://"+httpsAddr)
		if !c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode {
			t.Fatalf("cookie over HTTPS %+v: want Secure, HttpOnly, SameSite=Strict", c)
		}
	})

	_, home := get("/", cookie)
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(home)
	if m == nil {
		t.Fatalf("no form token on the overview:\n%s", home)
	}
	csrf := m[1]
	t.Run("CSRF", func(t *testing.T) {
		for name, tc := range map[string]struct {
			form   url.Values
			origin string
		}{
			"no token":       {url.Values{"name": {"csrf1"}}, ""},
			"wrong token":    {url.Values{"name": {"csrf2"}, "csrf": {"AAAA" + csrf[4:]}}, ""},
			"another origin": {url.Values{"name": {"csrf3"}, "csrf": {csrf}}, "http://evil.example"},
		} {
			if st := postForm("/orgs", cookie, tc.form, tc.origin); st != http.StatusForbidden {
				t.Errorf("%s: %d, want 403", name, st)
			}
		}
		if st := postForm("/orgs", cookie, url.Values{"name": {"csrf4"}, "csrf": {csrf}}, a.url); st != http.StatusSeeOther {
			t.Fatalf("with the token: %d, want 303", st)
		}
		// Only the last one created an org.
		tok := a.login("admin@piot.local", a.adminPassword())
		_, data, _ := a.gql(tok, `{ orgs { name } }`, nil)
		names := fmt.Sprint(data["orgs"])
		if strings.Contains(names, "csrf1") || strings.Contains(names, "csrf2") || strings.Contains(names, "csrf3") || !strings.Contains(names, "csrf4") {
			t.Fatalf("orgs after the attempts: %s", names)
		}
	})
	t.Run("query stays bearer-only", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, a.url+"/query", strings.NewReader(`{"query":"{ orgs { name } }"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-CSRF-Token", csrf)
		req.AddCookie(cookie)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("/query with the session cookie: %d, want 401", resp.StatusCode)
		}
	})
	t.Run("CSP on every page", func(t *testing.T) {
		// Every page a signed-in admin can reach by following links, with
		// an org, a thing and its history present, plus the sign-in page
		// and a missing one: a new page cannot forget the headers.
		tok := a.login("admin@piot.local", a.adminPassword())
		orgWithMQTT(t, a, tok, "cspfarm", "cspfarm-user")
		thing := sensorThing(t, a, tok, orgID(t, a, tok, "cspfarm"), "CSP1")
		seen := map[string]bool{}
		queue := []string{"/", "/things/" + thing, "/things/" + thing + "/history"}
		link := regexp.MustCompile(`href="(/[^"#]*)"`)
		skip := regexp.MustCompile(`^/(static/|events|logout|ca\.crt|grafana\.tar\.gz|gql/|metrics|query|api/)`)
		for len(queue) > 0 && len(seen) < 200 {
			p := queue[0]
			queue = queue[1:]
			if seen[p] {
				continue
			}
			seen[p] = true
			resp, body := get(p, cookie)
			checkPageHeaders(t, p, resp, body)
			for _, m := range link.FindAllStringSubmatch(body, -1) {
				next := html.UnescapeString(m[1])
				if !seen[next] && !skip.MatchString(next) {
					queue = append(queue, next)
				}
			}
		}
		for _, p := range []string{"/signin", "/no-such-page"} {
			resp, body := get(p, cookie)
			checkPageHeaders(t, p, resp, body)
		}
		for _, want := range []string{"/orgs", "/users", "/things", "/map", "/alarms", "/onboarding", "/tokens", "/webhooks", "/status", "/things/" + thing + "/history"} {
			if !seen[want] {
				t.Errorf("the crawl never reached %s (reached %d pages)", want, len(seen))
			}
		}
		t.Logf("checked %d pages", len(seen)+2)
	})
	t.Run("API paths untouched", func(t *testing.T) {
		for _, p := range []string{"/healthz", "/readyz", "/gql/", "/ca.crt"} {
			if resp, _ := get(p, nil); resp.StatusCode != http.StatusOK {
				t.Errorf("GET %s: %d", p, resp.StatusCode)
			}
		}
		if st, out := post(t, a.url+"/api/login", "", map[string]string{"email": "admin@piot.local", "password": a.adminPassword()}); st != http.StatusOK || out["token"] == nil {
			t.Errorf("/api/login: %d %v", st, out)
		}
		if resp, body := get("/login", nil); resp.StatusCode != http.StatusMethodNotAllowed || !strings.Contains(body, "only POST") {
			t.Errorf("GET /login is the API's: %d %s", resp.StatusCode, body)
		}
	})
}

// checkPageHeaders asserts what every HTML page of the web manager sends:
// a CSP that allows no inline script, nosniff, a same-origin referrer
// policy, and no inline script or event handler in the markup.
func checkPageHeaders(t *testing.T, p string, resp *http.Response, body string) {
	t.Helper()
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Errorf("%s: %d %s", p, resp.StatusCode, resp.Header.Get("Content-Type"))
		return
	}
	csp := resp.Header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
		t.Errorf("%s: CSP %q", p, csp)
	}
	if resp.Header.Get("X-Content-Type-Options") != "nosniff" || resp.Header.Get("Referrer-Policy") != "same-origin" {
		t.Errorf("%s: headers %v", p, resp.Header)
	}
	if regexp.MustCompile(`<script>|<script [^>]*>[^<]|\son[a-z]+=`).MatchString(body) {
		t.Errorf("%s: inline script or handler in the page", p)
	}
}
