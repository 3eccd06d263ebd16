package graph_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/piot-appliance/piot/services/api/graph"
	"github.com/piot-appliance/piot/services/core"
)

// nested returns a things query whose selection is depth levels deep.
func nested(depth int) string {
	q := "id"
	for i := 2; i < depth; i++ {
		q = "parent { " + q + " }"
	}
	return "{ things(all: true) { " + q + " } }"
}

func TestDepthLimit(t *testing.T) {
	e := newEnv(t, graph.Options{})
	e.data(e.admin, nested(10), nil, nil)
	resp := e.fails(e.admin, nested(11), nil, "BAD_USER_INPUT")
	if resp.Errors[0].Message != "query depth 11 exceeds the limit of 10" {
		t.Fatalf("message %q", resp.Errors[0].Message)
	}

	// Fragments and inline fragments count as the fields they contain.
	viaFragments := `query { things(all: true) { ...P } }
		fragment P on Thing { parent { ... on Thing { parent { ...Q } } } }
		fragment Q on Thing { parent { parent { id } } }`
	e.data(e.admin, viaFragments, nil, nil) // depth 6
	small := newEnv(t, graph.Options{MaxDepth: 5})
	resp = small.fails(small.admin, viaFragments, nil, "BAD_USER_INPUT")
	if resp.Errors[0].Message != "query depth 6 exceeds the limit of 5" {
		t.Fatalf("message %q", resp.Errors[0].Message)
	}
	// The depth is checked for everybody, before anything runs.
	small.fails(core.Anonymous(), viaFragments, nil, "BAD_USER_INPUT")
}

func TestComplexityLimit(t *testing.T) {
	e := newEnv(t, graph.Options{})
	var b strings.Builder
	b.WriteString("{")
	for i := 0; i < 300; i++ {
		fmt.Fprintf(&b, " p%d: userProfile { email }", i) // 2 points each
	}
	b.WriteString(" }")
	resp := e.fails(e.admin, b.String(), nil, "BAD_USER_INPUT")
	if resp.Errors[0].Message != "operation has complexity 600, which exceeds the limit of 500" {
		t.Fatalf("message %q", resp.Errors[0].Message)
	}
	loose := newEnv(t, graph.Options{MaxComplexity: 1000})
	loose.data(loose.admin, b.String(), nil, nil)

	// The original manager's heaviest queries stay well within the limits.
	e.data(e.admin, `{ things(all: true) { id, name, alias, type, enabled, created, last_seen,
		last_seen_interval, store_mysqldb, store_influxdb, battery_level, battery_level_tracking,
		parent {id, name}, org {name}, sensor {class, value, unit} } }`, nil, nil)
	e.data(e.admin, `{ userProfile { is_admin, email, org_id, orgs {id, name, influxdb, influxdb_username, influxdb_password} } }`, nil, nil)
}

// introspectionQuery is what GraphiQL (graphql-js getIntrospectionQuery)
// sends.
const introspectionQuery = `query IntrospectionQuery {
  __schema {
    queryType { name } mutationType { name } subscriptionType { name }
    types { ...FullType }
    directives { name description locations args { ...InputValue } }
  }
}
fragment FullType on __Type {
  kind name description
  fields(includeDeprecated: true) { name description args { ...InputValue } type { ...TypeRef } isDeprecated deprecationReason }
  inputFields { ...InputValue }
  interfaces { ...TypeRef }
  enumValues(includeDeprecated: true) { name description isDeprecated deprecationReason }
  possibleTypes { ...TypeRef }
}
fragment InputValue on __InputValue { name description type { ...TypeRef } defaultValue }
fragment TypeRef on __Type {
  kind name
  ofType { kind name ofType { kind name ofType { kind name ofType { kind name
    ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } } } } } }
}`

func TestIntrospectionNeedsAuthentication(t *testing.T) {
	e := newEnv(t, graph.Options{})
	for _, q := range []string{
		`{ __schema { queryType { name } } }`,
		`{ __type(name: "Thing") { name } }`,
		`query { ...F } fragment F on Query { __schema { queryType { name } } }`,
		introspectionQuery,
	} {
		resp := e.fails(core.Anonymous(), q, nil, "UNAUTHENTICATED")
		if resp.Errors[0].Message != "introspection requires authentication" {
			t.Fatalf("message %q", resp.Errors[0].Message)
		}
	}
	var out struct {
		Schema struct {
			QueryType struct{ Name string }
			Types     []struct{ Name string }
		} `json:"__schema"`
	}
	e.data(e.admin, introspectionQuery, nil, &out)
	if out.Schema.QueryType.Name != "Query" || len(out.Schema.Types) < 10 {
		t.Fatalf("introspection = %+v", out.Schema.QueryType)
	}
	member := e.user("m@example.com")
	e.data(member, `{ __type(name: "ThingConnection") { name } }`, nil, nil)
	// __typename is not introspection.
	e.fails(core.Anonymous(), `{ __typename userProfile { email } }`, nil, "UNAUTHENTICATED")
	e.data(core.Anonymous(), `{ __typename }`, nil, nil)
}

func TestErrorCodes(t *testing.T) {
	e := newEnv(t, graph.Options{})
	e.fails(e.admin, `{ things {`, nil, "GRAPHQL_PARSE_FAILED")
	e.fails(e.admin, `{ things { nope } }`, nil, "GRAPHQL_VALIDATION_FAILED")
	e.fails(e.admin, `{ things(sort: {field: size, order: asc}) { id } }`, nil, "GRAPHQL_VALIDATION_FAILED")
	e.fails(core.Anonymous(), `{ users { email } }`, nil, "UNAUTHENTICATED")

	// Only POST with a JSON body is served.
	for _, r := range []*http.Request{
		httptest.NewRequest(http.MethodGet, "/query?query=%7Busers%7Bemail%7D%7D", nil),
		httptest.NewRequest(http.MethodPost, "/query", strings.NewReader(`query={users{email}}`)),
	} {
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		rec := httptest.NewRecorder()
		withActor(e.h, e.admin).ServeHTTP(rec, r.WithContext(context.Background()))
		if rec.Code < 400 || strings.Contains(rec.Body.String(), "admin@piot.local") {
			t.Fatalf("%s: %d %s", r.Method, rec.Code, rec.Body.String())
		}
	}
}

func TestInternalErrorsAreOpaqueAndLogged(t *testing.T) {
	e := newEnv(t, graph.Options{})
	// With the store gone every write fails inside core.
	if err := e.st.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	resp := e.fails(e.admin, `mutation { createOrg(name: "farm", description: "") { id } }`, nil, "INTERNAL_SERVER_ERROR")
	msg := resp.Errors[0].Message
	if strings.Contains(msg, "disconnect") || strings.Contains(msg, "client") {
		t.Fatalf("cause leaked to the client: %q", msg)
	}
	if logs := e.logs.String(); !strings.Contains(logs, "graphql: internal error") || !strings.Contains(logs, "createOrg") {
		t.Fatalf("internal error not logged: %q", logs)
	}
}

// Many aliases of a long readings query are refused before anything runs
// (issue 11): readings counts its rows, not one field.
func TestReadingsComplexityCountsRows(t *testing.T) {
	e := newEnv(t, graph.Options{MaxComplexity: 1000})
	var b strings.Builder
	b.WriteString("query($id: ID!) {")
	// 330 such aliases are now refused by their tokens already; 60 stay
	// under that limit and were 180 points when readings counted as one
	// field.
	for i := 0; i < 60; i++ {
		fmt.Fprintf(&b, " r%d: readings(thingId: $id, from: 1, to: 2000000000, first: 10000) { ts value }", i)
	}
	b.WriteString(" }")
	vars := map[string]any{"id": "000000000000000000000000"}
	resp := e.fails(e.admin, b.String(), vars, "BAD_USER_INPUT")
	if !strings.Contains(resp.Errors[0].Message, "operation has complexity 12060, which exceeds the limit of 1000") {
		t.Fatalf("message %q", resp.Errors[0].Message)
	}
	// One chart's worth passes validation (and fails only on the made-up
	// thing): 1 + 2 fields × 10 points.
	one := `query($id: ID!) { readings(thingId: $id, first: 1000) { ts value } }`
	resp = e.do(e.admin, one, vars)
	if len(resp.Errors) == 0 || strings.Contains(resp.Errors[0].Message, "complexity") {
		t.Fatalf("a single readings query: %+v", resp.Errors)
	}
}

// Queries whose validation would grow with the square of their size are
// refused by their token count before they are parsed (issue 11), and
// the error stays one short message.
func TestTokenLimitBeforeValidation(t *testing.T) {
	e := newEnv(t, graph.Options{})
	repeated := "{ userProfile {" + strings.Repeat(" email", 60000) + " } }"
	bomb := "{ userProfile" + strings.Repeat(" @include(if: true)", 40000) + " { email } }"
	for name, q := range map[string]string{"60 000 repeated fields": repeated, "directive bomb": bomb} {
		resp := e.fails(e.admin, q, nil, "BAD_USER_INPUT")
		if len(resp.Errors) != 1 || resp.Errors[0].Message != fmt.Sprintf("query has more than %d tokens", graph.MaxQueryTokens) {
			t.Fatalf("%s: %+v", name, resp.Errors)
		}
	}
	// GraphiQL's introspection query is far below the limit.
	e.data(e.admin, introspectionQuery, nil, nil)
}

// An answer carries at most MaxErrors errors (issue 11).
func TestErrorListIsCapped(t *testing.T) {
	e := newEnv(t, graph.Options{})
	var b strings.Builder
	b.WriteString("{")
	for i := 0; i < 500; i++ {
		fmt.Fprintf(&b, " nope%d", i)
	}
	b.WriteString(" }")
	resp := e.do(e.admin, b.String(), nil)
	if len(resp.Errors) != graph.MaxErrors+1 || resp.Errors[graph.MaxErrors].Message != "480 more errors not shown" {
		t.Fatalf("%d errors, last %+v", len(resp.Errors), resp.Errors[len(resp.Errors)-1])
	}
}
