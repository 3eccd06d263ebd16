package store

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/bson/primitive"
)

// TestRepoWritesAreMadeDurable: the embedded store no longer fsyncs each
// statement (synchronous=NORMAL), so every Repo write that succeeded
// syncs before it is answered; a failed one does not need to. The power
// cut itself is tested by booting the image (TestApplianceImage).
func TestRepoWritesAreMadeDurable(t *testing.T) {
	s := openTest(t, t.TempDir())
	ctx := context.Background()
	if err := s.Sync(ctx); err != nil {
		t.Fatalf("Sync: %v", err)
	}
	syncs := 0
	orgs := newRepo[Org](s.Database().Collection(CollOrgs), func(ctx context.Context) error {
		syncs++
		return s.Sync(ctx)
	})
	org := Org{ID: primitive.NewObjectID(), Name: "farm"}
	steps := []struct {
		name string
		do   func() error
	}{
		{"insert", func() error { return orgs.Insert(ctx, &org) }},
		{"set", func() error { return orgs.Set(ctx, org.ID, bson.D{{Key: "description", Value: "north"}}) }},
		{"set many", func() error { return orgs.SetMany(ctx, []ID{org.ID}, []bson.D{{{Key: "description", Value: "south"}}}) }},
		{"replace", func() error { return orgs.Replace(ctx, org.ID, &org) }},
		{"delete", func() error { return orgs.Delete(ctx, org.ID) }},
	}
	for i, st := range steps {
		if err := st.do(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if syncs != i+1 {
			t.Fatalf("after %s: %d syncs, want %d", st.name, syncs, i+1)
		}
	}
	if err := orgs.Delete(ctx, org.ID); !errors.Is(err, ErrNotFound) || syncs != len(steps) {
		t.Fatalf("a failed delete: %v, %d syncs", err, syncs)
	}
	failing := newRepo[Org](s.Database().Collection(CollOrgs), func(context.Context) error { return errors.New("disk gone") })
	if err := failing.Insert(ctx, &Org{ID: primitive.NewObjectID(), Name: "x"}); err == nil {
		t.Fatal("a write that could not be made durable was answered as done")
	}
}

// TestSyncFollowsANewWAL: SQLite removes the WAL with its last connection
// and makes a new one; Sync must fsync the file that is there now.
func TestSyncFollowsANewWAL(t *testing.T) {
	path := filepath.Join(t.TempDir(), "piot.sqlite-wal")
	y := &syncer{path: path}
	defer y.close()
	ctx := context.Background()
	if err := y.sync(ctx); err != nil || y.wal != nil {
		t.Fatalf("no WAL: %v, held %v", err, y.wal)
	}
	if err := os.WriteFile(path, []byte("frames"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := y.sync(ctx); err != nil || y.wal == nil {
		t.Fatalf("a WAL: %v, held %v", err, y.wal)
	}
	first := y.wal
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("new frames"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := y.sync(ctx); err != nil || y.wal == nil || y.wal == first {
		t.Fatalf("a new WAL: %v, still the old file %v", err, y.wal == first)
	}
}
