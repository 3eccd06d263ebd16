// Package history keeps the time series of what things report (sensor
// values, switch states, location fixes, battery levels) in the store,
// shaped for what FerretDB on SQLite does cheaply: look documents up by
// `_id` (with the store's `_id` expression index) and write them in bulk.
//
// Layout. Data is partitioned into one collection per UTC day,
// history_YYYY_MM_DD, so retention drops whole collections instead of
// deleting documents one by one. A partition holds
//
//   - one raw document per (thing, kind, UTC hour), `_id`
//     "<thingHex>:<kind>:<unixHour>", with the hour's points as strings
//     "<secondsIntoHour> <value>" in the array p, and seq, the highest
//     ingest journal sequence number stored in it;
//   - one rollup document per (thing, kind, UTC day), `_id`
//     "<thingHex>:<kind>:d<unixDay>", with a field h00…h23 per hour holding
//     count, numeric count, sum, min, max, first and last, encoded as one
//     string (FerretDB decodes a sub-document per hour three times slower);
//   - one document "~meta" counting the partition's points and estimated
//     bytes, for the size cap;
//   - one directory document per hour, "~h<unixHour>", naming the series
//     with a bucket in that hour (settle.go).
//
// The hours not yet settled have a collection each, history_hot_<unixHour>,
// with the segments of their buckets (hot.go).
//
// So a one-day raw query is at most 24 `_id` lookups, and a query in steps
// of whole hours reads one rollup per day (plus at most two raw hours at
// the edges of the range); aggregation happens in Go, since FerretDB's
// $group has no $avg/$min/$max.
//
// Writes. Append groups points by bucket. A bucket of an hour not yet
// settled gets one inserted segment in the hour's hot collection per
// write, and is compacted into the partition when the hour settles
// (hot.go); any other bucket (late points) gets one upsert ($push of the
// new points, $max of seq), all partition operations in one bulk write. The day's rollup gets the hour's
// statistics with one $set once the hour is over (settle.go); a late point
// for an hour already over sets it with its bucket. Hour statistics are computed in Go from a cache of
// per-bucket state (loaded from the raw document on a miss), so the rollup
// is always a pure function of the raw bucket and rewriting it is
// idempotent. Points carry the journal sequence number of the message
// they came from; points at or below a bucket's seq are already stored and
// are skipped, which makes replaying the journal after a crash harmless.
package history

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/piot-appliance/piot/services/store"
	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"
)

// Kinds of series.
const (
	KindSensor   = "sensor"
	KindSwitch   = "switch"
	KindLocation = "location"
	KindBattery  = "battery"
)

// Sync makes every point Append stored so far survive a power cut
// (store.Sync); the ingest calls it before its journal drops them.
func (s *Store) Sync(ctx context.Context) error { return s.st.Sync(ctx) }

// ValidKind reports whether kind names a series.
func ValidKind(kind string) bool {
	switch kind {
	case KindSensor, KindSwitch, KindLocation, KindBattery:
		return true
	}
	return false
}

// Defaults.
const (
	DefaultRetention    = 30 * 24 * time.Hour
	DefaultCacheBuckets = 50_000
	// MaxValueLen bounds one stored value (which must not contain a line
	// break either).
	MaxValueLen = 1024
)

// ErrBadQuery is returned (wrapped) for invalid query arguments.
var ErrBadQuery = errors.New("history: bad query")

// Config tunes the history.
type Config struct {
	// Retention drops partitions (days) that ended longer ago than this
	// (default 30 days).
	Retention time.Duration
	// MaxBytes caps the estimated size of all partitions; the oldest are
	// dropped first, but never the newest. 0 means no cap.
	MaxBytes int64
	// CacheBuckets bounds the per-bucket state kept in memory between
	// writes (default 50 000, about 10 MB).
	CacheBuckets int
	// QueryParallelism is how many lookups one query runs at once
	// (default 4).
	QueryParallelism int
	// CompactBudget bounds the time one write spends compacting the hot
	// buckets of a settling hour (default DefaultCompactBudget); the rest
	// waits for the next write.
	CompactBudget time.Duration
	// SegmentBytes bounds the points of one segment of a hot hour
	// (default DefaultSegmentBytes; hot.go).
	SegmentBytes int
	Now          func() time.Time
	Logger       *slog.Logger
}

// Point is one reading.
type Point struct {
	Thing store.ID
	Kind  string // KindSensor, KindSwitch, KindLocation or KindBattery
	TS    int64  // unix seconds
	// Value is a number as a string (switch: "1"/"0"); a location is JSON
	// {"lat":…,"lng":…,"sat":…}.
	Value string
	// Seq is the ingest journal sequence number of the message the point
	// came from, 0 if none. Points of one series must be appended in Seq
	// order; a point whose Seq is not above the highest Seq already in its
	// bucket is taken as a replayed duplicate and skipped.
	Seq uint64
	// Every > 0 keeps only the first point of each Every-second interval
	// (aligned to the epoch) of the series: the original
	// store_mysqldb_interval semantics. The last kept time is remembered in
	// memory and reloaded from the current hour's bucket after a restart, so
	// for intervals longer than an hour one extra point can be kept across
	// a restart.
	Every int64
}

// Reading is one point or one aggregated bucket of a query.
type Reading struct {
	TS    int64
	Value string
}

// Fn aggregates the points of a bucket.
type Fn string

// Aggregations; avg, min and max use the numeric values only.
const (
	FnAvg  Fn = "avg"
	FnMin  Fn = "min"
	FnMax  Fn = "max"
	FnLast Fn = "last"
)

// Stats count the history's work since New.
type Stats struct {
	PointsWritten     uint64 // points stored
	PointsDuplicate   uint64 // replayed points skipped
	PointsThinned     uint64 // points dropped by Every
	PointsExpired     uint64 // points older than the retention, dropped
	PointsInvalid     uint64 // points with a bad kind, time or value, dropped
	BulkWrites        uint64 // bulk write round trips
	CacheMisses       uint64 // bucket states loaded from the store
	Settles           uint64 // hours settled: their deferred rollups written
	Compacted         uint64 // buckets of settling hours compacted into their partition
	HotHours          int    // hours whose segments wait for compaction (hot.go)
	PartitionsDropped uint64
	Partitions        int   // partitions now
	EstimatedBytes    int64 // estimated size of all partitions
}

// Store is the history on top of the appliance store.
type Store struct {
	st  *store.Store
	db  *mongo.Database
	cfg Config
	log *slog.Logger
	now func() time.Time

	// ensureColl creates a partition with its `_id` index; a variable so
	// benchmarks can compare with and without the index.
	ensureColl func(ctx context.Context, name string) error

	wmu         sync.Mutex // serializes Append and Enforce
	cache       map[bucketKey]*bucketState
	seriesLast  map[seriesKey]int64 // last kept time for Every
	cacheHour   int64               // hour of the last eviction sweep
	loaded      bool
	droppedDays int64 // points on days ≤ this are expired (-1: none)

	// settled is the hour from which rollups may be missing (settle.go);
	// queries read it without wmu.
	settled atomic.Int64
	// curHour is the clock's hour at the last settle.
	curHour int64
	// pending are the buckets whose rollup waits for their hour to settle.
	pending map[bucketKey]struct{}
	// recoverBelow > 0: the buckets of unsettled hours before it may have
	// been written by an earlier process; settle finds them in the hours'
	// directories.
	recoverBelow int64
	// recoverNext: the directories of the hours before it are read.
	recoverNext int64

	pmu   sync.RWMutex
	parts map[int64]*partition // by unix day
	hot   map[int64]bool       // hours with a hot collection (hot.go)
	segN  map[bucketKey]int    // writes of hot buckets, for queries

	// merges are the higher-level segments waiting to be written
	// (mergeSegs), queued their set; both under wmu.
	merges []segMerge
	queued map[segMerge]struct{}

	written, duplicate, thinned, expired, invalid, bulks, misses, dropped, settles, compacted atomic.Uint64
}

// partition is one day's collection.
type partition struct {
	day    int64
	name   string
	points int64
	bytes  int64
}

// New prepares the history; it touches the store lazily, on the first
// Append, Query or Enforce.
func New(st *store.Store, cfg Config) (*Store, error) {
	if st == nil {
		return nil, errors.New("history: store is required")
	}
	if cfg.Retention == 0 {
		cfg.Retention = DefaultRetention
	}
	if cfg.Retention < 24*time.Hour {
		return nil, fmt.Errorf("history: retention %v is shorter than one day", cfg.Retention)
	}
	if cfg.MaxBytes < 0 {
		return nil, fmt.Errorf("history: negative size cap")
	}
	if cfg.CacheBuckets <= 0 {
		cfg.CacheBuckets = DefaultCacheBuckets
	}
	if cfg.QueryParallelism <= 0 {
		cfg.QueryParallelism = 4
	}
	if cfg.CompactBudget <= 0 {
		cfg.CompactBudget = DefaultCompactBudget
	}
	if cfg.SegmentBytes <= 0 {
		cfg.SegmentBytes = DefaultSegmentBytes
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Store{
		st: st, db: st.Database(), cfg: cfg, log: cfg.Logger, now: cfg.Now,
		cache: map[bucketKey]*bucketState{}, seriesLast: map[seriesKey]int64{}, pending: map[bucketKey]struct{}{},
		parts: map[int64]*partition{}, hot: map[int64]bool{}, segN: map[bucketKey]int{}, droppedDays: -1,
		queued: map[segMerge]struct{}{},
	}
	s.ensureColl = st.EnsureIDIndex
	return s, nil
}

// Stats returns counters and sizes.
func (s *Store) Stats() Stats {
	s.pmu.RLock()
	n, hot := len(s.parts), len(s.hot)
	var bytes int64
	for _, p := range s.parts {
		bytes += p.bytes
	}
	s.pmu.RUnlock()
	return Stats{
		PointsWritten: s.written.Load(), PointsDuplicate: s.duplicate.Load(), PointsThinned: s.thinned.Load(),
		PointsExpired: s.expired.Load(), PointsInvalid: s.invalid.Load(), BulkWrites: s.bulks.Load(),
		CacheMisses: s.misses.Load(), Settles: s.settles.Load(), Compacted: s.compacted.Load(), HotHours: hot,
		PartitionsDropped: s.dropped.Load(), Partitions: n, EstimatedBytes: bytes,
	}
}

// Partitions lists the partition collections, oldest first.
func (s *Store) Partitions() []string {
	s.pmu.RLock()
	defer s.pmu.RUnlock()
	out := make([]string, 0, len(s.parts))
	for _, d := range s.sortedDaysLocked() {
		out = append(out, s.parts[d].name)
	}
	return out
}

// metaID is the `_id` of a partition's size counters.
const metaID = "~meta"

type metaDoc struct {
	Points int64 `bson:"points"`
	Bytes  int64 `bson:"bytes"`
}

// load discovers the existing partitions and their sizes. Callers hold wmu.
func (s *Store) load(ctx context.Context) error {
	if s.loaded {
		return nil
	}
	names, err := s.db.ListCollectionNames(ctx, bson.D{})
	if err != nil {
		return fmt.Errorf("history: list partitions: %w", err)
	}
	parts := map[int64]*partition{}
	hot := map[int64]bool{}
	for _, name := range names {
		if h, ok := parseHotName(name); ok {
			hot[h] = true
			continue
		}
		day, ok := parsePartitionName(name)
		if !ok {
			continue
		}
		p := &partition{day: day, name: name}
		var m metaDoc
		err := s.db.Collection(name).FindOne(ctx, bson.D{{Key: "_id", Value: metaID}}).Decode(&m)
		if err != nil && !errors.Is(err, mongo.ErrNoDocuments) {
			return fmt.Errorf("history: read %s size: %w", name, err)
		}
		p.points, p.bytes = m.Points, m.Bytes
		// Partitions made by an older version or by hand get their index.
		if err := s.ensureColl(ctx, name); err != nil {
			return fmt.Errorf("history: %w", err)
		}
		parts[day] = p
	}
	s.pmu.Lock()
	s.parts, s.hot = parts, hot
	s.pmu.Unlock()
	if err := s.loadSettled(ctx, floorDiv(s.now().Unix(), hourSecs)); err != nil {
		return err
	}
	// Hours compacted before a crash that came before their drop.
	if err := s.dropHot(ctx); err != nil {
		return err
	}
	s.loaded = true
	return nil
}

// partitionFor returns the partition of a day, creating the collection
// and its index if needed. Callers hold wmu.
func (s *Store) partitionFor(ctx context.Context, day int64) (*partition, error) {
	s.pmu.RLock()
	p, ok := s.parts[day]
	s.pmu.RUnlock()
	if ok {
		return p, nil
	}
	p = &partition{day: day, name: partitionName(day)}
	if err := s.ensureColl(ctx, p.name); err != nil {
		return nil, fmt.Errorf("history: create partition: %w", err)
	}
	s.pmu.Lock()
	s.parts[day] = p
	s.pmu.Unlock()
	return p, nil
}

// existing returns the partition of a day if it exists.
func (s *Store) existing(day int64) (*partition, bool) {
	s.pmu.RLock()
	defer s.pmu.RUnlock()
	p, ok := s.parts[day]
	return p, ok
}

func (s *Store) ensureLoaded(ctx context.Context) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return s.load(ctx)
}
