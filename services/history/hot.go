package history

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"
)

// Hot hours. FerretDB runs every update statement in a transaction of its
// own that reads, decodes, rewrites and commits the document: about
// 0.4 ms of CPU here, while a batch of new documents costs about 30 µs a
// document. Ingest writes every bucket of the current hour once a second,
// so the buckets of the hours not yet settled (from the watermark to now)
// are never updated in place: each write of a bucket inserts a segment
// document into the hour's own collection, history_hot_<unixHour>. When
// the hour settles, each bucket's segments are compacted into the day
// partition's chunks, with the hour's rollup, and the hour's collection is
// dropped, so no document is ever deleted one by one.
//
// A bucket written every second gets 3 600 segments an hour, too many to
// read one by one. So segments have levels: after every 16th level-0
// segment (one write) the writer adds a level-1 segment with the points of
// those 16 (kept in memory meanwhile), after every 16th level-1 segment a
// level-2 one, and so on. Reading the n writes of a bucket takes at most
// 15 look-ups per level. A higher-level segment not stored is read from
// its 16 children: one lost in a crash, and those of level 2 and up for a
// while after their last child, since their children are read back from
// the store and they are made a few at a time over the next writes
// (mergeSegs).
// No segment holds more than Config.SegmentBytes of points: a write of a series
// with more is split into several level-0 segments, and a higher-level
// segment that would be larger is not written (readers take its
// children), so a very busy series never makes a document too large for
// the store, nor its reading or compaction hold more than a few segments
// in memory.
//
// A bucket of a hot hour that already has chunks in the partition (written
// before the hour became hot, by an older version, or compacted while the
// hour still settles) keeps being written there.

const (
	hotPrefix = "history_hot_"
	// fanout is how many segments of one level a segment of the next
	// level holds.
	fanout = 16
	// maxLevel: 16³ writes = 4 096, more than an hour of writes at 1 s.
	maxLevel = 3
	// hotBatch bounds the documents of one insert command.
	hotBatch = 1000
	// DefaultSegmentBytes bounds a segment's points (the store's
	// documents are at most 16 MiB).
	DefaultSegmentBytes = 4 << 20
	// compactBatch is how many chunks compaction inserts at a time.
	compactBatch = 64
	// DefaultCompactBudget is how long one settle step may spend
	// compacting before ingest gets to write again.
	DefaultCompactBudget = 200 * time.Millisecond
)

// hotName is the collection of an hour's segments.
func hotName(hour int64) string { return hotPrefix + strconv.FormatInt(hour, 10) }

func parseHotName(name string) (int64, bool) {
	rest, ok := strings.CutPrefix(name, hotPrefix)
	if !ok {
		return 0, false
	}
	h, err := strconv.ParseInt(rest, 10, 64)
	return h, err == nil
}

// segID is the `_id` of segment idx of a level of a bucket; the hour is
// the collection's.
func segID(k bucketKey, level, idx int) string {
	return k.thing.Hex() + ":" + k.kind + ":" + strconv.Itoa(level) + ":" + strconv.Itoa(idx)
}

// span is how many writes (level-0 segments) a segment of level l holds.
func span(l int) int {
	n := 1
	for ; l > 0; l-- {
		n *= fanout
	}
	return n
}

// segDoc is a stored segment: its points joined by pointSep, and the
// bucket's seq after them.
type segDoc struct {
	P   string `bson:"p"`
	Seq int64  `bson:"seq"`
}

func newSeg(k bucketKey, level, idx int, p string, seq uint64) bson.D {
	return bson.D{{Key: "_id", Value: segID(k, level, idx)}, {Key: "p", Value: p}, {Key: "seq", Value: int64(seq)}}
}

// joinPoints joins payloads, skipping empty ones (missing segments).
func joinPoints(ps []string) string {
	var n int
	for _, p := range ps {
		n += len(p) + 1
	}
	var b strings.Builder
	b.Grow(n)
	for _, p := range ps {
		if p == "" {
			continue
		}
		if b.Len() > 0 {
			b.WriteString(pointSep)
		}
		b.WriteString(p)
	}
	return b.String()
}

// hotWrites are the segments of one Append, per hot hour.
type hotWrites map[int64][]any

// segments appends to hw the segments of one write of bucket k (its
// points joined in payload, at most Config.SegmentBytes, and seq the
// highest seq among them and before them): the level-0 segment and the
// level-1 segment it completes from the bucket's tail, if not too large.
// The other higher levels it completes are queued (mergeSegs).
func (s *Store) segments(hw hotWrites, k bucketKey, bs *bucketState, payload string, seq uint64) {
	docs := []any{newSeg(k, 0, bs.segs, payload, seq)}
	bs.segs++
	if bs.tailOK {
		bs.tail = append(bs.tail, payload)
		if bs.tailBytes += len(payload); bs.tailBytes > s.cfg.SegmentBytes {
			// Its level-1 segment will be too large: read back to find
			// out rather than kept.
			bs.dropTail()
		}
	}
	for l := 1; l <= maxLevel && bs.segs%span(l) == 0; l++ {
		j := bs.segs/span(l) - 1
		if l > 1 || !bs.tailOK {
			// Its children are read back from the store, later and a
			// budget at a time (mergeSegs): series written in step
			// complete their higher levels in the same write, and a
			// thousand busy ones read and wrote 330 MB in one.
			s.queueMerge(segMerge{k: k, level: l, idx: j})
			continue
		}
		if p := joinPoints(bs.tail); len(p) <= s.cfg.SegmentBytes {
			docs = append(docs, newSeg(k, l, j, p, seq))
		}
	}
	if bs.segs%fanout == 0 {
		bs.tail, bs.tailBytes, bs.tailOK = nil, 0, true
	}
	hw[k.hour] = append(hw[k.hour], docs...)
}

// Tails of idle series (dropIdleTails): not written for idleTailSecs,
// and holding idleTailBytes or more.
const (
	idleTailSecs  = 30
	idleTailBytes = 1 << 10
)

// dropIdleTails forgets the tails of series that stopped being written:
// a tail waits in memory for its series' next writes to complete a
// level-1 segment, and the tails of a thousand series that had been
// written at 70 points a second and stopped (mqttbench's cases one after
// another) stayed in memory for the rest of the hour, beside those of
// the thousand written next: 23–33 MB of the live heap, 6–12 MB once
// dropped. If the series goes on, its level-1 segment is read back from
// the store instead. Small tails stay: a series written every minute
// completes its level-1 segment only every 16 minutes, and reading its
// children back would cost more than its few bytes. Callers hold wmu.
func (s *Store) dropIdleTails(now int64) {
	for _, bs := range s.cache {
		if bs.tailOK && bs.tailBytes >= idleTailBytes && now-bs.wrote >= idleTailSecs {
			bs.dropTail()
		}
	}
}

// segMerge is a higher-level segment waiting to be written.
type segMerge struct {
	k          bucketKey
	level, idx int
}

// queueMerge adds a merge once: a write that failed and is retried
// queues its merges again.
func (s *Store) queueMerge(m segMerge) {
	if _, ok := s.queued[m]; !ok {
		s.queued[m] = struct{}{}
		s.merges = append(s.merges, m)
	}
}

// mergeSegs writes queued higher-level segments, oldest first, until
// about Config.SegmentBytes of them are written; the rest wait for the
// next call. Until its segment is written, readers take a merge's
// children, as for one lost in a crash, so a merge that cannot be made
// (a child missing or too large, its hour over) is dropped. Callers
// hold wmu.
func (s *Store) mergeSegs(ctx context.Context) error {
	if len(s.merges) == 0 {
		return nil
	}
	hw := hotWrites{}
	made := map[bucketKey]bool{}
	bytes, n := 0, 0
	var readErr error
	for ; n < len(s.merges) && bytes < s.cfg.SegmentBytes; n++ {
		m := s.merges[n]
		if made[m.k] {
			break // its children may include the segment just made
		}
		if m.k.hour < s.curHour || !s.isHot(m.k.hour) {
			continue // its hour is over: compaction reads the children
		}
		parts, seq, ok, err := s.gather(ctx, hotName(m.k.hour), m.k, m.level-1, m.idx*fanout, m.idx*fanout+fanout, s.cfg.SegmentBytes)
		if err != nil {
			readErr = err // this one and the rest stay queued
			break
		}
		if !ok {
			continue
		}
		p := joinPoints(parts)
		bytes += len(p)
		made[m.k] = true
		hw[m.k.hour] = append(hw[m.k.hour], newSeg(m.k, m.level, m.idx, p, uint64(max(seq, 0))))
	}
	for h, docs := range hw {
		// A merge made again after a failure finds its segment stored.
		if err := s.insertOrReplace(ctx, s.db.Collection(hotName(h)), docs); err != nil {
			return fmt.Errorf("history: write merged segments: %w", err)
		}
	}
	for _, m := range s.merges[:n] {
		delete(s.queued, m)
	}
	s.merges = append(s.merges[:0], s.merges[n:]...)
	return readErr
}

// gather reads the segments from..to-1 of a level of bucket k, in order,
// as long as all exist and hold at most limit bytes together, and the
// highest seq among them.
func (s *Store) gather(ctx context.Context, coll string, k bucketKey, level, from, to, limit int) ([]string, int64, bool, error) {
	var parts []string
	var seq int64
	n := 0
	for c := from; c < to; c++ {
		p, sq, found, err := s.readSegDoc(ctx, coll, k, level, c)
		if err != nil || !found {
			return nil, 0, false, err
		}
		if n += len(p); n > limit {
			return nil, 0, false, nil
		}
		parts = append(parts, p)
		seq = max(seq, sq)
	}
	return parts, seq, true, nil
}

// readSegDoc reads one stored segment; found is false if it is not
// stored.
func (s *Store) readSegDoc(ctx context.Context, coll string, k bucketKey, level, idx int) (p string, seq int64, found bool, err error) {
	var d segDoc
	err = s.db.Collection(coll).FindOne(ctx, bson.D{{Key: "_id", Value: segID(k, level, idx)}}).Decode(&d)
	switch {
	case err == nil:
		return d.P, d.Seq, true, nil
	case errors.Is(err, mongo.ErrNoDocuments):
		return "", 0, false, nil
	}
	return "", 0, false, fmt.Errorf("history: read segment: %w", err)
}

// eachHot calls fn with the points of the first n writes of bucket k,
// one stored segment at a time in write order, and returns the highest
// seq among them. A higher-level segment that is not stored (too large,
// or lost in a crash) is read from its children.
func (s *Store) eachHot(ctx context.Context, coll string, k bucketKey, n int, fn func(p string) error) (int64, error) {
	var seq int64
	var visit func(level, idx int) error
	visit = func(level, idx int) error {
		p, sq, found, err := s.readSegDoc(ctx, coll, k, level, idx)
		switch {
		case err != nil:
			return err
		case found:
			seq = max(seq, sq)
			return fn(p)
		case level == 0:
			return nil
		}
		for c := idx * fanout; c < idx*fanout+fanout; c++ {
			if err := visit(level-1, c); err != nil {
				return err
			}
		}
		return nil
	}
	pos := 0
	for l := maxLevel; l >= 0; l-- {
		for sp := span(l); pos+sp <= n; pos += sp {
			if err := visit(l, pos/sp); err != nil {
				return 0, err
			}
		}
	}
	return seq, nil
}

// readHot reads the points of the first n writes of bucket k from its hot
// collection, as payloads in write order, and the highest seq among them.
func (s *Store) readHot(ctx context.Context, coll string, k bucketKey, n int) ([]string, int64, error) {
	var out []string
	seq, err := s.eachHot(ctx, coll, k, n, func(p string) error {
		if p != "" {
			out = append(out, p)
		}
		return nil
	})
	return out, seq, err
}

// countSegs finds how many writes bucket k has in its hot collection:
// level-0 segments are numbered densely from 0, since a bucket's
// segments are inserted in order.
func (s *Store) countSegs(ctx context.Context, coll string, k bucketKey) (int, error) {
	c := s.db.Collection(coll)
	exists := func(i int) (bool, error) {
		err := c.FindOne(ctx, bson.D{{Key: "_id", Value: segID(k, 0, i)}}, options.FindOne().SetProjection(bson.D{{Key: "_id", Value: 1}})).Err()
		if errors.Is(err, mongo.ErrNoDocuments) {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("history: count segments: %w", err)
		}
		return true, nil
	}
	ok, err := exists(0)
	if err != nil || !ok {
		return 0, err
	}
	lo, hi := 0, 1 // lo exists; hi is probed
	for {
		ok, err := exists(hi)
		if err != nil {
			return 0, err
		}
		if !ok {
			break
		}
		lo, hi = hi, hi*2
	}
	for hi-lo > 1 {
		mid := (lo + hi) / 2
		ok, err := exists(mid)
		if err != nil {
			return 0, err
		}
		if ok {
			lo = mid
		} else {
			hi = mid
		}
	}
	return lo + 1, nil
}

// isHot reports whether an hour has a hot collection.
func (s *Store) isHot(hour int64) bool {
	s.pmu.RLock()
	defer s.pmu.RUnlock()
	return s.hot[hour]
}

// knownSegs is the number of writes of a hot bucket this process made or
// counted, or -1.
func (s *Store) knownSegs(k bucketKey) int {
	s.pmu.RLock()
	defer s.pmu.RUnlock()
	if n, ok := s.segN[k]; ok {
		return n
	}
	return -1
}

// writeHot inserts the segments of a batch, creating the hours'
// collections as needed. Callers hold wmu.
func (s *Store) writeHot(ctx context.Context, hw hotWrites) error {
	for h, docs := range hw {
		if !s.isHot(h) {
			if err := s.ensureColl(ctx, hotName(h)); err != nil {
				return fmt.Errorf("history: create hot hour: %w", err)
			}
			s.pmu.Lock()
			s.hot[h] = true
			s.pmu.Unlock()
		}
		c := s.db.Collection(hotName(h))
		for len(docs) > 0 {
			n := min(len(docs), hotBatch)
			// Ordered: a failure leaves each bucket's segments a dense
			// prefix, which countSegs relies on.
			_, err := c.InsertMany(ctx, docs[:n], options.InsertMany().SetOrdered(true))
			s.bulks.Add(1)
			if err != nil {
				return fmt.Errorf("history: write %s: %w", hotName(h), err)
			}
			docs = docs[n:]
		}
	}
	return nil
}

// publishSegs tells queries how many writes the touched hot buckets have.
func (s *Store) publishSegs(touched []bucketKey) {
	s.pmu.Lock()
	defer s.pmu.Unlock()
	for _, k := range touched {
		if bs := s.cache[k]; bs != nil && bs.hot {
			s.segN[k] = bs.segs
		}
	}
}

// loadHot fills a hot bucket's state from its segments.
func (s *Store) loadHot(ctx context.Context, k bucketKey, bs *bucketState) error {
	bs.hot = true
	if !s.isHot(k.hour) {
		bs.tailOK = true
		return nil
	}
	coll := hotName(k.hour)
	n, err := s.countSegs(ctx, coll, k)
	if err != nil {
		return err
	}
	hourStart := k.hour * hourSecs
	seq, err := s.eachHot(ctx, coll, k, n, func(p string) error {
		bs.st.addPoints(p, hourStart)
		return nil
	})
	if err != nil {
		return err
	}
	bs.st.own()
	bs.segs, bs.seq, bs.tailOK = n, uint64(max(seq, 0)), n%fanout == 0
	s.pmu.Lock()
	s.segN[k] = n
	s.pmu.Unlock()
	return nil
}

// compact moves a hot bucket of a settling hour into its partition's
// chunks. The chunks other than chunk 0 are inserted (re-written if a
// crash interrupted an earlier compaction), then chunk 0 with the count:
// its presence marks the bucket as compacted. The rollup and the
// partition's counts follow in the same ordered write.
func (s *Store) compact(ctx context.Context, k bucketKey, bs *bucketState) error {
	hourStart := k.hour * hourSecs
	day := floorDiv(hourStart, daySecs)
	part, err := s.partitionFor(ctx, day)
	if err != nil {
		return err
	}
	coll := s.db.Collection(part.name)
	// The points stream from the segments into chunks, a batch of chunks
	// at a time: a busy series' hour may be millions of points.
	st := stats{}
	var first, cur []string // chunk 0's points, written last; the chunk being filled
	nChunks, points := 1, 0
	var bytes int64 = estRollupHourSize
	var batch []any
	chunk := func(c int, pts []string, seq uint64) bson.D {
		d := bson.D{{Key: "_id", Value: chunkID(k.thing, k.kind, k.hour, c)}, {Key: "thing", Value: k.thing}, {Key: "kind", Value: k.kind},
			{Key: "hour", Value: hourStart}, {Key: "p", Value: []string{strings.Join(pts, pointSep)}}, {Key: "seq", Value: int64(seq)}}
		if c == 0 {
			d = append(d, bson.E{Key: "chunks", Value: nChunks})
		}
		return d
	}
	flush := func() error {
		if err := s.insertOrReplace(ctx, coll, batch); err != nil {
			return fmt.Errorf("history: compact into %s: %w", part.name, err)
		}
		batch = batch[:0]
		return nil
	}
	var failed error
	seq, err := s.eachHot(ctx, hotName(k.hour), k, bs.segs, func(p string) error {
		eachPoint(p, func(e string) {
			ts, v, ok := decodePoint(e, hourStart)
			if !ok || failed != nil {
				return
			}
			st.add(ts, v)
			points++
			bytes += int64(len(e)) + estPointOverhead
			if len(first) < chunkPoints {
				first = append(first, e)
				return
			}
			if cur = append(cur, e); len(cur) == chunkPoints {
				batch = append(batch, chunk(nChunks, cur, bs.seq))
				nChunks, cur = nChunks+1, nil
				if len(batch) == compactBatch {
					failed = flush()
				}
			}
		})
		return failed
	})
	if err != nil {
		return err
	}
	if len(cur) > 0 {
		batch = append(batch, chunk(nChunks, cur, bs.seq))
		nChunks++
	}
	if err := flush(); err != nil {
		return err
	}
	bs.seq = max(bs.seq, uint64(max(seq, 0)))
	st.own()
	bytes += int64(nChunks) * estRawDocBytes
	dw := &dayWrites{}
	dw.setRollupHour(k, day, st.encode())
	models := []mongo.WriteModel{mongo.NewReplaceOneModel().SetFilter(bson.D{{Key: "_id", Value: chunkID(k.thing, k.kind, k.hour, 0)}}).SetReplacement(chunk(0, first, bs.seq)).SetUpsert(true)}
	models = append(models, dw.rollupWrites(day)...)
	models = append(models, mongo.NewUpdateOneModel().
		SetFilter(bson.D{{Key: "_id", Value: metaID}}).
		SetUpdate(bson.D{{Key: "$inc", Value: bson.D{{Key: "points", Value: int64(points)}, {Key: "bytes", Value: bytes}}}}).
		SetUpsert(true))
	if err := s.bulkWrite(ctx, part.name, models); err != nil {
		return fmt.Errorf("history: compact into %s: %w", part.name, err)
	}
	s.pmu.Lock()
	part.points += int64(points)
	part.bytes += bytes
	delete(s.segN, k)
	s.pmu.Unlock()
	// Late points for the hour now go to the partition, as for a
	// settled hour.
	bs.hot, bs.segs = false, 0
	bs.dropTail()
	bs.st = st
	bs.chunk, bs.inChunk = nChunks-1, points-(nChunks-1)*chunkPoints
	bs.rollupDirty = false
	s.compacted.Add(1)
	return nil
}

// insertOrReplace inserts documents; those that exist already (an
// interrupted compaction) are replaced.
func (s *Store) insertOrReplace(ctx context.Context, coll *mongo.Collection, docs []any) error {
	for len(docs) > 0 {
		n := min(len(docs), hotBatch)
		_, err := coll.InsertMany(ctx, docs[:n], options.InsertMany().SetOrdered(false))
		s.bulks.Add(1)
		var bwe mongo.BulkWriteException
		if errors.As(err, &bwe) && bwe.WriteConcernError == nil {
			var models []mongo.WriteModel
			for _, we := range bwe.WriteErrors {
				if we.Code != 11000 { // DuplicateKey
					return err
				}
				d := docs[we.Index].(bson.D)
				models = append(models, mongo.NewReplaceOneModel().SetFilter(bson.D{d[0]}).SetReplacement(d))
			}
			if err := s.bulkWrite(ctx, coll.Name(), models); err != nil {
				return err
			}
		} else if err != nil {
			return err
		}
		docs = docs[n:]
	}
	return nil
}

// dropHot drops the hot collections of the hours before the watermark.
// Callers hold wmu.
func (s *Store) dropHot(ctx context.Context) error {
	w := s.settled.Load()
	s.pmu.RLock()
	var hours []int64
	for h := range s.hot {
		if h < w {
			hours = append(hours, h)
		}
	}
	s.pmu.RUnlock()
	for _, h := range hours {
		// Forgotten first: a query that read segments while the drop ran
		// sees the hour gone and reads the chunks again.
		s.pmu.Lock()
		delete(s.hot, h)
		for k := range s.segN {
			if k.hour == h {
				delete(s.segN, k)
			}
		}
		s.pmu.Unlock()
		if err := s.db.Collection(hotName(h)).Drop(ctx); err != nil {
			return fmt.Errorf("history: drop %s: %w", hotName(h), err)
		}
		for k, bs := range s.cache {
			if k.hour == h && bs.hot {
				delete(s.cache, k)
			}
		}
	}
	return nil
}
