package web

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/piot-appliance/piot/services/core"
)

// waSession signs a user in by the form and returns the cookie and the
// form token of their pages.
func waSession(tw *testWeb, email, password string) (*http.Cookie, string) {
	tw.t.Helper()
	w := tw.do(http.MethodPost, "/signin", url.Values{"email": {email}, "password": {password}, "next": {"/"}})
	if w.Code != http.StatusSeeOther {
		tw.t.Fatalf("sign in %s: %d", email, w.Code)
	}
	for _, c := range w.Result().Cookies() {
		if c.Name == cookieName {
			page := tw.do(http.MethodGet, "/", nil, withCookie(c))
			m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(page.Body.String())
			if m == nil {
				tw.t.Fatalf("no form token: %s", page.Body.String())
			}
			return c, m[1]
		}
	}
	tw.t.Fatal("no session cookie")
	return nil, ""
}

// waWeb is the test web with the appliance's parts the pages show.
func waWeb(t *testing.T) *testWeb {
	tw := newTestWeb(t)
	tw.srv.deps.Appliance = Appliance{
		Started: time.Now().Add(-90 * time.Minute), DataDir: t.TempDir(),
		Services: func() []ServiceStatus {
			return []ServiceStatus{{Name: "store", OK: true, Detail: "running"}, {Name: "broker", OK: false, Detail: "listen :8883: in use"}}
		},
		Listeners: func() []Listener {
			return []Listener{{Name: "http", Addr: "[::]:8080"}, {Name: "mqtt", Addr: "[::]:1883"}, {Name: "mqtt-tls", Addr: "[::]:8883", TLS: true}}
		},
		Store: func(context.Context) error { return nil },
		Ready: func(context.Context) error { return errors.New("broker not started") },
	}
	return tw
}

func TestShellQuote(t *testing.T) {
	for in, want := range map[string]string{
		"org/farm/T1/value": "org/farm/T1/value", "": "''", "a b": "'a b'", "it's": `'it'\''s'`,
		"$(reboot)": "'$(reboot)'", "x;y": "'x;y'", "thing:T1": "thing:T1", `{"lat":1}`: `'{"lat":1}'`,
	} {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestOnboardingShowsTopicsAndExample(t *testing.T) {
	tw := waWeb(t)
	ctx, c, admin := context.Background(), tw.env.Core, tw.env.Admin
	sensor := func(name string) core.Thing {
		th, err := c.CreateThing(ctx, admin, name, core.ThingSensor)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.UpdateThing(ctx, admin, core.ThingUpdate{ID: th.ID, SetOrg: true, OrgID: tw.env.Org.ID}); err != nil {
			t.Fatal(err)
		}
		topic := "value"
		if _, err := c.UpdateThingSensor(ctx, admin, core.SensorUpdate{ID: th.ID, MeasurementTopic: &topic}); err != nil {
			t.Fatal(err)
		}
		return th
	}
	th, quoted := sensor("TA1"), sensor("it's $(x)")
	if _, err := c.SetOrgMQTTCredentials(ctx, admin, tw.env.Org.ID, "acme-dev"); err != nil {
		t.Fatal(err)
	}
	cookie, _ := tw.signIn()
	w := tw.do(http.MethodGet, "/onboarding?thing="+th.ID.Hex(), nil, withCookie(cookie), func(r *http.Request) { r.Host = "piot.lan:8080" })
	body := w.Body.String()
	for _, want := range []string{
		"http://piot.lan:8080/adapter", "http://piot.lan:8080/adapter/vdgps", `href="/ca.crt"`,
		"mosquitto_pub -h piot.lan -p 1883 -u acme-dev -P &#34;$PIOT_MQTT_PASSWORD&#34; -t org/acme/TA1/value -m 21.5 -q 1",
		"-p 8883 --cafile piot-ca.crt", "org/acme/TA1/value/unit", "not set",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("onboarding lacks %q:\n%s", want, body)
		}
	}
	// A name a shell would read is one quoted word in the example.
	w = tw.do(http.MethodGet, "/onboarding?thing="+quoted.ID.Hex(), nil, withCookie(cookie))
	if want := "-t &#39;org/acme/it&#39;\\&#39;&#39;s $(x)/value&#39; -m"; !strings.Contains(w.Body.String(), want) {
		t.Errorf("quoted thing: want %s in\n%s", want, w.Body.String())
	}
	// A member of another org typing the thing's URL: core refuses.
	tw.env.Member(t, "bob@acme.example", "bob's long password")
	other, err := c.CreateOrg(ctx, admin, "other", "")
	if err != nil {
		t.Fatal(err)
	}
	u, err := c.CreateUser(ctx, admin, "eve@other.example", "eve's long password", false)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.AddOrgUser(ctx, admin, other.ID, u.ID); err != nil {
		t.Fatal(err)
	}
	eve, _ := waSession(tw, "eve@other.example", "eve's long password")
	if w := tw.do(http.MethodGet, "/onboarding?thing="+th.ID.Hex(), nil, withCookie(eve)); w.Code != http.StatusNotFound && w.Code != http.StatusForbidden {
		t.Fatalf("another org's thing: %d", w.Code)
	}
	bob, _ := waSession(tw, "bob@acme.example", "bob's long password")
	if w := tw.do(http.MethodGet, "/onboarding?thing="+th.ID.Hex(), nil, withCookie(bob)); w.Code != http.StatusOK || !strings.Contains(w.Body.String(), "org/acme/TA1/value") {
		t.Fatalf("member's own thing: %d", w.Code)
	}
}

func TestMetricsTokensShownOnceAndAdminsOnly(t *testing.T) {
	tw := waWeb(t)
	cookie, csrf := tw.signIn()
	org := tw.env.Org.ID.Hex()
	w := tw.do(http.MethodPost, "/tokens", url.Values{"csrf": {csrf}, "org": {org}}, withCookie(cookie))
	m := regexp.MustCompile(`id="tk-secret">(piot_org_[A-Za-z0-9_-]+)<`).FindStringSubmatch(w.Body.String())
	if w.Code != http.StatusOK || m == nil {
		t.Fatalf("create: %d %s", w.Code, w.Body.String())
	}
	if id, ok := tw.env.Core.OrgByMetricsToken(m[1]); !ok || id != tw.env.Org.ID {
		t.Fatal("the token shown does not resolve to the org")
	}
	w = tw.do(http.MethodGet, "/tokens?org="+org, nil, withCookie(cookie))
	if w.Code != http.StatusOK || strings.Contains(w.Body.String(), m[1]) || !strings.Contains(w.Body.String(), "credentials_file") {
		t.Fatalf("list: %d, token shown again or no snippet", w.Code)
	}
	toks, _ := tw.env.Core.MetricsTokens(tw.env.Admin, tw.env.Org.ID)
	w = tw.do(http.MethodPost, "/tokens/revoke", url.Values{"csrf": {csrf}, "org": {org}, "id": {toks[0].ID}}, withCookie(cookie))
	if w.Code != http.StatusSeeOther {
		t.Fatalf("revoke: %d", w.Code)
	}
	if _, ok := tw.env.Core.OrgByMetricsToken(m[1]); ok {
		t.Fatal("revoked token still resolves")
	}

	tw.env.Member(t, "bob@acme.example", "bob's long password")
	bob, bobCSRF := waSession(tw, "bob@acme.example", "bob's long password")
	for _, p := range []string{"/tokens", "/tokens?org=" + org, "/status"} {
		if w := tw.do(http.MethodGet, p, nil, withCookie(bob)); w.Code != http.StatusForbidden {
			t.Errorf("member GET %s: %d", p, w.Code)
		}
	}
	if w := tw.do(http.MethodPost, "/tokens", url.Values{"csrf": {bobCSRF}, "org": {org}}, withCookie(bob)); w.Code != http.StatusForbidden {
		t.Errorf("member creates a token: %d", w.Code)
	}
	if w := tw.do(http.MethodPost, "/webhooks/"+org, url.Values{"csrf": {bobCSRF}, "url": {"https://evil.example/"}}, withCookie(bob)); w.Code != http.StatusForbidden {
		t.Errorf("member sets the webhook: %d", w.Code)
	}
	if w := tw.do(http.MethodGet, "/", nil, withCookie(bob)); strings.Contains(w.Body.String(), `href="/status"`) {
		t.Error("a member's navigation links the status page")
	}
}

func TestWebhookEditing(t *testing.T) {
	tw := waWeb(t)
	cookie, csrf := tw.signIn()
	org := tw.env.Org.ID.Hex()
	w := tw.do(http.MethodPost, "/webhooks/"+org, url.Values{"csrf": {csrf}, "url": {"ftp://x"}}, withCookie(cookie))
	if w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), "http(s) URL") || !strings.Contains(w.Body.String(), `value="ftp://x"`) {
		t.Fatalf("bad URL: %d %s", w.Code, w.Body.String())
	}
	w = tw.do(http.MethodPost, "/webhooks/"+org, url.Values{"csrf": {csrf}, "url": {"https://hooks.example/a?b=<c>"}, "secret": {"s3cret-value"}}, withCookie(cookie))
	if w.Code != http.StatusSeeOther {
		t.Fatalf("save: %d", w.Code)
	}
	st, _ := tw.env.Core.OrgNotificationSettings(tw.env.Admin, tw.env.Org.ID)
	if st.WebhookURL != "https://hooks.example/a?b=<c>" || !st.WebhookSecretSet {
		t.Fatalf("settings: %+v", st)
	}
	w = tw.do(http.MethodGet, "/webhooks", nil, withCookie(cookie))
	if !strings.Contains(w.Body.String(), "https://hooks.example/a?b=&lt;c&gt;") || strings.Contains(w.Body.String(), "s3cret-value") {
		t.Fatalf("list: %s", w.Body.String())
	}
	if w := tw.do(http.MethodGet, "/webhooks/"+org, nil, withCookie(cookie)); strings.Contains(w.Body.String(), "s3cret-value") {
		t.Fatal("the secret is shown")
	}
	// An empty secret field keeps the secret.
	tw.do(http.MethodPost, "/webhooks/"+org, url.Values{"csrf": {csrf}, "url": {"https://hooks.example/b"}}, withCookie(cookie))
	if st, _ := tw.env.Core.OrgNotificationSettings(tw.env.Admin, tw.env.Org.ID); st.WebhookURL != "https://hooks.example/b" || !st.WebhookSecretSet {
		t.Fatalf("after edit: %+v", st)
	}
	if w := tw.do(http.MethodPost, "/webhooks/"+org+"/delete", url.Values{"csrf": {csrf}}, withCookie(cookie)); w.Code != http.StatusSeeOther {
		t.Fatalf("delete: %d", w.Code)
	}
	if st, _ := tw.env.Core.OrgNotificationSettings(tw.env.Admin, tw.env.Org.ID); st.WebhookURL != "" || st.WebhookSecretSet {
		t.Fatalf("after delete: %+v", st)
	}
}

func TestStatusPage(t *testing.T) {
	tw := waWeb(t)
	cookie, _ := tw.signIn()
	w := tw.do(http.MethodGet, "/status", nil, withCookie(cookie))
	body := w.Body.String()
	for _, want := range []string{`id="st-version">v-test<`, "store", "broker", "listen :8883: in use", "Not ready", "broker not started",
		"1h 30m", "[::]:1883", "answering", "free"} {
		if !strings.Contains(body, want) {
			t.Errorf("status lacks %q", want)
		}
	}
}

// The admin pages keep the CSP's rules (no inline script, style or
// handler) and show what a device named as text.
func TestAdminPagesAreInert(t *testing.T) {
	tw := waWeb(t)
	ctx, c, admin := context.Background(), tw.env.Core, tw.env.Admin
	th, err := c.CreateThing(ctx, admin, "<img src=x onerror=alert(1)>", core.ThingSensor)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.UpdateThing(ctx, admin, core.ThingUpdate{ID: th.ID, SetOrg: true, OrgID: tw.env.Org.ID}); err != nil {
		t.Fatal(err)
	}
	topic := "value"
	if _, err := c.UpdateThingSensor(ctx, admin, core.SensorUpdate{ID: th.ID, MeasurementTopic: &topic}); err != nil {
		t.Fatal(err)
	}
	cookie, _ := tw.signIn()
	org := tw.env.Org.ID.Hex()
	for _, p := range []string{"/onboarding", "/onboarding?thing=" + th.ID.Hex(), "/tokens", "/tokens?org=" + org, "/webhooks", "/webhooks/" + org, "/status"} {
		w := tw.do(http.MethodGet, p, nil, withCookie(cookie))
		body := w.Body.String()
		if w.Code != http.StatusOK || w.Header().Get("Content-Security-Policy") == "" {
			t.Errorf("%s: %d, CSP %q", p, w.Code, w.Header().Get("Content-Security-Policy"))
		}
		if regexp.MustCompile(`(?i)<script>|<style|<img|<[^>]*\s(style|on[a-z]+)=`).MatchString(body) {
			t.Errorf("%s: inline script, style, handler or a device's markup:\n%s", p, body)
		}
	}
	w := tw.do(http.MethodGet, "/onboarding?thing="+th.ID.Hex(), nil, withCookie(cookie))
	if !strings.Contains(w.Body.String(), "&lt;img src=x onerror=alert(1)&gt;") {
		t.Error("the thing's name is not shown as text")
	}
}
