package history

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/bson/primitive"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"
)

// Rollups of the hours still being written are deferred: a series that
// reports every second would otherwise rewrite its day's rollup document
// on every flush, which cost as much as the raw writes themselves
// (BenchmarkAppend/1000things_x27points_every1s). An hour is settled once
// the clock has left it and its buckets' rollups are written; the settled
// watermark is stored, and queries read the hours at or after it raw,
// which a query up to now does for the current hour anyway.
//
// A restart loses the in-memory list of buckets waiting for their rollup,
// so each hour's buckets are also named in the hour's directory document
// ("~h<unixHour>" in the partition, one $addToSet when a process first
// writes a bucket), and the first settle after a start rewrites the
// rollups of every listed bucket of the unsettled hours from the raw
// buckets.

const (
	stateColl  = "history_state"
	settledID  = "rollups"
	dirPrefix  = "~h"
	seriesSep  = ":"
	settledKey = "settled_hour"
)

// dirID is the `_id` of an hour's directory document.
func dirID(hour int64) string { return dirPrefix + strconv.FormatInt(hour, 10) }

// defers reports whether a bucket's rollup waits for its hour to settle:
// hours from the watermark to now. Older hours (late points) and future
// ones (a fix dated ahead) are rolled up with their points.
func (s *Store) defers(hour int64) bool {
	return hour >= s.settled.Load() && hour <= s.curHour
}

// listHour names bucket k in its hour's directory.
func (dw *dayWrites) listHour(k bucketKey) {
	if dw.listed == nil {
		dw.listed = map[int64][]string{}
	}
	dw.listed[k.hour] = append(dw.listed[k.hour], k.thing.Hex()+seriesSep+k.kind)
}

// dirWrites are the directory upserts of the batch.
func (dw *dayWrites) dirWrites() []mongo.WriteModel {
	var models []mongo.WriteModel
	for h, series := range dw.listed {
		models = append(models, mongo.NewUpdateOneModel().
			SetFilter(bson.D{{Key: "_id", Value: dirID(h)}}).
			SetUpdate(bson.D{{Key: "$addToSet", Value: bson.D{{Key: "s", Value: bson.D{{Key: "$each", Value: series}}}}}}).
			SetUpsert(true))
	}
	return models
}

// loadSettled reads the watermark. A store without one (a new one, or
// one written by a version that rolled every write up at once) is settled
// up to now, and that is stored before any rollup is deferred.
func (s *Store) loadSettled(ctx context.Context, nowHour int64) error {
	var d struct {
		Hour int64 `bson:"settled_hour"`
	}
	err := s.db.Collection(stateColl).FindOne(ctx, bson.D{{Key: "_id", Value: settledID}}).Decode(&d)
	switch {
	case errors.Is(err, mongo.ErrNoDocuments):
		if err := s.storeSettled(ctx, nowHour); err != nil {
			return err
		}
		s.settled.Store(nowHour)
		return nil
	case err != nil:
		return fmt.Errorf("history: read settled hour: %w", err)
	}
	s.settled.Store(d.Hour)
	// The buckets of the hours since the watermark that the last process
	// wrote are known only from their directories.
	s.recoverBelow = nowHour + 1
	return nil
}

func (s *Store) storeSettled(ctx context.Context, hour int64) error {
	_, err := s.db.Collection(stateColl).UpdateOne(ctx, bson.D{{Key: "_id", Value: settledID}},
		bson.D{{Key: "$set", Value: bson.D{{Key: settledKey, Value: hour}}}}, options.Update().SetUpsert(true))
	if err != nil {
		return fmt.Errorf("history: store settled hour: %w", err)
	}
	return nil
}

// Settle goes on settling the hours that are over (their rollups, and
// compacting their segments) for about CompactBudget. Append and Enforce
// do the same; ingest calls it too, so that hours settle while no points
// arrive.
func (s *Store) Settle(ctx context.Context) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if err := s.load(ctx); err != nil {
		return err
	}
	now := s.now().Unix()
	if err := s.settle(ctx, floorDiv(now, hourSecs)); err != nil {
		return err
	}
	s.dropIdleTails(now)
	return s.mergeSegs(ctx)
}

// settle writes the rollups of the buckets of the hours before nowHour
// that are waiting for them, compacting the hot ones, and then moves the
// watermark to nowHour and drops the hours' hot collections. Compaction
// stops after CompactBudget and goes on at the next call, so that a
// settling hour does not hold ingest up. Callers hold wmu.
func (s *Store) settle(ctx context.Context, nowHour int64) error {
	s.curHour = nowHour
	from := s.settled.Load()
	if nowHour <= from {
		return nil
	}
	// The buckets of the unsettled hours that an earlier process wrote.
	for h := max(from, s.recoverNext); h < min(nowHour, s.recoverBelow); h++ {
		listed, err := s.readDir(ctx, h)
		if err != nil {
			return err
		}
		for _, k := range listed {
			s.pending[k] = struct{}{}
		}
		s.recoverNext = h + 1
	}
	keys := make([]bucketKey, 0, len(s.pending))
	for k := range s.pending {
		if k.hour < nowHour {
			keys = append(keys, k)
		}
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].hour < keys[j].hour })
	deadline := time.Now().Add(s.cfg.CompactBudget)
	b := &appendBatch{byDay: map[int64]*dayWrites{}}
	var rolled []bucketKey
	complete := true
	for i, k := range keys {
		if i > 0 && time.Now().After(deadline) {
			complete = false
			break
		}
		bs, err := s.bucket(ctx, k)
		if err != nil {
			return err
		}
		if bs.hot {
			if bs.segs > 0 {
				if err := s.compact(ctx, k, bs); err != nil {
					return err
				}
			}
			delete(s.pending, k)
			continue
		}
		rolled = append(rolled, k)
		if bs.st.N == 0 {
			continue
		}
		day := floorDiv(k.hour*hourSecs, daySecs)
		dw := b.day(day)
		dw.setRollupHour(k, day, bs.st.encode())
		dw.keys = append(dw.keys, k)
	}
	if _, err := s.writeDays(ctx, b.byDay); err != nil {
		return err
	}
	for _, k := range rolled {
		delete(s.pending, k)
	}
	if !complete {
		return nil
	}
	// After the rollups: the store applies writes in order, so a stored
	// watermark always has its rollups stored.
	if err := s.storeSettled(ctx, nowHour); err != nil {
		return err
	}
	s.settled.Store(nowHour)
	if nowHour >= s.recoverBelow {
		s.recoverBelow = 0
	}
	s.settles.Add(1)
	return s.dropHot(ctx)
}

// readDir lists the buckets named in an hour's directory.
func (s *Store) readDir(ctx context.Context, hour int64) ([]bucketKey, error) {
	part, ok := s.existing(floorDiv(hour*hourSecs, daySecs))
	if !ok {
		return nil, nil
	}
	var d struct {
		S []string `bson:"s"`
	}
	err := s.db.Collection(part.name).FindOne(ctx, bson.D{{Key: "_id", Value: dirID(hour)}}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("history: read hour directory: %w", err)
	}
	out := make([]bucketKey, 0, len(d.S))
	for _, e := range d.S {
		hex, kind, ok := strings.Cut(e, seriesSep)
		id, err := primitive.ObjectIDFromHex(hex)
		if !ok || err != nil || !ValidKind(kind) {
			s.log.Warn("history: bad entry in hour directory skipped", "partition", part.name, "hour", hour, "entry", e)
			continue
		}
		out = append(out, bucketKey{thing: id, kind: kind, hour: hour})
	}
	return out, nil
}
