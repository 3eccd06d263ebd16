package exporter

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// UpdateStatus is what piot_update_* show of the A/B system slots and the
// last update (appliance/update), which the exporter does not import.
type UpdateStatus struct {
	// Slot is the running slot; empty when the system was not booted
	// from one, and then nothing is exported.
	Slot                             string
	OtherSlotVersion, OtherSlotState string
	// LastResult is empty before the first update.
	LastResult, LastVersion string
	LastAt                  time.Time
	// RebootAt is zero when no reboot is scheduled.
	RebootAt time.Time
}

var (
	updateSlotDesc = newDesc("update", "slot_info",
		"A constant 1 labeled by the running A/B slot and the other slot's version and state (good, trying, bad; empty when the slot is empty).",
		"slot", "other_slot_version", "other_slot_state")
	updateLastDesc = newDesc("update", "last_result_info",
		"A constant 1 labeled by the last update's result (installed, refused, failed, good, rolled-back) and version.",
		"result", "version")
	updateLastTimeDesc = newDesc("update", "last_result_timestamp_seconds",
		"When the last update's result was recorded; alert on a rolled-back result newer than the last look.")
	updateRebootDesc = newDesc("update", "reboot_scheduled_timestamp_seconds",
		"When a scheduled reboot happens; 0 when none is.")
)

// updateCollector exports piot_update_*.
type updateCollector struct{ status func() (UpdateStatus, error) }

func (c updateCollector) update(ch chan<- prometheus.Metric) error {
	st, err := c.status()
	if err != nil || st.Slot == "" {
		return err
	}
	s := sender{ch: ch}
	s.gauge(updateSlotDesc, 1, st.Slot, st.OtherSlotVersion, st.OtherSlotState)
	if st.LastResult != "" {
		s.gauge(updateLastDesc, 1, st.LastResult, st.LastVersion)
		s.gauge(updateLastTimeDesc, float64(st.LastAt.Unix()))
	}
	var at float64
	if !st.RebootAt.IsZero() {
		at = float64(st.RebootAt.Unix())
	}
	s.gauge(updateRebootDesc, at)
	return s.err
}
