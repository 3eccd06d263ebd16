package exporter

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// applianceFamilies are families an org scope must never see.
func isThingFamily(name string) bool {
	for _, f := range thingFamilies {
		if f == name {
			return true
		}
	}
	return false
}

func TestScrapeAuth(t *testing.T) {
	f := newFixture(t)
	e := newExporter(t, fakeSources(f.core))
	h := e.Handler(BearerAuthorizer(globalToken, f.orgToken))

	for _, c := range []struct {
		name, header string
	}{
		{"no token", ""},
		{"wrong token", "Bearer nope"},
		{"global token as prefix", "Bearer " + globalToken[:len(globalToken)-1]},
		{"global token with suffix", "Bearer " + globalToken + "x"},
		{"basic scheme", "Basic " + globalToken},
		{"no scheme", globalToken},
		{"empty bearer", "Bearer "},
		{"huge token", "Bearer " + strings.Repeat("a", 100_000)},
	} {
		r := httptest.NewRequest(http.MethodGet, "/metrics", nil)
		if c.header != "" {
			r.Header.Set("Authorization", c.header)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusUnauthorized {
			t.Errorf("%s: status %d", c.name, w.Code)
		}
		if got := w.Header().Get("WWW-Authenticate"); !strings.HasPrefix(got, "Bearer") {
			t.Errorf("%s: WWW-Authenticate %q", c.name, got)
		}
		if strings.Contains(w.Body.String(), "piot_") {
			t.Errorf("%s: metrics leaked: %s", c.name, w.Body.String())
		}
	}

	// The scheme is case-insensitive.
	r := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	r.Header.Set("Authorization", "bearer "+globalToken)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusOK {
		t.Errorf("lower-case scheme: %d", w.Code)
	}

	// Only GET and HEAD.
	r = httptest.NewRequest(http.MethodPost, "/metrics", nil)
	r.Header.Set("Authorization", "Bearer "+globalToken)
	w = httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d", w.Code)
	}

	// Without a global token nothing matches it, not even an empty one; a
	// nil authorizer lets nobody in; a scope without org is refused.
	for name, auth := range map[string]Authorizer{
		"empty global": BearerAuthorizer("", nil),
		"nil":          nil,
		"empty scope":  func(*http.Request) (Scope, bool) { return Scope{}, true },
	} {
		for _, tok := range []string{"", globalToken} {
			if code, _, _ := scrape(t, e.Handler(auth), tok); code != http.StatusUnauthorized {
				t.Errorf("%s authorizer, token %q: %d", name, tok, code)
			}
		}
	}
}

func TestScopes(t *testing.T) {
	f := newFixture(t)
	h := newExporter(t, fakeSources(f.core)).Handler(BearerAuthorizer(globalToken, f.orgToken))

	// The global token sees the appliance and every org.
	code, _, body := scrape(t, h, globalToken)
	if code != http.StatusOK {
		t.Fatalf("global: %d", code)
	}
	all := parse(t, body)
	for _, want := range []string{"piot_build_info", "piot_mqtt_clients_connected", "go_goroutines", "process_cpu_seconds_total", "piot_scrape_collector_success"} {
		if all[want] == nil {
			t.Errorf("global scope lacks %s", want)
		}
	}
	checkThings(t, body, merge(farmSeries, citySeries))

	// An org token sees its org's things and nothing else.
	for tok, want := range map[string]map[string][]string{farmToken: merge(farmSeries), cityToken: merge(citySeries)} {
		code, _, body := scrape(t, h, tok)
		if code != http.StatusOK {
			t.Fatalf("%s: %d", tok, code)
		}
		checkThings(t, body, want)
		for _, n := range names(parse(t, body)) {
			if !isThingFamily(n) {
				t.Errorf("%s sees %s", tok, n)
			}
		}
	}
}
