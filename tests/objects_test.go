package tests

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The objects the API has, over OpenSSH at 80×24: an org's webhook and a
// metrics token shown once, a user's alarm e-mails, a device's AES key,
// and a key of authorized_keys removed so that it no longer logs in; a
// member sees only their org's settings and core's refusals.
func TestConsoleObjectsOverOpenSSH(t *testing.T) {
	requireTools(t, "ssh", "tmux")
	dir := t.TempDir()
	adminKey, adminPub := keyPair(t)
	oldKey, oldPub := keyPair(t)
	keys := "# console keys\n" + adminPub + " admin-laptop\n" + oldPub + " old-laptop\n"
	if err := os.WriteFile(filepath.Join(dir, "authorized_keys"), []byte(keys), 0o600); err != nil {
		t.Fatal(err)
	}
	a := startAppliance(t, startOpts{dataDir: dir})
	tok := a.login("admin@piot.local", a.adminPassword())
	farm := gqlID(t, a, tok, "createOrg", `mutation { createOrg(name: "farm", description: "") { id } }`, nil)
	other := gqlID(t, a, tok, "createOrg", `mutation { createOrg(name: "other", description: "") { id } }`, nil)
	if _, _, code := a.gql(tok, `mutation($o: ID!) { setOrgNotifications(orgId: $o, webhook_url: "https://hooks.other.example/x") { webhook_url } }`, map[string]any{"o": other}); code != "" {
		t.Fatal(code)
	}
	member := gqlID(t, a, tok, "createUser", `mutation { createUser(email: "m@farm.test", password: "member-password") { id } }`, nil)
	if _, _, code := a.gql(tok, `mutation($o: ID!, $u: ID!) { addOrgUser(orgId: $o, userId: $u) }`, map[string]any{"o": farm, "u": member}); code != "" {
		t.Fatal(code)
	}
	memberKey, memberPub := keyPair(t)
	if _, _, code := a.gql(tok, `mutation($u: ID!, $k: String!) { addSshKey(userId: $u, key: $k) { fingerprint } }`, map[string]any{"u": member, "k": memberPub}); code != "" {
		t.Fatal(code)
	}
	dev := gqlID(t, a, tok, "createThing", `mutation { createThing(name: "gateway", type: "device") { id } }`, nil)
	if _, _, code := a.gql(tok, `mutation($t: ID!, $o: ID!) { updateThing(thing: {id: $t, orgId: $o, piotId: "chip-7", enabled: true}) { id } }`, map[string]any{"t": dev, "o": farm}); code != "" {
		t.Fatal(code)
	}

	p := openSSHConsole(t, a, adminKey, 80, 24)
	p.waitFor("Dashboard", "admin@piot.local")
	p.keys("3")
	p.slash("farm")
	p.keys("Enter")
	s := p.waitFor("Organization farm", "webhook", "none", "metrics tokens", "Members of farm", "m@farm.test")
	fills(t, s, 24)
	p.keys("w")
	p.waitFor("Webhook of farm")
	p.keys("-l", "https://hooks.farm.example/piot")
	p.keys("Enter")
	p.keys("-l", "s3cret")
	p.keys("Enter", "Enter")
	p.waitFor("saved the webhook of farm", "https://hooks.farm.example/piot · secret set")
	_, data, code := a.gql(tok, `query($o: ID!) { orgNotifications(orgId: $o) { webhook_url webhook_secret_set } }`, map[string]any{"o": farm})
	if n := fmt.Sprint(data["orgNotifications"]); code != "" || n != "map[webhook_secret_set:true webhook_url:https://hooks.farm.example/piot]" {
		t.Fatalf("orgNotifications = %s %s", n, code)
	}
	p.keys("n")
	p.waitFor("New metrics token of farm")
	p.keys("Enter")
	s = p.waitFor("token  piot_org_", "It is shown only now")
	fills(t, s, 24)
	p.keys("Escape")
	p.waitFor("metrics tokens  1 · ")
	_, data, code = a.gql(tok, `query($o: ID!) { metricsTokens(orgId: $o) { id } }`, map[string]any{"o": farm})
	if code != "" || len(data["metricsTokens"].([]any)) != 1 {
		t.Fatalf("metricsTokens = %v %s", data, code)
	}

	// Users: the member's alarm e-mails, then the old key of
	// authorized_keys, which stops logging in.
	// Escape on its own: with a key right behind it, it reads as alt+key.
	p.keys("Escape")
	p.waitFor("* marks the organization")
	p.keys("4")
	p.waitFor("2 in authorized_keys (A)")
	p.slash("m@farm")
	p.keys("e")
	p.waitFor("alarm e-mails to m@farm.test: yes")
	_, data, _ = a.gql(tok, `query($u: ID!) { user(id: $u) { notify_alarms } }`, map[string]any{"u": member})
	if fmt.Sprint(data["user"]) != "map[notify_alarms:true]" {
		t.Fatalf("user = %v", data)
	}
	p.keys("A")
	s = p.waitFor("from authorized_keys, logs in as the first admin", "admin-laptop", "old-laptop")
	fills(t, s, 24)
	p.slash("old-laptop")
	p.keys("d")
	p.waitFor("Remove the key of line 3 (old-laptop) from authorized_keys?")
	p.keys("y")
	p.waitFor("from authorized_keys", "removed SHA256:")
	got, err := os.ReadFile(filepath.Join(dir, "authorized_keys"))
	if err != nil || string(got) != "# console keys\n"+adminPub+" admin-laptop\n" {
		t.Fatalf("authorized_keys now:\n%s (%v)", got, err)
	}
	host, port := hostPort(t, a.sshAddr)
	login := exec.Command("ssh", "-p", port, "-i", oldKey, "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
		"-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "admin@"+host, "true")
	if out, err := login.CombinedOutput(); err == nil || !strings.Contains(string(out), "Permission denied") {
		t.Fatalf("the removed key still logs in: %v %s", err, out)
	}
	_, data, _ = a.gql(tok, `{ auditLog(first: 5) { action target source } }`, nil)
	if log := fmt.Sprint(data["auditLog"]); !strings.Contains(log, "removeAuthorizedKey") || !strings.Contains(log, "source:console") {
		t.Fatalf("the removal is not in the audit trail: %s", log)
	}

	// Things: the device's AES key, set and never shown.
	p.keys("Escape")
	p.waitFor("admin-laptop") // the filter is cleared first
	p.keys("Escape")
	p.waitFor("1 in authorized_keys (A)")
	p.keys("2")
	p.slash("gateway")
	p.keys("Enter")
	p.waitFor("gateway — device", "AES key", "none: packets are checked")
	p.keys("K")
	p.waitFor("AES key of gateway")
	p.keys("-l", "0123456789abcdef")
	p.keys("Enter", "Enter")
	s = p.waitFor("set the AES key of gateway", "set (not shown)")
	fills(t, s, 24)
	_, data, _ = a.gql(tok, `query($t: ID!) { thing(id: $t) { has_aes_key } }`, map[string]any{"t": dev})
	if fmt.Sprint(data["thing"]) != "map[has_aes_key:true]" {
		t.Fatalf("thing = %v", data)
	}

	// The member: their org's webhook, no tokens, core's refusals; the
	// other org is nowhere.
	m := openSSHConsole(t, a, memberKey, 80, 24)
	m.waitFor("Dashboard", "m@farm.test")
	m.keys("3")
	s = m.waitFor("farm")
	if strings.Contains(s, "other") {
		t.Fatalf("the member sees another org:\n%s", s)
	}
	m.keys("Enter")
	s = m.waitFor("Organization farm", "https://hooks.farm.example/piot · secret set", "m@farm.test")
	fills(t, s, 24)
	if strings.Contains(s, "metrics tokens") || strings.Contains(s, "hooks.other") {
		t.Fatalf("the member sees what core keeps from them:\n%s", s)
	}
	m.keys("n")
	m.waitFor("only admins may manage metrics tokens")
	m.keys("w")
	m.waitFor("only admins may change notification settings")
	m.keys("Escape")
	m.waitFor("* marks the organization")
	m.keys("2")
	m.slash("gateway")
	m.keys("Enter")
	m.waitFor("gateway — device", "set (not shown)")
	m.keys("M")
	s = m.waitFor("only admins may give devices MQTT credentials")
	fills(t, s, 24)
	m.keys("q")
	p.keys("q")
}
