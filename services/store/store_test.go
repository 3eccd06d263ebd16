package store

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/bson/primitive"
)

func openTest(tb testing.TB, dir string) *Store {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, err := Open(ctx, Config{DataDir: dir})
	if err != nil {
		tb.Fatalf("open store: %v", err)
	}
	tb.Cleanup(func() { _ = s.Close(context.Background()) })
	return s
}

func TestRepositoryRoundTrip(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir)
	ctx := context.Background()

	org := Org{ID: primitive.NewObjectID(), Name: "farm", Created: time.Now().Unix()}
	if err := s.Orgs.Insert(ctx, &org); err != nil {
		t.Fatal(err)
	}
	got, err := s.Orgs.Get(ctx, org.ID)
	if err != nil || got.Name != "farm" {
		t.Fatalf("get = %+v, %v", got, err)
	}
	if err := s.Orgs.Set(ctx, org.ID, bson.D{{Key: "description", Value: "north"}}); err != nil {
		t.Fatal(err)
	}
	got, _ = s.Orgs.Get(ctx, org.ID)
	if got.Description != "north" {
		t.Fatalf("description = %q", got.Description)
	}
	dup := Org{ID: primitive.NewObjectID(), Name: "farm"}
	if err := s.Orgs.Insert(ctx, &dup); !errors.Is(err, ErrDuplicate) {
		t.Fatalf("duplicate name: err = %v, want ErrDuplicate", err)
	}
	if _, err := s.Orgs.Get(ctx, primitive.NewObjectID()); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing: err = %v, want ErrNotFound", err)
	}
	other := Org{ID: primitive.NewObjectID(), Name: "shop"}
	if err := s.Orgs.Insert(ctx, &other); err != nil {
		t.Fatal(err)
	}
	if err := s.Orgs.Set(ctx, other.ID, bson.D{{Key: "name", Value: "farm"}}); !errors.Is(err, ErrDuplicate) {
		t.Fatalf("rename onto an existing name: err = %v, want ErrDuplicate", err)
	}
	if err := s.Orgs.Set(ctx, primitive.NewObjectID(), bson.D{{Key: "name", Value: "x"}}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("set missing: err = %v", err)
	}
	if err := s.Orgs.Delete(ctx, org.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.Orgs.Delete(ctx, org.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("delete twice: err = %v", err)
	}
}

func TestUniqueIndexes(t *testing.T) {
	s := openTest(t, t.TempDir())
	ctx := context.Background()

	// Things without a piot_id never collide with each other...
	a := Thing{ID: primitive.NewObjectID(), Name: "a", Type: "sensor"}
	b := Thing{ID: primitive.NewObjectID(), Name: "b", Type: "sensor"}
	if err := s.Things.InsertMany(ctx, []Thing{a, b}); err != nil {
		t.Fatalf("two things without piot_id: %v", err)
	}
	// ...but two with the same piot_id do.
	c := Thing{ID: primitive.NewObjectID(), Name: "c", PiotID: "CHIP1"}
	d := Thing{ID: primitive.NewObjectID(), Name: "d", PiotID: "CHIP1"}
	if err := s.Things.Insert(ctx, &c); err != nil {
		t.Fatal(err)
	}
	if err := s.Things.Insert(ctx, &d); !errors.Is(err, ErrDuplicate) {
		t.Fatalf("same piot_id: err = %v", err)
	}
	if err := s.Things.Insert(ctx, &Thing{ID: primitive.NewObjectID(), Name: "a"}); !errors.Is(err, ErrDuplicate) {
		t.Fatalf("same thing name: err = %v", err)
	}
	u, o := primitive.NewObjectID(), primitive.NewObjectID()
	if err := s.Members.Insert(ctx, &Membership{ID: primitive.NewObjectID(), OrgID: o, UserID: u}); err != nil {
		t.Fatal(err)
	}
	if err := s.Members.Insert(ctx, &Membership{ID: primitive.NewObjectID(), OrgID: o, UserID: u}); !errors.Is(err, ErrDuplicate) {
		t.Fatalf("same membership: err = %v", err)
	}
	if err := s.Users.Insert(ctx, &User{ID: primitive.NewObjectID(), Email: "x@y.cz"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Users.Insert(ctx, &User{ID: primitive.NewObjectID(), Email: "x@y.cz"}); !errors.Is(err, ErrDuplicate) {
		t.Fatalf("same email: err = %v", err)
	}
}

// The `_id` expression index is what makes FerretDB's lookups O(log n);
// without it every Get scans the table.
func TestIDLookupUsesIndex(t *testing.T) {
	s := openTest(t, t.TempDir())
	for _, coll := range collections {
		plan, err := s.IDQueryPlan(context.Background(), coll)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(plan, "USING INDEX "+idIndexPrefix) {
			t.Errorf("%s: plan does not use the _id expression index:\n%s", coll, plan)
		}
	}
}

func TestDataSurvivesReopenAndFilesArePrivate(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s, err := Open(ctx, Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	u := User{ID: primitive.NewObjectID(), Email: "keep@piot.local"}
	if err := s.Users.Insert(ctx, &u); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	s2 := openTest(t, dir)
	got, err := s2.Users.Get(ctx, u.ID)
	if err != nil || got.Email != u.Email {
		t.Fatalf("after reopen: %+v, %v", got, err)
	}
	st, err := os.Stat(filepath.Join(dir, "store"))
	if err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("store dir mode = %v, %v", st.Mode().Perm(), err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "store", "*.sqlite*"))
	if len(files) == 0 {
		t.Fatal("no sqlite files")
	}
	for _, f := range files {
		st, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s mode %v, want 0600", f, st.Mode().Perm())
		}
	}
}

func TestUnreachableURIFails(t *testing.T) {
	ctx := context.Background()
	_, err := Open(ctx, Config{URI: "mongodb://user:secret@127.0.0.1:1/?connectTimeoutMS=200", ConnectTimeout: 500 * time.Millisecond})
	if err == nil {
		t.Fatal("open of an unreachable store succeeded")
	}
	if strings.Contains(err.Error(), "secret") {
		t.Fatalf("error leaks the password: %v", err)
	}
}

func TestUnwritableDataDirFails(t *testing.T) {
	if os.Geteuid() == 0 {
		// root ignores permission bits; use a path below a regular file.
		f := filepath.Join(t.TempDir(), "file")
		if err := os.WriteFile(f, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := Open(context.Background(), Config{DataDir: f}); err == nil {
			t.Fatal("open below a regular file succeeded")
		}
		return
	}
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o500); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(context.Background(), Config{DataDir: dir}); err == nil {
		t.Fatal("open of a read-only data dir succeeded")
	}
}

func TestEnsureIDIndexOnNewCollection(t *testing.T) {
	s := openTest(t, t.TempDir())
	ctx := context.Background()
	if err := s.EnsureIDIndex(ctx, "history_2026_11"); err != nil {
		t.Fatal(err)
	}
	if err := s.EnsureIDIndex(ctx, "history_2026_11"); err != nil {
		t.Fatalf("second call: %v", err)
	}
	plan, err := s.IDQueryPlan(ctx, "history_2026_11")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(plan, "USING INDEX "+idIndexPrefix) {
		t.Fatalf("plan:\n%s", plan)
	}
}

func TestOpStatsMeasureCommands(t *testing.T) {
	s := openTest(t, t.TempDir())
	ctx := context.Background()
	id := primitive.NewObjectID()
	if err := s.Orgs.Insert(ctx, &Org{ID: id, Name: "measured"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Orgs.Get(ctx, id); err != nil {
		t.Fatal(err)
	}
	_ = s.Orgs.Insert(ctx, &Org{ID: primitive.NewObjectID(), Name: "measured"}) // duplicate
	got := map[string]OpStat{}
	for _, st := range s.OpStats() {
		got[st.Name] = st
	}
	if got["insert"].Count < 2 || got["find"].Count < 1 {
		t.Fatalf("op stats: %+v", got)
	}
	var n uint64
	for _, c := range got["find"].Counts {
		n += c
	}
	if n != got["find"].Count || got["find"].Sum <= 0 {
		t.Fatalf("histogram inconsistent: %+v", got["find"])
	}
}
