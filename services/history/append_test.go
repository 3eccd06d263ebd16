package history

import (
	"slices"
	"testing"

	"go.mongodb.org/mongo-driver/bson/primitive"
)

// The pieces of Append that decide which points are written, on a Store
// without a database.

func TestGroupByBucket(t *testing.T) {
	s := &Store{droppedDays: day0/daySecs - 1}
	a, b := primitive.NewObjectID(), primitive.NewObjectID()
	h := day0 // the first hour of a day whose day before is dropped
	points := []Point{
		{Thing: a, Kind: KindSensor, TS: h + 10, Value: "1"},
		{Thing: b, Kind: KindSensor, TS: h + 20, Value: "2"},
		{Thing: a, Kind: KindSensor, TS: h + hourSecs, Value: "3"}, // the next hour
		{Thing: a, Kind: KindSwitch, TS: h + 30, Value: "1"},       // another series
		{Thing: a, Kind: KindSensor, TS: h + 40, Value: "4"},
		{Thing: a, Kind: "weather", TS: h, Value: "1"},               // invalid kind
		{Kind: KindSensor, TS: h, Value: "1"},                        // no thing
		{Thing: a, Kind: KindSensor, TS: -1, Value: "1"},             // before 1970
		{Thing: a, Kind: KindSensor, TS: h, Value: "1" + pointSep},   // separator
		{Thing: a, Kind: KindSensor, TS: h - 2*hourSecs, Value: "1"}, // before the cutoff
		{Thing: a, Kind: KindSensor, TS: h - 600, Value: "1"},        // after the cutoff, in the dropped day
	}
	groups, order := s.groupByBucket(points, h-hourSecs)
	want := []bucketKey{
		{a, KindSensor, h / hourSecs},
		{b, KindSensor, h / hourSecs},
		{a, KindSensor, h/hourSecs + 1},
		{a, KindSwitch, h / hourSecs},
	}
	if !slices.Equal(order, want) {
		t.Fatalf("order %v, want %v", order, want)
	}
	for k, idx := range map[bucketKey][]int{want[0]: {0, 4}, want[1]: {1}, want[2]: {2}, want[3]: {3}} {
		if !slices.Equal(groups[k], idx) {
			t.Errorf("bucket %v: %v, want %v", k, groups[k], idx)
		}
	}
	if len(groups) != len(want) || s.invalid.Load() != 4 || s.expired.Load() != 2 {
		t.Fatalf("%d groups, %d invalid, %d expired", len(groups), s.invalid.Load(), s.expired.Load())
	}
}

func TestThinnedAway(t *testing.T) {
	a := primitive.NewObjectID()
	s := &Store{seriesLast: map[seriesKey]int64{{a, KindSwitch}: 1_000_030}}
	lastKept := map[seriesKey]int64{}
	for _, tc := range []struct {
		p    Point
		want bool
	}{
		{Point{Thing: a, Kind: KindSensor, TS: 1_000_000}, false},            // no Every: kept
		{Point{Thing: a, Kind: KindSensor, TS: 1_000_001, Every: 60}, false}, // first of the series
		{Point{Thing: a, Kind: KindSensor, TS: 1_000_019, Every: 60}, true},  // same minute
		{Point{Thing: a, Kind: KindSensor, TS: 1_000_020, Every: 60}, false}, // next minute (aligned to the epoch)
		{Point{Thing: a, Kind: KindSwitch, TS: 1_000_039, Every: 60}, true},  // same minute as before the batch
		{Point{Thing: a, Kind: KindSwitch, TS: 1_000_080, Every: 60}, false}, // the next one
		{Point{Thing: a, Kind: KindSwitch, TS: 1_000_090, Every: 600}, true}, // a coarser interval
		{Point{Thing: a, Kind: KindSensor, TS: 1_000_021, Every: 0}, false},  // Every 0 never thins
	} {
		if got := s.thinnedAway(tc.p, lastKept); got != tc.want {
			t.Errorf("%s at %d every %d: thinned %v, want %v", tc.p.Kind, tc.p.TS, tc.p.Every, got, tc.want)
		}
	}
	if lastKept[seriesKey{a, KindSensor}] != 1_000_020 || lastKept[seriesKey{a, KindSwitch}] != 1_000_080 {
		t.Fatalf("last kept %v", lastKept)
	}
	if s.seriesLast[seriesKey{a, KindSwitch}] != 1_000_030 {
		t.Fatal("thinning changed the store's last times before the batch was written")
	}
}
