package exporter

import (
	"sort"

	"github.com/prometheus/client_golang/prometheus"
)

var (
	adapterRejectedDesc = newDesc("adapter", "packets_refused_total",
		"Device packets the adapters did not store, by protocol and reason (HTTP 4xx/5xx answers, 202 for unassigned or disabled devices, and 200 for a resend of the device's previous packet: duplicate).",
		"protocol", "reason")
	adapterRelayDesc = newDesc("adapter", "relayed_packets_total",
		"Packets edge adapters relayed over MQTT, by result (processed, duplicate, not_stored, refused, bad_envelope, unknown_protocol, retry).",
		"result")
)

// adapterCollector exports the device adapters' counters. Reasons are
// constants of the adapter packages, so the label sets are bounded.
type adapterCollector struct {
	refused map[string]func() map[string]uint64 // by protocol
	relay   func() map[string]uint64
}

func (c adapterCollector) update(ch chan<- prometheus.Metric) error {
	s := sender{ch: ch}
	protos := make([]string, 0, len(c.refused))
	for p := range c.refused {
		protos = append(protos, p)
	}
	sort.Strings(protos)
	for _, p := range protos {
		for reason, n := range c.refused[p]() {
			s.counter(adapterRejectedDesc, float64(n), p, reason)
		}
	}
	if c.relay != nil {
		for result, n := range c.relay() {
			s.counter(adapterRelayDesc, float64(n), result)
		}
	}
	return s.err
}
