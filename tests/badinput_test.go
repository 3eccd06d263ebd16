package tests

import (
	"encoding/base64"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func TestBadInputGetsDocumentedAnswers(t *testing.T) {
	a := startAppliance(t, startOpts{})
	tok := a.login("admin@piot.local", a.adminPassword())
	key, err := os.ReadFile(filepath.Join(a.dataDir, "jwt.key"))
	if err != nil {
		t.Fatal(err)
	}
	realKey := []byte(strings.TrimSpace(string(key)))
	var sub string
	{
		_, data, code := a.gql(tok, `{ users { id email } }`, nil)
		if code != "" {
			t.Fatal(code)
		}
		sub = data["users"].([]any)[0].(map[string]any)["id"].(string)
	}
	sign := func(m jwt.SigningMethod, k any, claims jwt.MapClaims) string {
		s, err := jwt.NewWithClaims(m, claims).SignedString(k)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	now := time.Now()
	valid := jwt.MapClaims{"iss": "piot", "sub": sub, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
	expired := jwt.MapClaims{"iss": "piot", "sub": sub, "iat": now.Add(-2 * time.Hour).Unix(), "exp": now.Add(-time.Hour).Unix()}
	noExp := jwt.MapClaims{"iss": "piot", "sub": sub, "iat": now.Unix()}
	b64 := base64.RawURLEncoding.EncodeToString
	algNone := b64([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + b64([]byte(`{"iss":"piot","sub":"`+sub+`","iat":`+itoa(now.Unix())+`,"exp":`+itoa(now.Add(time.Hour).Unix())+`}`)) + "."

	// Sanity: a token we sign with the real key works, so the failures
	// below are about what they change.
	if st, _, code := a.gql(sign(jwt.SigningMethodHS256, realKey, valid), `{ userProfile { email } }`, nil); st != 200 || code != "" {
		t.Fatalf("self-signed valid token refused: %d %s", st, code)
	}

	tokens := map[string]string{
		"expired":       sign(jwt.SigningMethodHS256, realKey, expired),
		"forged":        sign(jwt.SigningMethodHS256, []byte("0123456789abcdef0123456789abcdef-wrong"), valid),
		"alg none":      algNone,
		"HS512":         sign(jwt.SigningMethodHS512, realKey, valid),
		"no exp":        sign(jwt.SigningMethodHS256, realKey, noExp),
		"garbage":       "not.a.jwt",
		"empty subject": sign(jwt.SigningMethodHS256, realKey, jwt.MapClaims{"iss": "piot", "sub": "", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}),
	}
	for name, bad := range tokens {
		t.Run("jwt "+name, func(t *testing.T) {
			st, _, code := a.gql(bad, `{ userProfile { email } }`, nil)
			if st != http.StatusUnauthorized || code != "UNAUTHENTICATED" {
				t.Fatalf("status %d code %s, want 401 UNAUTHENTICATED", st, code)
			}
		})
	}
	t.Run("token in URL is ignored", func(t *testing.T) {
		st, out := post(t, a.url+"/query?token="+tok, "", map[string]any{"query": "{ userProfile { email } }"})
		if st != http.StatusUnauthorized || errCode(out) != "UNAUTHENTICATED" {
			t.Fatalf("status %d %v", st, out)
		}
	})

	cases := []struct {
		name   string
		path   string
		token  string
		body   any
		status int
		code   string
	}{
		{"malformed JSON query", "/query", tok, `{"query": `, 400, "BAD_USER_INPUT"},
		{"malformed JSON login", "/login", "", `{"email": }`, 400, "BAD_USER_INPUT"},
		{"oversize body", "/query", tok, `{"query":"{ orgs { id } }","pad":"` + strings.Repeat("x", 1<<20) + `"}`, 413, "BAD_USER_INPUT"},
		{"too deep", "/query", tok, map[string]any{"query": `{ things(all: true) { parent { parent { parent { parent { parent { parent { parent { parent { parent { parent { id } } } } } } } } } } } }`}, 200, "BAD_USER_INPUT"},
		{"syntax error", "/query", tok, map[string]any{"query": `{ orgs { `}, 422, "GRAPHQL_PARSE_FAILED"},
		{"unknown field", "/query", tok, map[string]any{"query": `{ orgs { nope } }`}, 422, "GRAPHQL_VALIDATION_FAILED"},
		{"bad id", "/query", tok, map[string]any{"query": `{ thing(id: "xyz") { id } }`}, 200, "BAD_USER_INPUT"},
		{"bad name", "/query", tok, map[string]any{"query": `mutation { createOrg(name: "a/b", description: "") { id } }`}, 200, "BAD_USER_INPUT"},
		{"empty login", "/login", "", map[string]string{}, 401, "UNAUTHENTICATED"},
		{"wrong password", "/login", "", map[string]string{"email": "admin@piot.local", "password": "wrong-password"}, 401, "UNAUTHENTICATED"},
		{"registration off", "/register", "", map[string]string{"email": "x@y.cz", "password": "12345678"}, 404, "NOT_FOUND"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st, out := post(t, a.url+tc.path, tc.token, tc.body)
			got := errCode(out)
			if c, ok := out["code"].(string); ok && got == "" {
				got = c
			}
			if st != tc.status || got != tc.code {
				t.Fatalf("status %d code %q, want %d %q (%v)", st, got, tc.status, tc.code, out)
			}
		})
	}
	// Nothing above hurt the appliance.
	if st, _, code := a.gql(tok, `{ userProfile { email } }`, nil); st != 200 || code != "" {
		t.Fatalf("appliance unhealthy after bad input: %d %s\n%s", st, code, a.out)
	}
	if strings.Contains(a.out.String(), "panic") {
		t.Fatalf("panic in log:\n%s", a.out)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestLoginIsRateLimited(t *testing.T) {
	a := startAppliance(t, startOpts{args: []string{"--login-rate", "1", "--login-burst", "3"}})
	var limited bool
	for i := 0; i < 6; i++ {
		st, out := post(t, a.url+"/login", "", map[string]string{"email": "admin@piot.local", "password": "wrong-password"})
		if st == http.StatusTooManyRequests {
			limited = true
			break
		}
		if st != http.StatusUnauthorized {
			t.Fatalf("attempt %d: %d %v", i, st, out)
		}
	}
	if !limited {
		t.Fatal("6 rapid failed logins were never limited")
	}
}

// Uniqueness is the store's unique index, not a check-then-insert: two
// concurrent creates of one name, exactly one wins.
func TestConcurrentCreateConflict(t *testing.T) {
	a := startAppliance(t, startOpts{})
	tok := a.login("admin@piot.local", a.adminPassword())
	for round := 0; round < 5; round++ {
		name := "org-" + strconv.Itoa(round)
		var wg sync.WaitGroup
		codes := make([]string, 2)
		for i := range codes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, _, codes[i] = a.gql(tok, `mutation($n: String!) { createOrg(name: $n, description: "") { id } }`, map[string]any{"n": name})
			}()
		}
		wg.Wait()
		ok, conflict := 0, 0
		for _, c := range codes {
			switch c {
			case "":
				ok++
			case "CONFLICT":
				conflict++
			}
		}
		if ok != 1 || conflict != 1 {
			t.Fatalf("round %d: codes %v, want one success and one CONFLICT", round, codes)
		}
	}
	_, data, _ := a.gql(tok, `{ orgs { name } }`, nil)
	if n := len(data["orgs"].([]any)); n != 5 {
		t.Fatalf("%d orgs, want 5", n)
	}
}
