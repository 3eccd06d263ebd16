package tests

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// waBrowser starts a headless Chromium on loopback for the admin pages'
// tests: a fresh profile, no sandbox (the tests run as root), no GPU.
// Without chromium the test is skipped, unless PIOT_REQUIRE_MOSQUITTO
// says every tool must be there.
func waBrowser(t *testing.T) context.Context {
	t.Helper()
	path := ""
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			path = p
			break
		}
	}
	if path == "" {
		if os.Getenv("PIOT_REQUIRE_MOSQUITTO") != "" {
			t.Fatal("chromium not installed (apt-get install chromium)")
		}
		t.Skip("chromium not installed")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 800),
		chromedp.Flag("proxy-server", "direct://"), chromedp.Flag("proxy-bypass-list", "*"))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelCtx(); cancelAlloc() })
	// The first run starts the browser, which lives as long as ctx: no
	// timeout on it (waRun bounds each step instead).
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	// data-confirm asks window.confirm before destructive forms: accept,
	// as a user clicking OK.
	dialogs := chromedp.Events(ctx, page.JavascriptDialogOpening)
	go func() {
		for _, err := range dialogs {
			if err != nil {
				return
			}
			_, _ = chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true})
		}
	}()
	return ctx
}

// waRun runs browser steps, each run bounded, or fails the test with
// what was done.
func waRun(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(tctx, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// waGet runs one browser action that returns a value.
func waGet[T any](t *testing.T, ctx context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(tctx, a)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return v
}

// waSignIn signs in through the sign-in form.
func waSignIn(t *testing.T, ctx context.Context, a *appliance, email, password string) {
	t.Helper()
	waRun(t, ctx, "sign in as "+email,
		chromedp.Navigate(a.url+"/signin"),
		chromedp.WaitVisible(chromedp.CSS("#email")),
		chromedp.SendKeys(chromedp.CSS("#email"), email),
		chromedp.SendKeys(chromedp.CSS("#password"), password),
		chromedp.Submit(chromedp.CSS("#password")),
		chromedp.WaitVisible(chromedp.CSS(`form[action="/logout"]`)))
}

// waText is the text of the first element matching the CSS selector.
func waText(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	return waGet(t, ctx, "read "+sel, chromedp.Text(chromedp.CSS(sel)))
}

// waHTML is the outer HTML of the first element matching the selector.
func waHTML(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	return waGet(t, ctx, "read "+sel, chromedp.OuterHTML(chromedp.CSS(sel)))
}

// waShots writes the page as PNGs at desktop (1280×800) and phone
// (390×844) width into docs/screenshots/<name>-desktop.png and -phone.png.
func waShots(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	dir := filepath.Join("..", "docs", "screenshots")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, v := range []struct {
		kind string
		w, h int64
	}{{"desktop", 1280, 800}, {"phone", 390, 844}} {
		waRun(t, ctx, "viewport for "+name, chromedp.EmulateViewport(v.w, v.h), chromedp.Sleep(150*time.Millisecond))
		png := waGet(t, ctx, "screenshot "+name, chromedp.CaptureScreenshot())
		if err := os.WriteFile(filepath.Join(dir, name+"-"+v.kind+".png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	waRun(t, ctx, "desktop width again", chromedp.EmulateViewport(1280, 800))
}

// waScrape GETs /metrics with a bearer token over net/http.
func waScrape(t *testing.T, a *appliance, token string) (int, string) {
	t.Helper()
	return getAuth(t, a.url+"/metrics", token)
}

// The admin pages in a real browser against the real binary: onboarding
// (its example publish works as shown), a metrics token's life (shown
// once, scrapes only its org, revoked), an org's webhook, the status
// page; a member typing the admin URLs is refused.
func TestWebAdminPages(t *testing.T) {
	ctx := waBrowser(t)
	a := startAppliance(t, startOpts{})
	tok := a.login("admin@piot.local", a.adminPassword())
	farmPW := orgWithMQTT(t, a, tok, "farm", "farm-user")
	farm := orgID(t, a, tok, "farm")
	orgWithMQTT(t, a, tok, "shop", "shop-user")
	shop := orgID(t, a, tok, "shop")
	t1 := sensorThing(t, a, tok, farm, "T1")
	sensorThing(t, a, tok, shop, "S1")
	_, mqttPort := hostPort(t, a.mqttAddr)

	waSignIn(t, ctx, a, "admin@piot.local", a.adminPassword())

	// Onboarding: the example names the thing's real topic and the
	// appliance's MQTT port, carries no password, and works as shown.
	waRun(t, ctx, "onboarding", chromedp.Navigate(a.url+"/onboarding?thing="+t1), chromedp.WaitVisible(chromedp.CSS("#ob-example")))
	example := waText(t, ctx, "#ob-example")
	if !strings.Contains(example, "-t org/farm/T1/value ") || !strings.Contains(example, "-p "+mqttPort+" ") ||
		!strings.HasPrefix(example, "mosquitto_pub ") || strings.Contains(example, farmPW) || !strings.Contains(example, `"$PIOT_MQTT_PASSWORD"`) {
		t.Fatalf("example publish: %q (MQTT port %s)", example, mqttPort)
	}
	if _, err := exec.LookPath("mosquitto_pub"); err == nil {
		run := exec.Command("sh", "-c", example)
		run.Env = append(os.Environ(), "PIOT_MQTT_PASSWORD="+farmPW)
		if out, err := run.CombinedOutput(); err != nil {
			t.Fatalf("the example as shown: %v %s", err, out)
		}
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			_, data, _ := a.gql(tok, `query($id: ID!) { thing(id: $id) { sensor { value } } }`, map[string]any{"id": t1})
			if th, _ := data["thing"].(map[string]any); th != nil && th["sensor"].(map[string]any)["value"] == "21.5" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the example's value never reached the thing")
			}
		}
	} else if os.Getenv("PIOT_REQUIRE_MOSQUITTO") != "" {
		t.Fatal("mosquitto_pub not installed (run tests/deps.sh)")
	}
	caHref := waGet(t, ctx, "CA link", chromedp.AttributeValue(chromedp.CSS("#ob-ca"), "href")).Value
	if st, body := getAuth(t, a.url+caHref, ""); st != http.StatusOK || !strings.Contains(body, "BEGIN CERTIFICATE") {
		t.Fatalf("CA download %s: %d %.80q", caHref, st, body)
	}
	waShots(t, ctx, "onboarding")

	// Metrics token: created in the browser, read once, scrapes only
	// farm's series.
	waRun(t, ctx, "create a token",
		chromedp.Navigate(a.url+"/tokens?org="+farm),
		chromedp.WaitVisible(chromedp.CSS(`form[method="post"][action="/tokens"] button`)),
		chromedp.Click(chromedp.CSS(`form[method="post"][action="/tokens"] button`)),
		chromedp.WaitVisible(chromedp.CSS("#tk-secret")))
	orgToken := strings.TrimSpace(waText(t, ctx, "#tk-secret"))
	if !strings.HasPrefix(orgToken, "piot_org_") {
		t.Fatalf("token on the page: %q", orgToken)
	}
	if snippet := waText(t, ctx, "#tk-snippet"); !strings.Contains(snippet, "credentials_file") || !strings.Contains(snippet, strings.TrimPrefix(a.url, "http://")) {
		t.Fatalf("scrape config: %s", snippet)
	}
	waShots(t, ctx, "tokens-created")
	st, body := waScrape(t, a, orgToken)
	if st != http.StatusOK || !strings.Contains(body, `org="farm"`) || strings.Contains(body, `org="shop"`) || strings.Contains(body, `thing="S1"`) {
		t.Fatalf("scrape with the org token: %d\n%s", st, body)
	}
	for _, m := range regexp.MustCompile(`org="([^"]*)"`).FindAllStringSubmatch(body, -1) {
		if m[1] != "farm" {
			t.Fatalf("the farm token sees org %q", m[1])
		}
	}
	waRun(t, ctx, "tokens again",
		chromedp.Navigate(a.url+"/tokens?org="+farm),
		chromedp.WaitVisible(chromedp.CSS(`form[action="/tokens/revoke"] button`)))
	html := waHTML(t, ctx, "html")
	if strings.Contains(html, orgToken) || strings.Contains(html, "tk-secret") {
		t.Fatal("the token is shown again after reloading")
	}
	waShots(t, ctx, "tokens")
	waRun(t, ctx, "revoke the token",
		chromedp.Click(chromedp.CSS(`form[action="/tokens/revoke"] button`)),
		chromedp.WaitVisible(chromedp.CSS(".notice")))
	if n := waText(t, ctx, ".notice"); !strings.Contains(n, "revoked") {
		t.Fatalf("after revoking: %q", n)
	}
	if st, _ := waScrape(t, a, orgToken); st != http.StatusUnauthorized {
		t.Fatalf("scrape with the revoked token: %d", st)
	}

	// Webhook of farm, added in the browser, as GraphQL reads it; its
	// test request reaches a receiver here, signed with the secret.
	type waHook struct {
		body []byte
		sig  string
	}
	hooks := make(chan waHook, 4)
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		hooks <- waHook{b, r.Header.Get("X-PIOT-Signature")}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer receiver.Close()
	hookURL := receiver.URL + "/piot-alarms"
	waRun(t, ctx, "webhooks", chromedp.Navigate(a.url+"/webhooks"), chromedp.WaitVisible(chromedp.CSS(`a[href="/webhooks/`+farm+`"]`)))
	waRun(t, ctx, "add a webhook",
		chromedp.Click(chromedp.CSS(`a[href="/webhooks/`+farm+`"]`)),
		chromedp.WaitVisible(chromedp.CSS("#wh-url")),
		chromedp.SendKeys(chromedp.CSS("#wh-url"), hookURL),
		chromedp.SendKeys(chromedp.CSS("#wh-secret"), "a signing secret"))
	waShots(t, ctx, "webhooks-edit")
	waRun(t, ctx, "save the webhook",
		chromedp.Submit(chromedp.CSS("#wh-url")),
		chromedp.WaitVisible(chromedp.CSS(".notice")))
	_, data, code := a.gql(tok, `query($o: ID!) { orgNotifications(orgId: $o) { webhook_url webhook_secret_set } }`, map[string]any{"o": farm})
	if code != "" {
		t.Fatal(code)
	}
	if n := data["orgNotifications"].(map[string]any); n["webhook_url"] != hookURL || n["webhook_secret_set"] != true {
		t.Fatalf("webhook through GraphQL: %v", n)
	}
	html = waHTML(t, ctx, "main")
	if !strings.Contains(html, hookURL) || strings.Contains(html, "a signing secret") {
		t.Fatal("the list lacks the URL or shows the secret")
	}
	waShots(t, ctx, "webhooks")
	waRun(t, ctx, "test the webhook",
		chromedp.Click(chromedp.CSS(`a[href="/webhooks/`+farm+`"]`)),
		chromedp.WaitVisible(chromedp.CSS("#wh-test")),
		chromedp.Click(chromedp.CSS("#wh-test")),
		chromedp.WaitVisible(chromedp.CSS(".notice")))
	select {
	case h := <-hooks:
		mac := hmac.New(sha256.New, []byte("a signing secret"))
		mac.Write(h.body)
		if h.sig != "sha256="+hex.EncodeToString(mac.Sum(nil)) || !strings.Contains(string(h.body), `"event":"webhook_test"`) || !strings.Contains(string(h.body), `"org":"farm"`) {
			t.Fatalf("test request %s, signature %q", h.body, h.sig)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the test request never arrived")
	}
	if n := waText(t, ctx, ".notice"); !strings.Contains(n, "accepted") {
		t.Fatalf("after the test: %q", n)
	}

	// Status: the version and every supervised service.
	waRun(t, ctx, "status", chromedp.Navigate(a.url+"/status"), chromedp.WaitVisible(chromedp.CSS("#st-version")))
	out, err := exec.Command(piotBin, "version").Output()
	if err != nil {
		t.Fatal(err)
	}
	version := waText(t, ctx, "#st-version")
	if f := strings.Fields(string(out)); len(f) < 2 || version != f[1] {
		t.Fatalf("status shows version %q, piot version says %q", version, out)
	}
	services := waText(t, ctx, "#st-services + table")
	for _, name := range []string{"store", "core", "monitor", "ingest", "broker", "ssh", "http"} {
		if !regexp.MustCompile(`(?m)^\s*` + name + `\b`).MatchString(services) {
			t.Errorf("status lacks service %s:\n%s", name, services)
		}
	}
	if strings.Contains(services, "failing") {
		t.Errorf("a service is failing:\n%s", services)
	}
	waShots(t, ctx, "status")
	// The same page in the dark scheme (prefers-color-scheme: dark).
	if _, err := chromedp.Call(ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
		Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "dark"}}}); err != nil {
		t.Fatal(err)
	}
	waShots(t, ctx, "status-dark")
	if _, err := chromedp.Call(ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{}); err != nil {
		t.Fatal(err)
	}

	// A member typing the admin URLs is refused.
	_, data, code = a.gql(tok, `mutation { createUser(email: "bob@farm.example", password: "bob's long password") { id } }`, nil)
	if code != "" {
		t.Fatal(code)
	}
	bob := data["createUser"].(map[string]any)["id"].(string)
	if _, _, code := a.gql(tok, `mutation($o: ID!, $u: ID!) { addOrgUser(orgId: $o, userId: $u) }`, map[string]any{"o": farm, "u": bob}); code != "" {
		t.Fatal(code)
	}
	waRun(t, ctx, "sign out",
		chromedp.Click(chromedp.CSS(`form[action="/logout"] button`)),
		chromedp.WaitVisible(chromedp.CSS("#email")))
	waSignIn(t, ctx, a, "bob@farm.example", "bob's long password")
	nav := waHTML(t, ctx, "header")
	for _, p := range []string{"/tokens", "/status"} {
		if strings.Contains(nav, `href="`+p+`"`) {
			t.Errorf("a member's navigation links %s", p)
		}
	}
	for _, p := range []string{"/tokens", "/tokens?org=" + farm, "/status"} {
		waRun(t, ctx, "member types "+p, chromedp.Navigate(a.url+p), chromedp.WaitVisible(chromedp.CSS("main h1")))
		title := waGet(t, ctx, "title", chromedp.Title())
		if h1 := waText(t, ctx, "main h1"); h1 != "Forbidden" || strings.Contains(title, "Metrics") {
			t.Errorf("member at %s: %q / %q", p, h1, title)
		}
	}
	// Bob's onboarding page works for his org.
	waRun(t, ctx, "member onboarding", chromedp.Navigate(a.url+"/onboarding?thing="+t1), chromedp.WaitVisible(chromedp.CSS("#ob-example")))
}
