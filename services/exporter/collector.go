package exporter

import (
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// collector is one source of metrics, node_exporter style: it sends what
// it has and reports whether it got everything.
type collector interface {
	update(ch chan<- prometheus.Metric) error
}

type namedCollector struct {
	name string
	c    collector
}

var (
	scrapeDurationDesc = prometheus.NewDesc(
		prometheus.BuildFQName(namespace, "scrape", "collector_duration_seconds"),
		"How long a collector took during the last scrape.",
		[]string{"collector"}, nil)
	scrapeSuccessDesc = prometheus.NewDesc(
		prometheus.BuildFQName(namespace, "scrape", "collector_success"),
		"Whether a collector succeeded during the last scrape (1) or failed (0).",
		[]string{"collector"}, nil)
)

// applianceCollector runs the collectors concurrently and adds the
// scrape meta-metrics of each.
type applianceCollector struct {
	collectors []namedCollector
	log        *slog.Logger
}

func newApplianceCollector(cs []namedCollector, log *slog.Logger) *applianceCollector {
	return &applianceCollector{collectors: cs, log: log}
}

// Describe sends only the meta-metrics: the collectors' own series are
// checked by the registry when gathered (as node_exporter does), which
// lets the thing series come and go with the things.
func (a *applianceCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- scrapeDurationDesc
	ch <- scrapeSuccessDesc
}

func (a *applianceCollector) Collect(ch chan<- prometheus.Metric) {
	var wg sync.WaitGroup
	for _, nc := range a.collectors {
		wg.Go(func() { a.execute(nc, ch) })
	}
	wg.Wait()
}

func (a *applianceCollector) execute(nc namedCollector, ch chan<- prometheus.Metric) {
	start := time.Now()
	err := safeUpdate(nc.c, ch)
	took := time.Since(start).Seconds()
	success := 1.0
	if err != nil {
		success = 0
		a.log.Warn("metrics: collector failed", "collector", nc.name, "took", took, "err", err)
	}
	ch <- prometheus.MustNewConstMetric(scrapeDurationDesc, prometheus.GaugeValue, took, nc.name)
	ch <- prometheus.MustNewConstMetric(scrapeSuccessDesc, prometheus.GaugeValue, success, nc.name)
}

// safeUpdate turns a panic of a source (a Stats function of another
// service) into a failed collector instead of a failed scrape.
func safeUpdate(c collector, ch chan<- prometheus.Metric) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v", p)
		}
	}()
	return c.update(ch)
}

// sender sends const metrics and keeps the first error, so one bad value
// (say a label that is not UTF-8) costs one series, not the collector's.
type sender struct {
	ch  chan<- prometheus.Metric
	err error
}

func (s *sender) send(d *prometheus.Desc, t prometheus.ValueType, v float64, labels ...string) {
	m, err := prometheus.NewConstMetric(d, t, v, labels...)
	if err != nil {
		if s.err == nil {
			s.err = err
		}
		return
	}
	s.ch <- m
}

func (s *sender) gauge(d *prometheus.Desc, v float64, labels ...string) {
	s.send(d, prometheus.GaugeValue, v, labels...)
}

func (s *sender) counter(d *prometheus.Desc, v float64, labels ...string) {
	s.send(d, prometheus.CounterValue, v, labels...)
}

// newDesc names a metric piot_<subsystem>_<name>.
func newDesc(subsystem, name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(prometheus.BuildFQName(namespace, subsystem, name), help, labels, nil)
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
