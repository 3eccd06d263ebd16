package web

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// signInAs signs a user in with a password and returns cookie and form
// token.
func (tw *testWeb) signInAs(email, password string) (*http.Cookie, string) {
	tw.t.Helper()
	w := tw.do(http.MethodPost, "/signin", url.Values{"email": {email}, "password": {password}})
	if w.Code != http.StatusSeeOther {
		tw.t.Fatalf("sign in %s: %d %s", email, w.Code, w.Body.String())
	}
	var c *http.Cookie
	for _, k := range w.Result().Cookies() {
		if k.Name == cookieName {
			c = k
		}
	}
	page := tw.do(http.MethodGet, "/", nil, withCookie(c))
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(page.Body.String())
	if m == nil {
		tw.t.Fatalf("no form token: %s", page.Body.String())
	}
	return c, m[1]
}

func (tw *testWeb) post(c *http.Cookie, path string, form url.Values) *httptest.ResponseRecorder {
	tw.t.Helper()
	return tw.do(http.MethodPost, path, form, withCookie(c))
}

func TestAdminManagesOrgsAndUsers(t *testing.T) {
	tw := newTestWeb(t)
	c, tok := tw.signIn()
	w := tw.post(c, "/orgs", url.Values{"csrf": {tok}, "name": {"farm"}, "description": {"North farm"}})
	if w.Code != http.StatusSeeOther || !strings.HasPrefix(w.Header().Get("Location"), "/orgs/") {
		t.Fatalf("create org: %d %s", w.Code, w.Body.String())
	}
	orgPage := strings.TrimSuffix(w.Header().Get("Location"), "?done=org-created")
	orgID := strings.TrimPrefix(orgPage, "/orgs/")

	// MQTT credentials: the password is in this answer and no other.
	w = tw.post(c, orgPage+"/mqtt", url.Values{"csrf": {tok}, "username": {"farm-devices"}})
	m := regexp.MustCompile(`id="mqtt-password">([^<]+)<`).FindStringSubmatch(w.Body.String())
	if w.Code != http.StatusOK || m == nil {
		t.Fatalf("set MQTT credentials: %d %s", w.Code, w.Body.String())
	}
	if _, ok := tw.env.Core.VerifyMQTT("farm-devices", m[1]); !ok {
		t.Fatal("the shown MQTT password does not log in")
	}
	if strings.Contains(tw.do(http.MethodGet, orgPage, nil, withCookie(c)).Body.String(), m[1]) {
		t.Fatal("the MQTT password is shown again")
	}

	w = tw.post(c, "/users", url.Values{"csrf": {tok}, "email": {"alice@farm.example"}, "password": {"correct horse battery"}, "org": {orgID}})
	if w.Code != http.StatusSeeOther {
		t.Fatalf("create user: %d %s", w.Code, w.Body.String())
	}
	orgs := tw.do(http.MethodGet, orgPage, nil, withCookie(c)).Body.String()
	if !strings.Contains(orgs, "alice@farm.example") {
		t.Fatalf("alice is not listed as a member:\n%s", orgs)
	}
	// Names are device- and user-given text: shown escaped everywhere.
	w = tw.post(c, "/orgs", url.Values{"csrf": {tok}, "name": {"<img src=x onerror=alert(1)>"}})
	if w.Code != http.StatusSeeOther {
		t.Fatalf("org with markup in its name: %d %s", w.Code, w.Body.String())
	}
	for _, p := range []string{"/orgs", "/", w.Header().Get("Location")} {
		body := tw.do(http.MethodGet, p, nil, withCookie(c)).Body.String()
		if strings.Contains(body, "<img") || !strings.Contains(body, "&lt;img src=x onerror=alert(1)&gt;") {
			t.Fatalf("%s: name not escaped:\n%s", p, body)
		}
	}
	// A name core refuses comes back in the form, with core's reason.
	w = tw.post(c, "/orgs", url.Values{"csrf": {tok}, "name": {"a/b"}})
	if w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), `value="a/b"`) || !strings.Contains(w.Body.String(), `class="error"`) {
		t.Fatalf("bad org name: %d %s", w.Code, w.Body.String())
	}
	w = tw.post(c, orgPage, url.Values{"csrf": {tok}, "name": {"farm"}, "description": {"<img src=x onerror=alert(1)>"}})
	if w.Code != http.StatusSeeOther {
		t.Fatalf("save org: %d %s", w.Code, w.Body.String())
	}
	if body := tw.do(http.MethodGet, "/orgs", nil, withCookie(c)).Body.String(); strings.Contains(body, "<img") {
		t.Fatalf("description not escaped:\n%s", body)
	}
	w = tw.post(c, orgPage+"/delete", url.Values{"csrf": {tok}})
	if w.Code != http.StatusSeeOther {
		t.Fatalf("delete org: %d %s", w.Code, w.Body.String())
	}
	if w := tw.do(http.MethodGet, orgPage, nil, withCookie(c)); w.Code != http.StatusNotFound {
		t.Fatalf("deleted org: %d", w.Code)
	}
}

// Non-admins reach none of the admin pages, also by typing their URLs:
// core refuses, the page says so.
func TestMemberCannotReachAdminPages(t *testing.T) {
	tw := newTestWeb(t)
	ctx := context.Background()
	bob, err := tw.env.Core.CreateUser(ctx, tw.env.Admin, "bob@acme.test", "correct horse battery", false)
	if err != nil {
		t.Fatal(err)
	}
	other, err := tw.env.Core.CreateOrg(ctx, tw.env.Admin, "other", "")
	if err != nil {
		t.Fatal(err)
	}
	if err := tw.env.Core.AddOrgUser(ctx, tw.env.Admin, tw.env.Org.ID, bob.ID); err != nil {
		t.Fatal(err)
	}
	c, tok := tw.signInAs("bob@acme.test", "correct horse battery")
	home := tw.do(http.MethodGet, "/", nil, withCookie(c)).Body.String()
	if strings.Contains(home, `href="/users"`) || strings.Contains(home, `href="/orgs"`) {
		t.Fatalf("admin navigation shown to a member:\n%s", home)
	}
	for _, p := range []string{"/users", "/users/new", "/orgs/new", "/orgs/" + other.ID.Hex(), "/users/" + tw.env.Admin.UserID.Hex(),
		"/orgs/" + tw.env.Org.ID.Hex() + "/delete", "/users/" + tw.env.Admin.UserID.Hex() + "/delete"} {
		if w := tw.do(http.MethodGet, p, nil, withCookie(c)); w.Code != http.StatusForbidden {
			t.Errorf("GET %s: %d, want 403", p, w.Code)
		}
	}
	for p, form := range map[string]url.Values{
		"/orgs":                                {"name": {"mine"}},
		"/orgs/" + tw.env.Org.ID.Hex():         {"name": {"renamed"}},
		"/orgs/" + other.ID.Hex() + "/members": {"user": {bob.ID.Hex()}},
		"/users/" + bob.ID.Hex():               {"admin-field": {"1"}, "admin": {"on"}},
	} {
		form.Set("csrf", tok)
		if w := tw.post(c, p, form); w.Code != http.StatusForbidden {
			t.Errorf("POST %s: %d, want 403", p, w.Code)
		}
	}
	// Their own org and their own account are theirs to see.
	if w := tw.do(http.MethodGet, "/orgs/"+tw.env.Org.ID.Hex(), nil, withCookie(c)); w.Code != http.StatusOK {
		t.Errorf("own org: %d", w.Code)
	}
	if w := tw.do(http.MethodGet, "/users/"+bob.ID.Hex(), nil, withCookie(c)); w.Code != http.StatusOK {
		t.Errorf("own account: %d", w.Code)
	}
	if a, err := tw.env.Core.User(tw.env.Admin, bob.ID); err != nil || a.IsAdmin {
		t.Fatalf("bob after the attempts: %+v %v", a, err)
	}
}

// Changing one's own password keeps one signed in with a fresh token;
// the old cookie stops working.
func TestOwnPasswordChangeRenewsTheSession(t *testing.T) {
	tw := newTestWeb(t)
	ctx := context.Background()
	bob, err := tw.env.Core.CreateUser(ctx, tw.env.Admin, "bob@acme.test", "correct horse battery", false)
	if err != nil {
		t.Fatal(err)
	}
	c, tok := tw.signInAs("bob@acme.test", "correct horse battery")
	w := tw.post(c, "/users/"+bob.ID.Hex(), url.Values{"csrf": {tok}, "password": {"another good password"}})
	if w.Code != http.StatusSeeOther {
		t.Fatalf("change password: %d %s", w.Code, w.Body.String())
	}
	var fresh *http.Cookie
	for _, k := range w.Result().Cookies() {
		if k.Name == cookieName {
			fresh = k
		}
	}
	if fresh == nil {
		t.Fatal("no new cookie")
	}
	if w := tw.do(http.MethodGet, "/", nil, withCookie(c)); w.Code != http.StatusSeeOther {
		t.Fatalf("old cookie: %d", w.Code)
	}
	if w := tw.do(http.MethodGet, "/", nil, withCookie(fresh)); w.Code != http.StatusOK {
		t.Fatalf("new cookie: %d", w.Code)
	}
}
