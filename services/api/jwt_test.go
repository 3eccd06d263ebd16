package api

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/piot-appliance/piot/services/core"
)

// signed is a token with the given claims, signed by key with method.
func signed(t *testing.T, method jwt.SigningMethod, key any, c jwt.Claims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(method, c).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestTokensRefused(t *testing.T) {
	ts := newTestServer(t, nil)
	now := ts.clock.Now()
	valid := func(edit func(*Claims)) Claims {
		c := Claims{RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    issuer,
			Subject:   ts.member.UserID.Hex(),
			IssuedAt:  jwt.NewNumericDate(now.Add(-time.Minute)),
			ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour)),
		}, Version: ts.member.TokenVersion}
		if edit != nil {
			edit(&c)
		}
		return c
	}
	hs256 := func(edit func(*Claims)) string { return signed(t, jwt.SigningMethodHS256, testKey, valid(edit)) }
	unknownUser := core.ID{1, 2, 3}
	for _, tc := range []struct {
		name, token, msg string
	}{
		{"expired", hs256(func(c *Claims) { c.ExpiresAt = jwt.NewNumericDate(now.Add(-time.Second)) }), "token is expired"},
		{"wrong key", signed(t, jwt.SigningMethodHS256, []byte("another key of at least 32 bytes!"), valid(nil)), "token signature is invalid"},
		{"other HMAC", signed(t, jwt.SigningMethodHS512, testKey, valid(nil)), "token signature is invalid"},
		{"alg none", signed(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, valid(nil)), "token signature is invalid"},
		{"tampered", hs256(nil) + "x", "token signature is invalid"},
		{"not a JWT", "abc", "token is not valid"},
		{"three dots of nothing", "..", "token is not valid"},
		{"no expiry", hs256(func(c *Claims) { c.ExpiresAt = nil }), "token is not valid"},
		{"no issue time", hs256(func(c *Claims) { c.IssuedAt = nil }), "token is not valid"},
		{"issued in the future", hs256(func(c *Claims) { c.IssuedAt = jwt.NewNumericDate(now.Add(time.Hour)) }), "token is not valid"},
		{"other issuer", hs256(func(c *Claims) { c.Issuer = "someone" }), "token is not valid"},
		{"no subject", hs256(func(c *Claims) { c.Subject = "" }), "token is not valid"},
		{"subject not an ID", hs256(func(c *Claims) { c.Subject = "admin" }), "token is not valid"},
		{"unknown user", hs256(func(c *Claims) { c.Subject = unknownUser.Hex() }), "the user of this token no longer exists"},
		{"old version", hs256(func(c *Claims) { c.Version-- }), "token was revoked by a password change"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantError(t, ts.serve(http.MethodPost, "/refresh", nil, bearerToken(tc.token)),
				http.StatusUnauthorized, core.CodeUnauthenticated, tc.msg)
			w := ts.serve(http.MethodPost, "/query", `{"query":"{ userProfile { email } }"}`, bearerToken(tc.token))
			wantGraphQLError(t, w, http.StatusUnauthorized, core.CodeUnauthenticated, tc.msg)
			if got := w.Header().Get("WWW-Authenticate"); got != `Bearer realm="piot"` {
				t.Fatalf("WWW-Authenticate %q", got)
			}
		})
	}
	// The claims as the server makes them pass.
	if w := ts.serve(http.MethodPost, "/refresh", nil, bearerToken(hs256(nil))); w.Code != http.StatusOK {
		t.Fatalf("valid: %d %s", w.Code, w.Body.String())
	}
}

func TestQueryWithoutToken(t *testing.T) {
	ts := newTestServer(t, nil)
	for name, opt := range map[string]requestOption{
		"no header":        func(*http.Request) {},
		"empty bearer":     header("Authorization", "Bearer "),
		"basic":            header("Authorization", "Basic YWRtaW46cHc="),
		"token in the URL": func(r *http.Request) { r.URL.RawQuery = "token=" + ts.token(ts.env.Admin) },
	} {
		t.Run(name, func(t *testing.T) {
			w := ts.serve(http.MethodPost, "/query", `{"query":"{ userProfile { email } }"}`, opt)
			wantGraphQLError(t, w, http.StatusUnauthorized, core.CodeUnauthenticated, "invalid or missing authorization header")
		})
	}
}

// A password change revokes the tokens issued before it; a refresh
// after it gives a token of the new version.
func TestPasswordChangeRevokesTokens(t *testing.T) {
	ts := newTestServer(t, nil)
	before := ts.token(ts.member)
	pw := "a new password"
	if _, err := ts.env.Core.UpdateUser(context.Background(), ts.member, core.UserUpdate{ID: ts.member.UserID, Password: &pw}); err != nil {
		t.Fatal(err)
	}
	wantError(t, ts.serve(http.MethodPost, "/refresh", nil, bearerToken(before)),
		http.StatusUnauthorized, core.CodeUnauthenticated, "token was revoked by a password change")
	w := ts.login("member@acme.test", pw)
	var got tokenAnswer
	decode(t, w, &got)
	if w := ts.serve(http.MethodPost, "/refresh", nil, bearerToken(got.Token)); w.Code != http.StatusOK {
		t.Fatalf("refresh after the change: %d %s", w.Code, w.Body.String())
	}
}

func TestTokenExpiresAfterTTL(t *testing.T) {
	ts := newTestServer(t, func(c *Config, _ *Deps) { c.JWTTTL = 10 * time.Minute })
	tok := ts.token(ts.member)
	ts.clock.Advance(10*time.Minute - time.Second)
	if w := ts.serve(http.MethodPost, "/refresh", nil, bearerToken(tok)); w.Code != http.StatusOK {
		t.Fatalf("before expiry: %d %s", w.Code, w.Body.String())
	}
	ts.clock.Advance(2 * time.Second)
	wantError(t, ts.serve(http.MethodPost, "/refresh", nil, bearerToken(tok)),
		http.StatusUnauthorized, core.CodeUnauthenticated, "token is expired")
}

func TestNewChecksTheKeyAndTTL(t *testing.T) {
	if _, err := New(Config{JWTKey: testKey[:31], JWTTTL: time.Hour}, Deps{}); err == nil {
		t.Fatal("a 31-byte key was accepted")
	}
	if _, err := New(Config{JWTKey: testKey}, Deps{}); err == nil {
		t.Fatal("a zero TTL was accepted")
	}
}

// A token signed out in core (the web manager's /logout) is refused by
// the API too, and every token names itself for that.
func TestRevokedTokenRefused(t *testing.T) {
	ts := newTestServer(t, nil)
	tok := ts.token(ts.member)
	c, err := ts.srv.tokens.Parse(tok)
	if err != nil || c.ID == "" {
		t.Fatalf("claims %+v, %v: want a jti", c, err)
	}
	if err := ts.env.Core.RevokeToken(context.Background(), ts.member, c.ID, c.ExpiresAt.Time); err != nil {
		t.Fatal(err)
	}
	wantError(t, ts.serve(http.MethodPost, "/refresh", nil, bearerToken(tok)),
		http.StatusUnauthorized, core.CodeUnauthenticated, "token was revoked by signing out")
	w := ts.serve(http.MethodPost, "/query", `{"query":"{ userProfile { email } }"}`, bearerToken(tok))
	wantGraphQLError(t, w, http.StatusUnauthorized, core.CodeUnauthenticated, "token was revoked by signing out")
	if w := ts.serve(http.MethodPost, "/refresh", nil, bearerToken(ts.token(ts.member))); w.Code != http.StatusOK {
		t.Fatalf("another token of the same user: %d %s", w.Code, w.Body.String())
	}
}
