package tests

import (
	"net/http"
	"strings"
	"testing"
)

func preflight(t *testing.T, url, origin string) (int, http.Header) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodOptions, url, nil)
	req.Header.Set("Origin", origin)
	req.Header.Set("Access-Control-Request-Method", "POST")
	req.Header.Set("Access-Control-Request-Headers", "authorization, content-type")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode, resp.Header
}

// CORS only for the origins named in --cors-origins (issue 11): the
// original manager's development server may call the API on purpose,
// any other page may not.
func TestCORSOnlyForConfiguredOrigins(t *testing.T) {
	a := startAppliance(t, startOpts{args: []string{"--cors-origins", "http://localhost:5000"}})
	st, h := preflight(t, a.url+"/query", "http://localhost:5000")
	if st != http.StatusNoContent || h.Get("Access-Control-Allow-Origin") != "http://localhost:5000" ||
		!strings.Contains(h.Get("Access-Control-Allow-Headers"), "Authorization") {
		t.Fatalf("preflight from the allowed origin: %d %v", st, h)
	}
	if st, h := preflight(t, a.url+"/api/query", "https://evil.example"); st != http.StatusForbidden || h.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("preflight from another origin: %d %v", st, h)
	}
	req, _ := http.NewRequest(http.MethodPost, a.url+"/login", strings.NewReader(`{"email":"admin@piot.local","password":"`+a.adminPassword()+`"}`))
	req.Header.Set("Origin", "http://localhost:5000")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Access-Control-Allow-Origin") != "http://localhost:5000" {
		t.Fatalf("login from the allowed origin: %d %v", resp.StatusCode, resp.Header)
	}

	def := startAppliance(t, startOpts{})
	if st, h := preflight(t, def.url+"/query", "http://localhost:5000"); st != http.StatusForbidden || h.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("preflight without --cors-origins: %d %v", st, h)
	}
}
