package history

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/piot-appliance/piot/services/store"
	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/bson/primitive"
	"go.mongodb.org/mongo-driver/mongo"
)

// rollupHour reads hour hod of a series' rollup on day, "" if unset.
func rollupHour(t *testing.T, st *store.Store, thing store.ID, kind string, day, hod int64) string {
	t.Helper()
	var d bson.M
	err := st.Database().Collection(partitionName(day)).FindOne(context.Background(),
		bson.D{{Key: "_id", Value: rollupID(thing, kind, day)}}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	v, _ := d[hourField(hod)].(string)
	return v
}

// The current hour's rollup is written once the hour is over, not on
// every Append, and queries in whole hours are right before and after.
func TestRollupsWaitForTheHourToSettle(t *testing.T) {
	st := openStore(t)
	h, c := newHistory(t, st, Config{})
	ctx := context.Background()
	now := c.Now().Unix()
	hour := floorDiv(now, hourSecs)
	day := floorDiv(now, daySecs)
	thing := primitive.NewObjectID()
	for i := int64(0); i < 5; i++ {
		c.Set(time.Unix(hour*hourSecs+i*60, 0))
		if err := h.Append(ctx, []Point{{Thing: thing, Kind: KindSensor, TS: c.Now().Unix(), Value: fmt.Sprint(10 * (i + 1)), Seq: uint64(i + 1)}}); err != nil {
			t.Fatal(err)
		}
	}
	if v := rollupHour(t, st, thing, KindSensor, day, hour-day*24); v != "" {
		t.Fatalf("rollup of the current hour written early: %q", v)
	}
	whole := func(want string) {
		t.Helper()
		got := mustQuery(t, h, thing, KindSensor, hour*hourSecs, hour*hourSecs+hourSecs-1, hourSecs, FnAvg, 0)
		if len(got) != 1 || got[0].Value != want {
			t.Fatalf("hourly avg %+v, want %s", got, want)
		}
	}
	whole("30")
	c.Set(time.Unix((hour+1)*hourSecs+5, 0))
	if _, err := h.Enforce(ctx); err != nil { // settles without new points
		t.Fatal(err)
	}
	if v := rollupHour(t, st, thing, KindSensor, day, hour-day*24); v == "" {
		t.Fatal("rollup not written when the hour settled")
	}
	if h.Stats().Settles != 1 {
		t.Fatalf("settles %d", h.Stats().Settles)
	}
	whole("30")
	// A late point for the settled hour is rolled up at once.
	if err := h.Append(ctx, []Point{{Thing: thing, Kind: KindSensor, TS: hour*hourSecs + 3000, Value: "60", Seq: 9}}); err != nil {
		t.Fatal(err)
	}
	whole("35")
}

// A process that stops before its hour settles leaves the rollups to the
// next one, which finds the buckets in the hours' directories, also those
// it never writes to again.
func TestRestartSettlesTheHoursOfTheLastProcess(t *testing.T) {
	for _, restartLater := range []bool{false, true} {
		t.Run(fmt.Sprintf("restart_next_hour_%v", restartLater), func(t *testing.T) {
			st := openStore(t)
			h, c := newHistory(t, st, Config{})
			ctx := context.Background()
			hour := floorDiv(c.Now().Unix(), hourSecs)
			day := floorDiv(hour*hourSecs, daySecs)
			things := []store.ID{primitive.NewObjectID(), primitive.NewObjectID(), primitive.NewObjectID()}
			for i, th := range things {
				c.Set(time.Unix(hour*hourSecs+int64(i)*100, 0))
				pts := []Point{
					{Thing: th, Kind: KindSensor, TS: c.Now().Unix(), Value: "1", Seq: uint64(10*i + 1)},
					{Thing: th, Kind: KindBattery, TS: c.Now().Unix(), Value: "80", Seq: uint64(10*i + 2)},
				}
				if err := h.Append(ctx, pts); err != nil {
					t.Fatal(err)
				}
			}
			// "Crash": h is dropped with its pending rollups.
			c2 := c // the same clock, moved on for the restarted process
			if restartLater {
				c2.Set(time.Unix((hour+2)*hourSecs+10, 0))
			}
			h2, err := New(st, Config{Now: c2.Now})
			if err != nil {
				t.Fatal(err)
			}
			// The restarted process writes to the first thing only.
			if err := h2.Append(ctx, []Point{{Thing: things[0], Kind: KindSensor, TS: hour*hourSecs + 500, Value: "3", Seq: 100}}); err != nil {
				t.Fatal(err)
			}
			if !restartLater {
				c2.Set(time.Unix((hour+1)*hourSecs+10, 0))
				if _, err := h2.Enforce(ctx); err != nil {
					t.Fatal(err)
				}
			}
			for i, th := range things {
				want := "1"
				if i == 0 {
					want = "2"
				}
				if v := rollupHour(t, st, th, KindBattery, day, hour-day*24); v == "" {
					t.Fatalf("thing %d: battery rollup not recovered", i)
				}
				got := mustQuery(t, h2, th, KindSensor, hour*hourSecs, hour*hourSecs+hourSecs-1, hourSecs, FnAvg, 0)
				if len(got) != 1 || got[0].Value != want {
					t.Fatalf("thing %d: hourly avg %+v, want %s", i, got, want)
				}
			}
			// A third process reads the rollups (the watermark is stored).
			h3, _ := New(st, Config{Now: c2.Now})
			if _, err := h3.Query(ctx, things[1], KindSensor, hour*hourSecs, hour*hourSecs+hourSecs-1, hourSecs, FnAvg, 0); err != nil {
				t.Fatal(err)
			}
			if h3.settled.Load() <= hour {
				t.Fatalf("watermark %d not past hour %d", h3.settled.Load(), hour)
			}
		})
	}
}

// Queries match a reference while the clock moves with the data, so that
// some hours are settled, some waiting, and late points arrive. Also with
// compaction spread over many writes (a budget of nothing: one bucket per
// write) and restarts in between.
func TestQueriesMatchReferenceAsHoursSettle(t *testing.T) {
	for _, tc := range []struct {
		name     string
		budget   time.Duration
		restarts bool
	}{{"default", 0, false}, {"one bucket a write, restarts", time.Nanosecond, true}} {
		t.Run(tc.name, func(t *testing.T) {
			st := openStore(t)
			h, c := newHistory(t, st, Config{CompactBudget: tc.budget})
			ctx := context.Background()
			rng := rand.New(rand.NewPCG(3, 4))
			things := []store.ID{primitive.NewObjectID(), primitive.NewObjectID(), primitive.NewObjectID()}
			start := floorDiv(c.Now().Unix(), hourSecs) * hourSecs
			var all []Point
			var seq uint64
			settles, restarts := uint64(0), 0
			for ts := start; ts < start+30*hourSecs; ts += int64(20 + rng.IntN(400)) {
				c.Set(time.Unix(ts, 0))
				var batch []Point
				for _, th := range things {
					seq++
					p := Point{Thing: th, Kind: KindSensor, TS: ts, Value: fmt.Sprintf("%.1f", rng.Float64()*40), Seq: seq}
					if rng.IntN(20) == 0 {
						p.TS -= int64(rng.IntN(2 * hourSecs)) // late, maybe into a settled hour
					}
					batch = append(batch, p)
				}
				if err := h.Append(ctx, batch); err != nil {
					t.Fatal(err)
				}
				all = append(all, batch...)
				if tc.restarts && rng.IntN(25) == 0 {
					settles += h.Stats().Settles
					restarts++
					var err error
					if h, err = New(st, Config{CompactBudget: tc.budget, Now: c.Now}); err != nil {
						t.Fatal(err)
					}
				}
				if rng.IntN(40) != 0 {
					continue
				}
				end := c.Now().Unix()
				for _, th := range things {
					for _, q := range []struct{ from, to, step int64 }{
						{start, end, hourSecs}, {start, floorDiv(end, hourSecs)*hourSecs - 1, hourSecs}, {start, end, 3 * hourSecs},
						{end - 2*hourSecs, end, 0},
					} {
						if q.to < q.from {
							continue
						}
						got := mustQuery(t, h, th, KindSensor, q.from, q.to, q.step, FnAvg, 0)
						want := reference(all, th, KindSensor, q.from, q.to, q.step, FnAvg, 0)
						if !sameReadings(got, want) {
							t.Fatalf("at %d, query %+v: got %v, want %v", end, q, got, want)
						}
					}
				}
			}
			if settles += h.Stats().Settles; settles < 20 {
				t.Fatalf("only %d settles", settles)
			}
			if tc.restarts && restarts < 3 {
				t.Fatalf("only %d restarts", restarts)
			}
		})
	}
}
