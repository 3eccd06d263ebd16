package backend

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/piot-appliance/piot/appliance/osctl"
	"github.com/piot-appliance/piot/services/core"
	"github.com/piot-appliance/piot/tui"
	"go.mongodb.org/mongo-driver/bson"
)

// Backups implements tui.Backups beside the System screen's adapter,
// whose data directory, clock, logger and init client it shares.
type Backups struct{ sys *System }

// NewBackups builds the adapter over the System screen's.
func NewBackups(sys *System) *Backups { return &Backups{sys: sys} }

// Export implements tui.Backups: the export Backup writes to a file,
// streamed to w instead (core authorizes and records it).
func (b *Backups) Export(ctx context.Context, a core.Actor, w io.Writer) error {
	if err := core.AuthorizeAdmin(a, core.ActBackup); err != nil {
		return err
	}
	s := b.sys
	if s.cfg.Core == nil {
		return unsupported("the store is not open")
	}
	colls, docs, err := s.cfg.Core.Backup(ctx, a, w, core.BackupHeader{Format: BackupFormat, Version: s.cfg.Version, Created: s.cfg.Now()})
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	s.cfg.Logger.Info("console: store backup downloaded", "by", a.Email, "collections", colls, "documents", docs)
	return nil
}

// List implements tui.Backups: the files of the backups directory that
// Open serves (regular, not hidden), newest first.
func (b *Backups) List(_ context.Context, a core.Actor) ([]tui.BackupFile, error) {
	if err := core.AuthorizeAdmin(a, core.ActBackup); err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(b.dir())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list backups: %w", err)
	}
	var out []tui.BackupFile
	for _, e := range entries {
		if !e.Type().IsRegular() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue // removed since the directory was read
		}
		out = append(out, tui.BackupFile{Name: e.Name(), Size: info.Size(), Modified: info.ModTime()})
	}
	slices.SortFunc(out, func(x, y tui.BackupFile) int {
		if c := y.Modified.Compare(x.Modified); c != 0 {
			return c
		}
		return strings.Compare(x.Name, y.Name)
	})
	return out, nil
}

// Open implements tui.Backups. Only a bare name of a regular file in the
// backups directory is served, so that the endpoint cannot be walked out
// of the directory by a path, a symbolic link or a device file.
func (b *Backups) Open(ctx context.Context, a core.Actor, name string) (io.ReadCloser, error) {
	if err := core.AuthorizeAdmin(a, core.ActBackup); err != nil {
		return nil, err
	}
	if name == "" || strings.ContainsAny(name, `/\`) || strings.HasPrefix(name, ".") || !filepath.IsLocal(name) {
		return nil, core.NewError(core.CodeBadInput, "give the bare name of a file in "+BackupDir+"/ (no path, no leading dot)")
	}
	f, err := os.OpenFile(filepath.Join(b.dir(), name), os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, core.NewError(core.CodeNotFound, "no backup named "+name)
	}
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		f.Close()
		return nil, core.NewError(core.CodeNotFound, "no backup named "+name)
	}
	s := b.sys
	s.cfg.Logger.Info("console: backup file downloaded", "by", a.Email, "name", name)
	s.record(ctx, a, "downloadBackup", name)
	return f, nil
}

func (b *Backups) dir() string { return filepath.Join(b.sys.cfg.DataDir, BackupDir) }

func (b *Backups) pendingPath() string {
	return filepath.Join(b.sys.cfg.DataDir, RestorePendingFile)
}

// PendingRestore implements tui.Backups.
func (b *Backups) PendingRestore(_ context.Context, a core.Actor) (tui.PendingRestore, error) {
	if err := core.AuthorizeAdmin(a, core.ActRestore); err != nil {
		return tui.PendingRestore{}, err
	}
	f, err := os.Open(b.pendingPath())
	if errors.Is(err, fs.ErrNotExist) {
		return tui.PendingRestore{}, nil
	}
	if err != nil {
		return tui.PendingRestore{}, fmt.Errorf("pending restore: %w", err)
	}
	defer f.Close()
	p := tui.PendingRestore{Pending: true, CanApply: b.sys.cfg.OS != nil}
	if st, err := f.Stat(); err == nil {
		p.Scheduled = st.ModTime()
	}
	p.Created = backupCreated(f)
	return p, nil
}

// backupCreated reads the creation time from a backup's header line; the
// zero time when the header does not say (the file was checked when the
// restore was scheduled, so this only decorates the banner).
func backupCreated(r io.Reader) time.Time {
	line, err := bufio.NewReaderSize(r, 4096).ReadSlice('\n')
	if err != nil {
		return time.Time{}
	}
	var h struct {
		Created string `bson:"created"`
	}
	if bson.UnmarshalExtJSON(line, true, &h) != nil {
		return time.Time{}
	}
	t, _ := time.Parse(time.RFC3339, h.Created)
	return t
}

// CancelRestore implements tui.Backups.
func (b *Backups) CancelRestore(ctx context.Context, a core.Actor) error {
	if err := core.AuthorizeAdmin(a, core.ActRestore); err != nil {
		return err
	}
	err := os.Remove(b.pendingPath())
	if errors.Is(err, fs.ErrNotExist) {
		return core.NewError(core.CodeNotFound, "no restore is pending")
	}
	if err != nil {
		return fmt.Errorf("cancel restore: %w", err)
	}
	b.sys.cfg.Logger.Warn("console: scheduled restore cancelled", "by", a.Email)
	b.sys.record(ctx, a, "cancelRestore", RestorePendingFile)
	return nil
}

// ApplyRestore implements tui.Backups: in the image piot init restarts
// `piot run`, whose start applies the restore (appliance/store.go).
func (b *Backups) ApplyRestore(ctx context.Context, a core.Actor) error {
	if err := core.AuthorizeAdmin(a, core.ActRestore); err != nil {
		return err
	}
	if _, err := os.Stat(b.pendingPath()); errors.Is(err, fs.ErrNotExist) {
		return core.NewError(core.CodeNotFound, "no restore is pending")
	}
	s := b.sys
	if s.cfg.OS == nil {
		return unsupported("restart `piot run` to apply the restore")
	}
	s.cfg.Logger.Warn("console: restarting to apply the scheduled restore", "by", a.Email)
	// Recorded before: the services are gone once init restarts them.
	s.record(ctx, a, "applyRestore", RestorePendingFile)
	return s.cfg.OS.Do(ctx, osctl.Restart)
}
