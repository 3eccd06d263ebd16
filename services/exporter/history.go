package exporter

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/piot-appliance/piot/services/history"
)

var (
	historyWrittenDesc = newDesc("history", "points_written_total", "Readings stored in the history.")
	historyDroppedDesc = newDesc("history", "points_dropped_total",
		"Readings not stored: duplicate (replayed), thinned (sampling), expired (older than the retention), invalid.",
		"reason")
	historyBulkWritesDesc        = newDesc("history", "bulk_writes_total", "Bulk write round trips to the store.")
	historyCacheMissesDesc       = newDesc("history", "cache_misses_total", "Bucket states loaded from the store.")
	historyPartitionsDroppedDesc = newDesc("history", "partitions_dropped_total", "Daily partitions dropped by the retention.")
	historySettledDesc           = newDesc("history", "settles_total", "Times the hours that were over were settled: their rollups written and their segments compacted.")
	historyCompactedDesc         = newDesc("history", "buckets_compacted_total", "Series-hours moved from their hour's segments into the day partition.")
	historyHotHoursDesc          = newDesc("history", "hot_collections", "Collections of hours kept as segments until compacted, one per hour; more than two means compaction falls behind.")
	historyPartitionsDesc        = newDesc("history", "partitions", "Daily partitions now.")
	historySizeDesc              = newDesc("history", "size_bytes", "Estimated size of all partitions.")
)

// historyCollector exports the piot_history_* metrics.
type historyCollector struct{ stats func() history.Stats }

func (c historyCollector) update(ch chan<- prometheus.Metric) error {
	st := c.stats()
	s := sender{ch: ch}
	s.counter(historyWrittenDesc, float64(st.PointsWritten))
	s.counter(historyDroppedDesc, float64(st.PointsDuplicate), "duplicate")
	s.counter(historyDroppedDesc, float64(st.PointsThinned), "thinned")
	s.counter(historyDroppedDesc, float64(st.PointsExpired), "expired")
	s.counter(historyDroppedDesc, float64(st.PointsInvalid), "invalid")
	s.counter(historyBulkWritesDesc, float64(st.BulkWrites))
	s.counter(historyCacheMissesDesc, float64(st.CacheMisses))
	s.counter(historyPartitionsDroppedDesc, float64(st.PartitionsDropped))
	s.counter(historySettledDesc, float64(st.Settles))
	s.counter(historyCompactedDesc, float64(st.Compacted))
	s.gauge(historyHotHoursDesc, float64(st.HotHours))
	s.gauge(historyPartitionsDesc, float64(st.Partitions))
	s.gauge(historySizeDesc, float64(st.EstimatedBytes))
	return s.err
}
