package exporter

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

var (
	storeUpDesc   = newDesc("store", "up", "Whether the store answered a ping during the scrape (1) or not (0).")
	storePingDesc = newDesc("store", "ping_duration_seconds", "How long the store took to answer the scrape's ping (or to fail).")
)

// storeCollector pings the store. A store that does not answer is a
// measurement (piot_store_up 0), not a collector failure.
type storeCollector struct {
	ping    func(ctx context.Context) error
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
	return s.err
}
