package store

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"

	"go.mongodb.org/mongo-driver/bson"
)

// restoreBatch is how many documents one InsertMany carries on restore.
const restoreBatch = 500

// Restore replaces the collections named in a backup (JSON lines: a header
// {"format": format, "collections": [...]}, then {"c": collection, "d":
// document} per line, canonical Extended JSON) with the backup's
// documents. Collections not in the backup are left alone, but for the
// thing state pages (a backup without them has the state in the things'
// documents). It must run before anything loads the store into memory
// (at start).
func (s *Store) Restore(ctx context.Context, r io.Reader, format string) (int, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	if !sc.Scan() {
		return 0, errors.New("restore: empty backup")
	}
	var header struct {
		Format      string   `bson:"format"`
		Collections []string `bson:"collections"`
	}
	if err := bson.UnmarshalExtJSON(sc.Bytes(), true, &header); err != nil || header.Format != format {
		return 0, fmt.Errorf("restore: not a backup of format %q", format)
	}
	docs := map[string][]any{}
	for sc.Scan() {
		var line struct {
			C string   `bson:"c"`
			D bson.Raw `bson:"d"`
		}
		if err := bson.UnmarshalExtJSON(sc.Bytes(), true, &line); err != nil || line.C == "" {
			return 0, fmt.Errorf("restore: malformed line: %w", err)
		}
		docs[line.C] = append(docs[line.C], line.D)
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("restore: read: %w", err)
	}
	n := 0
	for _, coll := range header.Collections {
		if err := s.EnsureIDIndex(ctx, coll); err != nil {
			return n, err
		}
		c := s.db.Collection(coll)
		if _, err := c.DeleteMany(ctx, bson.D{}); err != nil {
			return n, fmt.Errorf("restore: clear %s: %w", coll, err)
		}
		all := docs[coll]
		for start := 0; start < len(all); start += restoreBatch {
			end := min(start+restoreBatch, len(all))
			if _, err := c.InsertMany(ctx, all[start:end]); err != nil {
				return n, fmt.Errorf("restore: insert into %s: %w", coll, err)
			}
			n += end - start
		}
	}
	// A backup from before thing state had its own collection holds the
	// state in the things' documents; pages left from now would override
	// it.
	if !slices.Contains(header.Collections, CollThingState) {
		if _, err := s.db.Collection(CollThingState).DeleteMany(ctx, bson.D{}); err != nil {
			return n, fmt.Errorf("restore: clear %s: %w", CollThingState, err)
		}
	}
	return n, s.Sync(ctx)
}
