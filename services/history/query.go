package history

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/piot-appliance/piot/services/store"
	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"
)

// Query returns the readings of one series of a thing between from and to
// (unix seconds, both inclusive; to 0 means now, from 0 means a day before
// to).
//
// With step 0 it returns the raw points in time order. With step > 0 it
// returns one reading per step-second bucket that has data (buckets aligned
// to the epoch, TS = bucket start), aggregated with fn (default avg); avg,
// min and max use the numeric values only and skip buckets without any.
// Steps that are whole hours are answered from the daily rollups. first > 0
// caps the number of readings (the earliest are kept).
func (s *Store) Query(ctx context.Context, thing store.ID, kind string, from, to, step int64, fn Fn, first int) ([]Reading, error) {
	if !ValidKind(kind) {
		return nil, fmt.Errorf("%w: unknown kind %q", ErrBadQuery, kind)
	}
	if to == 0 {
		to = s.now().Unix()
	}
	if from == 0 {
		from = to - daySecs
	}
	switch {
	case from > to:
		return nil, fmt.Errorf("%w: from is after to", ErrBadQuery)
	case from < 0:
		return nil, fmt.Errorf("%w: negative from", ErrBadQuery)
	case step < 0:
		return nil, fmt.Errorf("%w: negative step", ErrBadQuery)
	case first < 0:
		return nil, fmt.Errorf("%w: negative first", ErrBadQuery)
	}
	if step > 0 {
		switch fn {
		case "":
			fn = FnAvg
		case FnAvg, FnMin, FnMax, FnLast:
		default:
			return nil, fmt.Errorf("%w: unknown function %q", ErrBadQuery, fn)
		}
	}
	if err := s.ensureLoaded(ctx); err != nil {
		return nil, err
	}
	q := query{s: s, thing: thing, kind: kind, from: from, to: to, step: step, fn: fn, first: first}
	switch {
	case step == 0:
		return q.raw(ctx)
	case step%hourSecs == 0:
		return q.rolledUp(ctx)
	default:
		return q.rawAggregated(ctx)
	}
}

type query struct {
	s              *Store
	thing          store.ID
	kind           string
	from, to, step int64
	fn             Fn
	first          int
}

type point struct {
	ts int64
	v  string
}

// hours lists the hours of the range that lie in existing partitions.
func (q *query) hours(fromHour, toHour int64) []int64 {
	var out []int64
	for h := fromHour; h <= toHour; h++ {
		if _, ok := q.s.existing(floorDiv(h*hourSecs, daySecs)); ok {
			out = append(out, h)
		}
	}
	return out
}

// fetch runs look-ups in parallel, results in input order.
func fetch[T any](ctx context.Context, par int, n int, get func(ctx context.Context, i int) (T, error)) ([]T, error) {
	out := make([]T, n)
	errs := make([]error, n)
	sem := make(chan struct{}, par)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			out[i], errs[i] = get(ctx, i)
		}()
	}
	wg.Wait()
	return out, errors.Join(errs...)
}

// rawHours loads raw buckets; each hour's points come back sorted by time.
func (q *query) rawHours(ctx context.Context, hours []int64) ([][]point, error) {
	return fetch(ctx, q.s.cfg.QueryParallelism, len(hours), func(ctx context.Context, i int) ([]point, error) {
		h := hours[i]
		part, ok := q.s.existing(floorDiv(h*hourSecs, daySecs))
		if !ok {
			return nil, nil
		}
		k := bucketKey{q.thing, q.kind, h}
		es, err := q.s.readBucket(ctx, part.name, k)
		if err != nil {
			return nil, err
		}
		var pts []point
		for _, e := range es {
			eachPoint(e, func(e string) {
				if ts, v, ok := decodePoint(e, h*hourSecs); ok && ts >= q.from && ts <= q.to {
					pts = append(pts, point{ts, v})
				}
			})
		}
		sort.SliceStable(pts, func(a, b int) bool { return pts[a].ts < pts[b].ts })
		return pts, nil
	})
}

func (q *query) raw(ctx context.Context) ([]Reading, error) {
	hours := q.hours(floorDiv(q.from, hourSecs), floorDiv(q.to, hourSecs))
	var out []Reading
	// A day at a time, so that `first` stops early.
	for len(hours) > 0 {
		n := min(len(hours), 24)
		res, err := q.rawHours(ctx, hours[:n])
		if err != nil {
			return nil, err
		}
		hours = hours[n:]
		for _, pts := range res {
			for _, p := range pts {
				out = append(out, Reading{TS: p.ts, Value: p.v})
				if q.first > 0 && len(out) >= q.first {
					return out, nil
				}
			}
		}
	}
	return out, nil
}

// buckets accumulates statistics per step bucket.
type buckets map[int64]*stats

func (b buckets) at(ts, step int64) *stats {
	k := floorDiv(ts, step) * step
	st := b[k]
	if st == nil {
		st = &stats{}
		b[k] = st
	}
	return st
}

func (q *query) result(b buckets) []Reading {
	keys := make([]int64, 0, len(b))
	for k := range b {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	var out []Reading
	for _, k := range keys {
		v, ok := b[k].value(q.fn)
		if !ok {
			continue
		}
		out = append(out, Reading{TS: k, Value: v})
		if q.first > 0 && len(out) >= q.first {
			break
		}
	}
	return out
}

func (q *query) rawAggregated(ctx context.Context) ([]Reading, error) {
	hours := q.hours(floorDiv(q.from, hourSecs), floorDiv(q.to, hourSecs))
	res, err := q.rawHours(ctx, hours)
	if err != nil {
		return nil, err
	}
	b := buckets{}
	for _, pts := range res {
		for _, p := range pts {
			b.at(p.ts, q.step).add(p.ts, p.v)
		}
	}
	return q.result(b), nil
}

// rolledUp answers whole-hour steps: hours entirely inside the range come
// from the daily rollups, the (at most two) partial hours at the edges from
// their raw buckets.
func (q *query) rolledUp(ctx context.Context) ([]Reading, error) {
	fromHour, toHour := floorDiv(q.from, hourSecs), floorDiv(q.to, hourSecs)
	var partial []int64
	firstFull, lastFull := fromHour, toHour
	if q.from != fromHour*hourSecs {
		partial = append(partial, fromHour)
		firstFull++
	}
	if q.to != toHour*hourSecs+hourSecs-1 && (len(partial) == 0 || partial[0] != toHour) {
		partial = append(partial, toHour)
	}
	if q.to != toHour*hourSecs+hourSecs-1 {
		lastFull--
	}
	// Full hours whose rollups may be deferred are read raw too.
	if w := q.s.settled.Load(); lastFull >= w {
		for h := max(firstFull, w); h <= lastFull; h++ {
			partial = append(partial, h)
		}
		lastFull = min(lastFull, w-1)
	}
	b := buckets{}
	if firstFull <= lastFull {
		var days []int64
		for d := floorDiv(firstFull*hourSecs, daySecs); d <= floorDiv(lastFull*hourSecs, daySecs); d++ {
			if _, ok := q.s.existing(d); ok {
				days = append(days, d)
			}
		}
		rollups, err := fetch(ctx, q.s.cfg.QueryParallelism, len(days), func(ctx context.Context, i int) (bson.Raw, error) {
			part, _ := q.s.existing(days[i])
			if part == nil {
				return nil, nil
			}
			raw, err := q.s.db.Collection(part.name).FindOne(ctx, bson.D{{Key: "_id", Value: rollupID(q.thing, q.kind, days[i])}}).Raw()
			if errors.Is(err, mongo.ErrNoDocuments) {
				return nil, nil
			}
			if err != nil {
				return nil, fmt.Errorf("history: read rollup: %w", err)
			}
			return raw, nil
		})
		if err != nil {
			return nil, err
		}
		for i, raw := range rollups {
			if raw == nil {
				continue
			}
			elems, err := raw.Elements()
			if err != nil {
				return nil, fmt.Errorf("history: decode rollup: %w", err)
			}
			for _, e := range elems {
				key := e.Key()
				if len(key) != 3 || !strings.HasPrefix(key, "h") {
					continue
				}
				var hod int64
				if _, err := fmt.Sscanf(key[1:], "%d", &hod); err != nil {
					continue
				}
				hour := days[i]*24 + hod
				if hour < firstFull || hour > lastFull {
					continue
				}
				enc, ok := e.Value().StringValueOK()
				if !ok {
					return nil, fmt.Errorf("history: decode rollup: %s is not a string", key)
				}
				st, err := decodeStats(enc)
				if err != nil {
					return nil, err
				}
				b.at(hour*hourSecs, q.step).merge(st)
			}
		}
	}
	if len(partial) > 0 {
		var hours []int64
		for _, h := range partial {
			hours = append(hours, q.hours(h, h)...)
		}
		res, err := q.rawHours(ctx, hours)
		if err != nil {
			return nil, err
		}
		for _, pts := range res {
			for _, p := range pts {
				b.at(p.ts, q.step).add(p.ts, p.v)
			}
		}
	}
	return q.result(b), nil
}

// readBucket reads the points of a bucket for a query, from its chunks in
// the partition or, if it has none, from its hour's hot collection.
func (s *Store) readBucket(ctx context.Context, coll string, k bucketKey) ([]string, error) {
	for {
		chunks, err := s.readChunks(ctx, coll, k, false)
		if err != nil {
			return nil, err
		}
		if len(chunks) > 0 || !s.isHot(k.hour) {
			var es []string
			for _, d := range chunks {
				es = append(es, d.P...)
			}
			return es, nil
		}
		n := s.knownSegs(k)
		if n < 0 {
			if n, err = s.countSegs(ctx, hotName(k.hour), k); err != nil {
				return nil, err
			}
		}
		es, _, err := s.readHot(ctx, hotName(k.hour), k, n)
		if err != nil {
			return nil, err
		}
		// A compaction that finished meanwhile may have dropped the hot
		// collection under the reads: then the chunks are complete.
		if s.isHot(k.hour) {
			return es, nil
		}
	}
}
