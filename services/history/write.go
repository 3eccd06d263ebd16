package history

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/piot-appliance/piot/services/store"
	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"
)

type bucketKey struct {
	thing store.ID
	kind  string
	hour  int64 // unix hour number
}

type seriesKey struct {
	thing store.ID
	kind  string
}

// bucketState mirrors a raw bucket: its highest seq, its statistics and
// where the next points go.
type bucketState struct {
	seq     uint64
	st      stats
	chunk   int // the chunk being filled
	inChunk int // points in it
	// countBehind: chunk 0's count was found short of the chunks (a crash
	// between the two writes); rewrite it on next touch.
	countBehind bool
	// rollupDirty: the state was loaded from the store, whose rollup may
	// lag behind the raw bucket after a crash; rewrite it on next touch.
	rollupDirty bool
	// listed: this process has named the bucket in its hour's directory.
	listed bool
	// hot: the bucket's points are in its hour's hot collection (hot.go);
	// segs counts its writes there, tail holds the points of those since
	// the last level-1 segment (tailBytes of them), complete if tailOK.
	hot       bool
	segs      int
	tail      []string
	tailBytes int
	tailOK    bool
	wrote     int64 // when (store clock, Unix seconds) it was last written hot
}

// dropTail gives up the tail: the next level-1 segment is read back from
// its children (mergeSegs).
func (bs *bucketState) dropTail() {
	bs.tail, bs.tailBytes, bs.tailOK = nil, 0, false
}

// rawDoc is the part of a raw bucket the writer and queries read.
type rawDoc struct {
	Seq    int64    `bson:"seq"`
	Hour   int64    `bson:"hour"`
	Chunks int      `bson:"chunks"` // chunk 0 only; absent means 1
	P      []string `bson:"p"`
}

// Size estimate per stored item, calibrated against SQLite's page usage
// (see TestSizeEstimate): FerretDB stores each document as JSON plus a
// type schema with one entry per array element.
const (
	estPointOverhead  = 4
	estRawDocBytes    = 220
	estRollupHourSize = 170
)

// Append stores points. It is safe to call again with the same points
// after an error: points carrying a Seq are stored once.
func (s *Store) Append(ctx context.Context, points []Point) error {
	if len(points) == 0 {
		return nil
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if err := s.load(ctx); err != nil {
		return err
	}
	now := s.now().Unix()
	cutoff := now - int64(s.cfg.Retention/time.Second)
	if err := s.settle(ctx, floorDiv(now, hourSecs)); err != nil {
		return err
	}
	s.sweepCache(now)

	groups, order := s.groupByBucket(points, cutoff)
	b := &appendBatch{byDay: map[int64]*dayWrites{}, hot: hotWrites{}, lastKept: map[seriesKey]int64{}, now: now}
	for _, k := range order {
		if err := s.stage(ctx, b, k, points, groups[k]); err != nil {
			return s.forget(b.touched, err)
		}
	}
	written, err := s.writeDays(ctx, b.byDay)
	if err != nil {
		return s.forget(b.touched, err)
	}
	// After the partitions: the hour directories list a bucket before
	// its first segment is stored.
	if err := s.writeHot(ctx, b.hot); err != nil {
		return s.forget(b.touched, err)
	}
	s.publishSegs(b.touched)
	if err := s.mergeSegs(ctx); err != nil {
		// The points are stored; readers take the merges' children.
		s.log.Warn("history: merging hot segments", "err", err)
	}
	for sk, ts := range b.lastKept {
		s.seriesLast[sk] = ts
	}
	s.written.Add(uint64(written + b.hotPoints))
	s.trimCache(b.touched)
	return nil
}

// appendBatch is what one Append writes, gathered per day partition
// before anything is written.
type appendBatch struct {
	byDay map[int64]*dayWrites
	// hot are the segments for the hot hours, hotPoints their points.
	hot       hotWrites
	hotPoints int64
	// lastKept is the time of the last point kept per series in this
	// batch, for thinning; it becomes s.seriesLast once the batch is
	// written.
	lastKept map[seriesKey]int64
	// touched are the buckets whose cached state the batch changed.
	touched []bucketKey
	now     int64 // the store clock at the Append, Unix seconds
}

// dayWrites are the writes of one Append to one day partition.
type dayWrites struct {
	listed      map[int64][]string // new series per hour directory
	models      []mongo.WriteModel // the chunks' writes
	keys        []bucketKey        // the buckets written
	rollups     map[seriesKey]bson.D
	rollupOrder []seriesKey
	points      int64
	bytes       int64
}

// day returns the writes to day's partition, creating them.
func (b *appendBatch) day(day int64) *dayWrites {
	dw := b.byDay[day]
	if dw == nil {
		dw = &dayWrites{}
		b.byDay[day] = dw
	}
	return dw
}

// forget drops the cached state of the buckets touched by a failed
// Append: it ran ahead of the store.
func (s *Store) forget(touched []bucketKey, err error) error {
	for _, k := range touched {
		delete(s.cache, k)
	}
	return err
}

// groupByBucket sorts the points into their hour buckets, in the order
// the buckets first appear, as indexes into points. Invalid points and
// points older than cutoff or in a dropped day are counted and left out.
func (s *Store) groupByBucket(points []Point, cutoff int64) (map[bucketKey][]int, []bucketKey) {
	groups := map[bucketKey][]int{}
	var order []bucketKey
	for i, p := range points {
		if !ValidKind(p.Kind) || p.Thing.IsZero() || p.TS < 0 || len(p.Value) > MaxValueLen || strings.Contains(p.Value, pointSep) {
			s.invalid.Add(1)
			continue
		}
		if p.TS < cutoff || floorDiv(p.TS, daySecs) <= s.droppedDays {
			s.expired.Add(1)
			continue
		}
		k := bucketKey{thing: p.Thing, kind: p.Kind, hour: floorDiv(p.TS, hourSecs)}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], i)
	}
	return groups, order
}

// stage adds the new points of bucket k (points[i] for i in idx) to the
// batch: their chunk writes and the bucket's hour in its day's rollup.
// A bucket loaded from the store after a crash gets its rollup rewritten
// even without new points.
func (s *Store) stage(ctx context.Context, b *appendBatch, k bucketKey, points []Point, idx []int) error {
	bs, err := s.bucket(ctx, k)
	if err != nil {
		return err
	}
	b.touched = append(b.touched, k)
	wasEmpty := bs.st.N == 0
	adds, seqs := s.newPoints(bs, k, points, idx, b.lastKept)
	if len(adds) == 0 && (bs.hot || !bs.rollupDirty) {
		return nil
	}
	day := floorDiv(k.hour*hourSecs, daySecs)
	dw := b.day(day)
	if bs.hot {
		// Counted into the partition's size when compacted. A write of
		// more than Config.SegmentBytes is several segments, each with the seq of
		// its last point, so that a crash between them loses nothing a
		// replay would take for a duplicate.
		for lo := 0; lo < len(adds); {
			hi, n := lo, 0
			for hi < len(adds) && (hi == lo || n+len(adds[hi])+1 <= s.cfg.SegmentBytes) {
				n += len(adds[hi]) + 1
				hi++
			}
			s.segments(b.hot, k, bs, strings.Join(adds[lo:hi], pointSep), seqs[hi-1])
			lo = hi
		}
		b.hotPoints += int64(len(adds))
		bs.wrote = b.now
		if !bs.listed {
			dw.listHour(k)
			bs.listed = true
		}
		s.pending[k] = struct{}{}
		return nil
	}
	if len(adds) > 0 {
		dw.points += int64(len(adds))
		for _, a := range adds {
			dw.bytes += int64(len(a)) + estPointOverhead
		}
		if wasEmpty {
			dw.bytes += estRollupHourSize
		}
		dw.models = append(dw.models, s.chunkWrites(k, bs, adds, seqs, &dw.bytes)...)
	}
	if s.defers(k.hour) {
		// The rollup waits for the hour to settle; until then queries read
		// the hour raw. The hour's directory names the bucket so that a
		// restart finds it.
		if !bs.listed {
			dw.listHour(k)
			bs.listed = true
		}
		s.pending[k] = struct{}{}
		bs.rollupDirty = false
		return nil
	}
	dw.setRollupHour(k, day, bs.st.encode())
	dw.keys = append(dw.keys, k)
	return nil
}

// newPoints encodes the points of bucket k that are neither replayed
// duplicates nor thinned away, with the running seq after each, and adds
// them to the bucket's state.
func (s *Store) newPoints(bs *bucketState, k bucketKey, points []Point, idx []int, lastKept map[seriesKey]int64) (adds []string, seqs []uint64) {
	hourStart := k.hour * hourSecs
	base := bs.seq
	for _, i := range idx {
		p := points[i]
		if p.Seq != 0 && p.Seq <= base {
			s.duplicate.Add(1)
			continue
		}
		if s.thinnedAway(p, lastKept) {
			s.thinned.Add(1)
			continue
		}
		adds = append(adds, encodePoint(p.TS, hourStart, p.Value))
		bs.seq = max(bs.seq, p.Seq)
		seqs = append(seqs, bs.seq)
		bs.st.add(p.TS, p.Value)
	}
	return adds, seqs
}

// thinnedAway reports whether p, of a series kept at one point per
// p.Every seconds, falls in the same slot as the last point kept of its
// series (in this batch, else before it); if not, p becomes that point.
func (s *Store) thinnedAway(p Point, lastKept map[seriesKey]int64) bool {
	if p.Every <= 0 {
		return false
	}
	sk := seriesKey{p.Thing, p.Kind}
	last, ok := lastKept[sk]
	if !ok {
		last, ok = s.seriesLast[sk]
	}
	if ok && floorDiv(p.TS, p.Every) == floorDiv(last, p.Every) {
		return true
	}
	lastKept[sk] = p.TS
	return false
}

// setRollupHour sets bucket k's hour of its series' rollup document;
// there is one update per rollup document, however many of its hours
// changed.
func (dw *dayWrites) setRollupHour(k bucketKey, day int64, hour string) {
	rk := seriesKey{k.thing, k.kind}
	if dw.rollups == nil {
		dw.rollups = map[seriesKey]bson.D{}
	}
	if _, ok := dw.rollups[rk]; !ok {
		dw.rollupOrder = append(dw.rollupOrder, rk)
	}
	dw.rollups[rk] = append(dw.rollups[rk], bson.E{Key: hourField(k.hour - day*24), Value: hour})
}

// rollupWrites are the upserts of day's rollup documents.
func (dw *dayWrites) rollupWrites(day int64) []mongo.WriteModel {
	var models []mongo.WriteModel
	for _, rk := range dw.rollupOrder {
		models = append(models, mongo.NewUpdateOneModel().
			SetFilter(bson.D{{Key: "_id", Value: rollupID(rk.thing, rk.kind, day)}}).
			SetUpdate(bson.D{
				{Key: "$setOnInsert", Value: bson.D{{Key: "thing", Value: rk.thing}, {Key: "kind", Value: rk.kind}, {Key: "day", Value: day * daySecs}}},
				{Key: "$set", Value: dw.rollups[rk]},
			}).
			SetUpsert(true))
	}
	return models
}

// writeDays writes the batch one day partition at a time, oldest day
// first: the chunks, then the rollups, then the partition's counts. It
// returns the points written.
func (s *Store) writeDays(ctx context.Context, byDay map[int64]*dayWrites) (written int64, err error) {
	days := make([]int64, 0, len(byDay))
	for d := range byDay {
		days = append(days, d)
	}
	sort.Slice(days, func(i, j int) bool { return days[i] < days[j] })
	for _, day := range days {
		dw := byDay[day]
		part, err := s.partitionFor(ctx, day)
		if err != nil {
			return written, err
		}
		// Directories first: a bucket is never stored unlisted.
		models := append(dw.dirWrites(), dw.models...)
		models = append(models, dw.rollupWrites(day)...)
		if dw.points > 0 {
			models = append(models, mongo.NewUpdateOneModel().
				SetFilter(bson.D{{Key: "_id", Value: metaID}}).
				SetUpdate(bson.D{{Key: "$inc", Value: bson.D{{Key: "points", Value: dw.points}, {Key: "bytes", Value: dw.bytes}}}}).
				SetUpsert(true))
		}
		if err := s.bulkWrite(ctx, part.name, models); err != nil {
			return written, fmt.Errorf("history: write %s: %w", part.name, err)
		}
		for _, k := range dw.keys {
			if bs := s.cache[k]; bs != nil {
				bs.rollupDirty = false
			}
		}
		s.pmu.Lock()
		part.points += dw.points
		part.bytes += dw.bytes
		s.pmu.Unlock()
		written += dw.points
	}
	return written, nil
}

// bucket returns the state of a bucket, loading it from the store on a
// cache miss.
func (s *Store) bucket(ctx context.Context, k bucketKey) (*bucketState, error) {
	if bs, ok := s.cache[k]; ok {
		return bs, nil
	}
	s.misses.Add(1)
	bs := &bucketState{}
	hourStart := k.hour * hourSecs
	var chunks []rawDoc
	if part, ok := s.existing(floorDiv(hourStart, daySecs)); ok {
		var err error
		if chunks, err = s.readChunks(ctx, part.name, k, true); err != nil {
			return nil, err
		}
	}
	if len(chunks) > 0 && len(chunks) > max(chunks[0].Chunks, 1) {
		bs.countBehind = true
	}
	for c, d := range chunks {
		bs.seq = max(bs.seq, uint64(max(d.Seq, 0)))
		for _, e := range d.P {
			bs.st.addPoints(e, hourStart)
		}
		bs.chunk, bs.inChunk = c, countPoints(d.P)
	}
	bs.st.own()
	if len(chunks) > 0 {
		bs.rollupDirty = true
	} else if s.defers(k.hour) || s.isHot(k.hour) {
		// Also an hour ahead of the clock that has segments: the clock
		// went back.
		if err := s.loadHot(ctx, k, bs); err != nil {
			return nil, err
		}
	}
	if bs.st.N > 0 {
		sk := seriesKey{k.thing, k.kind}
		if last, ok := s.seriesLast[sk]; !ok || bs.st.Lt > last {
			s.seriesLast[sk] = bs.st.Lt
		}
	}
	s.cache[k] = bs
	return bs, nil
}

// sweepCache forgets buckets more than two hours old once an hour: late
// points for them are rare and cost one lookup.
func (s *Store) sweepCache(now int64) {
	h := floorDiv(now, hourSecs)
	if h == s.cacheHour {
		return
	}
	s.cacheHour = h
	for k := range s.cache {
		if _, p := s.pending[k]; k.hour < h-2 && !p {
			delete(s.cache, k)
		}
	}
}

// trimCache keeps the cache within its bound, sparing the buckets just
// written.
func (s *Store) trimCache(keep []bucketKey) {
	over := len(s.cache) - s.cfg.CacheBuckets
	if over <= 0 {
		return
	}
	spare := make(map[bucketKey]bool, len(keep))
	for _, k := range keep {
		spare[k] = true
	}
	for k := range s.cache {
		if over <= 0 {
			break
		}
		if _, p := s.pending[k]; !spare[k] && !p {
			delete(s.cache, k)
			over--
		}
	}
}

// bulkWrite runs models in commands of store.MaxBulkUpdates, in order: a
// chunk's seq says its points and every earlier one of the series are
// stored, so chunks must land in order.
func (s *Store) bulkWrite(ctx context.Context, coll string, models []mongo.WriteModel) error {
	n, err := store.BulkWrite(ctx, s.db.Collection(coll), models, true)
	s.bulks.Add(uint64(n))
	return err
}

// chunkWrites stores adds (with the running seq after each) into the
// bucket's chunks, starting new ones as they fill up.
func (s *Store) chunkWrites(k bucketKey, bs *bucketState, adds []string, seqs []uint64, bytes *int64) []mongo.WriteModel {
	var models []mongo.WriteModel
	started := false
	hourStart := k.hour * hourSecs
	for len(adds) > 0 {
		if bs.inChunk >= chunkPoints {
			bs.chunk++
			bs.inChunk = 0
			started = true
		}
		if bs.inChunk == 0 {
			*bytes += estRawDocBytes
		}
		n := min(chunkPoints-bs.inChunk, len(adds))
		models = append(models, mongo.NewUpdateOneModel().
			SetFilter(bson.D{{Key: "_id", Value: chunkID(k.thing, k.kind, k.hour, bs.chunk)}}).
			SetUpdate(bson.D{
				{Key: "$setOnInsert", Value: bson.D{{Key: "thing", Value: k.thing}, {Key: "kind", Value: k.kind}, {Key: "hour", Value: hourStart}}},
				{Key: "$push", Value: bson.D{{Key: "p", Value: strings.Join(adds[:n], pointSep)}}},
				{Key: "$max", Value: bson.D{{Key: "seq", Value: int64(seqs[n-1])}}},
			}).
			SetUpsert(true))
		bs.inChunk += n
		adds, seqs = adds[n:], seqs[n:]
	}
	if started || bs.countBehind {
		bs.countBehind = false
		// After the chunks themselves (the bulk is ordered): a count that
		// runs ahead would make queries look for a chunk that is not there.
		models = append(models, mongo.NewUpdateOneModel().
			SetFilter(bson.D{{Key: "_id", Value: chunkID(k.thing, k.kind, k.hour, 0)}}).
			SetUpdate(bson.D{{Key: "$max", Value: bson.D{{Key: "chunks", Value: bs.chunk + 1}}}}))
	}
	return models
}

// readChunks reads the chunks of an hour's raw bucket, in order (the
// slice index is the chunk number). The writer probes past the count in
// chunk 0: after a crash the chunks may have been stored without it.
func (s *Store) readChunks(ctx context.Context, coll string, k bucketKey, probe bool) ([]rawDoc, error) {
	c := s.db.Collection(coll)
	var out []rawDoc
	n := 1
	for i := 0; i < n || probe; i++ {
		var d rawDoc
		err := c.FindOne(ctx, bson.D{{Key: "_id", Value: chunkID(k.thing, k.kind, k.hour, i)}}).Decode(&d)
		if errors.Is(err, mongo.ErrNoDocuments) {
			// The end; the count is written after its chunks, so it is
			// never ahead of them.
			break
		}
		if err != nil {
			return nil, fmt.Errorf("history: read bucket: %w", err)
		}
		if i == 0 {
			n = max(d.Chunks, 1)
		}
		out = append(out, d)
	}
	return out, nil
}
