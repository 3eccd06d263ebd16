package exporter

import (
	"runtime"

	"github.com/prometheus/client_golang/prometheus"
)

var buildInfoDesc = newDesc("", "build_info",
	"A metric with a constant '1' value labeled by the appliance version and the Go version it was built with.",
	"version", "goversion")

// buildInfoCollector exports piot_build_info.
type buildInfoCollector struct{ version string }

func (c buildInfoCollector) update(ch chan<- prometheus.Metric) error {
	v := c.version
	if v == "" {
		v = "unknown"
	}
	s := sender{ch: ch}
	s.gauge(buildInfoDesc, 1, v, runtime.Version())
	return s.err
}
