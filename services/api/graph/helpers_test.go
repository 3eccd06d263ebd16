package graph_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/piot-appliance/piot/services/api/graph"
	"github.com/piot-appliance/piot/services/core"
	"github.com/piot-appliance/piot/services/core/coretest"
	"github.com/piot-appliance/piot/services/store"
)

const zeroID = "000000000000000000000000"

// env is a real core on a real embedded store behind the GraphQL handler.
type env struct {
	t     *testing.T
	st    *store.Store
	core  *core.Core
	h     http.Handler
	admin core.Actor
	logs  *syncBuffer
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func newEnv(t *testing.T, opts graph.Options) *env {
	t.Helper()
	fx := coretest.Open(t, coretest.Options{AdminEmail: "admin@piot.local", AdminPassword: "admin-password"})
	st, c, admin := fx.Store, fx.Core, fx.Admin
	logs := &syncBuffer{}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(logs, nil))
	}
	return &env{t: t, st: st, core: c, h: graph.NewHandler(c, opts), admin: admin, logs: logs}
}

// user creates a non-admin user and returns them as an actor.
func (e *env) user(email string) core.Actor {
	e.t.Helper()
	ctx := context.Background()
	if _, err := e.core.CreateUser(ctx, e.admin, email, "user-password", false); err != nil {
		e.t.Fatal(err)
	}
	a, err := e.core.Login(ctx, email, "user-password")
	if err != nil {
		e.t.Fatal(err)
	}
	return a
}

type gqlError struct {
	Message    string         `json:"message"`
	Path       []any          `json:"path"`
	Extensions map[string]any `json:"extensions"`
}

type response struct {
	Status int
	Data   json.RawMessage `json:"data"`
	Errors []gqlError      `json:"errors"`
}

// code returns the extensions.code of the first error, "" if none.
func (r response) code() string {
	if len(r.Errors) == 0 {
		return ""
	}
	s, _ := r.Errors[0].Extensions["code"].(string)
	return s
}

// withActor is the test's stand-in for the auth middleware.
func withActor(h http.Handler, a core.Actor) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r.WithContext(core.WithActor(r.Context(), a)))
	})
}

// do POSTs a GraphQL request as actor a.
func (e *env) do(a core.Actor, query string, vars map[string]any) response {
	e.t.Helper()
	body, err := json.Marshal(map[string]any{"query": query, "variables": vars})
	if err != nil {
		e.t.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodPost, "/query", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	withActor(e.h, a).ServeHTTP(rec, req)
	var resp response
	if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil {
		e.t.Fatalf("response %d %q: %v", rec.Code, rec.Body.String(), err)
	}
	resp.Status = rec.Code
	return resp
}

// data runs a request that must succeed and decodes its data into out.
func (e *env) data(a core.Actor, query string, vars map[string]any, out any) {
	e.t.Helper()
	resp := e.do(a, query, vars)
	if len(resp.Errors) > 0 || resp.Status != http.StatusOK {
		e.t.Fatalf("%s\n=> status %d, errors %+v", query, resp.Status, resp.Errors)
	}
	if out != nil {
		if err := json.Unmarshal(resp.Data, out); err != nil {
			e.t.Fatalf("decode %s: %v", resp.Data, err)
		}
	}
}

// fails runs a request that must fail with the given code.
func (e *env) fails(a core.Actor, query string, vars map[string]any, code string) response {
	e.t.Helper()
	resp := e.do(a, query, vars)
	if resp.code() != code {
		e.t.Fatalf("%s\n=> status %d, errors %+v, want code %s", query, resp.Status, resp.Errors, code)
	}
	if strings.Contains(resp.Errors[0].Message, "mongo") {
		e.t.Fatalf("driver message leaked: %q", resp.Errors[0].Message)
	}
	return resp
}

type org struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// createOrg creates an org through the API and returns its id.
func (e *env) createOrg(name string) string {
	e.t.Helper()
	var out struct{ CreateOrg org }
	e.data(e.admin, `mutation($n: String!) { createOrg(name: $n, description: "") { id name } }`,
		map[string]any{"n": name}, &out)
	return out.CreateOrg.ID
}

// createThing creates a thing through the API and returns its id.
func (e *env) createThing(name, typ string) string {
	e.t.Helper()
	var out struct{ CreateThing struct{ ID string } }
	e.data(e.admin, `mutation($n: String!, $t: String!) { createThing(name: $n, type: $t) { id } }`,
		map[string]any{"n": name, "t": typ}, &out)
	return out.CreateThing.ID
}

// assign puts a thing into an org.
func (e *env) assign(thing, org string) {
	e.t.Helper()
	e.data(e.admin, `mutation($id: ID!, $o: ID) { updateThing(thing: {id: $id, orgId: $o}) { id } }`,
		map[string]any{"id": thing, "o": org}, nil)
}

func (e *env) addMember(org, user string) {
	e.t.Helper()
	var out struct{ AddOrgUser *bool }
	e.data(e.admin, `mutation($o: ID!, $u: ID!) { addOrgUser(orgId: $o, userId: $u) }`,
		map[string]any{"o": org, "u": user}, &out)
	if out.AddOrgUser != nil {
		e.t.Fatalf("addOrgUser returned %v, want null", *out.AddOrgUser)
	}
}
