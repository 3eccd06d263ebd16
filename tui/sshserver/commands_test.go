package sshserver

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/piot-appliance/piot/services/core"
	"github.com/piot-appliance/piot/tui/backend"
	gossh "golang.org/x/crypto/ssh"
)

// execResult is what one exec request gave back.
type execResult struct {
	stdout, stderr string
	status         int // -1: the request was refused
}

func runExec(t *testing.T, c *gossh.Client, cmd string, pty bool) execResult {
	t.Helper()
	sess, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	if pty {
		if err := sess.RequestPty("xterm", 24, 80, gossh.TerminalModes{}); err != nil {
			t.Fatal(err)
		}
	}
	var out, errOut strings.Builder
	sess.Stdout, sess.Stderr = &out, &errOut
	if err := sess.Start(cmd); err != nil {
		return execResult{status: -1}
	}
	err = sess.Wait()
	var exit *gossh.ExitError
	switch {
	case err == nil:
		return execResult{out.String(), errOut.String(), 0}
	case errors.As(err, &exit):
		return execResult{out.String(), errOut.String(), exit.ExitStatus()}
	}
	t.Fatalf("%s: %v", cmd, err)
	return execResult{}
}

// The backup commands over SSH: an admin streams a fresh backup, lists
// and fetches the backups directory; a member is refused with a message
// and a non-zero status; paths, terminals and other commands are refused.
func TestBackupCommands(t *testing.T) {
	ap := newAppliance(t)
	sys := backend.NewSystem(backend.SystemConfig{DataDir: ap.dataDir, Version: "v-test", Core: ap.core})
	ap.backups = backend.NewBackups(sys)
	srv := ap.start(t, Config{})
	kept, err := sys.Backup(context.Background(), ap.admin, "kept.jsonl")
	if err != nil {
		t.Fatal(err)
	}

	admin, err := dial(srv, "admin", gossh.PublicKeys(ap.adminKey))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	r := runExec(t, admin, "backup", false)
	if r.status != 0 || !strings.HasPrefix(r.stdout, `{"format":"`+backend.BackupFormat+`"`) || !strings.Contains(r.stdout, `"c":"orgs"`) || r.stderr != "" {
		t.Fatalf("backup: %d %q %.200q", r.status, r.stderr, r.stdout)
	}
	es, err := ap.core.AuditLog(context.Background(), ap.admin, core.AuditQuery{First: 1})
	if err != nil || len(es) != 1 || es[0].Action != "backup" || es[0].Source != "console 127.0.0.1" {
		t.Fatalf("audit: %+v %v", es, err)
	}
	r = runExec(t, admin, "backups", false)
	if r.status != 0 || !strings.HasPrefix(r.stdout, "kept.jsonl\t") {
		t.Fatalf("backups: %d %q %q", r.status, r.stderr, r.stdout)
	}
	r = runExec(t, admin, "backup kept.jsonl", false)
	if want, _ := os.ReadFile(kept); r.status != 0 || r.stdout != string(want) {
		t.Fatalf("backup kept.jsonl: %d %q", r.status, r.stderr)
	}
	for cmd, want := range map[string]string{
		"backup ../authorized_keys": "BAD_USER_INPUT",
		"backup missing.jsonl":      "NOT_FOUND",
	} {
		if r := runExec(t, admin, cmd, false); r.status != 1 || r.stdout != "" || !strings.Contains(r.stderr, want) {
			t.Errorf("%s: %d %q %q", cmd, r.status, r.stderr, r.stdout)
		}
	}
	if r := runExec(t, admin, "backup", true); r.status != 2 || !strings.Contains(r.stderr, "without -t") || strings.Contains(r.stdout, "format") {
		t.Errorf("backup with a terminal: %d %q %q", r.status, r.stderr, r.stdout)
	}
	for _, cmd := range []string{"id", "backup a b", "backups x", "sh -c backup", "scp -f kept.jsonl"} {
		if r := runExec(t, admin, cmd, false); r.status != -1 {
			t.Errorf("%q accepted: %+v", cmd, r)
		}
	}

	member, err := dial(srv, "member", gossh.PublicKeys(ap.memberKey))
	if err != nil {
		t.Fatal(err)
	}
	defer member.Close()
	for _, cmd := range []string{"backup", "backups", "backup kept.jsonl"} {
		r := runExec(t, member, cmd, false)
		if r.status != 1 || r.stdout != "" || !strings.Contains(r.stderr, "FORBIDDEN") {
			t.Errorf("member %s: %d %q %q", cmd, r.status, r.stderr, r.stdout)
		}
	}
}

// Without the backups adapter the commands say so.
func TestBackupCommandsUnavailable(t *testing.T) {
	ap := newAppliance(t)
	srv := ap.start(t, Config{})
	c, err := dial(srv, "admin", gossh.PublicKeys(ap.adminKey))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if r := runExec(t, c, "backup", false); r.status != 1 || !strings.Contains(r.stderr, "not available") {
		t.Fatalf("%+v", r)
	}
}
