package store

import (
	"context"
	"fmt"
	"testing"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/bson/primitive"
)

// seedThings fills the things collection with n realistic documents in
// batches, the way the appliance writes.
func seedThings(b *testing.B, s *Store, n int) []ID {
	b.Helper()
	ctx := context.Background()
	ids := make([]ID, 0, n)
	batch := make([]Thing, 0, 500)
	for i := 0; i < n; i++ {
		t := Thing{
			ID: primitive.NewObjectID(), Name: fmt.Sprintf("thing-%06d", i), Type: "sensor",
			PiotID: fmt.Sprintf("CHIP%06d", i), Enabled: true, AvailabilityTopic: "available",
			Sensor: Sensor{Class: "temperature", MeasurementTopic: "value", Unit: "C", Value: "21.5"},
		}
		ids = append(ids, t.ID)
		batch = append(batch, t)
		if len(batch) == cap(batch) || i == n-1 {
			if err := s.Things.InsertMany(ctx, batch); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	return ids
}

func benchSizes(b *testing.B, fn func(b *testing.B, s *Store, ids []ID)) {
	for _, n := range []int{10_000, 100_000} {
		b.Run(fmt.Sprintf("docs=%d", n), func(b *testing.B) {
			s := openTest(b, b.TempDir())
			ids := seedThings(b, s, n)
			b.ResetTimer()
			fn(b, s, ids)
		})
	}
}

func BenchmarkThingGetByID(b *testing.B) {
	benchSizes(b, func(b *testing.B, s *Store, ids []ID) {
		ctx := context.Background()
		for i := 0; b.Loop(); i++ {
			if _, err := s.Things.Get(ctx, ids[(i*7919)%len(ids)]); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkThingSetByID(b *testing.B) {
	benchSizes(b, func(b *testing.B, s *Store, ids []ID) {
		ctx := context.Background()
		for i := 0; b.Loop(); i++ {
			err := s.Things.Set(ctx, ids[(i*7919)%len(ids)], bson.D{{Key: "sensor.value", Value: fmt.Sprint(i)}, {Key: "last_seen", Value: int64(i)}})
			if err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkThingInsertMany100(b *testing.B) {
	s := openTest(b, b.TempDir())
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		batch := make([]Thing, 100)
		for j := range batch {
			batch[j] = Thing{ID: primitive.NewObjectID(), Name: fmt.Sprintf("t-%d-%d", i, j), PiotID: fmt.Sprintf("p-%d-%d", i, j)}
		}
		if err := s.Things.InsertMany(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(100*b.N)/b.Elapsed().Seconds(), "docs/s")
}

// BenchmarkThingSetMany1000 is the ingest's thing-state flush with 1 000
// things reporting: one $set of the state fields per thing.
func BenchmarkThingSetMany1000(b *testing.B) {
	s := openTest(b, b.TempDir())
	ids := seedThings(b, s, 1000)
	ctx := context.Background()
	for i := 0; b.Loop(); i++ {
		sets := make([]bson.D, len(ids))
		for j := range sets {
			sets[j] = bson.D{
				{Key: "available", Value: true}, {Key: "last_seen", Value: int64(i)}, {Key: "telemetry", Value: ""},
				{Key: "voltage", Value: 0.0}, {Key: "loc_lat", Value: 0.0}, {Key: "loc_lng", Value: 0.0},
				{Key: "loc_sat", Value: 0}, {Key: "loc_ts", Value: int64(0)}, {Key: "battery_level", Value: 0},
				{Key: "alarm_active", Value: false}, {Key: "alarm_activated", Value: int64(0)},
				{Key: "sensor.value", Value: fmt.Sprint(i + j)}, {Key: "sensor.unit", Value: "C"},
				{Key: "sensor.measurement_last", Value: int64(i)}, {Key: "switch.state", Value: false},
			}
		}
		if err := s.Things.SetMany(ctx, ids, sets); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(ids)*b.N)/b.Elapsed().Seconds(), "things/s")
}
