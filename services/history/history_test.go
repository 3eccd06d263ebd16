package history

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/piot-appliance/piot/internal/testclock"
	"github.com/piot-appliance/piot/services/store"
	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/bson/primitive"
)

func openStore(tb testing.TB) *store.Store {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	st, err := store.Open(ctx, store.Config{DataDir: tb.TempDir()})
	if err != nil {
		tb.Fatalf("open store: %v", err)
	}
	tb.Cleanup(func() { _ = st.Close(context.Background()) })
	return st
}

var day0 = time.Date(2026, 11, 5, 0, 0, 0, 0, time.UTC).Unix()

func newHistory(tb testing.TB, st *store.Store, cfg Config) (*Store, *testclock.Clock) {
	tb.Helper()
	c := testclock.New(time.Unix(day0+3*daySecs, 0))
	if cfg.Now == nil {
		cfg.Now = c.Now
	}
	h, err := New(st, cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return h, c
}

func mustQuery(tb testing.TB, h *Store, thing store.ID, kind string, from, to, step int64, fn Fn, first int) []Reading {
	tb.Helper()
	r, err := h.Query(context.Background(), thing, kind, from, to, step, fn, first)
	if err != nil {
		tb.Fatalf("query: %v", err)
	}
	return r
}

func TestRawRoundTrip(t *testing.T) {
	st := openStore(t)
	h, _ := newHistory(t, st, Config{})
	ctx := context.Background()
	thing := primitive.NewObjectID()
	other := primitive.NewObjectID()
	var pts []Point
	for i := 0; i < 180; i++ { // 3 hours at one per minute
		pts = append(pts, Point{Thing: thing, Kind: KindSensor, TS: day0 + int64(i)*60, Value: fmt.Sprint(20 + i%7)})
	}
	pts = append(pts, Point{Thing: other, Kind: KindSensor, TS: day0, Value: "99"})
	if err := h.Append(ctx, pts); err != nil {
		t.Fatal(err)
	}
	got := mustQuery(t, h, thing, KindSensor, day0, day0+3*hourSecs, 0, "", 0)
	if len(got) != 180 {
		t.Fatalf("%d readings", len(got))
	}
	for i, r := range got {
		if r.TS != day0+int64(i)*60 || r.Value != fmt.Sprint(20+i%7) {
			t.Fatalf("reading %d = %+v", i, r)
		}
	}
	// Range bounds are inclusive, and first caps from the start.
	got = mustQuery(t, h, thing, KindSensor, day0+60, day0+120, 0, "", 0)
	if len(got) != 2 || got[0].TS != day0+60 || got[1].TS != day0+120 {
		t.Fatalf("bounded: %+v", got)
	}
	got = mustQuery(t, h, thing, KindSensor, day0, day0+3*hourSecs, 0, "", 5)
	if len(got) != 5 || got[4].TS != day0+240 {
		t.Fatalf("first 5: %+v", got)
	}
	// Other things and kinds are separate series.
	if got := mustQuery(t, h, other, KindSensor, day0, day0+hourSecs, 0, "", 0); len(got) != 1 || got[0].Value != "99" {
		t.Fatalf("other thing: %+v", got)
	}
	if got := mustQuery(t, h, thing, KindBattery, day0, day0+hourSecs, 0, "", 0); len(got) != 0 {
		t.Fatalf("other kind: %+v", got)
	}
	if s := h.Stats(); s.PointsWritten != 181 || s.Partitions != 1 {
		t.Fatalf("stats %+v", s)
	}
}

// reference computes what Query must return, by brute force.
func reference(pts []Point, thing store.ID, kind string, from, to, step int64, fn Fn, first int) []Reading {
	var sel []Point
	for _, p := range pts {
		if p.Thing == thing && p.Kind == kind && p.TS >= from && p.TS <= to {
			sel = append(sel, p)
		}
	}
	sort.SliceStable(sel, func(i, j int) bool { return sel[i].TS < sel[j].TS })
	var out []Reading
	if step == 0 {
		for _, p := range sel {
			out = append(out, Reading{p.TS, p.Value})
		}
	} else {
		b := buckets{}
		for _, p := range sel {
			b.at(p.TS, step).add(p.TS, p.Value)
		}
		q := query{fn: fn}
		out = q.result(b)
	}
	if first > 0 && len(out) > first {
		out = out[:first]
	}
	return out
}

func sameReadings(a, b []Reading) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].TS != b[i].TS {
			return false
		}
		if a[i].Value != b[i].Value {
			// Sums of floats may differ in the last bit with another order.
			fa, oka := numeric(a[i].Value)
			fb, okb := numeric(b[i].Value)
			if !oka || !okb || fa-fb > 1e-9 || fb-fa > 1e-9 {
				return false
			}
		}
	}
	return true
}

// Queries of every shape agree with a brute-force computation over the
// same points, whether answered from raw buckets or from rollups.
func TestQueriesMatchReference(t *testing.T) {
	st := openStore(t)
	h, _ := newHistory(t, st, Config{})
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(7, 8))
	things := []store.ID{primitive.NewObjectID(), primitive.NewObjectID()}
	var all []Point
	for _, th := range things {
		ts := day0 - 2*hourSecs
		for ts < day0+2*daySecs+5*hourSecs {
			v := fmt.Sprintf("%.1f", rng.Float64()*40-10)
			if rng.IntN(50) == 0 {
				v = "n/a" // not a number: counts for last, not for avg
			}
			all = append(all, Point{Thing: th, Kind: KindSensor, TS: ts, Value: v})
			ts += int64(30 + rng.IntN(600))
		}
	}
	// Write in several batches like the ingest does.
	for i := 0; i < len(all); i += 97 {
		if err := h.Append(ctx, all[i:min(i+97, len(all))]); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		from, to, step int64
		fn             Fn
		first          int
	}{
		{day0, day0 + daySecs - 1, 0, "", 0},
		{day0 - 7000, day0 + 12345, 0, "", 0},
		{day0 - 7000, day0 + 2*daySecs, 0, "", 10},
		{day0, day0 + 2*daySecs - 1, hourSecs, FnAvg, 0},
		{day0, day0 + 2*daySecs - 1, hourSecs, FnMin, 0},
		{day0, day0 + 2*daySecs - 1, hourSecs, FnMax, 0},
		{day0, day0 + 2*daySecs - 1, hourSecs, FnLast, 0},
		{day0 - 5000, day0 + 2*daySecs + 777, hourSecs, FnAvg, 0}, // partial edge hours
		{day0 + 100, day0 + 200, hourSecs, FnAvg, 0},              // inside one hour
		{day0 - 5000, day0 + 2*daySecs + 777, 3 * hourSecs, FnMax, 0},
		{day0 - 5000, day0 + 2*daySecs + 777, daySecs, FnAvg, 0},
		{day0 - 5000, day0 + 2*daySecs + 777, 300, FnAvg, 0}, // raw path
		{day0 - 5000, day0 + 2*daySecs + 777, 5400, FnLast, 0},
		{day0, day0 + 2*daySecs, hourSecs, FnAvg, 7},
	}
	for _, c := range cases {
		for _, th := range things {
			got := mustQuery(t, h, th, KindSensor, c.from, c.to, c.step, c.fn, c.first)
			want := reference(all, th, KindSensor, c.from, c.to, c.step, c.fn, c.first)
			if !sameReadings(got, want) {
				t.Fatalf("case %+v: got %d readings, want %d\n got %v\nwant %v", c, len(got), len(want), head(got), head(want))
			}
		}
	}
}

func head(r []Reading) []Reading { return r[:min(len(r), 5)] }

// Points carrying journal sequence numbers are stored once however often
// they are appended, also by a fresh process (cold cache).
func TestReplayIsIdempotent(t *testing.T) {
	st := openStore(t)
	h, _ := newHistory(t, st, Config{})
	ctx := context.Background()
	thing := primitive.NewObjectID()
	var pts []Point
	for i := 0; i < 120; i++ {
		pts = append(pts, Point{Thing: thing, Kind: KindSensor, TS: day0 + int64(i)*60, Value: fmt.Sprint(i), Seq: uint64(1000 + i)})
	}
	if err := h.Append(ctx, pts[:80]); err != nil {
		t.Fatal(err)
	}
	// The same process sees a replay of 40 known and 40 new points.
	if err := h.Append(ctx, pts[40:]); err != nil {
		t.Fatal(err)
	}
	// A restarted process replays everything again.
	h2, _ := newHistory(t, st, Config{})
	if err := h2.Append(ctx, pts); err != nil {
		t.Fatal(err)
	}
	got := mustQuery(t, h2, thing, KindSensor, day0, day0+2*hourSecs, 0, "", 0)
	if len(got) != 120 {
		t.Fatalf("%d readings after replays, want 120", len(got))
	}
	agg := mustQuery(t, h2, thing, KindSensor, day0, day0+2*hourSecs-1, hourSecs, FnAvg, 0)
	if len(agg) != 2 || agg[0].Value != "29.5" || agg[1].Value != "89.5" {
		t.Fatalf("hourly avg %+v", agg)
	}
	if d := h.Stats().PointsDuplicate + h2.Stats().PointsDuplicate; d != 40+120 {
		t.Fatalf("duplicates counted %d", d)
	}
	if h2.Stats().CacheMisses == 0 {
		t.Fatal("fresh store did not load bucket state")
	}
}

// A rollup that lags behind its raw bucket (a crash between the two
// writes) is rewritten from the raw bucket on the next touch.
func TestStaleRollupRepairedFromRaw(t *testing.T) {
	st := openStore(t)
	h, _ := newHistory(t, st, Config{})
	ctx := context.Background()
	thing := primitive.NewObjectID()
	pts := []Point{
		{Thing: thing, Kind: KindBattery, TS: day0 + 10, Value: "50", Seq: 1},
		{Thing: thing, Kind: KindBattery, TS: day0 + 20, Value: "40", Seq: 2},
	}
	if err := h.Append(ctx, pts); err != nil {
		t.Fatal(err)
	}
	coll := st.Database().Collection(partitionName(floorDiv(day0, daySecs)))
	if _, err := coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: rollupID(thing, KindBattery, floorDiv(day0, daySecs))}},
		bson.D{{Key: "$unset", Value: bson.D{{Key: "h00", Value: ""}}}}); err != nil {
		t.Fatal(err)
	}
	h2, _ := newHistory(t, st, Config{})
	if err := h2.Append(ctx, pts); err != nil { // replay: nothing new
		t.Fatal(err)
	}
	got := mustQuery(t, h2, thing, KindBattery, day0, day0+hourSecs-1, hourSecs, FnAvg, 0)
	if len(got) != 1 || got[0].Value != "45" {
		t.Fatalf("rollup after repair: %+v", got)
	}
}

func TestEveryKeepsFirstPointPerInterval(t *testing.T) {
	st := openStore(t)
	h, _ := newHistory(t, st, Config{})
	ctx := context.Background()
	thing := primitive.NewObjectID()
	var pts []Point
	for i := 0; i < 30; i++ { // every 10 s for 5 minutes
		pts = append(pts, Point{Thing: thing, Kind: KindSensor, TS: day0 + 5 + int64(i)*10, Value: fmt.Sprint(i), Every: 60})
	}
	if err := h.Append(ctx, pts[:13]); err != nil {
		t.Fatal(err)
	}
	if err := h.Append(ctx, pts[13:]); err != nil {
		t.Fatal(err)
	}
	got := mustQuery(t, h, thing, KindSensor, day0, day0+hourSecs, 0, "", 0)
	want := []string{"0", "6", "12", "18", "24"} // first of each minute
	if len(got) != len(want) {
		t.Fatalf("kept %+v", got)
	}
	for i, r := range got {
		if r.Value != want[i] {
			t.Fatalf("kept %+v, want values %v", got, want)
		}
	}
	if h.Stats().PointsThinned != 25 {
		t.Fatalf("thinned %d", h.Stats().PointsThinned)
	}
	// After a restart the last kept time is reloaded from the bucket.
	h2, _ := newHistory(t, st, Config{})
	if err := h2.Append(ctx, []Point{{Thing: thing, Kind: KindSensor, TS: day0 + 5 + 29*10 + 1, Value: "late", Every: 60}}); err != nil {
		t.Fatal(err)
	}
	if n := len(mustQuery(t, h2, thing, KindSensor, day0, day0+hourSecs, 0, "", 0)); n != 5 {
		t.Fatalf("after restart %d points", n)
	}
}

func TestNonNumericSeries(t *testing.T) {
	st := openStore(t)
	h, _ := newHistory(t, st, Config{})
	ctx := context.Background()
	thing := primitive.NewObjectID()
	loc1 := `{"lat":50.1,"lng":14.4,"sat":5}`
	loc2 := `{"lat":50.2,"lng":14.5,"sat":6}`
	if err := h.Append(ctx, []Point{
		{Thing: thing, Kind: KindLocation, TS: day0 + 100, Value: loc1},
		{Thing: thing, Kind: KindLocation, TS: day0 + 200, Value: loc2},
	}); err != nil {
		t.Fatal(err)
	}
	if got := mustQuery(t, h, thing, KindLocation, day0, day0+hourSecs, 0, "", 0); len(got) != 2 || got[1].Value != loc2 {
		t.Fatalf("raw %+v", got)
	}
	if got := mustQuery(t, h, thing, KindLocation, day0, day0+hourSecs-1, hourSecs, FnLast, 0); len(got) != 1 || got[0].Value != loc2 {
		t.Fatalf("last %+v", got)
	}
	if got := mustQuery(t, h, thing, KindLocation, day0, day0+hourSecs-1, hourSecs, FnAvg, 0); len(got) != 0 {
		t.Fatalf("avg of locations %+v", got)
	}
}

func TestInvalidPointsAndQueries(t *testing.T) {
	st := openStore(t)
	h, _ := newHistory(t, st, Config{})
	ctx := context.Background()
	thing := primitive.NewObjectID()
	if err := h.Append(ctx, []Point{
		{Thing: thing, Kind: "weird", TS: day0, Value: "1"},
		{Thing: primitive.NilObjectID, Kind: KindSensor, TS: day0, Value: "1"},
		{Thing: thing, Kind: KindSensor, TS: -5, Value: "1"},
		{Thing: thing, Kind: KindSensor, TS: day0, Value: strings.Repeat("x", MaxValueLen+1)},
	}); err != nil {
		t.Fatal(err)
	}
	if s := h.Stats(); s.PointsInvalid != 4 || s.PointsWritten != 0 {
		t.Fatalf("stats %+v", s)
	}
	bad := []struct {
		kind           string
		from, to, step int64
		fn             Fn
		first          int
	}{
		{"weird", 1, 2, 0, "", 0},
		{KindSensor, 5, 2, 0, "", 0},
		{KindSensor, 1, 2, -1, "", 0},
		{KindSensor, 1, 2, 60, "median", 0},
		{KindSensor, 1, 2, 0, "", -1},
	}
	for _, b := range bad {
		if _, err := h.Query(ctx, thing, b.kind, b.from, b.to, b.step, b.fn, b.first); !errors.Is(err, ErrBadQuery) {
			t.Errorf("%+v: err %v", b, err)
		}
	}
}

func TestPartitionsGetTheIDIndex(t *testing.T) {
	st := openStore(t)
	h, _ := newHistory(t, st, Config{})
	ctx := context.Background()
	if err := h.Append(ctx, []Point{{Thing: primitive.NewObjectID(), Kind: KindSensor, TS: day0 + 5, Value: "1"}}); err != nil {
		t.Fatal(err)
	}
	name := partitionName(floorDiv(day0, daySecs))
	if name != "history_2026_11_05" {
		t.Fatalf("partition name %s", name)
	}
	plan, err := st.IDQueryPlan(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(plan, "USING INDEX") {
		t.Fatalf("partition lookups scan:\n%s", plan)
	}
}

func TestRetentionByAge(t *testing.T) {
	st := openStore(t)
	h, clk := newHistory(t, st, Config{Retention: 2 * 24 * time.Hour})
	ctx := context.Background()
	thing := primitive.NewObjectID()
	clk.Set(time.Unix(day0+3*daySecs+10, 0))
	var pts []Point
	for d := int64(0); d < 4; d++ {
		pts = append(pts, Point{Thing: thing, Kind: KindSensor, TS: day0 + d*daySecs + 100, Value: fmt.Sprint(d)})
	}
	if err := h.Append(ctx, pts); err != nil {
		t.Fatal(err)
	}
	// Day 0 ended more than 2 days ago: its point was already refused.
	if s := h.Stats(); s.PointsExpired != 1 || s.Partitions != 3 {
		t.Fatalf("stats %+v", s)
	}
	clk.Set(time.Unix(day0+4*daySecs+10, 0))
	dropped, err := h.Enforce(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(dropped) != 1 || dropped[0] != partitionName(floorDiv(day0, daySecs)+1) {
		t.Fatalf("dropped %v", dropped)
	}
	names, _ := st.Database().ListCollectionNames(ctx, bson.D{})
	for _, n := range names {
		if n == dropped[0] {
			t.Fatal("collection still exists")
		}
	}
	got := mustQuery(t, h, thing, KindSensor, day0, day0+4*daySecs, 0, "", 0)
	if len(got) != 2 || got[0].Value != "2" {
		t.Fatalf("after retention %+v", got)
	}
	if h.Stats().PartitionsDropped != 1 {
		t.Fatal("drop not counted")
	}
}

func TestRetentionBySize(t *testing.T) {
	st := openStore(t)
	h, clk := newHistory(t, st, Config{MaxBytes: 12_000})
	ctx := context.Background()
	clk.Set(time.Unix(day0+3*daySecs, 0))
	thing := primitive.NewObjectID()
	var pts []Point
	for d := int64(0); d < 3; d++ {
		for i := int64(0); i < 300; i++ {
			pts = append(pts, Point{Thing: thing, Kind: KindSensor, TS: day0 + d*daySecs + i*60, Value: "21.5"})
		}
	}
	if err := h.Append(ctx, pts); err != nil {
		t.Fatal(err)
	}
	before := h.Stats().EstimatedBytes
	if before <= 12_000 {
		t.Fatalf("estimate %d too small for the test", before)
	}
	dropped, err := h.Enforce(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(dropped) == 0 || dropped[0] != partitionName(floorDiv(day0, daySecs)) {
		t.Fatalf("dropped %v", dropped)
	}
	if s := h.Stats(); s.EstimatedBytes > 12_000 && s.Partitions > 1 {
		t.Fatalf("still over the cap: %+v", s)
	}
	// A restarted process reads the estimate back.
	h2, _ := newHistory(t, st, Config{MaxBytes: 12_000})
	if _, err := h2.Enforce(ctx); err != nil {
		t.Fatal(err)
	}
	if h2.Stats().EstimatedBytes != h.Stats().EstimatedBytes {
		t.Fatalf("estimate after restart %d, before %d", h2.Stats().EstimatedBytes, h.Stats().EstimatedBytes)
	}
	// The newest partition is never dropped, even above the cap.
	h3, _ := newHistory(t, st, Config{MaxBytes: 1})
	if _, err := h3.Enforce(ctx); err != nil {
		t.Fatal(err)
	}
	if h3.Stats().Partitions != 1 {
		t.Fatalf("%d partitions left", h3.Stats().Partitions)
	}
	// Points for dropped days are refused.
	if err := h.Append(ctx, []Point{{Thing: thing, Kind: KindSensor, TS: day0 + 5, Value: "1"}}); err != nil {
		t.Fatal(err)
	}
	if h.Stats().PointsExpired == 0 {
		t.Fatal("point for a dropped day accepted")
	}
}

// The size estimate stays within a factor of two of SQLite's page usage.
func TestSizeEstimate(t *testing.T) {
	st := openStore(t)
	h, _ := newHistory(t, st, Config{})
	ctx := context.Background()
	var pts []Point
	for th := 0; th < 50; th++ {
		thing := primitive.NewObjectID()
		for i := int64(0); i < 24*60; i += 1 {
			pts = append(pts, Point{Thing: thing, Kind: KindSensor, TS: day0 + i*60, Value: fmt.Sprintf("%.1f", float64(i%300)/10)})
		}
	}
	for i := 0; i < len(pts); i += 5000 {
		if err := h.Append(ctx, pts[i:min(i+5000, len(pts))]); err != nil {
			t.Fatal(err)
		}
	}
	var res bson.M
	if err := st.Database().RunCommand(ctx, bson.D{{Key: "collStats", Value: partitionName(floorDiv(day0, daySecs))}}).Decode(&res); err != nil {
		t.Fatal(err)
	}
	actual := toInt64(res["size"])
	est := h.Stats().EstimatedBytes
	t.Logf("points %d: estimated %d bytes, SQLite %d bytes (%.1f bytes/point)", len(pts), est, actual, float64(actual)/float64(len(pts)))
	if actual == 0 || est*2 < actual || est > actual*2 {
		t.Fatalf("estimate %d vs actual %d", est, actual)
	}
}

func toInt64(v any) int64 {
	switch x := v.(type) {
	case int32:
		return int64(x)
	case int64:
		return x
	case float64:
		return int64(x)
	}
	return 0
}

func TestStatsEncoding(t *testing.T) {
	var st stats
	for _, p := range []struct {
		ts int64
		v  string
	}{{10, `{"lat":1,"lng":2,"sat":3}`}, {5, "say \"hi\" \n"}, {20, "-1.25e-7"}, {20, "ünï cödé"}, {7, "3"}} {
		st.add(p.ts, p.v)
	}
	got, err := decodeStats(st.encode())
	if err != nil || got != st {
		t.Fatalf("round trip: %+v %v, want %+v", got, err, st)
	}
	for _, bad := range []string{"", "1 2 3", "1 1 0 0 0 5 5 \"a\"", "x 1 0 0 0 5 5 \"a\" \"b\""} {
		if _, err := decodeStats(bad); err == nil {
			t.Errorf("%q decoded", bad)
		}
	}
}

// A busy series spills into further chunks of its hour; queries, replays
// and a restarted writer see every point once, also after a crash that
// stored chunks but not chunk 0's count of them.
func TestBusyHourSpillsIntoChunks(t *testing.T) {
	st := openStore(t)
	h, _ := newHistory(t, st, Config{})
	ctx := context.Background()
	thing := primitive.NewObjectID()
	const n = 3*chunkPoints + 100
	var pts []Point
	for i := 0; i < n; i++ {
		pts = append(pts, Point{Thing: thing, Kind: KindSensor, TS: day0 + int64(i*3600/n), Value: fmt.Sprint(i), Seq: uint64(1 + i)})
	}
	// Batches of uneven sizes, crossing chunk borders.
	for lo := 0; lo < n; {
		hi := min(n, lo+300+lo%7)
		if err := h.Append(ctx, pts[lo:hi]); err != nil {
			t.Fatal(err)
		}
		lo = hi
	}
	check := func(h *Store, want int) {
		t.Helper()
		got := mustQuery(t, h, thing, KindSensor, day0, day0+hourSecs-1, 0, "", 0)
		if len(got) != want {
			t.Fatalf("%d readings, want %d", len(got), want)
		}
		for i, r := range got {
			if r.Value != fmt.Sprint(i) {
				t.Fatalf("reading %d = %q", i, r.Value)
			}
		}
	}
	check(h, n)
	coll := st.Database().Collection(partitionName(floorDiv(day0, daySecs)))
	var c0 rawDoc
	if err := coll.FindOne(ctx, bson.D{{Key: "_id", Value: chunkID(thing, KindSensor, floorDiv(day0, hourSecs), 0)}}).Decode(&c0); err != nil {
		t.Fatal(err)
	}
	if c0.Chunks != 4 || countPoints(c0.P) != chunkPoints || len(c0.P) >= chunkPoints/100 {
		t.Fatalf("chunk 0: count %d, %d points in %d array elements", c0.Chunks, countPoints(c0.P), len(c0.P))
	}

	// A crash left chunk 0's count behind; the replay after restart must
	// neither duplicate nor lose points, and must repair the count.
	if _, err := coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: c0ID(thing)}}, bson.D{{Key: "$set", Value: bson.D{{Key: "chunks", Value: 2}}}}); err != nil {
		t.Fatal(err)
	}
	h2, _ := newHistory(t, st, Config{})
	more := append([]Point(nil), pts[n-200:]...)
	for i := 0; i < 10; i++ {
		more = append(more, Point{Thing: thing, Kind: KindSensor, TS: day0 + hourSecs - 1, Value: fmt.Sprint(n + i), Seq: uint64(n + 1 + i)})
	}
	if err := h2.Append(ctx, more); err != nil {
		t.Fatal(err)
	}
	check(h2, n+10)
	if d := h2.Stats().PointsDuplicate; d != 200 {
		t.Fatalf("duplicates %d, want 200", d)
	}
}

func c0ID(thing primitive.ObjectID) string {
	return chunkID(thing, KindSensor, floorDiv(day0, hourSecs), 0)
}
