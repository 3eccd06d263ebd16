package api

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/piot-appliance/piot/internal/testclock"
	"github.com/piot-appliance/piot/services/api/graph"
	"github.com/piot-appliance/piot/services/core"
	"github.com/piot-appliance/piot/services/core/coretest"
)

// The tests of this package drive the server's real handler (the one
// New gives http.Server) in front of a real core on the embedded store.
// Requests go to the handler directly, so a test chooses the peer address
// the server sees; one test (TestStartServesOverTCP) uses a real listener.

var (
	testKey = []byte("0123456789abcdef0123456789abcdef")
	quiet   = slog.New(slog.DiscardHandler)
	// defaultPeer is where requests come from unless a test says otherwise
	// (TEST-NET-1, RFC 5737: only ever a string here).
	defaultPeer = "192.0.2.1:40000"
)

// testServer is a Server with its core, an administrator and a member of
// org "acme".
type testServer struct {
	t      *testing.T
	env    *coretest.Env
	srv    *Server
	clock  *testclock.Clock // tokens expire and login limits refill only when a test moves it
	member core.Actor
}

// newTestServer builds a Server on a fresh core; edit, when not nil,
// changes the configuration and the dependencies first. By default the
// GraphQL endpoint is the real one and Ready is not set.
func newTestServer(t *testing.T, edit func(*Config, *Deps)) *testServer {
	t.Helper()
	env := coretest.Open(t, coretest.Options{Org: "acme"})
	clock := testclock.New(time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC))
	cfg := Config{JWTKey: testKey, JWTTTL: time.Hour, Now: clock.Now, Logger: quiet, Version: "v-test"}
	deps := Deps{Core: env.Core, GraphQL: graph.NewHandler(env.Core, graph.Options{Logger: quiet})}
	if edit != nil {
		edit(&cfg, &deps)
	}
	srv, err := New(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	return &testServer{t: t, env: env, srv: srv, clock: clock, member: env.Member(t, "member@acme.test", "member-password")}
}

// requestOption changes a request before it is served.
type requestOption func(*http.Request)

// from sets the peer's address ("ip:port").
func from(addr string) requestOption {
	return func(r *http.Request) { r.RemoteAddr = addr }
}

func header(name, value string) requestOption {
	return func(r *http.Request) { r.Header.Set(name, value) }
}

func bearerToken(tok string) requestOption {
	return header("Authorization", "Bearer "+tok)
}

// serve sends one request through the server's handler. A body of type
// string is sent as it is (with its length known), an io.Reader without
// a length (as a chunked upload), anything else as JSON.
func (ts *testServer) serve(method, path string, body any, opts ...requestOption) *httptest.ResponseRecorder {
	ts.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case io.Reader:
		rd = b
	default:
		js, err := json.Marshal(b)
		if err != nil {
			ts.t.Fatal(err)
		}
		rd = strings.NewReader(string(js))
	}
	r := httptest.NewRequest(method, path, rd)
	r.RemoteAddr = defaultPeer
	if rd != nil {
		r.Header.Set("Content-Type", "application/json")
	}
	for _, o := range opts {
		o(r)
	}
	w := httptest.NewRecorder()
	ts.srv.srv.Handler.ServeHTTP(w, r)
	return w
}

func (ts *testServer) login(email, password string, opts ...requestOption) *httptest.ResponseRecorder {
	ts.t.Helper()
	return ts.serve(http.MethodPost, "/login", credentials{Email: email, Password: password}, opts...)
}

// token is a valid bearer token of a.
func (ts *testServer) token(a core.Actor) string {
	ts.t.Helper()
	tok, err := ts.srv.tokens.Issue(a)
	if err != nil {
		ts.t.Fatal(err)
	}
	return tok.Value
}

// query posts a GraphQL query with a's token.
func (ts *testServer) query(a core.Actor, query string, opts ...requestOption) *httptest.ResponseRecorder {
	ts.t.Helper()
	opts = append([]requestOption{bearerToken(ts.token(a))}, opts...)
	return ts.serve(http.MethodPost, "/query", map[string]string{"query": query}, opts...)
}

// errorBody is the API's answer envelope (httpx.CodedAnswer) as a client
// decodes it.
type errorBody struct {
	Error  string    `json:"error"`
	Result string    `json:"result"`
	Code   core.Code `json:"code"`
}

// envelope decodes the JSON error envelope and checks that it has exactly
// its three keys and the headers every JSON answer carries.
func envelope(t *testing.T, w *httptest.ResponseRecorder) errorBody {
	t.Helper()
	checkJSONHeaders(t, w)
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(w.Body.Bytes(), &keys); err != nil {
		t.Fatalf("not a JSON object: %q", w.Body.String())
	}
	if len(keys) != 3 || keys["error"] == nil || keys["result"] == nil || keys["code"] == nil {
		t.Fatalf("envelope keys: %s", w.Body.String())
	}
	var e errorBody
	if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil {
		t.Fatal(err)
	}
	return e
}

// wantError checks an answer in the error envelope.
func wantError(t *testing.T, w *httptest.ResponseRecorder, status int, code core.Code, msg string) {
	t.Helper()
	if w.Code != status {
		t.Fatalf("status %d, want %d: %s", w.Code, status, w.Body.String())
	}
	e := envelope(t, w)
	if e.Code != code || e.Error != msg || e.Result != "" {
		t.Fatalf("got %+v, want code %s, error %q", e, code, msg)
	}
}

// wantGraphQLError checks an answer in GraphQL's error shape: one error,
// data null.
func wantGraphQLError(t *testing.T, w *httptest.ResponseRecorder, status int, code core.Code, msg string) {
	t.Helper()
	if w.Code != status {
		t.Fatalf("status %d, want %d: %s", w.Code, status, w.Body.String())
	}
	checkJSONHeaders(t, w)
	var body struct {
		Errors []struct {
			Message    string `json:"message"`
			Extensions struct {
				Code core.Code `json:"code"`
			} `json:"extensions"`
		} `json:"errors"`
		Data *json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
		t.Fatalf("not JSON: %q", w.Body.String())
	}
	if !strings.Contains(w.Body.String(), `"data":null`) || len(body.Errors) != 1 {
		t.Fatalf("not one error with data null: %s", w.Body.String())
	}
	if got := body.Errors[0]; got.Extensions.Code != code || got.Message != msg {
		t.Fatalf("got %q (%s), want %q (%s)", got.Message, got.Extensions.Code, msg, code)
	}
}

func checkJSONHeaders(t *testing.T, w *httptest.ResponseRecorder) {
	t.Helper()
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	if cc := w.Header().Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control %q", cc)
	}
}

// decode decodes a JSON answer into v.
func decode(t *testing.T, w *httptest.ResponseRecorder, v any) {
	t.Helper()
	if err := json.Unmarshal(w.Body.Bytes(), v); err != nil {
		t.Fatalf("%v: %q", err, w.Body.String())
	}
}

// retryAfter is the Retry-After header in whole seconds, failing the test
// when it is missing or not a positive number.
func retryAfter(t *testing.T, w *httptest.ResponseRecorder) int {
	t.Helper()
	n, err := strconv.Atoi(w.Header().Get("Retry-After"))
	if err != nil || n <= 0 {
		t.Fatalf("Retry-After %q", w.Header().Get("Retry-After"))
	}
	return n
}
