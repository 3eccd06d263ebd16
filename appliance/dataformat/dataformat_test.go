package dataformat

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// memStore is the data as lines of text: what a snapshot must bring back.
type memStore struct{ lines []string }

func (m *memStore) Export(_ context.Context, w io.Writer) error {
	_, err := io.WriteString(w, strings.Join(m.lines, "\n"))
	return err
}

func (m *memStore) Restore(_ context.Context, r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	m.lines = strings.Split(string(b), "\n")
	return nil
}

func write(t *testing.T, dir string, format int, by string) {
	t.Helper()
	v := Version{Name: by, Current: format}
	if err := v.write(dir); err != nil {
		t.Fatal(err)
	}
}

func format(t *testing.T, dir string) File {
	t.Helper()
	f, ok, err := Read(dir)
	if err != nil || !ok {
		t.Fatalf("format file: %+v %v %v", f, ok, err)
	}
	return f
}

func TestFreshDirectoryGetsTheCurrentFormat(t *testing.T) {
	dir := t.TempDir()
	if err := (Version{Name: "v1", Current: 1}).Prepare(context.Background(), dir, &memStore{}); err != nil {
		t.Fatal(err)
	}
	if f := format(t, dir); f.Format != 1 || f.WrittenBy != "v1" {
		t.Fatalf("%+v", f)
	}
}

func TestMigrationTakesASnapshotFirst(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, 1, "v1")
	st := &memStore{lines: []string{"org farm"}}
	var order []string
	v := Version{Name: "v3", Current: 3, Migrations: []Migration{
		{From: 2, Name: "two-to-three", Apply: func(context.Context) error { order = append(order, "2"); return nil }},
		{From: 1, Name: "one-to-two", Apply: func(context.Context) error {
			// The snapshot is on disk before the first change.
			b, err := os.ReadFile(SnapshotPath(dir, 1))
			if err != nil || string(b) != "org farm" {
				t.Errorf("snapshot at the first migration: %q %v", b, err)
			}
			order = append(order, "1")
			st.lines = append(st.lines, "added by v2")
			return nil
		}},
	}}
	if err := v.Prepare(context.Background(), dir, st); err != nil {
		t.Fatal(err)
	}
	if strings.Join(order, ",") != "1,2" || format(t, dir).Format != 3 {
		t.Fatalf("order %v, format %+v", order, format(t, dir))
	}

	// A rollback: v1 finds format 3 and the snapshot of format 1.
	old := Version{Name: "v1", Current: 1}
	if err := old.Prepare(context.Background(), dir, st); err != nil {
		t.Fatal(err)
	}
	if strings.Join(st.lines, "|") != "org farm" || format(t, dir).Format != 1 {
		t.Fatalf("after going back: %q %+v", st.lines, format(t, dir))
	}
	removed, err := RemoveSnapshots(dir)
	if err != nil || len(removed) != 1 {
		t.Fatalf("removed %v %v", removed, err)
	}
	if _, err := os.Stat(SnapshotPath(dir, 1)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("snapshot still there: %v", err)
	}
}

func TestNewerDataIsRefused(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, 4, "v4.0.0")
	st := &memStore{lines: []string{"x"}}
	err := (Version{Name: "v2.0.0", Current: 2}).Prepare(context.Background(), dir, st)
	if !errors.Is(err, ErrTooNew) || !strings.Contains(err.Error(), "format 4, written by v4.0.0") || !strings.Contains(err.Error(), "v2.0.0 reads format 2") {
		t.Fatalf("err = %v", err)
	}
	if f := format(t, dir); f.Format != 4 || strings.Join(st.lines, "") != "x" {
		t.Fatalf("refused data was touched: %+v %q", f, st.lines)
	}
}

func TestMissingOrFailingMigrationChangesNothing(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, 1, "v1")
	err := (Version{Name: "v3", Current: 3, Migrations: []Migration{{From: 2, Apply: func(context.Context) error { return nil }}}}).
		Prepare(context.Background(), dir, &memStore{})
	if err == nil || !strings.Contains(err.Error(), "no migration from format 1 to 2") {
		t.Fatalf("err = %v", err)
	}
	if _, err := os.Stat(SnapshotPath(dir, 1)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a snapshot for a migration that cannot run: %v", err)
	}
	boom := errors.New("boom")
	err = (Version{Name: "v2", Current: 2, Migrations: []Migration{{From: 1, Name: "bad", Apply: func(context.Context) error { return boom }}}}).
		Prepare(context.Background(), dir, &memStore{lines: []string{"y"}})
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), SnapshotPath(dir, 1)) || format(t, dir).Format != 1 {
		t.Fatalf("err = %v, format %+v", err, format(t, dir))
	}
}

func TestBadFormatFileIsNotGuessed(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, FileName), []byte(`{"format": 0}`), 0o600); err != nil {
		t.Fatal(err)
	}
	err := (Version{Name: "v1", Current: 1}).Prepare(context.Background(), dir, &memStore{})
	if err == nil || !strings.Contains(err.Error(), "not a format file") {
		t.Fatalf("err = %v", err)
	}
}
