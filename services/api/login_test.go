package api

import (
	"net/http"
	"testing"
	"time"

	"github.com/piot-appliance/piot/services/core"
	"github.com/piot-appliance/piot/services/core/coretest"
)

// badLogin is core's one answer to a wrong password and an unknown email
// alike, so that the answer does not tell which emails exist.
const badLogin = "user identified by this email does not exist or provided credentials are wrong"

type tokenAnswer struct {
	Token     string `json:"token"`
	ExpiresAt int64  `json:"expires_at"`
}

func TestLoginAnswersAToken(t *testing.T) {
	ts := newTestServer(t, nil)
	w := ts.login(coretest.AdminEmail, coretest.AdminPassword)
	if w.Code != http.StatusOK {
		t.Fatalf("login: %d %s", w.Code, w.Body.String())
	}
	checkJSONHeaders(t, w)
	var keys map[string]any
	decode(t, w, &keys)
	if len(keys) != 2 {
		t.Fatalf("answer keys: %v", keys)
	}
	var got tokenAnswer
	decode(t, w, &got)
	if want := ts.clock.Now().Add(time.Hour).Unix(); got.ExpiresAt != want {
		t.Fatalf("expires_at %d, want %d", got.ExpiresAt, want)
	}
	c, err := ts.srv.tokens.Parse(got.Token)
	if err != nil {
		t.Fatal(err)
	}
	if c.Subject != ts.env.Admin.UserID.Hex() || c.Version != ts.env.Admin.TokenVersion || c.Issuer != "piot" {
		t.Fatalf("claims %+v", c)
	}
	// The email is matched without regard to case.
	if w := ts.login("ADMIN@piot.local", coretest.AdminPassword); w.Code != http.StatusOK {
		t.Fatalf("login in capitals: %d %s", w.Code, w.Body.String())
	}
}

func TestLoginFailures(t *testing.T) {
	ts := newTestServer(t, nil)
	for _, tc := range []struct {
		name   string
		body   any
		status int
		code   core.Code
		msg    string
	}{
		{"wrong password", credentials{Email: coretest.AdminEmail, Password: "wrong"}, http.StatusUnauthorized, core.CodeUnauthenticated, badLogin},
		{"unknown email", credentials{Email: "nobody@piot.local", Password: coretest.AdminPassword}, http.StatusUnauthorized, core.CodeUnauthenticated, badLogin},
		{"no password", credentials{Email: coretest.AdminEmail}, http.StatusUnauthorized, core.CodeUnauthenticated, badLogin},
		{"not an email", credentials{Email: "admin", Password: "x"}, http.StatusUnauthorized, core.CodeUnauthenticated, badLogin},
		{"trailing data", `{"email":"a@b.c","password":"x"} {}`, http.StatusBadRequest, core.CodeBadInput, "malformed JSON body: trailing data"},
		{"not JSON", "email=a@b.c", http.StatusBadRequest, core.CodeBadInput, "malformed JSON body: invalid character 'e' looking for beginning of value"},
		{"no body", "", http.StatusBadRequest, core.CodeBadInput, "malformed JSON body: EOF"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Four failures count, below the default burst of 5; malformed
			// bodies are refused before the limits.
			w := ts.serve(http.MethodPost, "/login", tc.body)
			wantError(t, w, tc.status, tc.code, tc.msg)
		})
	}
}

// Scripts log in before every command: successes are never throttled,
// failures are, per source address (any account) and per account (from
// any address); 5 at once, then one more every 6 s at 10 a minute.
func TestLoginLimitsFailuresPerAddressAndAccount(t *testing.T) {
	ts := newTestServer(t, func(c *Config, _ *Deps) { c.LoginPerMinute, c.LoginBurst = 10, 5 })
	const home, other = "203.0.113.1:1000", "203.0.113.2:1000"
	for i := range 20 {
		if w := ts.login(coretest.AdminEmail, coretest.AdminPassword, from(home)); w.Code != http.StatusOK {
			t.Fatalf("success %d: %d", i+1, w.Code)
		}
	}
	for range 5 {
		wantError(t, ts.login(coretest.AdminEmail, "wrong", from(home)), http.StatusUnauthorized, core.CodeUnauthenticated, badLogin)
	}
	// The address is blocked for every account, the right password too.
	w := ts.login("member@acme.test", "member-password", from(home))
	wantError(t, w, http.StatusTooManyRequests, core.CodeRateLimited, "too many failed login attempts, try again later")
	if n := retryAfter(t, w); n < 6 || n > 7 {
		t.Fatalf("Retry-After %d, want about 6 s", n)
	}
	// The account is blocked from every address, its case and spaces
	// notwithstanding.
	w = ts.login(" Admin@Piot.Local ", coretest.AdminPassword, from(other))
	wantError(t, w, http.StatusTooManyRequests, core.CodeRateLimited, "too many failed login attempts, try again later")
	retryAfter(t, w)
	// Other accounts from other addresses are not.
	if w := ts.login("member@acme.test", "member-password", from(other)); w.Code != http.StatusOK {
		t.Fatalf("member from elsewhere: %d", w.Code)
	}
	// After 6 s one more attempt is allowed, for the address and the
	// account alike.
	ts.clock.Advance(6 * time.Second)
	if w := ts.login(coretest.AdminEmail, coretest.AdminPassword, from(home)); w.Code != http.StatusOK {
		t.Fatalf("after 6 s: %d %s", w.Code, w.Body.String())
	}
}

func TestLoginLimitCountsAccountsFromManyAddresses(t *testing.T) {
	ts := newTestServer(t, func(c *Config, _ *Deps) { c.LoginPerMinute, c.LoginBurst = 10, 3 })
	for _, peer := range []string{"203.0.113.1:1", "203.0.113.2:1", "203.0.113.3:1"} {
		wantError(t, ts.login("member@acme.test", "guess", from(peer)), http.StatusUnauthorized, core.CodeUnauthenticated, badLogin)
	}
	w := ts.login("member@acme.test", "member-password", from("203.0.113.4:1"))
	wantError(t, w, http.StatusTooManyRequests, core.CodeRateLimited, "too many failed login attempts, try again later")
	if w := ts.login(coretest.AdminEmail, coretest.AdminPassword, from("203.0.113.4:1")); w.Code != http.StatusOK {
		t.Fatalf("another account from the fourth address: %d", w.Code)
	}
}

func TestRefresh(t *testing.T) {
	ts := newTestServer(t, nil)
	old := ts.token(ts.member)
	ts.clock.Advance(30 * time.Minute)
	w := ts.serve(http.MethodPost, "/refresh", nil, bearerToken(old))
	if w.Code != http.StatusOK {
		t.Fatalf("refresh: %d %s", w.Code, w.Body.String())
	}
	var got tokenAnswer
	decode(t, w, &got)
	if want := ts.clock.Now().Add(time.Hour).Unix(); got.ExpiresAt != want {
		t.Fatalf("expires_at %d, want %d", got.ExpiresAt, want)
	}
	// The fresh token outlives the old one.
	ts.clock.Advance(45 * time.Minute)
	wantError(t, ts.serve(http.MethodPost, "/refresh", nil, bearerToken(old)),
		http.StatusUnauthorized, core.CodeUnauthenticated, "token is expired")
	if w := ts.serve(http.MethodPost, "/refresh", nil, bearerToken(got.Token)); w.Code != http.StatusOK {
		t.Fatalf("refresh with the fresh token: %d %s", w.Code, w.Body.String())
	}
	wantError(t, ts.serve(http.MethodPost, "/refresh", nil), http.StatusUnauthorized, core.CodeUnauthenticated,
		"invalid or missing authorization header")
	wantError(t, ts.serve(http.MethodGet, "/refresh", nil, bearerToken(got.Token)), http.StatusMethodNotAllowed,
		core.CodeBadInput, "only POST method is allowed")
}

func TestRegisterWhenAllowed(t *testing.T) {
	ts := newTestServer(t, func(c *Config, _ *Deps) { c.AllowRegistration, c.LoginBurst = true, 3 })
	peer := from("203.0.113.9:1")
	w := ts.serve(http.MethodPost, "/register", credentials{Email: "new@x.test", Password: "new-password"}, peer)
	if w.Code != http.StatusOK {
		t.Fatalf("register: %d %s", w.Code, w.Body.String())
	}
	if e := envelope(t, w); e != (errorBody{Result: "Registration successful"}) {
		t.Fatalf("answer %+v", e)
	}
	w = ts.login("new@x.test", "new-password")
	if w.Code != http.StatusOK {
		t.Fatalf("login of the new user: %d", w.Code)
	}
	var tok tokenAnswer
	decode(t, w, &tok)
	if c, err := ts.srv.tokens.Parse(tok.Token); err != nil {
		t.Fatal(err)
	} else if a, err := ts.env.Core.ActorFor(mustID(t, c.Subject), c.Version); err != nil || a.Admin {
		t.Fatalf("registered user %+v, %v: must not be an administrator", a, err)
	}
	w = ts.serve(http.MethodPost, "/register", credentials{Email: "NEW@x.test", Password: "other-password"}, peer)
	if w.Code != http.StatusConflict || envelope(t, w).Code != core.CodeConflict {
		t.Fatalf("second registration: %d %s", w.Code, w.Body.String())
	}
	w = ts.serve(http.MethodPost, "/register", credentials{Email: "not an email", Password: "new-password"}, peer)
	if w.Code != http.StatusBadRequest || envelope(t, w).Code != core.CodeBadInput {
		t.Fatalf("bad email: %d %s", w.Code, w.Body.String())
	}
	wantError(t, ts.serve(http.MethodGet, "/register", nil, peer), http.StatusMethodNotAllowed, core.CodeBadInput,
		"only POST method is allowed")
	// Every attempt counts, successful or not (LoginBurst of them at once).
	w = ts.serve(http.MethodPost, "/register", credentials{Email: "late@x.test", Password: "new-password"}, peer)
	wantError(t, w, http.StatusTooManyRequests, core.CodeRateLimited, "too many attempts, try again later")
	retryAfter(t, w)
	if w := ts.serve(http.MethodPost, "/register", credentials{Email: "late@x.test", Password: "new-password"}); w.Code != http.StatusOK {
		t.Fatalf("from another address: %d %s", w.Code, w.Body.String())
	}
}

func TestRegisterWhenNotAllowed(t *testing.T) {
	ts := newTestServer(t, nil)
	for _, method := range []string{http.MethodPost, http.MethodGet} {
		w := ts.serve(method, "/register", credentials{Email: "new@x.test", Password: "new-password"})
		wantError(t, w, http.StatusNotFound, core.CodeNotFound, "registration is disabled on this appliance")
	}
	if w := ts.login("new@x.test", "new-password"); w.Code != http.StatusUnauthorized {
		t.Fatalf("login of the refused user: %d", w.Code)
	}
}

func mustID(t *testing.T, hex string) core.ID {
	t.Helper()
	id, err := core.ParseID(hex)
	if err != nil {
		t.Fatal(err)
	}
	return id
}
