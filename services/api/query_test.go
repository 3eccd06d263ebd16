package api

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/piot-appliance/piot/services/core"
	"github.com/piot-appliance/piot/services/core/coretest"
)

func TestQueryRunsGraphQL(t *testing.T) {
	ts := newTestServer(t, nil)
	for _, ct := range []string{"application/json", "application/json; charset=utf-8", ""} {
		w := ts.query(ts.member, "{ userProfile { email is_admin } }", header("Content-Type", ct))
		want := `{"data":{"userProfile":{"email":"member@acme.test","is_admin":false}}}`
		if w.Code != http.StatusOK || w.Body.String() != want {
			t.Fatalf("Content-Type %q: %d %s", ct, w.Code, w.Body.String())
		}
	}
	w := ts.query(ts.env.Admin, "{ userProfile { email is_admin } }")
	if !strings.Contains(w.Body.String(), `"email":"`+coretest.AdminEmail+`","is_admin":true`) {
		t.Fatalf("the admin's profile: %s", w.Body.String())
	}
}

func TestQueryRefusesNonPOSTAndNonJSON(t *testing.T) {
	ts := newTestServer(t, nil)
	tok := bearerToken(ts.token(ts.member))
	for _, method := range []string{http.MethodGet, http.MethodPut, http.MethodDelete} {
		w := ts.serve(method, "/query?query={userProfile{email}}", nil, tok)
		wantGraphQLError(t, w, http.StatusMethodNotAllowed, core.CodeBadInput, "only POST method is allowed")
		if w.Header().Get("Allow") != "POST" {
			t.Fatalf("%s: Allow %q", method, w.Header().Get("Allow"))
		}
	}
	for _, ct := range []string{"text/plain", "application/graphql", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"} {
		w := ts.query(ts.member, "{ userProfile { email } }", header("Content-Type", ct))
		wantGraphQLError(t, w, http.StatusUnsupportedMediaType, core.CodeBadInput, "Content-Type must be application/json")
	}
	for _, body := range []string{"", "{", "[]", `"query"`, "query { userProfile { email } }"} {
		w := ts.serve(http.MethodPost, "/query", body, tok)
		wantGraphQLError(t, w, http.StatusBadRequest, core.CodeBadInput, "malformed JSON body")
	}
	// The token is checked first: without one every method gets 401.
	w := ts.serve(http.MethodGet, "/query", nil)
	wantGraphQLError(t, w, http.StatusUnauthorized, core.CodeUnauthenticated, "invalid or missing authorization header")
}

// gate is a GraphQL handler that holds every request until it is opened.
type gate struct {
	entered chan *http.Request
	open    chan struct{}
}

func newGate() *gate {
	return &gate{entered: make(chan *http.Request, 16), open: make(chan struct{})}
}

func (g *gate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g.entered <- r
	select {
	case <-g.open:
		_, _ = w.Write([]byte(`{"data":{}}`))
	case <-r.Context().Done():
	}
}

// waitEntered waits for a request to reach the GraphQL handler.
func (g *gate) waitEntered(t *testing.T) *http.Request {
	t.Helper()
	select {
	case r := <-g.entered:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("no request reached the GraphQL handler")
		return nil
	}
}

// The in-flight limits: a caller over their share waits, then gets 429;
// a caller who finds every slot taken waits, then gets 503; both with
// Retry-After, in GraphQL's error shape. Callers are told apart by user.
func TestQueryInFlightLimits(t *testing.T) {
	g := newGate()
	ts := newTestServer(t, func(c *Config, d *Deps) {
		c.MaxQueries, c.MaxQueriesPerCaller, c.QueryWait = 2, 1, 50*time.Millisecond
		d.GraphQL = g
	})
	const q = "{ userProfile { email } }"
	first := make(chan *httptest.ResponseRecorder)
	go func() { first <- ts.query(ts.env.Admin, q) }()
	g.waitEntered(t)

	// The admin's share is taken by their first request.
	w := ts.query(ts.env.Admin, q)
	wantGraphQLError(t, w, http.StatusTooManyRequests, core.CodeRateLimited, errTooMany.Error())
	if w.Header().Get("Retry-After") != "1" {
		t.Fatalf("429 Retry-After %q", w.Header().Get("Retry-After"))
	}
	// The member's share is free, and so is the second slot.
	second := make(chan *httptest.ResponseRecorder)
	go func() { second <- ts.query(ts.member, q) }()
	g.waitEntered(t)
	// A third user finds both slots taken.
	other := ts.env.Member(t, "other@acme.test", "other-password")
	w = ts.query(other, q)
	wantGraphQLError(t, w, http.StatusServiceUnavailable, core.CodeUnavailable, errBusy.Error())
	if w.Header().Get("Retry-After") != "1" {
		t.Fatalf("503 Retry-After %q", w.Header().Get("Retry-After"))
	}

	close(g.open)
	for _, done := range []chan *httptest.ResponseRecorder{first, second} {
		if w := <-done; w.Code != http.StatusOK || w.Body.String() != `{"data":{}}` {
			t.Fatalf("held request: %d %s", w.Code, w.Body.String())
		}
	}
	// Finished requests give their slots back.
	for _, a := range []core.Actor{ts.env.Admin, ts.member, other} {
		if w := ts.query(a, q); w.Code != http.StatusOK {
			t.Fatalf("after release: %d %s", w.Code, w.Body.String())
		}
	}
	if len(ts.srv.queries.slots) != 0 || len(ts.srv.queries.byKey) != 0 {
		t.Fatalf("left over: %d slots, %d callers", len(ts.srv.queries.slots), len(ts.srv.queries.byKey))
	}
}

// A request whose client went away while it waited for a slot is dropped
// without an answer.
func TestQueryOfAClientGone(t *testing.T) {
	g := newGate()
	ts := newTestServer(t, func(c *Config, d *Deps) { d.GraphQL = g })
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	w := ts.query(ts.member, "{ userProfile { email } }", func(r *http.Request) { *r = *r.WithContext(ctx) })
	if w.Body.Len() != 0 || len(w.Header()) != 0 {
		t.Fatalf("answered: %d %v %s", w.Code, w.Header(), w.Body.String())
	}
	select {
	case <-g.entered:
		t.Fatal("the request ran")
	default:
	}
}

// An operation gets QueryTimeout; its context then ends with
// core.ErrDeadline, which the GraphQL layer reports as TIMEOUT.
func TestQueryTimeout(t *testing.T) {
	g := newGate()
	ts := newTestServer(t, func(c *Config, d *Deps) {
		c.QueryTimeout = 20 * time.Millisecond
		d.GraphQL = g
	})
	done := make(chan struct{})
	go func() { ts.query(ts.member, "{ userProfile { email } }"); close(done) }()
	r := g.waitEntered(t)
	select {
	case <-r.Context().Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the operation did not time out")
	}
	if cause := context.Cause(r.Context()); !errors.Is(cause, core.ErrDeadline) {
		t.Fatalf("cause %v, want core.ErrDeadline", cause)
	}
	if a := core.ActorFrom(r.Context()); a.UserID != ts.member.UserID {
		t.Fatalf("the operation runs as %+v", a)
	}
	<-done
}
