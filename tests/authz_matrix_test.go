package tests

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"
	"golang.org/x/crypto/ssh"
)

// mxSSHKey returns a fresh OpenSSH public key line and its fingerprint.
func mxSSHKey(t *testing.T) (line, fingerprint string) {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k))) + " matrix", ssh.FingerprintSHA256(k)
}

// sshKeysOf lists a user's key fingerprints, read as admin.
func (e *mxEnv) sshKeysOf(t *testing.T, user string) []string {
	t.Helper()
	var out []string
	for _, k := range mxList(mxObj(e.admin(t, `query($id: ID!) { user(id: $id) { ssh_keys { fingerprint } } }`, map[string]any{"id": user})["user"])["ssh_keys"]) {
		out = append(out, mxStr(mxObj(k)["fingerprint"]))
	}
	return out
}

// The authorization matrix: every query and mutation of the schema, run by
// every kind of caller against org A's resources, with the documented
// outcome. The rules (services/core/authz.go and the callers of it):
//
//   - admin may do everything;
//   - a member of an org reads the org, its members and its things, and
//     changes its things' settings (not their org);
//   - anybody reads and changes their own profile and password;
//   - everything else is FORBIDDEN, anonymous callers get 401
//     UNAUTHENTICATED, nonexistent ids give admins NOT_FOUND;
//   - secrets are never readable.
//
// What front ends do without GraphQL has tables of its own over the same
// core rules: the console backend's operations in
// tui/backend/authz_matrix_test.go, the device adapters'
// decisions in services/adapter/decisions_test.go.

// Actors of the matrix.
const (
	mxAnon    = "anonymous"
	mxMemberA = "memberA"
	mxMemberB = "memberB"
	mxAdmin   = "admin"
	// mxBridge is no actor: a user in both orgs, whose memberships each
	// member must see only as far as their own org goes.
	mxBridge = "bridge"
)

var mxActors = []string{mxAnon, mxMemberA, mxMemberB, mxAdmin}

// Outcomes: mxOK or error codes; "A|B" accepts either.
const (
	mxOK        = "ok"
	mxForbidden = "FORBIDDEN"
	mxNotFound  = "NOT_FOUND"
	mxDenied    = "FORBIDDEN|NOT_FOUND"
)

// mxWant is the outcome for the three authenticated actors; anonymous
// callers always get 401 UNAUTHENTICATED.
type mxWant struct{ memberA, memberB, admin string }

func (w mxWant) of(actor string) string {
	switch actor {
	case mxMemberA:
		return w.memberA
	case mxMemberB:
		return w.memberB
	case mxAdmin:
		return w.admin
	}
	return "UNAUTHENTICATED"
}

var (
	mxEverybody = mxWant{mxOK, mxOK, mxOK}
	mxOrgA      = mxWant{mxOK, mxForbidden, mxOK} // members of org A and admins
	mxAdminOnly = mxWant{mxForbidden, mxForbidden, mxOK}
	mxMissing   = mxWant{mxDenied, mxDenied, mxNotFound}
	mxSelfA     = mxWant{mxOK, mxForbidden, mxOK} // memberA acting on themselves, and admins
)

// An id that names nothing.
const mxNoSuchID = "0123456789abcdef01234567"

// Selection sets, as fragments; every Org and User selection includes the
// secret fields, so every read doubles as a "secrets stay secret" check.
var mxFragments = map[string]string{
	"OrgF":   `fragment OrgF on Org { id name description influxdb influxdb_username influxdb_password mysqldb mysqldb_username mysqldb_password mqtt_username mqtt_password users { id email password orgs { id } } }`,
	"UserF":  `fragment UserF on User { id email password is_admin orgs { id name influxdb_password mysqldb_password mqtt_password } }`,
	"ThingF": `fragment ThingF on Thing { id name description alias type alarm_active has_aes_key mqtt_username org { id name influxdb_password mysqldb_password mqtt_password } sensor { class unit measurement_topic measurement_value } switch { state state_topic state_on state_off command_topic command_on command_off } }`,
}

// mxDoc appends the fragments a query spreads.
func mxDoc(q string) string {
	names := make([]string, 0, len(mxFragments))
	for n := range mxFragments {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if strings.Contains(q, "..."+n) {
			q += "\n" + mxFragments[n]
		}
	}
	return q
}

var mxSecretKeys = map[string]bool{"password": true, "influxdb_password": true, "mysqldb_password": true, "mqtt_password": true}

// mxSecrets walks a response and reports every secret field that is not
// "", and how many secret fields it saw.
func mxSecrets(v any, path string, leaks *[]string) int {
	n := 0
	switch x := v.(type) {
	case map[string]any:
		for k, val := range x {
			if mxSecretKeys[k] {
				n++
				if s, _ := val.(string); s != "" || val == nil {
					*leaks = append(*leaks, fmt.Sprintf("%s.%s = %v", path, k, val))
				}
				continue
			}
			n += mxSecrets(val, path+"."+k, leaks)
		}
	case []any:
		for i, val := range x {
			n += mxSecrets(val, fmt.Sprintf("%s[%d]", path, i), leaks)
		}
	}
	return n
}

// JSON navigation.
func mxObj(v any) map[string]any { m, _ := v.(map[string]any); return m }
func mxList(v any) []any         { l, _ := v.([]any); return l }
func mxStr(v any) string         { s, _ := v.(string); return s }

func mxIDs(items []any) []string {
	var out []string
	for _, it := range items {
		out = append(out, mxStr(mxObj(it)["id"]))
	}
	sort.Strings(out)
	return out
}

// mxRequireSecretsEmpty checks that an org object carries all three secret
// fields and that they read as "".
func mxRequireSecretsEmpty(t *testing.T, what string, org map[string]any) {
	t.Helper()
	for _, k := range []string{"influxdb_password", "mysqldb_password", "mqtt_password"} {
		v, ok := org[k]
		if !ok {
			t.Errorf("%s: secret field %s not in the response", what, k)
		} else if v != "" {
			t.Errorf("%s: %s = %v, want \"\"", what, k, v)
		}
	}
}

// mxEnv is the shared world of the matrix.
type mxEnv struct {
	a     *appliance
	tok   map[string]string // by actor; anonymous is ""
	id    map[string]string // user id by actor
	email map[string]string
	pw    map[string]string

	orgA, orgB                         string
	sensorA, switchA, sensorB, switchB string
	names                              map[string]string // thing id -> name
	n                                  int
}

// call runs one GraphQL operation as actor.
func (e *mxEnv) call(t *testing.T, actor, query string, vars map[string]any) (int, map[string]any) {
	t.Helper()
	return post(t, e.a.url+"/query", e.tok[actor], map[string]any{"query": mxDoc(query), "variables": vars})
}

// admin runs an operation as admin and fails the test on any error.
func (e *mxEnv) admin(t *testing.T, query string, vars map[string]any) map[string]any {
	t.Helper()
	st, out := e.call(t, mxAdmin, query, vars)
	if st != http.StatusOK || errCode(out) != "" {
		t.Fatalf("as admin: %s: status %d %v", query, st, out)
	}
	return mxObj(out["data"])
}

// adminTry runs an operation as admin and returns data and error code.
func (e *mxEnv) adminTry(t *testing.T, query string, vars map[string]any) (map[string]any, string) {
	t.Helper()
	_, out := e.call(t, mxAdmin, query, vars)
	return mxObj(out["data"]), errCode(out)
}

// login returns a token, or "" with the status if the login fails.
func (e *mxEnv) login(t *testing.T, email, pw string) (string, int) {
	t.Helper()
	st, out := post(t, e.a.url+"/login", "", map[string]string{"email": email, "password": pw})
	if st != http.StatusOK {
		return "", st
	}
	return mxStr(out["token"]), st
}

func (e *mxEnv) seq() int { e.n++; return e.n }

// freshThing creates a throwaway sensor in org A.
func (e *mxEnv) freshThing(t *testing.T) string {
	t.Helper()
	name := fmt.Sprintf("mx-thing-%d", e.seq())
	id := mxStr(mxObj(e.admin(t, `mutation($n: String!) { createThing(name: $n, type: "sensor") { id } }`, map[string]any{"n": name})["createThing"])["id"])
	e.admin(t, `mutation($t: ThingUpdate!) { updateThing(thing: $t) { id } }`, map[string]any{"t": map[string]any{"id": id, "orgId": e.orgA}})
	e.names[id] = name
	return id
}

// freshOrg creates a throwaway org with memberA as a member.
func (e *mxEnv) freshOrg(t *testing.T) string {
	t.Helper()
	id := mxStr(mxObj(e.admin(t, `mutation($n: String!) { createOrg(name: $n, description: "throwaway") { id } }`,
		map[string]any{"n": fmt.Sprintf("zz-throwaway-org-%d", e.seq())})["createOrg"])["id"])
	e.admin(t, `mutation($o: ID!, $u: ID!) { addOrgUser(orgId: $o, userId: $u) }`, map[string]any{"o": id, "u": e.id[mxMemberA]})
	return id
}

// freshUser creates a throwaway user, a member of org A if inA.
func (e *mxEnv) freshUser(t *testing.T, inA bool) (id, email string) {
	t.Helper()
	email = fmt.Sprintf("mx-user-%d@x.test", e.seq())
	id = mxStr(mxObj(e.admin(t, `mutation($e: String!, $p: String!) { createUser(email: $e, password: $p) { id } }`,
		map[string]any{"e": email, "p": "fresh-password-1"})["createUser"])["id"])
	if inA {
		e.admin(t, `mutation($o: ID!, $u: ID!) { addOrgUser(orgId: $o, userId: $u) }`, map[string]any{"o": e.orgA, "u": id})
	}
	return id, email
}

// thingState reads a thing as admin ("" code: exists).
func (e *mxEnv) thingState(t *testing.T, id string) any {
	t.Helper()
	data, code := e.adminTry(t, `query($id: ID!) { thing(id: $id) { ...ThingF } }`, map[string]any{"id": id})
	if code != "" {
		return code
	}
	return data["thing"]
}

// membership reports whether a user is a member of an org, as admin sees it.
func (e *mxEnv) membership(t *testing.T, orgID, userID string) any {
	t.Helper()
	data, code := e.adminTry(t, `query($id: ID!) { org(id: $id) { users { id } } }`, map[string]any{"id": orgID})
	if code != "" {
		return code
	}
	return slices.Contains(mxIDs(mxList(mxObj(data["org"])["users"])), userID)
}

// checkOrgUsers checks that the members of an org, as the actor sees them,
// do not reveal the orgs the actor may not read.
func (e *mxEnv) checkOrgUsers(t *testing.T, actor string, org map[string]any) {
	t.Helper()
	hidden := ""
	switch actor {
	case mxMemberA:
		hidden = e.orgB
	case mxMemberB:
		hidden = e.orgA
	}
	for _, u := range mxList(org["users"]) {
		ids := mxIDs(mxList(mxObj(u)["orgs"]))
		if hidden != "" && slices.Contains(ids, hidden) {
			t.Errorf("%s sees that %v is a member of an org it may not read (%s)", actor, mxObj(u)["email"], hidden)
		}
		if actor == mxAdmin && mxObj(u)["email"] == e.email[mxBridge] && !(slices.Contains(ids, e.orgA) && slices.Contains(ids, e.orgB)) {
			t.Errorf("admin sees the bridge user's orgs as %v, want A and B", ids)
		}
	}
}

// checkListing checks what a `things` listing shows the actor: their active
// org's things and nothing of the other org.
func (e *mxEnv) checkListing(t *testing.T, actor string, items []any) {
	t.Helper()
	own, other, org := []string{e.sensorA, e.switchA}, []string{e.sensorB, e.switchB}, e.orgA
	if actor == mxMemberB {
		own, other, org = other, own, e.orgB
	}
	ids := mxIDs(items)
	for _, id := range own {
		if !slices.Contains(ids, id) {
			t.Errorf("%s does not see its thing %s (%s) in %v", actor, e.names[id], id, ids)
		}
	}
	for _, id := range other {
		if slices.Contains(ids, id) {
			t.Errorf("%s sees the other org's thing %s (%s)", actor, e.names[id], id)
		}
	}
	for _, it := range items {
		th := mxObj(it)
		if got := mxStr(mxObj(th["org"])["id"]); got != org {
			t.Errorf("%s sees thing %v of org %q, want only org %s", actor, th["name"], got, org)
		}
	}
}

// mxRow is one operation (or one variant of it) of the matrix.
type mxRow struct {
	op      string // root field of the schema
	variant string // "" for the main row
	query   string
	want    mxWant
	// vars builds the variables of one actor's attempt; it may create
	// fresh objects as admin so that attempts do not interfere.
	vars func(t *testing.T, e *mxEnv, actor string) map[string]any
	// check verifies an allowed attempt; res is data[op].
	check func(t *testing.T, e *mxEnv, actor string, vars map[string]any, res any)
	// state snapshots what the operation would change; it must be the same
	// before and after a refused attempt.
	state func(t *testing.T, e *mxEnv, actor string, vars map[string]any) any
	// after runs after every attempt (e.g. to pick up a new password).
	after func(t *testing.T, e *mxEnv, actor string, vars map[string]any, allowed bool)
	// nullResult: the operation returns null even on success.
	nullResult bool
}

func (r mxRow) title() string {
	if r.variant == "" {
		return r.op
	}
	return r.op + "_" + r.variant
}

func mxVars(kv ...any) func(*testing.T, *mxEnv, string) map[string]any {
	return func(*testing.T, *mxEnv, string) map[string]any {
		m := map[string]any{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return m
	}
}

func mxRows() []mxRow {
	thingOf := func(v map[string]any, key string) string { return mxStr(mxObj(v[key])["id"]) }
	thingStateOf := func(key string) func(*testing.T, *mxEnv, string, map[string]any) any {
		return func(t *testing.T, e *mxEnv, _ string, v map[string]any) any { return e.thingState(t, thingOf(v, key)) }
	}
	userState := func(t *testing.T, e *mxEnv, _ string, v map[string]any) any {
		id := mxStr(v["id"])
		if u := mxObj(v["user"]); u != nil {
			id = mxStr(u["id"])
		}
		data, code := e.adminTry(t, `query($id: ID!) { user(id: $id) { ...UserF } }`, map[string]any{"id": id})
		if code != "" {
			return code
		}
		return data["user"]
	}
	orgState := func(t *testing.T, e *mxEnv, _ string, v map[string]any) any {
		id := mxStr(v["id"])
		if o := mxObj(v["o"]); o != nil {
			id = mxStr(o["id"])
		}
		data, code := e.adminTry(t, `query($id: ID!) { org(id: $id) { ...OrgF } }`, map[string]any{"id": id})
		if code != "" {
			return code
		}
		return data["org"]
	}
	profileState := func(t *testing.T, e *mxEnv, actor string, _ map[string]any) any {
		if actor == mxAnon {
			actor = mxMemberA
		}
		_, out := e.call(t, actor, `{ userProfile { org_id } }`, nil)
		return out["data"]
	}
	missingThing := func(op, query string, vars map[string]any) mxRow {
		return mxRow{op: op, variant: "nonexistent", query: query, want: mxMissing,
			vars: func(*testing.T, *mxEnv, string) map[string]any { return vars }}
	}
	tid := map[string]any{"id": mxNoSuchID}

	return []mxRow{
		// ---- Queries ----
		{
			op: "userProfile", query: `{ userProfile { email is_admin org_id orgs { ...OrgF } } }`, want: mxEverybody,
			check: func(t *testing.T, e *mxEnv, actor string, _ map[string]any, res any) {
				p := mxObj(res)
				if p["email"] != e.email[actor] || p["is_admin"] != (actor == mxAdmin) {
					t.Errorf("profile %v, want %s admin=%v", p, e.email[actor], actor == mxAdmin)
				}
				wantOrg := e.orgA
				if actor == mxMemberB {
					wantOrg = e.orgB
				}
				if p["org_id"] != wantOrg {
					t.Errorf("org_id %v, want %s", p["org_id"], wantOrg)
				}
				if actor != mxAdmin {
					orgs := mxList(p["orgs"])
					if ids := mxIDs(orgs); !reflect.DeepEqual(ids, []string{wantOrg}) {
						t.Errorf("profile orgs %v, want [%s]", ids, wantOrg)
					} else {
						mxRequireSecretsEmpty(t, "userProfile.orgs[0]", mxObj(orgs[0]))
					}
				}
			},
		},
		{
			op: "user", query: `query($id: ID!) { user(id: $id) { ...UserF } }`, want: mxOrgA,
			vars: func(_ *testing.T, e *mxEnv, _ string) map[string]any { return map[string]any{"id": e.id[mxMemberA]} },
			check: func(t *testing.T, e *mxEnv, actor string, _ map[string]any, res any) {
				u := mxObj(res)
				if u["email"] != e.email[mxMemberA] || u["is_admin"] != false {
					t.Errorf("user %v", u)
				}
				orgs := mxList(u["orgs"])
				if ids := mxIDs(orgs); !reflect.DeepEqual(ids, []string{e.orgA}) {
					t.Errorf("memberA's orgs %v, want [%s]", ids, e.orgA)
				} else {
					mxRequireSecretsEmpty(t, "user.orgs[0]", mxObj(orgs[0]))
				}
			},
		},
		{
			op: "user", variant: "self", query: `query($id: ID!) { user(id: $id) { ...UserF } }`, want: mxEverybody,
			vars: func(_ *testing.T, e *mxEnv, actor string) map[string]any {
				if actor == mxAnon {
					return map[string]any{"id": e.id[mxMemberA]}
				}
				return map[string]any{"id": e.id[actor]}
			},
			check: func(t *testing.T, e *mxEnv, actor string, _ map[string]any, res any) {
				if u := mxObj(res); u["email"] != e.email[actor] || u["id"] != e.id[actor] {
					t.Errorf("user(self) = %v, want %s", u, e.email[actor])
				}
			},
		},
		{
			// Sharing an org does not make a user readable.
			op: "user", variant: "sameOrg", query: `query($id: ID!) { user(id: $id) { ...UserF } }`, want: mxAdminOnly,
			vars: func(_ *testing.T, e *mxEnv, _ string) map[string]any { return map[string]any{"id": e.id[mxBridge]} },
			check: func(t *testing.T, e *mxEnv, _ string, _ map[string]any, res any) {
				u := mxObj(res)
				want := []string{e.orgA, e.orgB}
				sort.Strings(want)
				if got := mxIDs(mxList(u["orgs"])); u["email"] != e.email[mxBridge] || !reflect.DeepEqual(got, want) {
					t.Errorf("user(bridge) = %v, want orgs %v", u, want)
				}
			},
		},
		{op: "user", variant: "nonexistent", query: `query($id: ID!) { user(id: $id) { id } }`, want: mxMissing, vars: mxVars("id", mxNoSuchID)},
		{
			op: "users", query: `{ users { ...UserF } }`, want: mxAdminOnly,
			check: func(t *testing.T, e *mxEnv, _ string, _ map[string]any, res any) {
				var emails []string
				for _, u := range mxList(res) {
					emails = append(emails, mxStr(mxObj(u)["email"]))
				}
				for _, a := range []string{mxMemberA, mxMemberB, mxAdmin} {
					if !slices.Contains(emails, e.email[a]) {
						t.Errorf("users lacks %s: %v", e.email[a], emails)
					}
				}
			},
		},
		{
			op: "orgs", query: `{ orgs { ...OrgF } }`, want: mxEverybody,
			check: func(t *testing.T, e *mxEnv, actor string, _ map[string]any, res any) {
				orgs := mxList(res)
				ids := mxIDs(orgs)
				switch actor {
				case mxMemberA:
					if !reflect.DeepEqual(ids, []string{e.orgA}) {
						t.Errorf("memberA's orgs %v, want only A %s", ids, e.orgA)
					}
				case mxMemberB:
					if !reflect.DeepEqual(ids, []string{e.orgB}) {
						t.Errorf("memberB's orgs %v, want only B %s", ids, e.orgB)
					}
				default:
					if !slices.Contains(ids, e.orgA) || !slices.Contains(ids, e.orgB) {
						t.Errorf("admin's orgs %v lack A or B", ids)
					}
				}
				for i, o := range orgs {
					mxRequireSecretsEmpty(t, fmt.Sprintf("orgs[%d]", i), mxObj(o))
					e.checkOrgUsers(t, actor, mxObj(o))
				}
			},
		},
		{
			op: "org", query: `query($id: ID!) { org(id: $id) { ...OrgF } }`, want: mxOrgA,
			vars: func(_ *testing.T, e *mxEnv, _ string) map[string]any { return map[string]any{"id": e.orgA} },
			check: func(t *testing.T, e *mxEnv, actor string, _ map[string]any, res any) {
				o := mxObj(res)
				if o["id"] != e.orgA || o["name"] != "mx-org-a" || o["influxdb"] != "influx-a" || o["mqtt_username"] != "mqtt-a" {
					t.Errorf("org A = %v", o)
				}
				mxRequireSecretsEmpty(t, "org", o)
				var emails []string
				for _, u := range mxList(o["users"]) {
					emails = append(emails, mxStr(mxObj(u)["email"]))
				}
				if !slices.Contains(emails, e.email[mxMemberA]) || !slices.Contains(emails, e.email[mxBridge]) || slices.Contains(emails, e.email[mxMemberB]) {
					t.Errorf("org A users %v: want memberA and bridge, not memberB", emails)
				}
				e.checkOrgUsers(t, actor, o)
			},
		},
		{op: "org", variant: "nonexistent", query: `query($id: ID!) { org(id: $id) { id } }`, want: mxMissing, vars: mxVars("id", mxNoSuchID)},
		{
			op: "things", query: `{ things { ...ThingF } }`, want: mxEverybody,
			check: func(t *testing.T, e *mxEnv, actor string, _ map[string]any, res any) {
				e.checkListing(t, actor, mxList(res))
			},
		},
		{
			op: "things", variant: "all", query: `{ things(all: true) { id name } }`, want: mxAdminOnly,
			check: func(t *testing.T, e *mxEnv, _ string, _ map[string]any, res any) {
				ids := mxIDs(mxList(res))
				for _, id := range []string{e.sensorA, e.switchA, e.sensorB, e.switchB} {
					if !slices.Contains(ids, id) {
						t.Errorf("things(all) lacks %s", e.names[id])
					}
				}
			},
		},
		{
			op: "things", variant: "filter", query: `query($f: ThingFilter) { things(filter: $f) { id name } }`, want: mxEverybody,
			vars: func(_ *testing.T, e *mxEnv, _ string) map[string]any {
				return map[string]any{"f": map[string]any{"nameContains": e.names[e.sensorA]}}
			},
			check: func(t *testing.T, e *mxEnv, actor string, _ map[string]any, res any) {
				want := []string{e.sensorA}
				if actor == mxMemberB {
					want = nil
				}
				if ids := mxIDs(mxList(res)); !reflect.DeepEqual(ids, want) {
					t.Errorf("things(filter: %s) = %v, want %v", e.names[e.sensorA], ids, want)
				}
			},
		},
		{
			op: "thingsConnection", query: `{ thingsConnection { totalCount edges { cursor node { ...ThingF } } pageInfo { hasNextPage endCursor } } }`, want: mxEverybody,
			check: func(t *testing.T, e *mxEnv, actor string, _ map[string]any, res any) {
				c := mxObj(res)
				var nodes []any
				for _, ed := range mxList(c["edges"]) {
					nodes = append(nodes, mxObj(ed)["node"])
				}
				e.checkListing(t, actor, nodes)
				if n, _ := c["totalCount"].(float64); int(n) != len(nodes) {
					t.Errorf("totalCount %v, %d edges", c["totalCount"], len(nodes))
				}
			},
		},
		{
			op: "thingsConnection", variant: "all", query: `{ thingsConnection(all: true) { totalCount edges { node { id } } } }`, want: mxAdminOnly,
			check: func(t *testing.T, e *mxEnv, _ string, _ map[string]any, res any) {
				var nodes []any
				for _, ed := range mxList(mxObj(res)["edges"]) {
					nodes = append(nodes, mxObj(ed)["node"])
				}
				ids := mxIDs(nodes)
				for _, id := range []string{e.sensorA, e.switchA, e.sensorB, e.switchB} {
					if !slices.Contains(ids, id) {
						t.Errorf("thingsConnection(all) lacks %s", e.names[id])
					}
				}
			},
		},
		{
			op: "thingsConnection", variant: "filter", want: mxEverybody,
			query: `query($f: ThingFilter) { thingsConnection(filter: $f, first: 10) { totalCount edges { node { id } } } }`,
			vars: func(_ *testing.T, e *mxEnv, _ string) map[string]any {
				return map[string]any{"f": map[string]any{"nameContains": e.names[e.sensorA]}}
			},
			check: func(t *testing.T, e *mxEnv, actor string, _ map[string]any, res any) {
				c := mxObj(res)
				want := 1
				if actor == mxMemberB {
					want = 0
				}
				if n, _ := c["totalCount"].(float64); int(n) != want || len(mxList(c["edges"])) != want {
					t.Errorf("thingsConnection(filter: %s) = %v, want %d of them", e.names[e.sensorA], c, want)
				}
			},
		},
		{
			op: "thing", query: `query($id: ID!) { thing(id: $id) { ...ThingF } }`, want: mxOrgA,
			vars: func(_ *testing.T, e *mxEnv, _ string) map[string]any { return map[string]any{"id": e.sensorA} },
			check: func(t *testing.T, e *mxEnv, _ string, _ map[string]any, res any) {
				th := mxObj(res)
				if th["name"] != e.names[e.sensorA] || mxObj(th["org"])["id"] != e.orgA {
					t.Errorf("thing = %v", th)
				}
				mxRequireSecretsEmpty(t, "thing.org", mxObj(th["org"]))
			},
		},
		{op: "thing", variant: "nonexistent", query: `query($id: ID!) { thing(id: $id) { id } }`, want: mxMissing, vars: mxVars("id", mxNoSuchID)},
		{
			op: "readings", query: `query($id: ID!) { readings(thingId: $id, step: 0) { ts value } }`, want: mxOrgA,
			vars: func(_ *testing.T, e *mxEnv, _ string) map[string]any { return map[string]any{"id": e.sensorA} },
			check: func(t *testing.T, _ *mxEnv, _ string, _ map[string]any, res any) {
				if res == nil {
					t.Error("readings = null, want a list")
				}
			},
		},
		{op: "readings", variant: "nonexistent", query: `query($id: ID!) { readings(thingId: $id) { ts } }`, want: mxMissing, vars: mxVars("id", mxNoSuchID)},

		// ---- Orgs ----
		{
			op: "createOrg", query: `mutation($n: String!) { createOrg(name: $n, description: "by matrix") { ...OrgF } }`, want: mxAdminOnly,
			vars: func(_ *testing.T, e *mxEnv, _ string) map[string]any {
				return map[string]any{"n": fmt.Sprintf("mx-new-org-%d", e.seq())}
			},
			state: func(t *testing.T, e *mxEnv, _ string, v map[string]any) any {
				var names []string
				for _, o := range mxList(e.admin(t, `{ orgs { name } }`, nil)["orgs"]) {
					names = append(names, mxStr(mxObj(o)["name"]))
				}
				return slices.Contains(names, mxStr(v["n"]))
			},
			check: func(t *testing.T, _ *mxEnv, _ string, v map[string]any, res any) {
				o := mxObj(res)
				if o["name"] != v["n"] || mxStr(o["id"]) == "" {
					t.Errorf("createOrg = %v", o)
				}
				mxRequireSecretsEmpty(t, "createOrg", o)
			},
		},
		{
			op: "updateOrg", query: `mutation($o: OrgUpdate!) { updateOrg(org: $o) { ...OrgF } }`, want: mxAdminOnly,
			vars: func(_ *testing.T, e *mxEnv, actor string) map[string]any {
				return map[string]any{"o": map[string]any{
					"id": e.orgA, "description": "described by " + actor,
					"influxdb_password": "influx-secret-" + actor, "mysqldb_password": "mysql-secret-" + actor, "mqtt_password": "mqtt-secret-" + actor,
				}}
			},
			state: orgState,
			check: func(t *testing.T, _ *mxEnv, _ string, _ map[string]any, res any) {
				o := mxObj(res)
				if o["description"] != "described by admin" {
					t.Errorf("updateOrg = %v", o)
				}
				// Just set, still unreadable.
				mxRequireSecretsEmpty(t, "updateOrg", o)
			},
		},
		{
			op: "updateOrg", variant: "nonexistent", query: `mutation($o: OrgUpdate!) { updateOrg(org: $o) { id } }`, want: mxMissing,
			vars: mxVars("o", map[string]any{"id": mxNoSuchID, "description": "x"}),
		},
		{
			op: "deleteOrg", query: `mutation($id: ID!) { deleteOrg(id: $id) }`, want: mxAdminOnly,
			vars:  func(t *testing.T, e *mxEnv, _ string) map[string]any { return map[string]any{"id": e.freshOrg(t)} },
			state: orgState,
			check: func(t *testing.T, e *mxEnv, _ string, v map[string]any, res any) {
				if res != true {
					t.Errorf("deleteOrg = %v, want true", res)
				}
				if _, code := e.adminTry(t, `query($id: ID!) { org(id: $id) { id } }`, v); code != mxNotFound {
					t.Errorf("deleted org: %q, want NOT_FOUND", code)
				}
			},
		},
		{op: "deleteOrg", variant: "nonexistent", query: `mutation($id: ID!) { deleteOrg(id: $id) }`, want: mxMissing, vars: mxVars("id", mxNoSuchID)},
		{
			// The new password is the one secret ever returned, once, to an
			// admin; the alias keeps it out of the secret scan.
			op: "setOrgMqttCredentials", query: `mutation($o: ID!, $u: String!) { setOrgMqttCredentials(orgId: $o, username: $u) { username newPassword: password } }`, want: mxAdminOnly,
			vars: func(t *testing.T, e *mxEnv, actor string) map[string]any {
				return map[string]any{"o": e.freshOrg(t), "u": fmt.Sprintf("mqtt-%s-%d", actor, e.seq())}
			},
			state: func(t *testing.T, e *mxEnv, _ string, v map[string]any) any {
				return mxObj(e.admin(t, `query($o: ID!) { org(id: $o) { mqtt_username mqtt_password } }`, map[string]any{"o": v["o"]})["org"])
			},
			check: func(t *testing.T, e *mxEnv, _ string, v map[string]any, res any) {
				c := mxObj(res)
				if c["username"] != v["u"] || len(mxStr(c["newPassword"])) < 16 {
					t.Errorf("setOrgMqttCredentials = %v", c)
				}
				o := mxObj(e.admin(t, `query($o: ID!) { org(id: $o) { mqtt_username mqtt_password } }`, map[string]any{"o": v["o"]})["org"])
				if o["mqtt_username"] != v["u"] || o["mqtt_password"] != "" {
					t.Errorf("org after setOrgMqttCredentials = %v", o)
				}
			},
		},
		{
			op: "addSshKey", query: `mutation($u: ID!, $k: String!) { addSshKey(userId: $u, key: $k) { fingerprint comment } }`, want: mxSelfA,
			vars: func(t *testing.T, e *mxEnv, _ string) map[string]any {
				line, fp := mxSSHKey(t)
				return map[string]any{"u": e.id[mxMemberA], "k": line, "fp": fp}
			},
			state: func(t *testing.T, e *mxEnv, _ string, v map[string]any) any {
				return slices.Contains(e.sshKeysOf(t, mxStr(v["u"])), mxStr(v["fp"]))
			},
			check: func(t *testing.T, e *mxEnv, _ string, v map[string]any, res any) {
				if mxObj(res)["fingerprint"] != v["fp"] || !slices.Contains(e.sshKeysOf(t, mxStr(v["u"])), mxStr(v["fp"])) {
					t.Errorf("addSshKey = %v", res)
				}
			},
		},
		{
			op: "removeSshKey", query: `mutation($u: ID!, $fp: String!) { removeSshKey(userId: $u, fingerprint: $fp) }`, want: mxSelfA,
			vars: func(t *testing.T, e *mxEnv, _ string) map[string]any {
				line, fp := mxSSHKey(t)
				e.admin(t, `mutation($u: ID!, $k: String!) { addSshKey(userId: $u, key: $k) { fingerprint } }`, map[string]any{"u": e.id[mxMemberA], "k": line})
				return map[string]any{"u": e.id[mxMemberA], "fp": fp}
			},
			state: func(t *testing.T, e *mxEnv, _ string, v map[string]any) any {
				return slices.Contains(e.sshKeysOf(t, mxStr(v["u"])), mxStr(v["fp"]))
			},
			check: func(t *testing.T, e *mxEnv, _ string, v map[string]any, _ any) {
				if slices.Contains(e.sshKeysOf(t, mxStr(v["u"])), mxStr(v["fp"])) {
					t.Error("removeSshKey left the key")
				}
			},
		},
		{
			op: "createMetricsToken", query: `mutation($o: ID!) { createMetricsToken(orgId: $o) { id token } }`, want: mxAdminOnly,
			vars: func(t *testing.T, e *mxEnv, _ string) map[string]any { return map[string]any{"o": e.freshOrg(t)} },
			state: func(t *testing.T, e *mxEnv, _ string, v map[string]any) any {
				return len(mxList(e.admin(t, `query($o: ID!) { metricsTokens(orgId: $o) { id } }`, v)["metricsTokens"]))
			},
			check: func(t *testing.T, e *mxEnv, _ string, v map[string]any, res any) {
				if !strings.HasPrefix(mxStr(mxObj(res)["token"]), "piot_org_") {
					t.Errorf("createMetricsToken = %v", res)
				}
				for _, mt := range mxList(e.admin(t, `query($o: ID!) { metricsTokens(orgId: $o) { token } }`, v)["metricsTokens"]) {
					if mxStr(mxObj(mt)["token"]) != "" {
						t.Error("metricsTokens shows a token secret")
					}
				}
			},
		},
		{
			op: "revokeMetricsToken", query: `mutation($o: ID!, $id: String!) { revokeMetricsToken(orgId: $o, id: $id) }`, want: mxAdminOnly,
			vars: func(t *testing.T, e *mxEnv, _ string) map[string]any {
				o := e.freshOrg(t)
				id := mxStr(mxObj(e.admin(t, `mutation($o: ID!) { createMetricsToken(orgId: $o) { id } }`, map[string]any{"o": o})["createMetricsToken"])["id"])
				return map[string]any{"o": o, "id": id}
			},
			state: func(t *testing.T, e *mxEnv, _ string, v map[string]any) any {
				return len(mxList(e.admin(t, `query($o: ID!) { metricsTokens(orgId: $o) { id } }`, map[string]any{"o": v["o"]})["metricsTokens"]))
			},
			check: func(t *testing.T, e *mxEnv, _ string, v map[string]any, _ any) {
				if n := len(mxList(e.admin(t, `query($o: ID!) { metricsTokens(orgId: $o) { id } }`, map[string]any{"o": v["o"]})["metricsTokens"])); n != 0 {
					t.Errorf("%d tokens left after revoke", n)
				}
			},
		},
		{
			op: "metricsTokens", query: `query($o: ID!) { metricsTokens(orgId: $o) { id created } }`, want: mxAdminOnly,
			vars: func(_ *testing.T, e *mxEnv, _ string) map[string]any { return map[string]any{"o": e.orgA} },
		},
		{
			op: "auditLog", query: `{ auditLog(first: 5) { ts actor action target source } }`, want: mxAdminOnly,
			check: func(t *testing.T, _ *mxEnv, _ string, _ map[string]any, res any) {
				if len(mxList(res)) == 0 {
					t.Error("auditLog is empty after the matrix's changes")
				}
			},
		},
		{
			// Outside the image only the version is known.
			op: "system", query: `{ system { version slot other_slot_version last_update { result reason at } } }`, want: mxAdminOnly,
			check: func(t *testing.T, _ *mxEnv, _ string, _ map[string]any, res any) {
				if m, _ := res.(map[string]any); m == nil || m["version"] == "" || m["slot"] != nil {
					t.Errorf("system = %v", res)
				}
			},
		},
		{
			op: "orgNotifications", query: `query($o: ID!) { orgNotifications(orgId: $o) { webhook_url webhook_secret_set } }`, want: mxOrgA,
			vars: func(_ *testing.T, e *mxEnv, _ string) map[string]any { return map[string]any{"o": e.orgA} },
		},
		{
			op: "setOrgNotifications", query: `mutation($o: ID!, $u: String, $s: String) { setOrgNotifications(orgId: $o, webhook_url: $u, webhook_secret: $s) { webhook_url webhook_secret_set } }`, want: mxAdminOnly,
			vars: func(t *testing.T, e *mxEnv, actor string) map[string]any {
				return map[string]any{"o": e.freshOrg(t), "u": "https://hooks.example.org/" + actor, "s": "hook-secret-" + actor}
			},
			state: func(t *testing.T, e *mxEnv, _ string, v map[string]any) any {
				return mxObj(e.admin(t, `query($o: ID!) { orgNotifications(orgId: $o) { webhook_url webhook_secret_set } }`, map[string]any{"o": v["o"]})["orgNotifications"])
			},
			check: func(t *testing.T, _ *mxEnv, _ string, v map[string]any, res any) {
				n := mxObj(res)
				if n["webhook_url"] != v["u"] || n["webhook_secret_set"] != true {
					t.Errorf("setOrgNotifications = %v", n)
				}
			},
		},
		{
			op: "setUserNotify", query: `mutation($u: ID!) { setUserNotify(userId: $u, on: true) }`, want: mxSelfA,
			vars: func(_ *testing.T, e *mxEnv, _ string) map[string]any { return map[string]any{"u": e.id[mxMemberA]} },
			after: func(t *testing.T, e *mxEnv, _ string, v map[string]any, allowed bool) {
				e.admin(t, `mutation($u: ID!) { setUserNotify(userId: $u, on: false) }`, v)
			},
			state: func(t *testing.T, e *mxEnv, _ string, v map[string]any) any {
				return mxObj(e.admin(t, `query($u: ID!) { user(id: $u) { notify_alarms } }`, v)["user"])["notify_alarms"]
			},
			check: func(t *testing.T, e *mxEnv, _ string, v map[string]any, res any) {
				if res != true || mxObj(e.admin(t, `query($u: ID!) { user(id: $u) { notify_alarms } }`, v)["user"])["notify_alarms"] != true {
					t.Errorf("setUserNotify = %v", res)
				}
			},
		},
		{
			op: "alarms", query: `{ alarms(active: false) { id thingName orgName active } }`, want: mxEverybody,
			check: func(t *testing.T, _ *mxEnv, _ string, _ map[string]any, res any) {
				if res == nil {
					t.Error("alarms = null, want a list")
				}
			},
		},
		{op: "acknowledgeAlarm", variant: "nonexistent", query: `mutation($id: ID!) { acknowledgeAlarm(id: $id) { id } }`, want: mxMissing, vars: mxVars("id", mxNoSuchID)},
		{op: "setOrgMqttCredentials", variant: "nonexistent", query: `mutation($o: ID!) { setOrgMqttCredentials(orgId: $o, username: "nobody-here") { username } }`, want: mxMissing, vars: mxVars("o", mxNoSuchID)},
		{
			op: "addOrgUser", query: `mutation($o: ID!, $u: ID!) { addOrgUser(orgId: $o, userId: $u) }`, want: mxAdminOnly, nullResult: true,
			vars: func(t *testing.T, e *mxEnv, _ string) map[string]any {
				id, _ := e.freshUser(t, false)
				return map[string]any{"o": e.orgA, "u": id}
			},
			state: func(t *testing.T, e *mxEnv, _ string, v map[string]any) any {
				return e.membership(t, mxStr(v["o"]), mxStr(v["u"]))
			},
			check: func(t *testing.T, e *mxEnv, _ string, v map[string]any, _ any) {
				if e.membership(t, mxStr(v["o"]), mxStr(v["u"])) != true {
					t.Error("addOrgUser by admin did not add the user")
				}
			},
		},
		{
			// Joining an org oneself is the classic escalation.
			op: "addOrgUser", variant: "self", query: `mutation($o: ID!, $u: ID!) { addOrgUser(orgId: $o, userId: $u) }`, want: mxAdminOnly, nullResult: true,
			vars: func(_ *testing.T, e *mxEnv, actor string) map[string]any {
				if actor == mxAnon {
					return map[string]any{"o": e.orgA, "u": e.id[mxMemberB]}
				}
				return map[string]any{"o": e.orgA, "u": e.id[actor]}
			},
			state: func(t *testing.T, e *mxEnv, _ string, v map[string]any) any {
				return e.membership(t, mxStr(v["o"]), mxStr(v["u"]))
			},
			check: func(t *testing.T, e *mxEnv, _ string, v map[string]any, _ any) {
				if e.membership(t, e.orgA, e.id[mxAdmin]) != true {
					t.Error("admin did not join org A")
				}
				// Leave again so the admin's view stays as set up.
				e.admin(t, `mutation($o: ID!, $u: ID!) { removeOrgUser(orgId: $o, userId: $u) }`, v)
			},
		},
		{
			op: "addOrgUser", variant: "nonexistent", query: `mutation($o: ID!, $u: ID!) { addOrgUser(orgId: $o, userId: $u) }`, want: mxMissing, nullResult: true,
			vars: func(_ *testing.T, e *mxEnv, _ string) map[string]any {
				return map[string]any{"o": mxNoSuchID, "u": e.id[mxMemberB]}
			},
		},
		{
			op: "removeOrgUser", query: `mutation($o: ID!, $u: ID!) { removeOrgUser(orgId: $o, userId: $u) }`, want: mxAdminOnly, nullResult: true,
			vars: func(t *testing.T, e *mxEnv, _ string) map[string]any {
				id, _ := e.freshUser(t, true)
				return map[string]any{"o": e.orgA, "u": id}
			},
			state: func(t *testing.T, e *mxEnv, _ string, v map[string]any) any {
				return e.membership(t, mxStr(v["o"]), mxStr(v["u"]))
			},
			check: func(t *testing.T, e *mxEnv, _ string, v map[string]any, _ any) {
				if e.membership(t, mxStr(v["o"]), mxStr(v["u"])) != false {
					t.Error("removeOrgUser by admin did not remove the user")
				}
			},
		},
		{
			op: "removeOrgUser", variant: "nonexistent", query: `mutation($o: ID!, $u: ID!) { removeOrgUser(orgId: $o, userId: $u) }`, want: mxMissing, nullResult: true,
			vars: func(_ *testing.T, e *mxEnv, _ string) map[string]any {
				return map[string]any{"o": mxNoSuchID, "u": e.id[mxMemberA]}
			},
		},

		// ---- Users ----
		{
			op: "createUser", query: `mutation($e: String!, $p: String!) { createUser(email: $e, password: $p) { ...UserF } }`, want: mxAdminOnly,
			vars: func(_ *testing.T, e *mxEnv, _ string) map[string]any {
				return map[string]any{"e": fmt.Sprintf("mx-new-%d@x.test", e.seq()), "p": "new-user-password"}
			},
			state: mxUserExists,
			check: func(t *testing.T, _ *mxEnv, _ string, v map[string]any, res any) {
				if u := mxObj(res); u["email"] != v["e"] || u["is_admin"] != false {
					t.Errorf("createUser = %v", u)
				}
			},
		},
		{
			op: "createUser", variant: "admin", query: `mutation($e: String!, $p: String!) { createUser(email: $e, password: $p, is_admin: true) { ...UserF } }`, want: mxAdminOnly,
			vars: func(_ *testing.T, e *mxEnv, _ string) map[string]any {
				return map[string]any{"e": fmt.Sprintf("mx-new-%d@x.test", e.seq()), "p": "new-user-password"}
			},
			state: mxUserExists,
			check: func(t *testing.T, _ *mxEnv, _ string, v map[string]any, res any) {
				if u := mxObj(res); u["email"] != v["e"] || u["is_admin"] != true {
					t.Errorf("createUser(is_admin) = %v", u)
				}
			},
		},
		{
			// Another user of the same org: still not the caller's to change.
			op: "updateUser", query: `mutation($user: UserUpdate!) { updateUser(user: $user) { ...UserF } }`, want: mxAdminOnly,
			// Setting another user's password is an account takeover.
			vars: func(t *testing.T, e *mxEnv, _ string) map[string]any {
				id, email := e.freshUser(t, true)
				return map[string]any{"user": map[string]any{"id": id, "password": "taken-over-pw"}, "email": email}
			},
			state: func(t *testing.T, e *mxEnv, a string, v map[string]any) any {
				tok, _ := e.login(t, mxStr(v["email"]), "fresh-password-1")
				return []any{userState(t, e, a, v), tok != ""}
			},
			check: func(t *testing.T, e *mxEnv, _ string, v map[string]any, res any) {
				if u := mxObj(res); u["email"] != v["email"] {
					t.Errorf("updateUser = %v", u)
				}
				if tok, _ := e.login(t, mxStr(v["email"]), "taken-over-pw"); tok == "" {
					t.Error("cannot log in with the password the admin set")
				}
			},
		},
		{
			op: "updateUser", variant: "otherEmail", query: `mutation($user: UserUpdate!) { updateUser(user: $user) { ...UserF } }`, want: mxAdminOnly,
			vars: func(t *testing.T, e *mxEnv, _ string) map[string]any {
				id, _ := e.freshUser(t, true)
				return map[string]any{"user": map[string]any{"id": id, "email": fmt.Sprintf("mx-renamed-%d@x.test", e.seq())}}
			},
			state: userState,
			check: func(t *testing.T, _ *mxEnv, _ string, v map[string]any, res any) {
				if u := mxObj(res); u["email"] != mxObj(v["user"])["email"] {
					t.Errorf("updateUser(email) = %v", u)
				}
			},
		},
		{
			op: "updateUser", variant: "otherAdmin", query: `mutation($user: UserUpdate!) { updateUser(user: $user) { ...UserF } }`, want: mxAdminOnly,
			vars: func(t *testing.T, e *mxEnv, _ string) map[string]any {
				id, _ := e.freshUser(t, true)
				return map[string]any{"user": map[string]any{"id": id, "is_admin": true}}
			},
			state: userState,
			check: func(t *testing.T, _ *mxEnv, _ string, _ map[string]any, res any) {
				if u := mxObj(res); u["is_admin"] != true {
					t.Errorf("updateUser(is_admin) = %v", u)
				}
			},
		},
		{
			op: "updateUser", variant: "selfPassword", query: `mutation($user: UserUpdate!) { updateUser(user: $user) { ...UserF } }`, want: mxEverybody,
			vars: func(_ *testing.T, e *mxEnv, actor string) map[string]any {
				target := actor
				if actor == mxAnon {
					target = mxMemberA
				}
				return map[string]any{"user": map[string]any{"id": e.id[target], "password": fmt.Sprintf("%s-pw-%d", target, e.seq())}}
			},
			state: func(t *testing.T, e *mxEnv, actor string, _ map[string]any) any {
				if actor == mxAnon {
					actor = mxMemberA
				}
				tok, _ := e.login(t, e.email[actor], e.pw[actor])
				return tok != ""
			},
			check: func(t *testing.T, e *mxEnv, actor string, v map[string]any, res any) {
				if u := mxObj(res); u["email"] != e.email[actor] {
					t.Errorf("updateUser(self) = %v", u)
				}
				if tok, st := e.login(t, e.email[actor], e.pw[actor]); tok != "" || st != http.StatusUnauthorized {
					t.Errorf("old password still logs in (%d)", st)
				}
			},
			after: func(t *testing.T, e *mxEnv, actor string, v map[string]any, allowed bool) {
				if !allowed {
					return
				}
				// The change revokes older tokens: continue with a new one.
				pw := mxStr(mxObj(v["user"])["password"])
				tok, st := e.login(t, e.email[actor], pw)
				if tok == "" {
					t.Fatalf("%s cannot log in with the new password: %d", actor, st)
				}
				e.pw[actor], e.tok[actor] = pw, tok
			},
		},
		{
			op: "updateUser", variant: "selfEmail", query: `mutation($user: UserUpdate!) { updateUser(user: $user) { ...UserF } }`, want: mxAdminOnly,
			vars: func(_ *testing.T, e *mxEnv, actor string) map[string]any {
				switch actor {
				case mxAnon:
					return map[string]any{"user": map[string]any{"id": e.id[mxMemberA], "email": "renamed-anon@x.test"}}
				case mxAdmin:
					// Allowed; keep the address so the rest of the test can log in.
					return map[string]any{"user": map[string]any{"id": e.id[actor], "email": e.email[actor]}}
				}
				return map[string]any{"user": map[string]any{"id": e.id[actor], "email": "renamed-" + actor + "@x.test"}}
			},
			state: userState,
			check: func(t *testing.T, e *mxEnv, actor string, _ map[string]any, res any) {
				if u := mxObj(res); u["email"] != e.email[actor] {
					t.Errorf("updateUser(self email) = %v", u)
				}
			},
		},
		{
			op: "updateUser", variant: "selfAdmin", query: `mutation($user: UserUpdate!) { updateUser(user: $user) { ...UserF } }`, want: mxAdminOnly,
			vars: func(_ *testing.T, e *mxEnv, actor string) map[string]any {
				if actor == mxAnon {
					return map[string]any{"user": map[string]any{"id": e.id[mxMemberA], "is_admin": true}}
				}
				return map[string]any{"user": map[string]any{"id": e.id[actor], "is_admin": true}}
			},
			state: userState,
			check: func(t *testing.T, _ *mxEnv, _ string, _ map[string]any, res any) {
				if u := mxObj(res); u["is_admin"] != true {
					t.Errorf("updateUser(self is_admin) = %v", u)
				}
			},
		},
		{
			op: "updateUser", variant: "nonexistent", query: `mutation($user: UserUpdate!) { updateUser(user: $user) { id } }`, want: mxMissing,
			vars: mxVars("user", map[string]any{"id": mxNoSuchID, "password": "whatever-password"}),
		},
		{
			op: "deleteUser", query: `mutation($id: ID!) { deleteUser(id: $id) }`, want: mxAdminOnly,
			vars: func(t *testing.T, e *mxEnv, _ string) map[string]any {
				id, _ := e.freshUser(t, true)
				return map[string]any{"id": id}
			},
			state: userState,
			check: func(t *testing.T, e *mxEnv, _ string, v map[string]any, res any) {
				if res != true {
					t.Errorf("deleteUser = %v, want true", res)
				}
				if _, code := e.adminTry(t, `query($id: ID!) { user(id: $id) { id } }`, v); code != mxNotFound {
					t.Errorf("deleted user: %q, want NOT_FOUND", code)
				}
			},
		},
		{op: "deleteUser", variant: "nonexistent", query: `mutation($id: ID!) { deleteUser(id: $id) }`, want: mxMissing, vars: mxVars("id", mxNoSuchID)},
		{
			op: "updateUserProfile", query: `mutation($p: UserProfileUpdate!) { updateUserProfile(profile: $p) { email org_id orgs { ...OrgF } } }`, want: mxOrgA,
			vars: func(_ *testing.T, e *mxEnv, _ string) map[string]any {
				return map[string]any{"p": map[string]any{"org_id": e.orgA}}
			},
			state: profileState,
			check: func(t *testing.T, e *mxEnv, actor string, _ map[string]any, res any) {
				if p := mxObj(res); p["org_id"] != e.orgA || p["email"] != e.email[actor] {
					t.Errorf("updateUserProfile = %v", p)
				}
			},
		},
		{
			op: "updateUserProfile", variant: "own", query: `mutation($p: UserProfileUpdate!) { updateUserProfile(profile: $p) { email org_id orgs { ...OrgF } } }`, want: mxEverybody,
			vars: func(_ *testing.T, e *mxEnv, actor string) map[string]any {
				if actor == mxMemberB {
					return map[string]any{"p": map[string]any{"org_id": e.orgB}}
				}
				return map[string]any{"p": map[string]any{"org_id": e.orgA}}
			},
			state: profileState,
			check: func(t *testing.T, e *mxEnv, actor string, v map[string]any, res any) {
				p := mxObj(res)
				if p["org_id"] != mxObj(v["p"])["org_id"] {
					t.Errorf("updateUserProfile(own) = %v", p)
				}
				if actor != mxAdmin {
					for i, o := range mxList(p["orgs"]) {
						mxRequireSecretsEmpty(t, fmt.Sprintf("updateUserProfile.orgs[%d]", i), mxObj(o))
					}
				}
			},
		},
		{
			op: "updateUserProfile", variant: "nonexistent", query: `mutation($p: UserProfileUpdate!) { updateUserProfile(profile: $p) { org_id } }`, want: mxMissing,
			vars: mxVars("p", map[string]any{"org_id": mxNoSuchID}), state: profileState,
		},

		// ---- Things ----
		{
			op: "createThing", query: `mutation($n: String!) { createThing(name: $n, type: "sensor") { ...ThingF } }`, want: mxAdminOnly,
			vars: func(_ *testing.T, e *mxEnv, _ string) map[string]any {
				return map[string]any{"n": fmt.Sprintf("mx-new-thing-%d", e.seq())}
			},
			state: func(t *testing.T, e *mxEnv, _ string, v map[string]any) any {
				return len(mxList(e.admin(t, `query($f: ThingFilter) { things(all: true, filter: $f) { id } }`,
					map[string]any{"f": map[string]any{"name": v["n"]}})["things"]))
			},
			check: func(t *testing.T, _ *mxEnv, _ string, v map[string]any, res any) {
				if th := mxObj(res); th["name"] != v["n"] || th["type"] != "sensor" || th["org"] != nil {
					t.Errorf("createThing = %v", th)
				}
			},
		},
		{
			op: "updateThing", query: `mutation($t: ThingUpdate!) { updateThing(thing: $t) { ...ThingF } }`, want: mxOrgA,
			vars: func(_ *testing.T, e *mxEnv, actor string) map[string]any {
				return map[string]any{"t": map[string]any{"id": e.sensorA, "description": "described by " + actor, "alias": "alias-" + actor}}
			},
			state: thingStateOf("t"),
			check: func(t *testing.T, e *mxEnv, actor string, _ map[string]any, res any) {
				th := mxObj(res)
				if th["description"] != "described by "+actor || th["alias"] != "alias-"+actor || mxObj(th["org"])["id"] != e.orgA {
					t.Errorf("updateThing = %v", th)
				}
			},
		},
		{
			op: "updateThing", variant: "changeOrg", query: `mutation($t: ThingUpdate!) { updateThing(thing: $t) { ...ThingF } }`, want: mxAdminOnly,
			vars: func(t *testing.T, e *mxEnv, _ string) map[string]any {
				return map[string]any{"t": map[string]any{"id": e.freshThing(t), "orgId": e.orgB}}
			},
			state: thingStateOf("t"),
			check: func(t *testing.T, e *mxEnv, _ string, _ map[string]any, res any) {
				if th := mxObj(res); mxObj(th["org"])["id"] != e.orgB {
					t.Errorf("updateThing(orgId B) = %v", th)
				}
			},
		},
		{
			op: "updateThing", variant: "unassign", query: `mutation($t: ThingUpdate!) { updateThing(thing: $t) { ...ThingF } }`, want: mxAdminOnly,
			vars: func(t *testing.T, e *mxEnv, _ string) map[string]any {
				return map[string]any{"t": map[string]any{"id": e.freshThing(t), "orgId": nil}}
			},
			state: thingStateOf("t"),
			check: func(t *testing.T, _ *mxEnv, _ string, _ map[string]any, res any) {
				if th := mxObj(res); th["org"] != nil {
					t.Errorf("updateThing(orgId null) = %v", th)
				}
			},
		},
		missingThing("updateThing", `mutation($t: ThingUpdate!) { updateThing(thing: $t) { id } }`, map[string]any{"t": map[string]any{"id": mxNoSuchID, "description": "x"}}),
		{
			op: "updateThingSensorData", query: `mutation($d: ThingSensorDataUpdate!) { updateThingSensorData(data: $d) { ...ThingF } }`, want: mxOrgA,
			vars: func(_ *testing.T, e *mxEnv, actor string) map[string]any {
				return map[string]any{"d": map[string]any{"id": e.sensorA, "unit": "unit-" + actor, "class": "temperature", "measurement_topic": "t/" + actor}}
			},
			state: thingStateOf("d"),
			check: func(t *testing.T, _ *mxEnv, actor string, _ map[string]any, res any) {
				if s := mxObj(mxObj(res)["sensor"]); s["unit"] != "unit-"+actor || s["measurement_topic"] != "t/"+actor {
					t.Errorf("updateThingSensorData = %v", res)
				}
			},
		},
		missingThing("updateThingSensorData", `mutation($d: ThingSensorDataUpdate!) { updateThingSensorData(data: $d) { id } }`, map[string]any{"d": map[string]any{"id": mxNoSuchID, "unit": "x"}}),
		{
			op: "updateThingSwitchData", query: `mutation($d: ThingSwitchDataUpdate!) { updateThingSwitchData(data: $d) { ...ThingF } }`, want: mxOrgA,
			vars: func(_ *testing.T, e *mxEnv, actor string) map[string]any {
				return map[string]any{"d": map[string]any{"id": e.switchA, "state_on": "on-" + actor, "command_topic": "cmd/" + actor}}
			},
			state: thingStateOf("d"),
			check: func(t *testing.T, _ *mxEnv, actor string, _ map[string]any, res any) {
				if s := mxObj(mxObj(res)["switch"]); s["state_on"] != "on-"+actor || s["command_topic"] != "cmd/"+actor {
					t.Errorf("updateThingSwitchData = %v", res)
				}
			},
		},
		missingThing("updateThingSwitchData", `mutation($d: ThingSwitchDataUpdate!) { updateThingSwitchData(data: $d) { id } }`, map[string]any{"d": map[string]any{"id": mxNoSuchID, "state_on": "x"}}),
		{
			op: "setThingAlarm", query: `mutation($id: ID!, $on: Boolean!) { setThingAlarm(id: $id, active: $on) }`, want: mxOrgA,
			vars: func(t *testing.T, e *mxEnv, _ string) map[string]any {
				// Always ask for a change, so a refused attempt is visible.
				cur := mxObj(e.thingState(t, e.sensorA))["alarm_active"] == true
				return map[string]any{"id": e.sensorA, "on": !cur}
			},
			state: func(t *testing.T, e *mxEnv, _ string, v map[string]any) any {
				return e.thingState(t, mxStr(v["id"]))
			},
			check: func(t *testing.T, e *mxEnv, _ string, v map[string]any, res any) {
				if res != v["on"] || mxObj(e.thingState(t, e.sensorA))["alarm_active"] != v["on"] {
					t.Errorf("setThingAlarm(%v) = %v", v["on"], res)
				}
			},
		},
		missingThing("setThingAlarm", `mutation($id: ID!) { setThingAlarm(id: $id, active: true) }`, tid),
		{
			op: "setSwitchState", query: `mutation($id: ID!, $on: Boolean!) { setSwitchState(id: $id, on: $on) { ...ThingF } }`, want: mxOrgA,
			vars: func(t *testing.T, e *mxEnv, _ string) map[string]any {
				cur := mxObj(mxObj(e.thingState(t, e.switchA))["switch"])["state"] == true
				return map[string]any{"id": e.switchA, "on": !cur}
			},
			state: func(t *testing.T, e *mxEnv, _ string, v map[string]any) any {
				return e.thingState(t, mxStr(v["id"]))
			},
			check: func(t *testing.T, _ *mxEnv, _ string, v map[string]any, res any) {
				if s := mxObj(mxObj(res)["switch"]); s["state"] != v["on"] {
					t.Errorf("setSwitchState(%v) = %v", v["on"], res)
				}
			},
		},
		missingThing("setSwitchState", `mutation($id: ID!) { setSwitchState(id: $id, on: true) { id } }`, tid),
		{
			op: "deleteThing", query: `mutation($id: ID!) { deleteThing(id: $id) }`, want: mxAdminOnly, nullResult: true,
			vars: func(t *testing.T, e *mxEnv, _ string) map[string]any { return map[string]any{"id": e.freshThing(t)} },
			state: func(t *testing.T, e *mxEnv, _ string, v map[string]any) any {
				return e.thingState(t, mxStr(v["id"]))
			},
			check: func(t *testing.T, e *mxEnv, _ string, v map[string]any, _ any) {
				if got := e.thingState(t, mxStr(v["id"])); got != mxNotFound {
					t.Errorf("deleted thing: %v, want NOT_FOUND", got)
				}
			},
		},
		missingThing("deleteThing", `mutation($id: ID!) { deleteThing(id: $id) }`, tid),
		{
			op: "setThingAesKey", query: `mutation($id: ID!, $k: String) { setThingAesKey(thingId: $id, key: $k) { ...ThingF } }`, want: mxOrgA,
			vars: func(t *testing.T, e *mxEnv, _ string) map[string]any {
				id := e.freshThing(t)
				e.admin(t, `mutation($t: ThingUpdate!) { updateThing(thing: $t) { id } }`,
					map[string]any{"t": map[string]any{"id": id, "piotId": e.names[id]}})
				return map[string]any{"id": id, "k": fmt.Sprintf("key-%012d", e.seq())}
			},
			state: func(t *testing.T, e *mxEnv, _ string, v map[string]any) any {
				return e.thingState(t, mxStr(v["id"]))
			},
			check: func(t *testing.T, e *mxEnv, _ string, v map[string]any, res any) {
				// The key is write-only: the schema has no field to read it.
				if mxObj(res)["has_aes_key"] != true {
					t.Errorf("setThingAesKey = %v", res)
				}
				if _, code := e.adminTry(t, `query($id: ID!) { thing(id: $id) { aes_key } }`, map[string]any{"id": v["id"]}); code != "GRAPHQL_VALIDATION_FAILED" {
					t.Errorf("reading aes_key: %q, want GRAPHQL_VALIDATION_FAILED", code)
				}
			},
		},
		missingThing("setThingAesKey", `mutation($id: ID!) { setThingAesKey(thingId: $id, key: null) { id } }`, tid),
		{
			op: "setThingMqttCredentials", query: `mutation($id: ID!) { setThingMqttCredentials(thingId: $id) { username newPassword: password } }`, want: mxAdminOnly,
			vars: func(t *testing.T, e *mxEnv, _ string) map[string]any { return map[string]any{"id": e.freshThing(t)} },
			state: func(t *testing.T, e *mxEnv, _ string, v map[string]any) any {
				return e.admin(t, `query($id: ID!) { thing(id: $id) { mqtt_username } }`, map[string]any{"id": v["id"]})["thing"]
			},
			check: func(t *testing.T, e *mxEnv, _ string, v map[string]any, res any) {
				c := mxObj(res)
				want := "thing:" + e.names[mxStr(v["id"])]
				if c["username"] != want || mxStr(c["newPassword"]) == "" {
					t.Errorf("setThingMqttCredentials = %v", c)
				}
				if th := mxObj(e.admin(t, `query($id: ID!) { thing(id: $id) { mqtt_username } }`, map[string]any{"id": v["id"]})["thing"]); th["mqtt_username"] != want {
					t.Errorf("thing after setThingMqttCredentials = %v", th)
				}
			},
		},
		missingThing("setThingMqttCredentials", `mutation($id: ID!) { setThingMqttCredentials(thingId: $id) { username } }`, tid),
	}
}

// mxUserExists reports whether the email of a createUser attempt exists.
func mxUserExists(t *testing.T, e *mxEnv, _ string, v map[string]any) any {
	t.Helper()
	for _, u := range mxList(e.admin(t, `{ users { email } }`, nil)["users"]) {
		if mxObj(u)["email"] == v["e"] {
			return true
		}
	}
	return false
}

// mxSchemaOps returns the Query and Mutation field names of the schema.
func mxSchemaOps(t *testing.T) (*ast.Schema, []string) {
	t.Helper()
	src, err := os.ReadFile("../services/api/graph/schema.graphqls")
	if err != nil {
		t.Fatal(err)
	}
	schema, gerr := gqlparser.LoadSchema(&ast.Source{Name: "schema.graphqls", Input: string(src)})
	if gerr != nil {
		t.Fatalf("schema: %v", gerr)
	}
	var ops []string
	for _, def := range []*ast.Definition{schema.Query, schema.Mutation} {
		if def == nil {
			t.Fatal("schema lacks Query or Mutation")
		}
		for _, f := range def.Fields {
			if !strings.HasPrefix(f.Name, "__") {
				ops = append(ops, f.Name)
			}
		}
	}
	return schema, ops
}

func TestAuthorizationMatrix(t *testing.T) {
	rows := mxRows()

	// Every operation of the schema has a row, and every row's query is
	// valid and really runs its operation.
	schema, ops := mxSchemaOps(t)
	covered := map[string]bool{}
	for _, r := range rows {
		covered[r.op] = true
		doc, errs := gqlparser.LoadQueryWithRules(schema, mxDoc(r.query), nil)
		if len(errs) > 0 {
			t.Errorf("row %s: invalid query: %v", r.title(), errs)
			continue
		}
		var roots []string
		for _, op := range doc.Operations {
			for _, sel := range op.SelectionSet {
				if f, ok := sel.(*ast.Field); ok {
					roots = append(roots, f.Name)
				}
			}
		}
		if !slices.Contains(roots, r.op) {
			t.Errorf("row %s: query runs %v, not %s", r.title(), roots, r.op)
		}
	}
	for _, op := range ops {
		if !covered[op] {
			t.Errorf("operation %s of schema.graphqls has no row in the authorization matrix", op)
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	a := startAppliance(t, startOpts{args: []string{"--login-rate", "100000", "--login-burst", "1000"}})
	e := &mxEnv{
		a:     a,
		tok:   map[string]string{mxAnon: ""},
		id:    map[string]string{},
		email: map[string]string{mxAdmin: "admin@piot.local", mxMemberA: "membera@x.test", mxMemberB: "memberb@x.test", mxBridge: "bridge@x.test"},
		pw:    map[string]string{mxAdmin: a.adminPassword(), mxMemberA: "member-a-password", mxMemberB: "member-b-password", mxBridge: "bridge-password"},
		names: map[string]string{},
	}
	e.tok[mxAdmin] = a.login(e.email[mxAdmin], e.pw[mxAdmin])
	e.setup(t)

	for _, r := range rows {
		t.Run(r.title(), func(t *testing.T) {
			for _, actor := range mxActors {
				t.Run(actor, func(t *testing.T) { e.attempt(t, r, actor) })
			}
		})
	}
}

// setup builds the world as admin: orgs A and B with secrets, a member of
// each, and a sensor and a switch in each.
func (e *mxEnv) setup(t *testing.T) {
	t.Helper()
	for _, o := range []struct {
		name string
		dst  *string
	}{{"mx-org-a", &e.orgA}, {"mx-org-b", &e.orgB}} {
		*o.dst = mxStr(mxObj(e.admin(t, `mutation($n: String!) { createOrg(name: $n, description: "matrix") { id } }`, map[string]any{"n": o.name})["createOrg"])["id"])
	}
	for _, u := range mxList(e.admin(t, `{ users { id email } }`, nil)["users"]) {
		if mxObj(u)["email"] == e.email[mxAdmin] {
			e.id[mxAdmin] = mxStr(mxObj(u)["id"])
		}
	}
	for _, m := range []struct {
		actor string
		orgs  []string
	}{{mxMemberA, []string{e.orgA}}, {mxMemberB, []string{e.orgB}}, {mxBridge, []string{e.orgA, e.orgB}}} {
		id := mxStr(mxObj(e.admin(t, `mutation($e: String!, $p: String!) { createUser(email: $e, password: $p) { id } }`,
			map[string]any{"e": e.email[m.actor], "p": e.pw[m.actor]})["createUser"])["id"])
		e.id[m.actor] = id
		for _, org := range m.orgs {
			e.admin(t, `mutation($o: ID!, $u: ID!) { addOrgUser(orgId: $o, userId: $u) }`, map[string]any{"o": org, "u": id})
		}
		if m.actor == mxBridge {
			continue
		}
		e.tok[m.actor] = e.a.login(e.email[m.actor], e.pw[m.actor])
		// Each member works in their org.
		st, out := e.call(t, m.actor, `mutation($p: UserProfileUpdate!) { updateUserProfile(profile: $p) { org_id } }`,
			map[string]any{"p": map[string]any{"org_id": m.orgs[0]}})
		if st != http.StatusOK || errCode(out) != "" {
			t.Fatalf("%s: updateUserProfile(own org): %d %v", m.actor, st, out)
		}
	}
	for _, th := range []struct {
		name, typ, org string
		dst            *string
	}{
		{"mx-sensor-a", "sensor", e.orgA, &e.sensorA}, {"mx-switch-a", "switch", e.orgA, &e.switchA},
		{"mx-sensor-b", "sensor", e.orgB, &e.sensorB}, {"mx-switch-b", "switch", e.orgB, &e.switchB},
	} {
		id := mxStr(mxObj(e.admin(t, `mutation($n: String!, $ty: String!) { createThing(name: $n, type: $ty) { id } }`,
			map[string]any{"n": th.name, "ty": th.typ})["createThing"])["id"])
		e.admin(t, `mutation($t: ThingUpdate!) { updateThing(thing: $t) { id } }`, map[string]any{"t": map[string]any{"id": id, "orgId": th.org}})
		*th.dst = id
		e.names[id] = th.name
	}
	for _, o := range []struct{ id, sfx string }{{e.orgA, "a"}, {e.orgB, "b"}} {
		data := e.admin(t, `mutation($o: OrgUpdate!) { updateOrg(org: $o) { ...OrgF } }`, map[string]any{"o": map[string]any{
			"id": o.id, "influxdb": "influx-" + o.sfx, "influxdb_username": "iu-" + o.sfx, "influxdb_password": "influx-secret-" + o.sfx,
			"mysqldb": "mysql-" + o.sfx, "mysqldb_username": "mu-" + o.sfx, "mysqldb_password": "mysql-secret-" + o.sfx,
			"mqtt_username": "mqtt-" + o.sfx, "mqtt_password": "mqtt-secret-" + o.sfx,
		}})
		mxRequireSecretsEmpty(t, "updateOrg in setup", mxObj(data["updateOrg"]))
	}
	// The admin works in org A, so their `things` lists A's things.
	e.admin(t, `mutation($p: UserProfileUpdate!) { updateUserProfile(profile: $p) { org_id } }`, map[string]any{"p": map[string]any{"org_id": e.orgA}})
}

// attempt runs one actor's attempt of one row and checks the outcome.
func (e *mxEnv) attempt(t *testing.T, r mxRow, actor string) {
	var vars map[string]any
	if r.vars != nil {
		vars = r.vars(t, e, actor)
	}
	want := r.want.of(actor)
	var before any
	if r.state != nil && want != mxOK {
		before = r.state(t, e, actor, vars)
	}
	st, out := e.call(t, actor, r.query, vars)
	code := errCode(out)
	data := mxObj(out["data"])

	var leaks []string
	mxSecrets(out, "response", &leaks)
	for _, l := range leaks {
		t.Errorf("secret readable: %s", l)
	}

	allowed := false
	switch {
	case actor == mxAnon:
		if st != http.StatusUnauthorized || code != "UNAUTHENTICATED" {
			t.Errorf("anonymous: status %d code %q, want 401 UNAUTHENTICATED (%s)", st, code, mxShort(out))
		}
	case want == mxOK:
		if st != http.StatusOK || code != "" {
			t.Errorf("%s: status %d code %q, want allowed (%s)", actor, st, code, mxShort(out))
			break
		}
		allowed = true
		res, present := data[r.op]
		if !present || (res == nil && !r.nullResult) {
			t.Errorf("%s: no data for %s: %s", actor, r.op, mxShort(out))
			break
		}
		if r.check != nil {
			r.check(t, e, actor, vars, res)
		}
	default:
		if st != http.StatusOK || !slices.Contains(strings.Split(want, "|"), code) {
			t.Errorf("%s: status %d code %q, want 200 %s (%s)", actor, st, code, want, mxShort(out))
		}
	}
	if !allowed && data[r.op] != nil {
		t.Errorf("%s: refused, yet data returned: %v", actor, data[r.op])
	}
	if r.state != nil && want != mxOK {
		if after := r.state(t, e, actor, vars); !reflect.DeepEqual(before, after) {
			t.Errorf("%s: refused attempt changed state:\nbefore %v\nafter  %v", actor, before, after)
		}
	}
	if r.after != nil {
		r.after(t, e, actor, vars, allowed)
	}
}

func mxShort(v any) string {
	b, _ := json.Marshal(v)
	if len(b) > 400 {
		return string(b[:400]) + "..."
	}
	return string(b)
}

// A token is only as good as its user's current state: deleted users and
// old passwords are refused at once, demoted admins lose their rights at
// once.
func TestTokenOfDeletedOrDemotedUser(t *testing.T) {
	a := startAppliance(t, startOpts{args: []string{"--login-rate", "100000", "--login-burst", "1000"}})
	admin := a.login("admin@piot.local", a.adminPassword())
	gql := func(t *testing.T, tok, q string, vars map[string]any) (int, map[string]any, string) {
		t.Helper()
		st, out := post(t, a.url+"/query", tok, map[string]any{"query": q, "variables": vars})
		return st, mxObj(out["data"]), errCode(out)
	}
	mustAdmin := func(t *testing.T, q string, vars map[string]any) map[string]any {
		t.Helper()
		st, data, code := gql(t, admin, q, vars)
		if st != http.StatusOK || code != "" {
			t.Fatalf("as admin: %s: %d %s", q, st, code)
		}
		return data
	}
	createUser := func(t *testing.T, email, pw string, isAdmin bool) string {
		t.Helper()
		data := mustAdmin(t, `mutation($e: String!, $p: String!, $a: Boolean) { createUser(email: $e, password: $p, is_admin: $a) { id } }`,
			map[string]any{"e": email, "p": pw, "a": isAdmin})
		return mxStr(mxObj(data["createUser"])["id"])
	}
	loginTok := func(t *testing.T, email, pw string) (string, int) {
		t.Helper()
		st, out := post(t, a.url+"/login", "", map[string]string{"email": email, "password": pw})
		return mxStr(out["token"]), st
	}
	refresh := func(t *testing.T, tok string) (int, string) {
		t.Helper()
		st, out := post(t, a.url+"/refresh", tok, map[string]any{})
		return st, mxStr(out["token"])
	}
	wantUnauth := func(t *testing.T, what, tok string) {
		t.Helper()
		if st, data, code := gql(t, tok, `{ userProfile { email is_admin } }`, nil); st != http.StatusUnauthorized || code != "UNAUTHENTICATED" {
			t.Errorf("%s: userProfile: status %d code %q data %v, want 401 UNAUTHENTICATED", what, st, code, data)
		}
		if st, _, code := gql(t, tok, `mutation { createOrg(name: "sneaky", description: "") { id } }`, nil); st != http.StatusUnauthorized || code != "UNAUTHENTICATED" {
			t.Errorf("%s: createOrg: status %d code %q, want 401 UNAUTHENTICATED", what, st, code)
		}
		if st, fresh := refresh(t, tok); st != http.StatusUnauthorized || fresh != "" {
			t.Errorf("%s: /refresh: status %d, want 401 and no token", what, st)
		}
	}

	t.Run("deleted user", func(t *testing.T) {
		id := createUser(t, "gone@x.test", "gone-password", false)
		tok, st := loginTok(t, "gone@x.test", "gone-password")
		if tok == "" {
			t.Fatalf("login: %d", st)
		}
		if st, _, code := gql(t, tok, `{ userProfile { email } }`, nil); st != http.StatusOK || code != "" {
			t.Fatalf("before deletion: %d %s", st, code)
		}
		mustAdmin(t, `mutation($id: ID!) { deleteUser(id: $id) }`, map[string]any{"id": id})
		wantUnauth(t, "token of a deleted user", tok)
	})

	t.Run("deleted admin", func(t *testing.T) {
		id := createUser(t, "gone-admin@x.test", "gone-password", true)
		tok, st := loginTok(t, "gone-admin@x.test", "gone-password")
		if tok == "" {
			t.Fatalf("login: %d", st)
		}
		mustAdmin(t, `mutation($id: ID!) { deleteUser(id: $id) }`, map[string]any{"id": id})
		wantUnauth(t, "token of a deleted admin", tok)
		if st, _, code := gql(t, tok, `{ users { id } }`, nil); st != http.StatusUnauthorized || code != "UNAUTHENTICATED" {
			t.Errorf("users: %d %q, want 401 UNAUTHENTICATED", st, code)
		}
	})

	t.Run("demoted admin", func(t *testing.T) {
		id := createUser(t, "admin2@x.test", "admin2-password", true)
		tok, st := loginTok(t, "admin2@x.test", "admin2-password")
		if tok == "" {
			t.Fatalf("login: %d", st)
		}
		if st, _, code := gql(t, tok, `{ users { id } }`, nil); st != http.StatusOK || code != "" {
			t.Fatalf("admin2 before demotion: users: %d %s", st, code)
		}
		mustAdmin(t, `mutation($u: UserUpdate!) { updateUser(user: $u) { is_admin } }`, map[string]any{"u": map[string]any{"id": id, "is_admin": false}})
		for _, q := range []string{
			`{ users { id } }`,
			`{ things(all: true) { id } }`,
			`mutation { createOrg(name: "by-demoted", description: "") { id } }`,
			`mutation { createUser(email: "by-demoted@x.test", password: "by-demoted-pw") { id } }`,
		} {
			if st, data, code := gql(t, tok, q, nil); st != http.StatusOK || code != "FORBIDDEN" {
				t.Errorf("old token after demotion: %s: status %d code %q data %v, want FORBIDDEN", q, st, code, data)
			}
		}
		// Re-promoting oneself is refused too.
		if _, _, code := gql(t, tok, `mutation($u: UserUpdate!) { updateUser(user: $u) { is_admin } }`, map[string]any{"u": map[string]any{"id": id, "is_admin": true}}); code != "FORBIDDEN" {
			t.Errorf("demoted admin re-promoting themselves: %q, want FORBIDDEN", code)
		}
		if _, data, code := gql(t, tok, `{ userProfile { is_admin } }`, nil); code != "" || mxObj(data["userProfile"])["is_admin"] != false {
			t.Errorf("profile after demotion: %v %s", data, code)
		}
		// A refreshed token carries no admin rights either.
		st, fresh := refresh(t, tok)
		if st != http.StatusOK || fresh == "" {
			t.Fatalf("refresh: %d", st)
		}
		if _, _, code := gql(t, fresh, `{ users { id } }`, nil); code != "FORBIDDEN" {
			t.Errorf("refreshed token after demotion: users: %q, want FORBIDDEN", code)
		}
	})

	// changePassword logs in, lets the user change their own password and
	// checks the old token; sameSecond makes the login and the change
	// happen within one wall-clock second (the resolution of a JWT's iat).
	changePassword := func(t *testing.T, email string, byAdmin, sameSecond bool) {
		id := createUser(t, email, "first-password", false)
		for try := 0; ; try++ {
			if sameSecond {
				// Start right after a second boundary.
				now := time.Now()
				time.Sleep(now.Truncate(time.Second).Add(time.Second + 20*time.Millisecond).Sub(now))
			}
			t0 := time.Now()
			old, st := loginTok(t, email, "first-password")
			if old == "" {
				t.Fatalf("login: %d", st)
			}
			if !sameSecond {
				time.Sleep(1100 * time.Millisecond)
			}
			tok := old
			if byAdmin {
				tok = admin
			}
			if st, _, code := gql(t, tok, `mutation($u: UserUpdate!) { updateUser(user: $u) { id } }`,
				map[string]any{"u": map[string]any{"id": id, "password": "second-password"}}); st != http.StatusOK || code != "" {
				t.Fatalf("password change: %d %s", st, code)
			}
			t1 := time.Now()
			if sameSecond && t0.Unix() != t1.Unix() && try < 3 {
				// Crossed a second boundary after all: set back and retry.
				mustAdmin(t, `mutation($u: UserUpdate!) { updateUser(user: $u) { id } }`,
					map[string]any{"u": map[string]any{"id": id, "password": "first-password"}})
				continue
			}
			wantUnauth(t, "token issued before the password change", old)
			break
		}
		// The new password works at once, and so does its token; the old
		// password does not.
		tok, st := loginTok(t, email, "second-password")
		if tok == "" {
			t.Fatalf("login with the new password: %d", st)
		}
		if st, _, code := gql(t, tok, `{ userProfile { email } }`, nil); st != http.StatusOK || code != "" {
			t.Errorf("token issued right after the password change: %d %s", st, code)
		}
		if old, st := loginTok(t, email, "first-password"); old != "" || st != http.StatusUnauthorized {
			t.Errorf("old password still logs in: %d", st)
		}
	}
	t.Run("password change revokes older tokens", func(t *testing.T) {
		changePassword(t, "pw1@x.test", false, false)
	})
	t.Run("password change revokes older tokens of the same second", func(t *testing.T) {
		changePassword(t, "pw2@x.test", false, true)
	})
	t.Run("password change by admin revokes older tokens of the same second", func(t *testing.T) {
		changePassword(t, "pw3@x.test", true, true)
	})
}
