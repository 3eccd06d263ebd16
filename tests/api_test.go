package tests

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestRefreshRegistrationAndRoutes(t *testing.T) {
	a := startAppliance(t, startOpts{args: []string{"--allow-registration", "--login-burst", "50"}})
	tok := a.login("admin@piot.local", a.adminPassword())

	st, out := post(t, a.url+"/refresh", tok, "")
	if st != http.StatusOK {
		t.Fatalf("refresh: %d %v", st, out)
	}
	fresh, _ := out["token"].(string)
	if fresh == "" {
		t.Fatalf("refresh gave no token: %v", out)
	}
	if _, _, code := a.gql(fresh, `{ userProfile { email is_admin } }`, nil); code != "" {
		t.Fatalf("refreshed token refused: %s", code)
	}
	if st, out := post(t, a.url+"/refresh", "", ""); st != http.StatusUnauthorized || out["code"] != "UNAUTHENTICATED" {
		t.Fatalf("refresh without token: %d %v", st, out)
	}

	// Registration (enabled here) creates a plain user with no rights.
	st, out = post(t, a.url+"/register", "", map[string]string{"email": "New@Example.org", "password": "long-enough"})
	if st != http.StatusOK || out["result"] != "Registration successful" {
		t.Fatalf("register: %d %v", st, out)
	}
	if st, out := post(t, a.url+"/register", "", map[string]string{"email": "new@example.org", "password": "long-enough"}); st != http.StatusConflict || out["code"] != "CONFLICT" {
		t.Fatalf("register twice: %d %v", st, out)
	}
	if st, out := post(t, a.url+"/register", "", map[string]string{"email": "bad", "password": "long-enough"}); st != http.StatusBadRequest || out["code"] != "BAD_USER_INPUT" {
		t.Fatalf("register bad email: %d %v", st, out)
	}
	user := a.login("new@example.org", "long-enough")
	_, data, code := a.gql(user, `{ userProfile { email is_admin } }`, nil)
	if code != "" || data["userProfile"].(map[string]any)["is_admin"] != false {
		t.Fatalf("registered user: %v %s", data, code)
	}
	if _, _, code := a.gql(user, `{ users { email } }`, nil); code != "FORBIDDEN" {
		t.Fatalf("registered user lists users: %s", code)
	}

	// The original manager's paths under /api/.
	if st, out := post(t, a.url+"/api/query", tok, map[string]any{"query": "{ orgs { id } }"}); st != http.StatusOK || errCode(out) != "" {
		t.Fatalf("/api/query: %d %v", st, out)
	}
	if st, out := post(t, a.url+"/api/login", "", map[string]string{"email": "admin@piot.local", "password": a.adminPassword()}); st != http.StatusOK || out["token"] == nil {
		t.Fatalf("/api/login: %d %v", st, out)
	}
	// "/" is the web manager, which sends a visitor to its sign-in page.
	for path, want := range map[string]string{"/healthz": "ok", "/readyz": "ready", "/gql/": "graphiql", "/": "Sign in"} {
		st, body := get(t, a.url+path)
		if st != http.StatusOK || !strings.Contains(strings.ToLower(body), strings.ToLower(want)) {
			t.Errorf("GET %s: %d %.80q", path, st, body)
		}
	}
	if st, _ := get(t, a.url+"/nope"); st != http.StatusNotFound {
		t.Errorf("unknown path: %d", st)
	}
}
