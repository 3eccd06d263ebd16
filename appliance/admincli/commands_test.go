package admincli

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/piot-appliance/piot/services/api"
	"github.com/piot-appliance/piot/services/api/graph"
	"github.com/piot-appliance/piot/services/core/coretest"
)

// The commands run against the real API on a real core.

type appliance struct {
	t     *testing.T
	url   string
	token string // the administrator's
}

func newAppliance(t *testing.T) *appliance {
	t.Helper()
	for _, k := range []string{"PIOT_URL", "PIOT_TOKEN", "PIOT_EMAIL", "PIOT_PASSWORD", "PIOT_CA_FILE"} {
		t.Setenv(k, "")
	}
	env := coretest.Open(t, coretest.Options{Org: "acme"})
	quiet := slog.New(slog.DiscardHandler)
	srv, err := api.New(api.Config{JWTKey: bytes.Repeat([]byte("k"), 32), JWTTTL: time.Hour, Logger: quiet},
		api.Deps{Core: env.Core, GraphQL: graph.NewHandler(env.Core, graph.Options{Logger: quiet})})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	a := &appliance{t: t, url: hs.URL}
	a.token = strings.TrimSpace(a.ok("login", "--email", coretest.AdminEmail, "--password", coretest.AdminPassword))
	return a
}

// run runs `piot admin --url URL args...` and returns what it printed.
func (a *appliance) run(args ...string) (string, error) {
	a.t.Helper()
	cmd := Command()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(io.Discard)
	cmd.SetArgs(append([]string{"--url", a.url}, args...))
	err := cmd.ExecuteContext(context.Background())
	return out.String(), err
}

// ok runs a command that must succeed.
func (a *appliance) ok(args ...string) string {
	a.t.Helper()
	out, err := a.run(args...)
	if err != nil {
		a.t.Fatalf("%v: %v", args, err)
	}
	return out
}

// admin runs a command with the administrator's token.
func (a *appliance) admin(args ...string) string {
	a.t.Helper()
	return a.ok(append([]string{"--token", a.token}, args...)...)
}

// fails runs a command that must fail with msg.
func (a *appliance) fails(msg string, args ...string) {
	a.t.Helper()
	if _, err := a.run(args...); err == nil || err.Error() != msg {
		a.t.Fatalf("%v: error %v, want %q", args, err, msg)
	}
}

var ids = regexp.MustCompile(`\b[0-9a-f]{24}\b`)

// masked replaces the identifiers and times in out with placeholders.
func masked(out string) string {
	out = ids.ReplaceAllString(out, "<id>")
	return regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ`).ReplaceAllString(out, "<time>")
}

func TestAuthentication(t *testing.T) {
	a := newAppliance(t)
	if !regexp.MustCompile(`^[\w-]+\.[\w-]+\.[\w-]+$`).MatchString(a.token) {
		t.Fatalf("login printed %q", a.token)
	}
	a.fails("login needs --email and --password", "login", "--email", coretest.AdminEmail)
	a.fails("not logged in: give --token, or --email and --password", "org", "list")
	a.fails("/login: HTTP 401: user identified by this email does not exist or provided credentials are wrong",
		"org", "list", "--email", coretest.AdminEmail, "--password", "wrong")
	// --email and --password log in before the command.
	out := a.ok("org", "list", "--email", coretest.AdminEmail, "--password", coretest.AdminPassword)
	if !strings.Contains(out, "acme") {
		t.Fatalf("org list: %q", out)
	}
	if _, err := a.run("--ca-file", filepath.Join(t.TempDir(), "missing.pem"), "--token", a.token, "org", "list"); err == nil ||
		!strings.HasPrefix(err.Error(), "ca-file: ") {
		t.Fatalf("a missing CA file: %v", err)
	}
}

func TestOrgCommands(t *testing.T) {
	a := newAppliance(t)
	out := a.admin("org", "create", "farm", "--description", "the fields")
	if want := "ID                        NAME  DESCRIPTION\n<id>  farm  the fields\n"; masked(out) != want {
		t.Fatalf("org create:\n%s\nwant\n%s", masked(out), want)
	}
	var listed []orgRow
	if err := json.Unmarshal([]byte(a.admin("org", "list", "--json")), &listed); err != nil {
		t.Fatal(err)
	}
	if len(listed) != 2 || listed[0].Name != "acme" || listed[1].Name != "farm" || listed[1].Description != "the fields" || listed[1].Created == 0 {
		t.Fatalf("org list --json: %+v", listed)
	}
	out = a.admin("org", "list")
	if want := "ID                        NAME  DESCRIPTION  CREATED\n<id>  acme               <time>\n<id>  farm  the fields   <time>\n"; masked(out) != want {
		t.Fatalf("org list:\n%s\nwant\n%s", masked(out), want)
	}
	out = a.admin("org", "mqtt-credentials", "farm", "farm-devices")
	if !regexp.MustCompile(`^USERNAME\s+PASSWORD\nfarm-devices\s+\S{16,}\n$`).MatchString(out) {
		t.Fatalf("org mqtt-credentials: %q", out)
	}
	a.fails(`no organisation named "barn"`, "--token", a.token, "org", "mqtt-credentials", "barn", "x")
}

func TestUserCommands(t *testing.T) {
	a := newAppliance(t)
	a.admin("org", "create", "farm")
	a.fails("user create needs --user-password", "--token", a.token, "user", "create", "ann@x.test")
	out := a.admin("user", "create", "ann@x.test", "--user-password", "ann-password")
	if want := "ID                        EMAIL       ADMIN\n<id>  ann@x.test  false\n"; masked(out) != want {
		t.Fatalf("user create:\n%s\nwant\n%s", masked(out), want)
	}
	a.admin("user", "create", "bob@x.test", "--user-password", "bob-password", "--admin")
	if out := a.admin("user", "add-to-org", "ann@x.test", "acme"); out != "ann@x.test is now a member of acme\n" {
		t.Fatalf("add-to-org: %q", out)
	}
	a.admin("user", "add-to-org", "ann@x.test", "farm")
	a.fails(`no user "cid@x.test"`, "--token", a.token, "user", "add-to-org", "cid@x.test", "farm")
	a.fails(`no organisation "barn"`, "--token", a.token, "user", "add-to-org", "ann@x.test", "barn")
	out = masked(a.admin("user", "list"))
	for _, line := range []string{
		"ID                        EMAIL             ADMIN  ORGS\n",
		"<id>  ann@x.test        false  acme,farm\n",
		"<id>  bob@x.test        true   \n",
		"<id>  " + coretest.AdminEmail + "  true   \n",
	} {
		if !strings.Contains(out, line) {
			t.Fatalf("user list:\n%s\nlacks %q", out, line)
		}
	}
	// The new user logs in with their password.
	if _, err := a.run("--email", "ann@x.test", "--password", "ann-password", "org", "list"); err != nil {
		t.Fatal(err)
	}
}

func TestThingList(t *testing.T) {
	a := newAppliance(t)
	if out := a.admin("thing", "list", "--all"); out != "ID  NAME  ALIAS  TYPE  ORG  ENABLED  LAST SEEN  VALUE\n" {
		t.Fatalf("no things: %q", out)
	}
	c := Client{URL: a.url, Token: a.token}
	ctx := context.Background()
	var orgs struct {
		Orgs []orgRow `json:"orgs"`
	}
	if err := c.Query(ctx, `{ orgs { id } }`, nil, &orgs); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"boiler", "attic"} {
		var r struct {
			Thing thingRow `json:"createThing"`
		}
		if err := c.Query(ctx, `mutation($n: String!) { createThing(name: $n, type: "sensor") { id } }`, map[string]any{"n": name}, &r); err != nil {
			t.Fatal(err)
		}
		if name == "boiler" {
			err := c.Query(ctx, `mutation($id: ID!, $org: ID) { updateThing(thing: {id: $id, orgId: $org, alias: "Boiler", enabled: true}) { id } }`,
				map[string]any{"id": r.Thing.ID, "org": orgs.Orgs[0].ID}, nil)
			if err == nil {
				err = c.Query(ctx, `mutation($id: ID!) { updateThingSensorData(data: {id: $id, unit: "°C"}) { id } }`, map[string]any{"id": r.Thing.ID}, nil)
			}
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	out := masked(a.admin("thing", "list", "--all"))
	want := "ID                        NAME    ALIAS   TYPE    ORG   ENABLED  LAST SEEN  VALUE\n" +
		"<id>  attic           sensor  -     false    -           \n" + // a sensor without a unit: " "
		"<id>  boiler  Boiler  sensor  acme  true     -           °C\n"
	if out != want {
		t.Fatalf("thing list --all:\n%q\nwant\n%q", out, want)
	}
}
