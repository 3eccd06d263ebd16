package tests

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// sshExec runs one command on the appliance's SSH server with the
// OpenSSH client, as `ssh -p 2222 admin@appliance backup > piot.jsonl`.
func sshExec(t *testing.T, a *appliance, keyFile, command string) (stdout []byte, stderr string, status int) {
	t.Helper()
	host, port := hostPort(t, a.sshAddr)
	cmd := exec.Command("ssh", "-p", port, "-i", keyFile, "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
		"-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "-o", "LogLevel=ERROR", "admin@"+host, command)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		status = exit.ExitCode()
	default:
		t.Fatalf("ssh %s: %v", command, err)
	}
	return out.Bytes(), errOut.String(), status
}

// A backup taken off the box over SSH with the console's key and put
// back: `ssh … backup > file` gives a backup the System screen's restore
// accepts; the restore-pending banner shows to the admin (not to a
// member) at 80×24 and x cancels it; once restored again and `piot run`
// restarted, the data is the backup's. A member's key gets no backup.
func TestBackupOverOpenSSH(t *testing.T) {
	requireTools(t, "ssh", "tmux")
	dir := t.TempDir()
	adminKey := consoleKey(t, dir)
	a := startAppliance(t, startOpts{dataDir: dir})
	tok := a.login("admin@piot.local", a.adminPassword())
	keep := gqlID(t, a, tok, "createOrg", `mutation { createOrg(name: "keep", description: "") { id } }`, nil)
	member := gqlID(t, a, tok, "createUser", `mutation { createUser(email: "m@keep.test", password: "member-password") { id } }`, nil)
	if _, _, code := a.gql(tok, `mutation($o: ID!, $u: ID!) { addOrgUser(orgId: $o, userId: $u) }`, map[string]any{"o": keep, "u": member}); code != "" {
		t.Fatal(code)
	}
	memberKey, memberPub := keyPair(t)
	if _, _, code := a.gql(tok, `mutation($u: ID!, $k: String!) { addSshKey(userId: $u, key: $k) { fingerprint } }`, map[string]any{"u": member, "k": memberPub}); code != "" {
		t.Fatal(code)
	}

	out, stderr, status := sshExec(t, a, adminKey, "backup")
	first, _, _ := bytes.Cut(out, []byte("\n"))
	if status != 0 || !bytes.HasPrefix(first, []byte(`{"format":"piot-backup/1"`)) || !bytes.Contains(out, []byte(`"name":"keep"`)) {
		t.Fatalf("backup: status %d, stderr %q, header %q\n%s", status, stderr, first, a.out)
	}
	backup := filepath.Join(t.TempDir(), "piot.jsonl")
	if err := os.WriteFile(backup, out, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, stderr, status := sshExec(t, a, memberKey, "backup"); status == 0 || len(out) != 0 || !strings.Contains(stderr, "FORBIDDEN") {
		t.Fatalf("member backup: status %d, stderr %q, %d bytes", status, stderr, len(out))
	}
	if _, stderr, status := sshExec(t, a, adminKey, "backup ../authorized_keys"); status == 0 || !strings.Contains(stderr, "BAD_USER_INPUT") {
		t.Fatalf("a path: status %d, stderr %q", status, stderr)
	}
	if out, _, status := sshExec(t, a, adminKey, "cat authorized_keys"); status == 0 || len(out) != 0 {
		t.Fatalf("another command ran: status %d, %q", status, out)
	}
	_, data, code := a.gql(tok, `{ auditLog(first: 1) { action actor source } }`, nil)
	if e := data["auditLog"].([]any); code != "" || len(e) != 1 || e[0].(map[string]any)["action"] != "backup" || e[0].(map[string]any)["source"] != "console 127.0.0.1" {
		t.Fatalf("the download is not in the audit trail: %s %v", code, data)
	}

	if _, _, code := a.gql(tok, `mutation { createOrg(name: "later", description: "") { id } }`, nil); code != "" {
		t.Fatal(code)
	}
	p := openSSHConsole(t, a, adminKey, 80, 24)
	p.waitFor("Dashboard", "admin@piot.local")
	restore := func() {
		p.keys("7")
		p.waitFor("[7 System]", "Listeners")
		p.keys("R")
		p.waitFor("Restore the store from a backup")
		p.keys("-l", backup)
		p.keys("Enter", "y", "Enter")
	}
	restore()
	s := p.waitFor("restore scheduled", "RESTORE PENDING: restart `piot run` to apply it; System x cancels")
	fills(t, s, 24)
	if !strings.Contains(strings.Split(s, "\n")[1], "RESTORE PENDING") {
		t.Fatalf("the banner is not under the tab bar:\n%s", s)
	}
	p.keys("2")
	s = p.waitFor("[2 Things]", "RESTORE PENDING")
	fills(t, s, 24)

	// The admin's pane stays open while the member's opens.
	m := openSSHConsole(t, a, memberKey, 80, 24)
	s = m.waitFor("Dashboard", "m@keep.test")
	if strings.Contains(s, "RESTORE") {
		t.Fatalf("the member sees the pending restore:\n%s", s)
	}
	fills(t, s, 24)
	m.keys("q")

	p.keys("7", "x")
	p.waitFor("Cancel the pending restore?")
	p.keys("y")
	p.waitFor("pending restore cancelled")
	for deadline := time.Now().Add(10 * time.Second); strings.Contains(p.capture(), "RESTORE PENDING"); time.Sleep(200 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the banner stays after the cancel:\n%s", p.capture())
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "restore-pending.jsonl")); !os.IsNotExist(err) {
		t.Fatalf("the cancelled restore is still scheduled: %v", err)
	}
	_, data, _ = a.gql(tok, `{ auditLog(first: 1) { action actor } }`, nil)
	if e := data["auditLog"].([]any); len(e) != 1 || e[0].(map[string]any)["action"] != "cancelRestore" {
		t.Fatalf("the cancel is not in the audit trail: %v", data)
	}

	// Outside the image A says how to apply it; restarting piot run does.
	restore()
	p.waitFor("restore scheduled", "RESTORE PENDING")
	p.keys("A")
	p.waitFor("Restart the appliance's services now")
	p.keys("y")
	p.waitFor("restart `piot run` to apply the restore")
	p.keys("q")
	a.stop()
	b := startAppliance(t, startOpts{dataDir: dir})
	_, data, code = b.gql(tok, `{ orgs { name } }`, nil)
	if code != "" {
		t.Fatal(code)
	}
	var names []string
	for _, o := range data["orgs"].([]any) {
		names = append(names, o.(map[string]any)["name"].(string))
	}
	if strings.Join(names, ",") != "keep" {
		t.Fatalf("orgs after the restore: %v", names)
	}
}
