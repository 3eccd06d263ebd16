package store

import (
	"context"
	"errors"
	"fmt"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"
)

// Errors callers branch on; match with errors.Is.
var (
	ErrNotFound  = errors.New("not found")
	ErrDuplicate = errors.New("duplicate key")
)

// Repo is a typed collection addressed by `_id`: the only filter FerretDB
// on SQLite can answer without a full scan.
type Repo[T any] struct {
	c *mongo.Collection
	// durable makes a write survive a power cut before it is answered
	// (Store.Sync).
	durable func(context.Context) error
}

func newRepo[T any](c *mongo.Collection, durable func(context.Context) error) Repo[T] {
	return Repo[T]{c: c, durable: durable}
}

// done finishes a write: its error, or the error of making it durable.
func (r Repo[T]) done(ctx context.Context, op string, err error) error {
	if err != nil {
		return wrap(op, r.c.Name(), err)
	}
	if r.durable == nil {
		return nil
	}
	return r.durable(ctx)
}

// Name is the collection name.
func (r Repo[T]) Name() string { return r.c.Name() }

func wrap(op, coll string, err error) error {
	if err == nil {
		return nil
	}
	if d, ok := asDuplicate(coll, err); ok {
		return fmt.Errorf("%s %s: %w", op, coll, d)
	}
	if errors.Is(err, mongo.ErrNoDocuments) {
		return fmt.Errorf("%s %s: %w", op, coll, ErrNotFound)
	}
	return fmt.Errorf("%s %s: %w", op, coll, err)
}

// Insert stores one new document.
func (r Repo[T]) Insert(ctx context.Context, doc *T) error {
	_, err := r.c.InsertOne(ctx, doc)
	return r.done(ctx, "insert", err)
}

// InsertMany stores documents in one round trip, in order; on a duplicate
// the documents before it are stored and the error says so.
func (r Repo[T]) InsertMany(ctx context.Context, docs []T) error {
	if len(docs) == 0 {
		return nil
	}
	anys := make([]any, len(docs))
	for i := range docs {
		anys[i] = &docs[i]
	}
	_, err := r.c.InsertMany(ctx, anys, options.InsertMany().SetOrdered(true))
	return r.done(ctx, "insert many", err)
}

// Get loads the document with the given id.
func (r Repo[T]) Get(ctx context.Context, id ID) (*T, error) {
	var out T
	if err := r.c.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&out); err != nil {
		return nil, wrap("get", r.c.Name(), err)
	}
	return &out, nil
}

// Set updates the given fields of one document.
func (r Repo[T]) Set(ctx context.Context, id ID, fields bson.D) error {
	return r.Update(ctx, id, bson.D{{Key: "$set", Value: fields}})
}

// Update applies an update document ($set, $unset, ...) to one document.
func (r Repo[T]) Update(ctx context.Context, id ID, update bson.D) error {
	res, err := r.c.UpdateOne(ctx, bson.D{{Key: "_id", Value: id}}, update)
	if err != nil {
		return wrap("update", r.c.Name(), err)
	}
	if res.MatchedCount == 0 {
		return fmt.Errorf("update %s: %w", r.c.Name(), ErrNotFound)
	}
	return r.done(ctx, "update", nil)
}

// Replace writes the whole document.
func (r Repo[T]) Replace(ctx context.Context, id ID, doc *T) error {
	res, err := r.c.ReplaceOne(ctx, bson.D{{Key: "_id", Value: id}}, doc)
	if err != nil {
		return wrap("replace", r.c.Name(), err)
	}
	if res.MatchedCount == 0 {
		return fmt.Errorf("replace %s: %w", r.c.Name(), ErrNotFound)
	}
	return r.done(ctx, "replace", nil)
}

// Delete removes one document.
func (r Repo[T]) Delete(ctx context.Context, id ID) error {
	res, err := r.c.DeleteOne(ctx, bson.D{{Key: "_id", Value: id}})
	if err != nil {
		return wrap("delete", r.c.Name(), err)
	}
	if res.DeletedCount == 0 {
		return fmt.Errorf("delete %s: %w", r.c.Name(), ErrNotFound)
	}
	return r.done(ctx, "delete", nil)
}

// DeleteIDs removes many documents by id in one round trip.
func (r Repo[T]) DeleteIDs(ctx context.Context, ids []ID) error {
	if len(ids) == 0 {
		return nil
	}
	_, err := r.c.DeleteMany(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}})
	return r.done(ctx, "delete many", err)
}

// Each streams every document; it is how in-memory indexes are loaded at
// start (one scan per collection).
func (r Repo[T]) Each(ctx context.Context, fn func(*T) error) error {
	return r.scan(ctx, bson.D{}, options.Find().SetBatchSize(1000), func(doc *T) (bool, error) {
		return true, fn(doc)
	})
}

// Newest streams the documents matching filter (nil for all), newest
// `_id` first, skipping the first skip of them, until fn returns false.
// Unlike Get it scans: it is for small collections read rarely (the
// audit trail).
func (r Repo[T]) Newest(ctx context.Context, filter bson.D, skip int64, fn func(*T) bool) error {
	if filter == nil {
		filter = bson.D{}
	}
	opts := options.Find().SetSort(bson.D{{Key: "_id", Value: -1}}).SetBatchSize(200)
	if skip > 0 {
		opts.SetSkip(skip)
	}
	return r.scan(ctx, filter, opts, func(doc *T) (bool, error) { return fn(doc), nil })
}

// scan decodes the documents a find returns and hands them to fn until it
// says stop or fails.
func (r Repo[T]) scan(ctx context.Context, filter bson.D, opts *options.FindOptions, fn func(*T) (bool, error)) error {
	cur, err := r.c.Find(ctx, filter, opts)
	if err != nil {
		return wrap("scan", r.c.Name(), err)
	}
	defer cur.Close(ctx)
	for cur.Next(ctx) {
		var doc T
		if err := cur.Decode(&doc); err != nil {
			return wrap("decode", r.c.Name(), err)
		}
		more, err := fn(&doc)
		if err != nil || !more {
			return err
		}
	}
	return wrap("scan", r.c.Name(), cur.Err())
}

// DeleteMatching removes every document matching filter and returns how
// many went.
func (r Repo[T]) DeleteMatching(ctx context.Context, filter bson.D) (int64, error) {
	res, err := r.c.DeleteMany(ctx, filter)
	if err != nil {
		return 0, wrap("delete many", r.c.Name(), err)
	}
	return res.DeletedCount, r.done(ctx, "delete many", nil)
}

// Count returns the number of documents.
func (r Repo[T]) Count(ctx context.Context) (int64, error) {
	n, err := r.c.EstimatedDocumentCount(ctx)
	return n, wrap("count", r.c.Name(), err)
}

// SetMany applies one $set per id in a single unordered bulk write: the
// way batched state is written back.
func (r Repo[T]) SetMany(ctx context.Context, ids []ID, sets []bson.D) error {
	if len(ids) != len(sets) {
		return fmt.Errorf("set many %s: %d ids but %d updates", r.c.Name(), len(ids), len(sets))
	}
	if len(ids) == 0 {
		return nil
	}
	models := make([]mongo.WriteModel, 0, len(ids))
	for i := range ids {
		models = append(models, mongo.NewUpdateOneModel().
			SetFilter(bson.D{{Key: "_id", Value: ids[i]}}).
			SetUpdate(bson.D{{Key: "$set", Value: sets[i]}}))
	}
	if _, err := BulkWrite(ctx, r.c, models, false); err != nil {
		return wrap("bulk update", r.c.Name(), err)
	}
	return r.done(ctx, "bulk update", nil)
}

// MaxBulkUpdates bounds the updates of one bulk write. FerretDB v1.24 holds
// a SQLite connection per update statement until the whole command ends,
// from a pool of 100 (internal/handler/msg_update.go: `defer
// closer.Close()` inside the loop): a larger bulk write deadlocks the
// embedded store, and small ones leave connections for queries.
const MaxBulkUpdates = 32

// BulkWrite runs models in commands of at most MaxBulkUpdates, in order
// if ordered (then a failure stops at the failed model), and returns the
// number of commands sent. Every bulk write to the store goes through it.
func BulkWrite(ctx context.Context, c *mongo.Collection, models []mongo.WriteModel, ordered bool) (int, error) {
	commands := 0
	for len(models) > 0 {
		n := min(len(models), MaxBulkUpdates)
		_, err := c.BulkWrite(ctx, models[:n], options.BulkWrite().SetOrdered(ordered))
		commands++
		if err != nil {
			return commands, err
		}
		models = models[n:]
	}
	return commands, nil
}
