package store

import (
	"context"
	"fmt"
	"hash/fnv"
	"path/filepath"
	"testing"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo/options"
)

// A kill between FerretDB's CREATE TABLE and its metadata row left the
// table of "history_state" unknown to FerretDB; the next start drops it,
// so that the collection can be created again.
func TestOrphanedTableIsRepaired(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s, err := Open(ctx, Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	h := fnv.New32a()
	h.Write([]byte("history_state"))
	db, err := openSQLiteFile(filepath.Join(dir, "store", DatabaseName+".sqlite"))
	if err != nil {
		t.Fatal(err)
	}
	table := fmt.Sprintf("history_state_%08x", h.Sum32())
	if _, err := db.ExecContext(ctx, fmt.Sprintf(`CREATE TABLE %q (_ferretdb_sjson TEXT NOT NULL CHECK(_ferretdb_sjson != '')) STRICT`, table)); err != nil {
		t.Fatal(err)
	}
	db.Close()

	s, err = Open(ctx, Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(ctx)
	c := s.Database().Collection("history_state")
	if _, err := c.UpdateOne(ctx, bson.D{{Key: "_id", Value: "rollups"}}, bson.D{{Key: "$set", Value: bson.D{{Key: "settled_hour", Value: 1}}}}, options.Update().SetUpsert(true)); err != nil {
		t.Fatalf("create the collection after the repair: %v", err)
	}
	if n, err := c.CountDocuments(ctx, bson.D{}); err != nil || n != 1 {
		t.Fatalf("%d documents, %v", n, err)
	}
	// Collections FerretDB knows are kept.
	if n, err := s.Database().Collection(CollUsers).CountDocuments(ctx, bson.D{}); err != nil || n != 0 {
		t.Fatalf("users: %d, %v", n, err)
	}
}
