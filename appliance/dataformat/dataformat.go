// Package dataformat versions what the appliance keeps in its data
// directory, which both system slots share: a version refuses data of a
// format newer than it reads instead of corrupting it, and migrates older
// data only after a snapshot it can go back to. After a rollback the old
// version finds newer data and the snapshot taken before the migration,
// and goes back to the snapshot: data written by the rolled-back version
// is lost, data from before the update is not.
package dataformat

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/piot-appliance/piot/internal/fileutil"
)

// FileName is the format file in the data directory.
const FileName = "data-format.json"

// snapshotPrefix names the snapshots: update-snapshot-format-<N>.jsonl
// holds the data as it was in format N, before a migration.
const snapshotPrefix = "update-snapshot-format-"

// File is the format file's content.
type File struct {
	Format    int       `json:"format"`
	WrittenBy string    `json:"written_by"`
	At        time.Time `json:"at"`
}

// Migration turns data of format From into From+1.
type Migration struct {
	From  int
	Name  string
	Apply func(ctx context.Context) error
}

// Store is the data the snapshots hold: the store's export and restore.
type Store interface {
	Export(ctx context.Context, w io.Writer) error
	Restore(ctx context.Context, r io.Reader) error
}

// Version is one version's view of the data: the format it writes and
// the migrations that bring older data to it.
type Version struct {
	Name       string // the appliance version, for the file and messages
	Current    int
	Migrations []Migration
	Log        *slog.Logger
}

// ErrTooNew is data of a newer format than this version reads.
var ErrTooNew = errors.New("data format too new")

// Prepare makes the data directory's data readable by v before anything
// opens it for use: a fresh directory, or data from before formats were
// recorded, is v.Current (format 1 is what those versions wrote); older
// data is snapshotted and migrated; newer data is refused, unless it is
// the remains of a rolled-back update, in which case the snapshot taken
// before its migration is restored.
func (v Version) Prepare(ctx context.Context, dir string, st Store) error {
	f, ok, err := Read(dir)
	if err != nil {
		return err
	}
	if !ok {
		return v.write(dir)
	}
	switch {
	case f.Format == v.Current:
		return nil
	case f.Format > v.Current:
		return v.goBack(ctx, dir, st, f)
	default:
		return v.migrate(ctx, dir, st, f)
	}
}

func (v Version) goBack(ctx context.Context, dir string, st Store, f File) error {
	snap := SnapshotPath(dir, v.Current)
	r, err := os.Open(snap)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: the data directory holds format %d, written by %s; %s reads format %d and older. "+
			"Run %s or newer again, or restore a backup made by this version", ErrTooNew, f.Format, f.WrittenBy, v.Name, v.Current, f.WrittenBy)
	}
	if err != nil {
		return fmt.Errorf("dataformat: %w", err)
	}
	defer r.Close()
	if err := st.Restore(ctx, r); err != nil {
		return fmt.Errorf("dataformat: restoring %s (data of format %d, from before %s migrated it): %w", snap, v.Current, f.WrittenBy, err)
	}
	if err := v.write(dir); err != nil {
		return err
	}
	v.log().Warn("data returned to the snapshot taken before the update migrated it; what the newer version wrote since is gone",
		"snapshot", snap, "newer_format", f.Format, "newer_version", f.WrittenBy)
	return nil
}

func (v Version) migrate(ctx context.Context, dir string, st Store, f File) error {
	byFrom := map[int]Migration{}
	for _, m := range v.Migrations {
		byFrom[m.From] = m
	}
	for n := f.Format; n < v.Current; n++ {
		if _, ok := byFrom[n]; !ok {
			return fmt.Errorf("dataformat: %s has no migration from format %d to %d", v.Name, n, n+1)
		}
	}
	// The snapshot is complete and on disk before the first change.
	snap := SnapshotPath(dir, f.Format)
	err := fileutil.WriteFileFunc(snap, 0o600, func(w io.Writer) error { return st.Export(ctx, w) })
	if err != nil {
		return fmt.Errorf("dataformat: snapshot before migrating: %w", err)
	}
	for n := f.Format; n < v.Current; n++ {
		m := byFrom[n]
		start := time.Now()
		if err := m.Apply(ctx); err != nil {
			return fmt.Errorf("dataformat: migration %q (format %d to %d) failed; the data of format %d is in %s: %w", m.Name, n, n+1, f.Format, snap, err)
		}
		v.log().Info("data migrated", "migration", m.Name, "from", n, "to", n+1, "took", time.Since(start).Round(time.Millisecond))
	}
	return v.write(dir)
}

func (v Version) write(dir string) error {
	data, err := json.Marshal(File{Format: v.Current, WrittenBy: v.Name, At: time.Now().UTC()})
	if err != nil {
		return fmt.Errorf("dataformat: %w", err)
	}
	if err := fileutil.WriteFile(filepath.Join(dir, FileName), data, 0o600); err != nil {
		return fmt.Errorf("dataformat: %w", err)
	}
	return nil
}

func (v Version) log() *slog.Logger {
	if v.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return v.Log
}

// Read reads the format file; ok is false when there is none.
func Read(dir string) (f File, ok bool, err error) {
	data, err := os.ReadFile(filepath.Join(dir, FileName))
	if errors.Is(err, fs.ErrNotExist) {
		return File{}, false, nil
	}
	if err != nil {
		return File{}, false, fmt.Errorf("dataformat: %w", err)
	}
	if err := json.Unmarshal(data, &f); err != nil || f.Format < 1 {
		return File{}, false, fmt.Errorf("dataformat: %s is not a format file (%v); it says which data this version may read, so it is not guessed", filepath.Join(dir, FileName), err)
	}
	return f, true, nil
}

// SnapshotPath is where the data of format n is kept while a migration
// from it is not yet trusted.
func SnapshotPath(dir string, n int) string {
	return filepath.Join(dir, snapshotPrefix+strconv.Itoa(n)+".jsonl")
}

// RemoveSnapshots drops the snapshots once the version that migrated the
// data is trusted (its slot was marked good); it returns what it removed.
func RemoveSnapshots(dir string) ([]string, error) {
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("dataformat: %w", err)
	}
	var removed []string
	for _, de := range des {
		if strings.HasPrefix(de.Name(), snapshotPrefix) && strings.HasSuffix(de.Name(), ".jsonl") {
			p := filepath.Join(dir, de.Name())
			if err := os.Remove(p); err != nil {
				return removed, fmt.Errorf("dataformat: %w", err)
			}
			removed = append(removed, p)
		}
	}
	return removed, nil
}
