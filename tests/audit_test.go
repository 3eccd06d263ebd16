package tests

import (
	"net/http"
	"strings"
	"testing"
)

// The audit trail end to end: changes made over the API are recorded with
// the API and the client's address as source; an admin reads them on the
// console's Audit screen over OpenSSH at 80×24 and over GraphQL; a member
// is offered no Audit tab and gets FORBIDDEN from auditLog.
func TestAuditTrailOverOpenSSH(t *testing.T) {
	requireTools(t, "ssh", "tmux")
	dir := t.TempDir()
	adminKey := consoleKey(t, dir)
	a := startAppliance(t, startOpts{dataDir: dir})
	tok := a.login("admin@piot.local", a.adminPassword())
	farm := gqlID(t, a, tok, "createOrg", `mutation { createOrg(name: "farm", description: "") { id } }`, nil)
	member := gqlID(t, a, tok, "createUser", `mutation { createUser(email: "m@farm.test", password: "member-password") { id } }`, nil)
	if _, _, code := a.gql(tok, `mutation($o: ID!, $u: ID!) { addOrgUser(orgId: $o, userId: $u) }`, map[string]any{"o": farm, "u": member}); code != "" {
		t.Fatal(code)
	}
	memberKey, memberPub := keyPair(t)
	if _, _, code := a.gql(tok, `mutation($u: ID!, $k: String!) { addSshKey(userId: $u, key: $k) { fingerprint } }`, map[string]any{"u": member, "k": memberPub}); code != "" {
		t.Fatal(code)
	}

	_, data, code := a.gql(tok, `{ auditLog(first: 4) { ts actor action target source } }`, nil)
	if code != "" {
		t.Fatal(code)
	}
	var actions []string
	for _, e := range data["auditLog"].([]any) {
		e := e.(map[string]any)
		actions = append(actions, e["action"].(string))
		if e["actor"] != "admin@piot.local" || !strings.HasPrefix(e["source"].(string), "api 127.0.0.1") {
			t.Errorf("entry %v", e)
		}
		if strings.Contains(e["target"].(string), "member-password") {
			t.Errorf("password in %v", e)
		}
	}
	if got := strings.Join(actions, " "); got != "addSshKey addOrgUser createUser createOrg" {
		t.Fatalf("auditLog actions = %q", got)
	}

	// A device registering itself is the system's change, from the
	// adapter and the device's address.
	packet := map[string]any{"device": "CHIP9", "readings": []any{map[string]any{"address": "A1", "t": 20.5}}}
	if st, _ := postPacket(t, a.url+"/adapter", packet); st != http.StatusAccepted {
		t.Fatalf("registering packet: %d", st)
	}
	_, data, _ = a.gql(tok, `{ auditLog(first: 2) { actor action target source } }`, nil)
	for _, e := range data["auditLog"].([]any) {
		e := e.(map[string]any)
		if e["action"] != "registerDevice" || e["actor"] != "system" || !strings.HasPrefix(e["source"].(string), "adapter 127.0.0.1") {
			t.Errorf("device registration entry %v", e)
		}
	}

	p := openSSHConsole(t, a, adminKey, 80, 24)
	p.waitFor("Dashboard", "admin@piot.local")
	p.keys("0")
	s := p.waitFor("[0 Audit]", "Audit trail", "addSshKey", "createOrg", "org farm", "api 127.0")
	if !strings.Contains(lineOf(s, "bootstrap"), "system") {
		t.Errorf("the first admin's creation is not the system's:\n%s", s)
	}
	p.keys("/")
	p.keys("-l", "org farm")
	p.keys("Enter")
	s = p.waitFor("filter: org farm", "2 of the last")
	if strings.Contains(s, "addSshKey") {
		t.Fatalf("filter kept an entry without org farm:\n%s", s)
	}
	// The admin's pane stays open: a tmux server whose last session
	// just ended refuses new ones.

	mtok := a.login("m@farm.test", "member-password")
	if _, _, code := a.gql(mtok, `{ auditLog { action } }`, nil); code != "FORBIDDEN" {
		t.Fatalf("member auditLog: %q", code)
	}
	m := openSSHConsole(t, a, memberKey, 80, 24)
	s = m.waitFor("Dashboard", "m@farm.test")
	if strings.Contains(lineOf(s, "Dashboard"), "Aud") {
		t.Fatalf("member is offered the Audit tab:\n%s", s)
	}
	m.keys("0")
	m.keys("Tab")
	s = m.waitFor("[2 Things]")
	if strings.Contains(s, "Audit trail") {
		t.Fatalf("member reached the audit trail:\n%s", s)
	}
	m.keys("q")
	p.keys("q")
}
