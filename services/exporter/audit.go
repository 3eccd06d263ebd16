package exporter

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/piot-appliance/piot/services/core"
)

var (
	auditEntriesDesc = newDesc("audit", "entries_total",
		"Changes recorded in the audit trail since start, by action (the operation, named like the GraphQL mutation).",
		"action")
	auditFailuresDesc = newDesc("audit", "write_failures_total",
		"Changes whose audit entry could not be written since start (the change stood; the error is in the log).")
)

// auditCollector exports core's audit counts. Actions are names of core's
// operations, so the label set is bounded.
type auditCollector struct{ core *core.Core }

func (c auditCollector) update(ch chan<- prometheus.Metric) error {
	recorded, failed := c.core.AuditCounts()
	s := sender{ch: ch}
	for action, n := range recorded {
		s.counter(auditEntriesDesc, float64(n), action)
	}
	s.counter(auditFailuresDesc, float64(failed))
	return s.err
}
