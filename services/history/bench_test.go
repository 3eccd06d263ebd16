package history

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/piot-appliance/piot/services/store"
	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/bson/primitive"
	"go.mongodb.org/mongo-driver/mongo"
)

const (
	benchThings = 1000
	benchDays   = 30
)

// seedBench fills a history the way a month of ingest at one reading per
// minute from 1 000 things would, but in bulk: rollups for all things for
// 30 days, raw buckets for all things for the last day and for the first
// hour of the first day (what the queries below read). Documents are
// built exactly as Append builds them.
func seedBench(b *testing.B, withIndex bool) (*Store, []store.ID, int64) {
	b.Helper()
	st := openStore(b)
	lastDay := floorDiv(day0, daySecs) + benchDays - 1
	h, err := New(st, Config{Now: func() time.Time { return time.Unix((lastDay+1)*daySecs-1, 0) }})
	if err != nil {
		b.Fatal(err)
	}
	if !withIndex {
		h.ensureColl = func(ctx context.Context, name string) error {
			err := st.Database().CreateCollection(ctx, name)
			var ce mongo.CommandError
			if errors.As(err, &ce) && ce.Code == 48 { // NamespaceExists
				return nil
			}
			return err
		}
	}
	ctx := context.Background()
	things := make([]store.ID, benchThings)
	for i := range things {
		things[i] = primitive.NewObjectID()
	}
	value := func(th int, ts int64) string { return fmt.Sprintf("%.1f", float64((ts/60+int64(th))%400)/10) }
	start := time.Now()
	var docs int
	for d := lastDay - benchDays + 1; d <= lastDay; d++ {
		part, err := h.partitionFor(ctx, d)
		if err != nil {
			b.Fatal(err)
		}
		var batch []any
		flush := func() {
			if len(batch) == 0 {
				return
			}
			if _, err := st.Database().Collection(part.name).InsertMany(ctx, batch); err != nil {
				b.Fatal(err)
			}
			docs += len(batch)
			batch = batch[:0]
		}
		for ti, th := range things {
			roll := bson.D{{Key: "_id", Value: rollupID(th, KindSensor, d)}, {Key: "thing", Value: th}, {Key: "kind", Value: KindSensor}, {Key: "day", Value: d * daySecs}}
			for hod := int64(0); hod < 24; hod++ {
				hour := d*24 + hod
				var st stats
				var p []string
				for m := int64(0); m < 60; m++ {
					ts := hour*hourSecs + m*60
					v := value(ti, ts)
					st.add(ts, v)
					p = append(p, encodePoint(ts, hour*hourSecs, v))
				}
				roll = append(roll, bson.E{Key: hourField(hod), Value: st.encode()})
				if d == lastDay || (d == lastDay-benchDays+1 && hod == 0) {
					batch = append(batch, bson.D{{Key: "_id", Value: rawID(th, KindSensor, hour)}, {Key: "thing", Value: th},
						{Key: "kind", Value: KindSensor}, {Key: "hour", Value: hour * hourSecs}, {Key: "seq", Value: int64(0)}, {Key: "p", Value: p}})
				}
			}
			batch = append(batch, roll)
			if len(batch) >= 1000 {
				flush()
			}
		}
		flush()
	}
	b.Logf("seeded %d documents in %v (index on _id: %v)", docs, time.Since(start).Round(time.Millisecond), withIndex)
	return h, things, lastDay
}

func BenchmarkQuery(b *testing.B) {
	for _, withIndex := range []bool{true, false} {
		name := "idindex"
		if !withIndex {
			name = "noindex"
		}
		b.Run(name, func(b *testing.B) {
			h, things, lastDay := seedBench(b, withIndex)
			ctx := context.Background()
			dayStart := lastDay * daySecs
			b.Run("raw_1day_1perMin", func(b *testing.B) {
				for i := 0; b.Loop(); i++ {
					r, err := h.Query(ctx, things[(i*37)%len(things)], KindSensor, dayStart, dayStart+daySecs-1, 0, "", 0)
					if err != nil || len(r) != 1440 {
						b.Fatalf("%d readings, %v", len(r), err)
					}
				}
			})
			b.Run("avg_30days_1hStep", func(b *testing.B) {
				from := (lastDay - benchDays + 1) * daySecs
				for i := 0; b.Loop(); i++ {
					r, err := h.Query(ctx, things[(i*37)%len(things)], KindSensor, from, dayStart+daySecs-1, hourSecs, FnAvg, 0)
					if err != nil || len(r) != benchDays*24 {
						b.Fatalf("%d readings, %v", len(r), err)
					}
				}
			})
			b.Run("max_30days_1hStep_unaligned", func(b *testing.B) {
				from := (lastDay-benchDays+1)*daySecs + 1800
				for i := 0; b.Loop(); i++ {
					r, err := h.Query(ctx, things[(i*37)%len(things)], KindSensor, from, dayStart+daySecs-1800, hourSecs, FnMax, 0)
					if err != nil || len(r) != benchDays*24 {
						b.Fatalf("%d readings, %v", len(r), err)
					}
				}
			})
		})
	}
}

// BenchmarkAppend measures ingest-shaped writes: each op is one flush of
// one point for each of N things (N buckets), or N points of one thing.
func BenchmarkAppend(b *testing.B) {
	for _, shape := range []struct {
		name           string
		things, points int
		step           int64 // seconds between Appends
	}{
		{"1000things_x1point", 1000, 1, 60}, {"100things_x1point", 100, 1, 60}, {"10things_x100points", 10, 100, 60},
		// What ingest writes under mqttbench -things 1000 -sustained: one
		// Append a second, 27 readings per thing in each.
		{"1000things_x27points_every1s", 1000, 27, 1},
		{"1000things_x270points_every10s", 1000, 270, 10},
	} {
		b.Run(shape.name, func(b *testing.B) {
			st := openStore(b)
			ts := day0
			h, err := New(st, Config{Now: func() time.Time { return time.Unix(ts, 0) }})
			if err != nil {
				b.Fatal(err)
			}
			things := make([]store.ID, shape.things)
			for i := range things {
				things[i] = primitive.NewObjectID()
			}
			ctx := context.Background()
			var seq uint64
			b.ResetTimer()
			for b.Loop() {
				pts := make([]Point, 0, shape.things*shape.points)
				for _, th := range things {
					for k := 0; k < shape.points; k++ {
						seq++
						pts = append(pts, Point{Thing: th, Kind: KindSensor, TS: ts, Value: "21.5", Seq: seq})
					}
				}
				ts += shape.step
				if err := h.Append(ctx, pts); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*shape.things*shape.points)/b.Elapsed().Seconds(), "points/s")
		})
	}
}

// BenchmarkQueryHotHour reads a series written every second for an hour
// (3 600 writes of one point): from its hot collection before the hour
// settles, from the day partition's chunks after.
func BenchmarkQueryHotHour(b *testing.B) {
	_, h, c, hour := hotHour(b, Config{})
	ctx := context.Background()
	thing := primitive.NewObjectID()
	for i := 0; i < hourSecs; i++ {
		ts := hour*hourSecs + int64(i)
		c.Set(time.Unix(ts, 0))
		if err := h.Append(ctx, []Point{{Thing: thing, Kind: KindSensor, TS: ts, Value: fmt.Sprint(i % 40), Seq: uint64(i + 1)}}); err != nil {
			b.Fatal(err)
		}
	}
	from, to := hour*hourSecs, hour*hourSecs+hourSecs-1
	run := func(b *testing.B, from, to, step int64, want int) {
		for b.Loop() {
			r, err := h.Query(ctx, thing, KindSensor, from, to, step, FnAvg, 0)
			if err != nil || len(r) != want {
				b.Fatalf("%d readings, %v", len(r), err)
			}
		}
	}
	b.Run("hot/raw_hour", func(b *testing.B) { run(b, from, to, 0, hourSecs) })
	b.Run("hot/day_1h_step", func(b *testing.B) { run(b, to-daySecs+1, to, hourSecs, 1) })
	c.Set(time.Unix(to+1, 0))
	if _, err := h.Enforce(ctx); err != nil {
		b.Fatal(err)
	}
	if h.isHot(hour) {
		b.Fatal("hour not compacted")
	}
	b.Run("compacted/raw_hour", func(b *testing.B) { run(b, from, to, 0, hourSecs) })
}

// BenchmarkCompactHour settles an hour of 200 things reporting ten
// readings every 10 s (720 000 points in 72 000 segments): the work the
// hour's end costs, spread over the writes after it.
func BenchmarkCompactHour(b *testing.B) {
	const things, writes, per = 200, 360, 10
	for b.Loop() {
		b.StopTimer()
		_, h, c, hour := hotHour(b, Config{})
		ctx := context.Background()
		ids := make([]store.ID, things)
		for i := range ids {
			ids[i] = primitive.NewObjectID()
		}
		var seq uint64
		for w := 0; w < writes; w++ {
			ts := hour*hourSecs + int64(w)*10
			c.Set(time.Unix(ts, 0))
			pts := make([]Point, 0, things*per)
			for _, id := range ids {
				for k := 0; k < per; k++ {
					seq++
					pts = append(pts, Point{Thing: id, Kind: KindSensor, TS: ts + int64(k), Value: "21.5", Seq: seq})
				}
			}
			if err := h.Append(ctx, pts); err != nil {
				b.Fatal(err)
			}
		}
		c.Set(time.Unix((hour+1)*hourSecs, 0))
		b.StartTimer()
		for steps := 0; h.isHot(hour); steps++ {
			if err := h.Settle(ctx); err != nil {
				b.Fatal(err)
			}
			if steps > 10_000 {
				b.Fatal("the hour does not settle")
			}
		}
	}
	b.ReportMetric(float64(b.N*things*writes*per)/b.Elapsed().Seconds(), "points/s")
}
