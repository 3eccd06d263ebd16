package store

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"slices"
	"strings"

	"go.mongodb.org/mongo-driver/bson"
)

// Export writes every collection as the backup Restore reads: JSON lines,
// a header {"format": format, <meta>..., "collections": [...]}, then one
// {"c": <collection>, "d": <document as canonical Extended JSON>} per
// document. It reads the collections one after another while writers
// may run, so it is not a point-in-time snapshot.
func (s *Store) Export(ctx context.Context, w io.Writer, format string, meta bson.D) (colls, docs int, err error) {
	names, err := s.db.ListCollectionNames(ctx, bson.D{})
	if err != nil {
		return 0, 0, fmt.Errorf("list collections: %w", err)
	}
	slices.Sort(names)
	bw := bufio.NewWriterSize(w, 256<<10)
	line := func(v any) error {
		b, err := bson.MarshalExtJSON(v, true, false)
		if err != nil {
			return err
		}
		b = append(b, '\n')
		_, err = bw.Write(b)
		return err
	}
	header := append(append(bson.D{{Key: "format", Value: format}}, meta...), bson.E{Key: "collections", Value: names})
	if err := line(header); err != nil {
		return 0, 0, err
	}
	for _, name := range names {
		if strings.HasPrefix(name, "system.") {
			continue
		}
		cur, err := s.db.Collection(name).Find(ctx, bson.D{})
		if err != nil {
			return colls, docs, fmt.Errorf("read %s: %w", name, err)
		}
		for cur.Next(ctx) {
			if err := line(bson.D{{Key: "c", Value: name}, {Key: "d", Value: cur.Current}}); err != nil {
				_ = cur.Close(ctx)
				return colls, docs, fmt.Errorf("write %s: %w", name, err)
			}
			docs++
		}
		err = cur.Err()
		_ = cur.Close(ctx)
		if err != nil {
			return colls, docs, fmt.Errorf("read %s: %w", name, err)
		}
		colls++
	}
	return colls, docs, bw.Flush()
}
