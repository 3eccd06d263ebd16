package backend

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/piot-appliance/piot/appliance/osctl"
	"github.com/piot-appliance/piot/services/core"
	"github.com/piot-appliance/piot/tui"
	"go.mongodb.org/mongo-driver/bson/primitive"
)

// lastAudit is the newest audit entry of an action, zero if none.
func lastAudit(t *testing.T, action string) core.AuditEntry {
	t.Helper()
	es, err := fx.c.AuditLog(context.Background(), fx.admin, core.AuditQuery{Contains: action, First: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(es) == 0 || es[0].Action != action {
		return core.AuditEntry{}
	}
	return es[0]
}

// A backup streamed to a writer is the file Backup writes, and Restore
// schedules it; listing and fetching stay inside the backups directory.
func TestBackupsExportListOpen(t *testing.T) {
	ctx := core.WithSource(context.Background(), core.Source{Via: core.ViaConsole, Addr: "192.0.2.7"})
	dir := t.TempDir()
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	sys := NewSystem(SystemConfig{DataDir: dir, Version: "v-test", Core: fx.c, Logger: quiet, Now: func() time.Time { return now }})
	b := NewBackups(sys)

	var out bytes.Buffer
	if err := b.Export(ctx, fx.admin, &out); err != nil {
		t.Fatal(err)
	}
	first, _, _ := strings.Cut(out.String(), "\n")
	if !strings.Contains(first, `"format":"`+BackupFormat+`"`) || !strings.Contains(first, `"created":"2026-05-01T12:00:00Z"`) || !strings.Contains(out.String(), `"c":"users"`) {
		t.Fatalf("export starts %q", first)
	}
	if e := lastAudit(t, "backup"); e.Source != "console 192.0.2.7" {
		t.Fatalf("the download is not in the audit trail: %+v", e)
	}
	// The streamed backup is one a restore accepts.
	streamed := filepath.Join(t.TempDir(), "streamed.jsonl")
	if err := os.WriteFile(streamed, out.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := sys.Restore(ctx, fx.admin, streamed); err != nil {
		t.Fatalf("restore of the streamed backup: %v", err)
	}

	if files, err := b.List(ctx, fx.admin); err != nil || len(files) != 0 {
		t.Fatalf("no backups directory: %v %v", files, err)
	}
	older, err := sys.Backup(ctx, fx.admin, "older.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(older, now.Add(-time.Hour), now.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	newer, err := sys.Backup(ctx, fx.admin, "newer.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	secret := filepath.Join(dir, "secret.txt")
	if err := os.WriteFile(secret, []byte("not a backup"), 0o600); err != nil {
		t.Fatal(err)
	}
	bdir := filepath.Join(dir, BackupDir)
	if err := os.Symlink(secret, filepath.Join(bdir, "link.jsonl")); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(bdir, "fifo.jsonl"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bdir, ".hidden"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	files, err := b.List(ctx, fx.admin)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range files {
		names = append(names, f.Name)
	}
	if got := strings.Join(names, " "); got != "newer.jsonl older.jsonl" {
		t.Fatalf("list = %q, want the regular files newest first", got)
	}
	if files[len(files)-1].Size == 0 {
		t.Fatalf("no size: %+v", files)
	}

	rc, err := b.Open(ctx, fx.admin, "newer.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(rc)
	rc.Close()
	want, _ := os.ReadFile(newer)
	if !bytes.Equal(got, want) {
		t.Fatal("Open does not read the file")
	}
	if e := lastAudit(t, "downloadBackup"); e.Target != "newer.jsonl" || e.Actor != fx.admin.Email {
		t.Fatalf("the download is not in the audit trail: %+v", e)
	}
	for name, code := range map[string]core.Code{
		"":                     core.CodeBadInput,
		"../secret.txt":        core.CodeBadInput,
		"..":                   core.CodeBadInput,
		"sub/x.jsonl":          core.CodeBadInput,
		`..\secret.txt`:        core.CodeBadInput,
		secret:                 core.CodeBadInput,
		".hidden":              core.CodeBadInput,
		"link.jsonl":           core.CodeNotFound,
		"fifo.jsonl":           core.CodeNotFound,
		"missing.jsonl":        core.CodeNotFound,
		"older.jsonl\x00.json": core.CodeNotFound,
	} {
		if rc, err := b.Open(ctx, fx.admin, name); core.CodeOf(err) != code {
			if rc != nil {
				rc.Close()
			}
			t.Errorf("Open(%q) = %v, want %s", name, err, code)
		}
	}
}

// restartSide is piot init that records the actions asked of it.
type restartSide struct {
	initSide
	acts chan osctl.Action
}

func (r *restartSide) Do(a osctl.Action) error { r.acts <- a; return nil }

// The pending restore: seen, cancelled (and recorded), and applied by
// asking init to restart `piot run`; outside the image applying says how.
func TestPendingRestore(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	created := time.Date(2026, 4, 30, 8, 15, 0, 0, time.UTC)
	sys := NewSystem(SystemConfig{DataDir: dir, Version: "v-test", Core: fx.c, Logger: quiet, Now: func() time.Time { return created }})
	b := NewBackups(sys)
	backup, err := sys.Backup(ctx, fx.admin, "")
	if err != nil {
		t.Fatal(err)
	}
	member := core.Actor{UserID: primitive.NewObjectID(), Email: "m@x.test"}

	if p, err := b.PendingRestore(ctx, fx.admin); err != nil || p.Pending {
		t.Fatalf("nothing scheduled: %+v %v", p, err)
	}
	if err := b.CancelRestore(ctx, fx.admin); core.CodeOf(err) != core.CodeNotFound {
		t.Fatalf("cancel without a restore: %v", err)
	}
	if err := b.ApplyRestore(ctx, fx.admin); core.CodeOf(err) != core.CodeNotFound {
		t.Fatalf("apply without a restore: %v", err)
	}
	if err := sys.Restore(ctx, fx.admin, backup); err != nil {
		t.Fatal(err)
	}
	p, err := b.PendingRestore(ctx, fx.admin)
	if err != nil || !p.Pending || !p.Created.Equal(created) || p.CanApply || p.Scheduled.IsZero() {
		t.Fatalf("scheduled: %+v %v", p, err)
	}
	if _, err := b.PendingRestore(ctx, member); core.CodeOf(err) != core.CodeForbidden {
		t.Fatalf("member sees the restore: %v", err)
	}
	if err := b.CancelRestore(ctx, member); core.CodeOf(err) != core.CodeForbidden {
		t.Fatalf("member cancels: %v", err)
	}
	err = b.ApplyRestore(ctx, fx.admin)
	if !errors.Is(err, tui.ErrUnsupported) || !strings.Contains(err.Error(), "restart `piot run`") {
		t.Fatalf("apply outside the image: %v", err)
	}
	if err := b.CancelRestore(ctx, fx.admin); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, RestorePendingFile)); !os.IsNotExist(err) {
		t.Fatalf("the restore file stays: %v", err)
	}
	if e := lastAudit(t, "cancelRestore"); e.Actor != fx.admin.Email {
		t.Fatalf("cancel not in the audit trail: %+v", e)
	}

	// In the image: init restarts `piot run`.
	sock := filepath.Join(t.TempDir(), "init.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	side := &restartSide{acts: make(chan osctl.Action, 4)}
	go func() { _ = osctl.Serve(ln, side) }()
	img := NewSystem(SystemConfig{DataDir: dir, Core: fx.c, Logger: quiet, OS: osctl.New(sock)})
	ib := NewBackups(img)
	if err := os.WriteFile(filepath.Join(dir, RestorePendingFile), []byte("{}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if p, err := ib.PendingRestore(ctx, fx.admin); err != nil || !p.Pending || !p.CanApply || !p.Created.IsZero() {
		t.Fatalf("in the image: %+v %v", p, err)
	}
	if err := ib.ApplyRestore(ctx, member); core.CodeOf(err) != core.CodeForbidden {
		t.Fatalf("member applies: %v", err)
	}
	if err := ib.ApplyRestore(ctx, fx.admin); err != nil {
		t.Fatal(err)
	}
	select {
	case a := <-side.acts:
		if a != osctl.Restart {
			t.Fatalf("init was asked to %s", a)
		}
	default:
		t.Fatal("init was not asked to restart")
	}
	if e := lastAudit(t, "applyRestore"); e.Actor != fx.admin.Email {
		t.Fatalf("apply not in the audit trail: %+v", e)
	}
}
