package exporter

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

var (
	storeUpDesc     = newDesc("store", "up", "Whether the store answered a ping during the scrape (1) or not (0).")
	storePingDesc   = newDesc("store", "ping_duration_seconds", "How long the store took to answer the scrape's ping (or to fail).")
	storeOpDesc     = newDesc("store", "operation_duration_seconds", "Latency of store commands by operation.", "operation")
	storeOpErrsDesc = newDesc("store", "operation_errors_total", "Store commands that failed, by operation.", "operation")
)

// StoreOp is the latency histogram and error count of one kind of store
// command ("find", "update", ...), as the store measures it; the
// composition root converts the store's own statistics, so the exporter
// needs no store import.
type StoreOp struct {
	Name    string
	Buckets []float64 // upper bounds in seconds
	Counts  []uint64  // per bound, not cumulative; one more than Buckets, the last is +Inf
	Sum     float64   // seconds
	Count   uint64
	Errors  uint64
}

// storeCollector pings the store. A store that does not answer is a
// measurement (piot_store_up 0), not a collector failure.
type storeCollector struct {
	ping    func(ctx context.Context) error
	ops     func() []StoreOp
	timeout time.Duration
}

func (c storeCollector) update(ch chan<- prometheus.Metric) error {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	start := time.Now()
	err := c.ping(ctx)
	took := time.Since(start).Seconds()
	s := sender{ch: ch}
	s.gauge(storeUpDesc, boolValue(err == nil))
	s.gauge(storePingDesc, took)
	if c.ops != nil {
		for _, op := range c.ops() {
			if len(op.Counts) != len(op.Buckets)+1 {
				return fmt.Errorf("store operation %q: %d counts for %d buckets", op.Name, len(op.Counts), len(op.Buckets))
			}
			buckets := make(map[float64]uint64, len(op.Buckets))
			var cum uint64
			for i, ub := range op.Buckets {
				cum += op.Counts[i]
				buckets[ub] = cum
			}
			h, herr := prometheus.NewConstHistogram(storeOpDesc, op.Count, op.Sum, buckets, op.Name)
			if herr != nil {
				return herr
			}
			ch <- h
			e, eerr := prometheus.NewConstMetric(storeOpErrsDesc, prometheus.CounterValue, float64(op.Errors), op.Name)
			if eerr != nil {
				return eerr
			}
			ch <- e
		}
	}
	return s.err
}
