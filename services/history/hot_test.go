package history

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/piot-appliance/piot/internal/testclock"
	"github.com/piot-appliance/piot/services/store"
	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/bson/primitive"
)

// hotHour is a history on a new store whose clock stands in an hour not
// yet settled: the one the tests write.
func hotHour(tb testing.TB, cfg Config) (*store.Store, *Store, *testclock.Clock, int64) {
	tb.Helper()
	st := openStore(tb)
	h, c := newHistory(tb, st, cfg)
	return st, h, c, floorDiv(c.Now().Unix(), hourSecs)
}

// storedSeg is a stored segment as the tests read it; its _id is
// thing:kind:level:index.
type storedSeg struct {
	ID  string `bson:"_id"`
	P   string `bson:"p"`
	Seq int64  `bson:"seq"`
}

// allSegs reads every segment of an hour's hot collection.
func allSegs(t *testing.T, h *Store, hour int64) []storedSeg {
	t.Helper()
	cur, err := h.db.Collection(hotName(hour)).Find(context.Background(), bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	var docs []storedSeg
	if err := cur.All(context.Background(), &docs); err != nil {
		t.Fatal(err)
	}
	return docs
}

// hotDocs reads every segment of an hour's hot collection by level and
// index.
func hotDocs(t *testing.T, h *Store, hour int64) map[[2]int]string {
	t.Helper()
	docs := allSegs(t, h, hour)
	out := map[[2]int]string{}
	for _, d := range docs {
		f := strings.Split(d.ID, ":")
		l, _ := strconv.Atoi(f[2])
		i, _ := strconv.Atoi(f[3])
		out[[2]int{l, i}] = d.P
	}
	return out
}

func collections(t *testing.T, h *Store) []string {
	t.Helper()
	names, err := h.db.ListCollectionNames(context.Background(), bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// A bucket written 600 times in its hour: every write is a level-0
// segment, every 16 a level-1 one and every 256 a level-2 one, each
// holding exactly the points of the writes it covers, also across a
// restart in the middle of a group. Queries read it right, also with
// higher-level segments lost, replays add nothing, and when the hour
// settles the bucket is compacted into chunks and the hour's collection
// dropped.
func TestHotHourSegments(t *testing.T) {
	st, h, c, hour := hotHour(t, Config{})
	ctx := context.Background()
	thing := primitive.NewObjectID()
	var all []Point
	write := func(h *Store, from, to int) {
		t.Helper()
		for i := from; i < to; i++ {
			ts := hour*hourSecs + int64(i)*5
			c.Set(time.Unix(ts, 0))
			batch := []Point{
				{Thing: thing, Kind: KindSensor, TS: ts, Value: fmt.Sprint(2 * i), Seq: uint64(2*i + 1)},
				{Thing: thing, Kind: KindSensor, TS: ts + 1, Value: fmt.Sprint(2*i + 1), Seq: uint64(2*i + 2)},
			}
			if err := h.Append(ctx, batch); err != nil {
				t.Fatal(err)
			}
			all = append(all, batch...)
		}
	}
	write(h, 0, 300)
	h, err := New(st, Config{Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	// The replay after a restart: duplicates only.
	replay := slices.Clone(all[len(all)-40:])
	if err := h.Append(ctx, replay); err != nil {
		t.Fatal(err)
	}
	if d := h.Stats().PointsDuplicate; d != 40 {
		t.Fatalf("%d duplicates, want 40", d)
	}
	write(h, 300, 600)

	docs := hotDocs(t, h, hour)
	if len(docs) != 600+600/16+600/256 {
		t.Fatalf("%d segments, want %d", len(docs), 600+600/16+600/256)
	}
	for key, p := range docs {
		l, i := key[0], key[1]
		var want []string
		for j := i * span(l); j < (i+1)*span(l); j++ {
			want = append(want, docs[[2]int{0, j}])
		}
		if p != joinPoints(want) {
			t.Fatalf("level %d segment %d holds other points than its writes", l, i)
		}
	}
	from, to := hour*hourSecs, hour*hourSecs+hourSecs-1
	check := func(h *Store, what string) {
		t.Helper()
		for _, q := range []struct{ step int64 }{{0}, {60}, {hourSecs}} {
			got := mustQuery(t, h, thing, KindSensor, from, to, q.step, FnAvg, 0)
			want := reference(all, thing, KindSensor, from, to, q.step, FnAvg, 0)
			if len(got) == 0 || !sameReadings(got, want) {
				t.Fatalf("%s, step %d: got %d readings %v, want %d", what, q.step, len(got), head(got), len(want))
			}
		}
	}
	check(h, "hot")
	// Lost higher-level segments are read from their children.
	coll := st.Database().Collection(hotName(hour))
	for _, id := range []string{segID(bucketKey{thing, KindSensor, hour}, 2, 1), segID(bucketKey{thing, KindSensor, hour}, 1, 3)} {
		if _, err := coll.DeleteOne(ctx, bson.D{{Key: "_id", Value: id}}); err != nil {
			t.Fatal(err)
		}
	}
	h2, err := New(st, Config{Now: c.Now}) // counts the segments itself
	if err != nil {
		t.Fatal(err)
	}
	check(h2, "hot, segments lost")

	// The hour settles.
	c.Set(time.Unix((hour+1)*hourSecs+1, 0))
	if _, err := h.Enforce(ctx); err != nil {
		t.Fatal(err)
	}
	if slices.Contains(collections(t, h), hotName(hour)) {
		t.Fatalf("hot collection of a settled hour not dropped")
	}
	check(h, "compacted")
	check(h2, "compacted, read by a process that did not compact")
	var c0 rawDoc
	if err := st.Database().Collection(partitionName(floorDiv(hour*hourSecs, daySecs))).FindOne(ctx,
		bson.D{{Key: "_id", Value: chunkID(thing, KindSensor, hour, 0)}}).Decode(&c0); err != nil {
		t.Fatal(err)
	}
	if c0.Chunks != (1200+chunkPoints-1)/chunkPoints || countPoints(c0.P) != chunkPoints || c0.Seq != 1200 {
		t.Fatalf("chunk 0: %d chunks, %d points, seq %d", c0.Chunks, countPoints(c0.P), c0.Seq)
	}
	// A late point for the settled hour goes to the chunks.
	late := Point{Thing: thing, Kind: KindSensor, TS: to, Value: "7", Seq: 1201}
	if err := h.Append(ctx, []Point{late}); err != nil {
		t.Fatal(err)
	}
	all = append(all, late)
	check(h, "late point")
}

// A compaction cut short by a crash left chunks behind without chunk 0;
// the next compaction replaces them. A hot collection whose hour was
// settled before a crash dropped it is dropped at the next start.
func TestInterruptedCompactionIsRedone(t *testing.T) {
	st, h, c, hour := hotHour(t, Config{})
	ctx := context.Background()
	thing := primitive.NewObjectID()
	var all []Point
	for i := 0; i < 10; i++ {
		var batch []Point
		for j := 0; j < 60; j++ {
			n := i*60 + j
			batch = append(batch, Point{Thing: thing, Kind: KindSensor, TS: hour*hourSecs + int64(n), Value: fmt.Sprint(n), Seq: uint64(n + 1)})
		}
		if err := h.Append(ctx, batch); err != nil {
			t.Fatal(err)
		}
		all = append(all, batch...)
	}
	part := st.Database().Collection(partitionName(floorDiv(hour*hourSecs, daySecs)))
	if _, err := part.InsertOne(ctx, bson.D{{Key: "_id", Value: chunkID(thing, KindSensor, hour, 1)}, {Key: "p", Value: []string{"5 999"}}, {Key: "seq", Value: int64(3)}}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Database().Collection(hotName(hour-30)).InsertOne(ctx, bson.D{{Key: "_id", Value: "x"}}); err != nil {
		t.Fatal(err)
	}
	c.Set(time.Unix((hour+1)*hourSecs, 0))
	if _, err := h.Enforce(ctx); err != nil {
		t.Fatal(err)
	}
	from, to := hour*hourSecs, hour*hourSecs+hourSecs-1
	got := mustQuery(t, h, thing, KindSensor, from, to, 0, "", 0)
	if want := reference(all, thing, KindSensor, from, to, 0, "", 0); !sameReadings(got, want) {
		t.Fatalf("after the compaction: %d readings %v, want %d", len(got), head(got), len(want))
	}
	h2, err := New(st, Config{Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h2.Enforce(ctx); err != nil {
		t.Fatal(err)
	}
	if slices.Contains(collections(t, h2), hotName(hour-30)) {
		t.Fatal("hot collection of a settled hour kept over a restart")
	}
}

// With a budget too small for more than one series a step, an hour that
// is over is compacted a series per Settle, without new points, and its
// hot collection dropped after the last.
func TestSettleStepsWithoutNewPoints(t *testing.T) {
	_, h, c, hour := hotHour(t, Config{CompactBudget: time.Nanosecond})
	ctx := context.Background()
	var pts []Point
	for i := 0; i < 5; i++ {
		pts = append(pts, Point{Thing: primitive.NewObjectID(), Kind: KindSwitch, TS: hour*hourSecs + int64(i), Value: "1", Seq: uint64(i + 1)})
	}
	if err := h.Append(ctx, pts); err != nil {
		t.Fatal(err)
	}
	c.Set(time.Unix((hour+1)*hourSecs, 0))
	for i := 1; i <= 5; i++ {
		if err := h.Settle(ctx); err != nil {
			t.Fatal(err)
		}
		st := h.Stats()
		if st.Compacted != uint64(i) || (i < 5) != (st.HotHours == 1) || (i == 5) != (st.Settles == 1) {
			t.Fatalf("after step %d: %d compacted, %d hot hours, %d settles", i, st.Compacted, st.HotHours, st.Settles)
		}
	}
	for _, p := range pts {
		if got := mustQuery(t, h, p.Thing, KindSwitch, hour*hourSecs, hour*hourSecs+hourSecs-1, hourSecs, FnLast, 0); len(got) != 1 || got[0].Value != "1" {
			t.Fatalf("hour of %s after compaction: %v", p.Thing.Hex(), got)
		}
	}
}

// The clock went back an hour and the process restarted: a point for
// the hour ahead, which has segments already, joins them instead of
// starting chunks in the partition that would hide them.
func TestClockBackKeepsAnHourWhole(t *testing.T) {
	st, h, c, hour := hotHour(t, Config{})
	ctx := context.Background()
	thing := primitive.NewObjectID()
	at := func(h *Store, ts int64, seq uint64) {
		t.Helper()
		if err := h.Append(ctx, []Point{{Thing: thing, Kind: KindSensor, TS: ts, Value: fmt.Sprint(seq), Seq: seq}}); err != nil {
			t.Fatal(err)
		}
	}
	at(h, hour*hourSecs+10, 1)
	c.Set(time.Unix((hour+1)*hourSecs+10, 0))
	at(h, (hour+1)*hourSecs+10, 2)
	c.Set(time.Unix(hour*hourSecs+1800, 0))
	h2, err := New(st, Config{Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	at(h2, (hour+1)*hourSecs+20, 3)
	check := func(what string) {
		t.Helper()
		got := mustQuery(t, h2, thing, KindSensor, (hour+1)*hourSecs, (hour+2)*hourSecs-1, 0, "", 0)
		if len(got) != 2 || got[0].Value != "2" || got[1].Value != "3" {
			t.Fatalf("%s: hour ahead reads %v", what, got)
		}
	}
	check("clock back")
	c.Set(time.Unix((hour+2)*hourSecs+5, 0))
	if err := h2.Settle(ctx); err != nil {
		t.Fatal(err)
	}
	check("compacted")
}

// A busy series: writes of more points than a segment may hold are split
// into several level-0 segments, higher-level segments that would be too
// large are left out, and the hour still reads right, also after a crash
// that lost the last piece of a split write (its replay stores it again)
// and after compaction, which streams many batches of chunks.
func TestBusySeriesSegmentsStaySmall(t *testing.T) {
	const segBytes = 2000
	st, h, c, hour := hotHour(t, Config{SegmentBytes: segBytes})
	ctx := context.Background()
	thing := primitive.NewObjectID()
	k := bucketKey{thing, KindSensor, hour}
	var all []Point
	n := 0
	write := func(h *Store, points int) []Point {
		t.Helper()
		var batch []Point
		for range points {
			ts := hour*hourSecs + int64(n)/30 // about 88 000 points in the hour
			batch = append(batch, Point{Thing: thing, Kind: KindSensor, TS: ts, Value: fmt.Sprint(n % 1000), Seq: uint64(n + 1)})
			n++
		}
		c.Set(time.Unix(batch[len(batch)-1].TS, 0))
		if err := h.Append(ctx, batch); err != nil {
			t.Fatal(err)
		}
		all = append(all, batch...)
		return batch
	}
	// Small writes first (level-1 segments of them fit), then writes of
	// up to ten segments each.
	for range 40 {
		write(h, 20)
	}
	for i := range 60 {
		write(h, 50+i*30)
	}
	docs := hotDocs(t, h, hour)
	levels := map[int]int{}
	for key, p := range docs {
		if len(p) > segBytes {
			t.Fatalf("level %d segment %d holds %d bytes", key[0], key[1], len(p))
		}
		levels[key[0]]++
	}
	if levels[1] == 0 || levels[0] <= 100 {
		t.Fatalf("segments by level %v: want level 1 for the small writes and split big ones", levels)
	}
	from, to := hour*hourSecs, hour*hourSecs+hourSecs-1
	check := func(h *Store, what string) {
		t.Helper()
		for _, step := range []int64{0, 60, hourSecs} {
			got := mustQuery(t, h, thing, KindSensor, from, to, step, FnAvg, 0)
			want := reference(all, thing, KindSensor, from, to, step, FnAvg, 0)
			if len(got) == 0 || !sameReadings(got, want) {
				t.Fatalf("%s, step %d: got %d readings %v, want %d", what, step, len(got), head(got), len(want))
			}
		}
	}
	check(h, "hot")

	// A crash after the first pieces of a split write: the last is lost,
	// and the journal's replay of the whole write stores it again.
	last := write(h, 600)
	docs = hotDocs(t, h, hour)
	top := -1
	for key := range docs {
		if key[0] == 0 {
			top = max(top, key[1])
		}
	}
	if _, err := st.Database().Collection(hotName(hour)).DeleteOne(ctx, bson.D{{Key: "_id", Value: segID(k, 0, top)}}); err != nil {
		t.Fatal(err)
	}
	h2, err := New(st, Config{Now: c.Now, SegmentBytes: segBytes})
	if err != nil {
		t.Fatal(err)
	}
	if err := h2.Append(ctx, last); err != nil {
		t.Fatal(err)
	}
	check(h2, "after a lost piece and its replay")

	// Compaction: many batches of chunks.
	for range 30 {
		write(h2, 1000)
	}
	c.Set(time.Unix((hour+1)*hourSecs, 0))
	for i := 0; h2.Stats().HotHours > 0; i++ {
		if err := h2.Settle(ctx); err != nil || i == 100 {
			t.Fatalf("settle %d: %v", i, err)
		}
	}
	if len(all) < 2*compactBatch*chunkPoints {
		t.Fatalf("only %d points: compaction writes one batch", len(all))
	}
	check(h2, "compacted")
	var c0 struct {
		Chunks int `bson:"chunks"`
	}
	part := st.Database().Collection(partitionName(floorDiv(hour*hourSecs, daySecs)))
	if err := part.FindOne(ctx, bson.D{{Key: "_id", Value: chunkID(thing, KindSensor, hour, 0)}}).Decode(&c0); err != nil {
		t.Fatal(err)
	}
	if want := (len(all) + chunkPoints - 1) / chunkPoints; c0.Chunks != want {
		t.Fatalf("chunk 0 counts %d chunks, want %d", c0.Chunks, want)
	}
	h3, err := New(st, Config{Now: c.Now, SegmentBytes: segBytes})
	if err != nil {
		t.Fatal(err)
	}
	check(h3, "compacted, read by a new process")
}

// TestCachedSummariesHoldNoPayloads: a bucket's cached summary keeps
// copies of its first and last values, not the stored segments or chunks
// they were cut from. The heap after loading, compacting and reading back
// a compacted hour must not grow with the points' bytes.
func TestCachedSummariesHoldNoPayloads(t *testing.T) {
	const series, perSeries = 300, 1000
	st, h, c, hour := hotHour(t, Config{})
	ctx := context.Background()
	things := make([]primitive.ObjectID, series)
	for i := range things {
		things[i] = primitive.NewObjectID()
	}
	point := func(th primitive.ObjectID, i int) Point {
		// Long values, so that the payloads dwarf everything else.
		return Point{Thing: th, Kind: KindSensor, TS: hour*hourSecs + int64(i),
			Value: fmt.Sprintf("%d.123456789012345678901234567", i), Seq: uint64(i + 1)}
	}
	payload := 0
	func() {
		var pts []Point
		for i := range perSeries {
			for _, th := range things {
				p := point(th, i)
				payload += len(p.Value) + 5
				pts = append(pts, p)
			}
		}
		if err := h.Append(ctx, pts); err != nil {
			t.Fatal(err)
		}
	}()
	h = nil
	heap := func() uint64 {
		var ms runtime.MemStats
		// Twice: pooled buffers go at the second collection.
		runtime.GC()
		runtime.GC()
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	var base uint64
	check := func(h *Store, what string) {
		t.Helper()
		grew := int64(heap()) - int64(base)
		runtime.KeepAlive(h) // its bucket cache is what is measured
		t.Logf("%s: heap grew by %d bytes (%d bytes of points)", what, grew, payload)
		if grew > int64(payload/8) {
			t.Fatalf("%s: heap grew by %d bytes for %d bytes of points", what, grew, payload)
		}
	}
	// A new process loads every bucket from its segments.
	h2, err := New(st, Config{Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	base = heap()
	more := func(h *Store, i int) {
		t.Helper()
		var pts []Point
		for _, th := range things {
			pts = append(pts, point(th, i))
		}
		if err := h.Append(ctx, pts); err != nil {
			t.Fatal(err)
		}
	}
	more(h2, perSeries)
	check(h2, "loaded from segments")
	c.Set(time.Unix((hour+1)*hourSecs, 0))
	for i := 0; h2.Stats().HotHours > 0; i++ {
		if err := h2.Settle(ctx); err != nil || i == 100 {
			t.Fatalf("settle %d: %v", i, err)
		}
	}
	check(h2, "compacted")
	// Another process loads the compacted buckets from their chunks for
	// a late point.
	h2 = nil
	h3, err := New(st, Config{Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	more(h3, perSeries+1)
	check(h3, "loaded from chunks")
	got := mustQuery(t, h3, things[7], KindSensor, hour*hourSecs, hour*hourSecs+hourSecs-1, hourSecs, FnLast, 0)
	if want := point(things[7], perSeries+1).Value; len(got) != 1 || got[0].Value != want {
		t.Fatalf("last of the hour %v, want %s", got, want)
	}
}

// TestMergesSpreadOverWrites: series written in step complete their
// level-2 segments in the same write; those are made a budget at a time
// over the following writes, and queries are right meanwhile.
func TestMergesSpreadOverWrites(t *testing.T) {
	const series, segBytes = 20, 4000
	st, h, c, hour := hotHour(t, Config{SegmentBytes: segBytes})
	ctx := context.Background()
	things := make([]primitive.ObjectID, series)
	for i := range things {
		things[i] = primitive.NewObjectID()
	}
	var all []Point
	w := 0
	write := func() {
		t.Helper()
		var pts []Point
		for j, th := range things {
			pts = append(pts, Point{Thing: th, Kind: KindSensor, TS: hour*hourSecs + int64(w), Value: fmt.Sprint(w*7 + j), Seq: uint64(w + 1)})
		}
		c.Set(time.Unix(hour*hourSecs+int64(w), 0))
		if err := h.Append(ctx, pts); err != nil {
			t.Fatal(err)
		}
		all = append(all, pts...)
		w++
	}
	// level2 reads the level-2 segments of all series.
	level2 := func() []segDoc {
		t.Helper()
		var out []segDoc
		for _, d := range allSegs(t, h, hour) {
			if strings.Split(d.ID, ":")[2] == "2" {
				out = append(out, segDoc{P: d.P, Seq: d.Seq})
			}
		}
		return out
	}
	from, to := hour*hourSecs, hour*hourSecs+hourSecs-1
	check := func(h *Store, what string) {
		t.Helper()
		for _, th := range []primitive.ObjectID{things[0], things[series-1]} {
			got := mustQuery(t, h, th, KindSensor, from, to, 0, FnAvg, 0)
			if want := reference(all, th, KindSensor, from, to, 0, FnAvg, 0); !sameReadings(got, want) {
				t.Fatalf("%s: got %d readings, want %d", what, len(got), len(want))
			}
		}
	}
	for range span(2) {
		write()
	}
	// Each level-2 segment holds 256 points of 3–5 bytes and a
	// separator: about 1 500 bytes, so a write makes three.
	if n := len(level2()); n == 0 || n > 3 {
		t.Fatalf("%d level-2 segments after the write that completes them for %d series, want 1–3", n, series)
	}
	check(h, "merges queued")
	for range 10 {
		write()
	}
	if n := len(level2()); n != series {
		t.Fatalf("%d level-2 segments ten writes later, want %d", n, series)
	}
	check(h, "merged")
	for _, d := range level2() {
		// Its seq is its last child's, not the bucket's when it was made.
		if n := strings.Count(d.P, pointSep) + 1; n != span(2) || d.Seq != int64(span(2)) {
			t.Fatalf("a level-2 segment holds %d points and seq %d, want %d and %d", n, d.Seq, span(2), span(2))
		}
	}
	h2, err := New(st, Config{Now: c.Now, SegmentBytes: segBytes})
	if err != nil {
		t.Fatal(err)
	}
	check(h2, "read by a new process")
}

// TestMergesOfAnHourOverAreDropped: merges still queued when their hour
// ends are not made; compaction reads their children.
func TestMergesOfAnHourOverAreDropped(t *testing.T) {
	const series = 20
	// One bucket compacted per settle: the hour stays hot for a while.
	_, h, c, hour := hotHour(t, Config{SegmentBytes: 4000, CompactBudget: time.Nanosecond})
	ctx := context.Background()
	var all []Point
	things := make([]primitive.ObjectID, series)
	for i := range things {
		things[i] = primitive.NewObjectID()
	}
	for w := range span(2) {
		var pts []Point
		for j, th := range things {
			pts = append(pts, Point{Thing: th, Kind: KindSensor, TS: hour*hourSecs + int64(w), Value: fmt.Sprint(w + j), Seq: uint64(w + 1)})
		}
		c.Set(time.Unix(hour*hourSecs+int64(w), 0))
		if err := h.Append(ctx, pts); err != nil {
			t.Fatal(err)
		}
		all = append(all, pts...)
	}
	if len(h.merges) < series-3 {
		t.Fatalf("%d merges queued, want at least %d", len(h.merges), series-3)
	}
	c.Set(time.Unix((hour+1)*hourSecs, 0))
	if err := h.Settle(ctx); err != nil {
		t.Fatal(err)
	}
	if len(h.merges) != 0 {
		t.Fatalf("%d merges still queued after their hour ended", len(h.merges))
	}
	for i := 0; h.Stats().HotHours > 0; i++ {
		if err := h.Settle(ctx); err != nil || i == 100 {
			t.Fatalf("settle %d: %v", i, err)
		}
	}
	from, to := hour*hourSecs, hour*hourSecs+hourSecs-1
	got := mustQuery(t, h, things[5], KindSensor, from, to, 0, FnAvg, 0)
	if want := reference(all, things[5], KindSensor, from, to, 0, FnAvg, 0); !sameReadings(got, want) {
		t.Fatalf("got %d readings, want %d", len(got), len(want))
	}
}

// A series that stops being written loses its tail at the next Settle
// once it has been idle for idleTailSecs, unless the tail is small; when
// it goes on, its level-1 segment is read back from its children.
func TestIdleTailsAreDropped(t *testing.T) {
	_, h, c, hour := hotHour(t, Config{})
	ctx := context.Background()
	busy, slow := primitive.NewObjectID(), primitive.NewObjectID()
	const perWrite = 100 // the busy series' points per write
	var all []Point
	write := func(w int) {
		t.Helper()
		base := hour*hourSecs + int64(w*perWrite)
		pts := []Point{{Thing: slow, Kind: KindSensor, TS: base, Value: fmt.Sprint(w), Seq: uint64(w*(perWrite+1) + 1)}}
		for j := range perWrite {
			pts = append(pts, Point{Thing: busy, Kind: KindSensor, TS: base + int64(j), Value: fmt.Sprint(1000 + w*perWrite + j), Seq: uint64(w*(perWrite+1) + 2 + j)})
		}
		c.Set(time.Unix(base+perWrite-1, 0))
		if err := h.Append(ctx, pts); err != nil {
			t.Fatal(err)
		}
		all = append(all, pts...)
	}
	for w := range 5 {
		write(w)
	}
	bk, sk := bucketKey{thing: busy, kind: KindSensor, hour: hour}, bucketKey{thing: slow, kind: KindSensor, hour: hour}
	tails := func() (int, int) { return len(h.cache[bk].tail), len(h.cache[sk].tail) }
	if b, s := tails(); b != 5 || s != 5 {
		t.Fatalf("tails of %d and %d segments after 5 writes, want 5 and 5", b, s)
	}
	c.Set(c.Now().Add((idleTailSecs - 1) * time.Second))
	if err := h.Settle(ctx); err != nil {
		t.Fatal(err)
	}
	if b, _ := tails(); b != 5 {
		t.Fatalf("the busy series' tail was dropped after %d s idle", idleTailSecs-1)
	}
	c.Set(c.Now().Add(time.Second))
	if err := h.Settle(ctx); err != nil {
		t.Fatal(err)
	}
	if b, s := tails(); b != 0 || s != 5 || h.cache[bk].tailOK {
		t.Fatalf("after %d s idle: tails of %d and %d segments, want the busy one dropped (0) and the small one kept (5)", idleTailSecs, b, s)
	}

	// The series go on and complete their first level-1 segment.
	for w := 5; w < fanout; w++ {
		write(w)
	}
	level1 := map[string]int{} // series -> points in its level-1 segment
	for _, d := range allSegs(t, h, hour) {
		if f := strings.Split(d.ID, ":"); f[2] == "1" {
			level1[f[0]] = strings.Count(d.P, pointSep) + 1
		}
	}
	if level1[busy.Hex()] != fanout*perWrite || level1[slow.Hex()] != fanout {
		t.Fatalf("level-1 segments (points by series): %v, want %d for the busy series (read back) and %d for the slow one (from its tail)", level1, fanout*perWrite, fanout)
	}
	from, to := hour*hourSecs, hour*hourSecs+hourSecs-1
	for _, th := range []primitive.ObjectID{busy, slow} {
		if got, want := mustQuery(t, h, th, KindSensor, from, to, 0, FnAvg, 0), reference(all, th, KindSensor, from, to, 0, FnAvg, 0); !sameReadings(got, want) {
			t.Fatalf("got %d readings, want %d", len(got), len(want))
		}
	}
}
