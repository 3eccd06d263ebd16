package spool

import (
	"context"
	"testing"
)

// benchRecord is the size of a typical device packet.
const benchRecord = 200

// BenchmarkAppend measures one appender waiting for each record's fsync.
func BenchmarkAppend(b *testing.B) {
	s := openSpool(b, b.TempDir(), Options{})
	defer s.Close()
	rec := make([]byte, benchRecord)
	ctx := context.Background()
	b.SetBytes(benchRecord)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := s.Append(ctx, rec); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	report(b, s)
}

// BenchmarkAppendParallel measures many devices' packets arriving at once
// (16 appenders per CPU), which share fsyncs.
func BenchmarkAppendParallel(b *testing.B) {
	s := openSpool(b, b.TempDir(), Options{})
	defer s.Close()
	ctx := context.Background()
	b.SetBytes(benchRecord)
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		rec := make([]byte, benchRecord)
		for pb.Next() {
			if _, err := s.Append(ctx, rec); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	report(b, s)
}

func report(b *testing.B, s *Spool) {
	js := s.j.Stats()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
	b.ReportMetric(float64(js.Appended)/float64(max(js.Commits, 1)), "records/fsync")
}

// BenchmarkForward measures a forwarder draining a backlog from disk in
// batches of 100, acknowledging each batch (one checkpoint fsync each).
func BenchmarkForward(b *testing.B) {
	s := openSpool(b, b.TempDir(), Options{})
	defer s.Close()
	ctx := context.Background()
	rec := make([]byte, benchRecord)
	// Fill concurrently so that the backlog builds in shared fsyncs.
	fill := make(chan error, 32)
	for w := 0; w < 32; w++ {
		go func() {
			for i := w; i < b.N; i += 32 {
				if _, err := s.Append(ctx, rec); err != nil {
					fill <- err
					return
				}
			}
			fill <- nil
		}()
	}
	for w := 0; w < 32; w++ {
		if err := <-fill; err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(benchRecord)
	b.ResetTimer()
	after := uint64(0)
	for n := 0; n < b.N; {
		recs, err := s.Next(ctx, after, 100)
		if err != nil {
			b.Fatal(err)
		}
		after = recs[len(recs)-1].Seq
		if err := s.Ack(after); err != nil {
			b.Fatal(err)
		}
		n += len(recs)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}
