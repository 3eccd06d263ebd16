package ingest

import (
	"context"
	"slices"
	"testing"
	"time"
)

func TestHistogramBuckets(t *testing.T) {
	h := newHistogram([]float64{1, 2, 5})
	for _, v := range []float64{0.5, 1, 1.5, 2, 4, 100} {
		h.observe(v)
	}
	s := h.snapshot()
	if !slices.Equal(s.Counts, []uint64{2, 4, 5}) || s.Count != 6 || s.Sum != 109 {
		t.Fatalf("snapshot %+v", s)
	}
	if !slices.Equal(s.Buckets, []float64{1, 2, 5}) {
		t.Fatalf("buckets %v", s.Buckets)
	}
	jh := newJournalHistograms()
	jh.onCommit([]time.Duration{time.Millisecond, 3 * time.Second})
	if l, b := jh.latency.snapshot(), jh.batch.snapshot(); l.Count != 2 || b.Count != 1 || b.Sum != 2 {
		t.Fatalf("latency %+v batch %+v", l, b)
	}
}

func TestJournalHistogramsCountRecords(t *testing.T) {
	e := newEnv(t)
	ing := e.start(Config{}, nil)
	e.things()
	for k := 0; k < 10; k++ {
		publish(t, ing, "org/acme/T1/value", "21", 1)
	}
	if err := ing.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	appended := ing.Stats()[Key{RuleJournal, Journaled}]
	lat, batch := ing.JournalLatency(), ing.JournalBatchSize()
	if appended == 0 || lat.Count != appended || uint64(batch.Sum) != appended || batch.Count == 0 {
		t.Fatalf("appended %d; latency %+v; batch %+v", appended, lat, batch)
	}
	if len(lat.Counts) != len(JournalLatencyBuckets) || lat.Counts[len(lat.Counts)-1] > lat.Count {
		t.Fatalf("latency buckets %+v", lat)
	}
}
