package graph_test

import (
	"strings"
	"testing"
	"time"

	"github.com/piot-appliance/piot/services/api/graph"
)

// auditLog shows admins who changed what, newest first, with the
// operation named as the mutation; members and anonymous callers are
// refused, and the arguments are checked.
func TestAuditLog(t *testing.T) {
	e := newEnv(t, graph.Options{})
	org := e.createOrg("farm")
	member := e.user("m@example.com")
	e.addMember(org, member.UserID.Hex())
	e.data(e.admin, `mutation { updateUser(user: {id: "`+member.UserID.Hex()+`", password: "a-new-secret-pw"}) { id } }`, nil, nil)

	type entry struct {
		TS                            int64
		Actor, Action, Target, Source string
	}
	var out struct{ AuditLog []entry }
	e.data(e.admin, `{ auditLog(first: 3) { ts actor action target source } }`, nil, &out)
	var actions []string
	for _, x := range out.AuditLog {
		actions = append(actions, x.Action)
		if x.Actor != "admin@piot.local" || time.Since(time.Unix(x.TS, 0)) > time.Minute {
			t.Errorf("entry %+v", x)
		}
		if strings.Contains(x.Target, "a-new-secret-pw") {
			t.Errorf("secret in %+v", x)
		}
	}
	if got := strings.Join(actions, " "); got != "updateUser addOrgUser createUser" {
		t.Fatalf("actions = %q", got)
	}
	if x := out.AuditLog[1]; x.Target != "user m@example.com to org farm" {
		t.Errorf("addOrgUser target = %q", x.Target)
	}

	now := time.Now().Unix()
	e.data(e.admin, `query($f: Int, $t: Int) { auditLog(from: $f, to: $t) { action } }`, map[string]any{"f": now + 3600, "t": now + 7200}, &out)
	if len(out.AuditLog) != 0 {
		t.Errorf("future window: %+v", out.AuditLog)
	}

	e.fails(member, `{ auditLog { action } }`, nil, "FORBIDDEN")
	for _, q := range []string{
		`{ auditLog(first: 1001) { action } }`,
		`{ auditLog(first: -1) { action } }`,
		`{ auditLog(from: 20, to: 10) { action } }`,
		`{ auditLog(first: 99999999999) { action } }`,
	} {
		e.fails(e.admin, q, nil, "BAD_USER_INPUT")
	}
}
