package exporter

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/piot-appliance/piot/services/ingest"
)

// The ingest counts messages (by rule and result) and the work of its
// pipeline; each pipeline count gets a family of its own because it counts
// something else (journal records, history points, things).
var (
	ingestMessagesDesc = newDesc("ingest", "messages_total",
		"MQTT messages through the ingest rules: rule=message counts each message once, the other rules count each thing role the topic matched.",
		"rule", "result")
	ingestJournalDesc = newDesc("ingest", "journal_records_total",
		"Journal records appended (before acknowledging), replayed at start, or failed to append.",
		"result")
	ingestPointsQueuedDesc     = newDesc("ingest", "history_points_queued_total", "Readings queued for the history.")
	ingestPointsStoredDesc     = newDesc("ingest", "history_points_stored_total", "Readings the ingest stored in the history.")
	ingestHistoryErrorsDesc    = newDesc("ingest", "history_write_errors_total", "Failed history batch writes (retried).")
	ingestPartitionsDroppedDes = newDesc("ingest", "history_partitions_dropped_total", "History partitions dropped by the retention.")
	ingestThingsFlushedDesc    = newDesc("ingest", "state_things_flushed_total", "Thing states written to the store.")
	ingestStateErrorsDesc      = newDesc("ingest", "state_flush_errors_total", "Failed thing-state flushes (retried).")
	ingestPipelineDesc         = newDesc("ingest", "pipeline_events_total",
		"Other pipeline events, by stage and result.", "stage", "result")
	ingestJournalLatencyDesc = newDesc("ingest", "journal_commit_duration_seconds",
		"How long each journal record waited from append to durable (group commit and fsync).")
	ingestJournalBatchDesc = newDesc("ingest", "journal_commit_records",
		"Records made durable by one journal commit (one fsync).")
	ingestWriteFailingDesc = newDesc("ingest", "write_failing",
		"1 while the ingest cannot write (a full disk, say) and refuses what arrives, by stage: journal, history, state.", "stage")
)

// ingestSingles are the pipeline counts with a family of their own; they
// are exported as 0 before the first event so rates work from the start.
var ingestSingles = map[ingest.Key]*prometheus.Desc{
	{Rule: ingest.RuleHistory, Result: ingest.PointsQueued}:   ingestPointsQueuedDesc,
	{Rule: ingest.RuleHistory, Result: ingest.PointsStored}:   ingestPointsStoredDesc,
	{Rule: ingest.RuleHistory, Result: ingest.StoreFailed}:    ingestHistoryErrorsDesc,
	{Rule: ingest.RuleHistory, Result: ingest.PartitionsDrop}: ingestPartitionsDroppedDes,
	{Rule: ingest.RuleState, Result: ingest.Flushed}:          ingestThingsFlushedDesc,
	{Rule: ingest.RuleState, Result: ingest.StoreFailed}:      ingestStateErrorsDesc,
}

// ingestCollector exports the piot_ingest_* metrics. Rules and results
// are constants of the ingest package, so the label sets are bounded.
// The journal histograms are optional.
type ingestCollector struct {
	stats   func() map[ingest.Key]uint64
	latency func() ingest.HistogramSnapshot
	batch   func() ingest.HistogramSnapshot
	failing func() map[string]bool // optional
}

func (c ingestCollector) update(ch chan<- prometheus.Metric) error {
	stats := map[ingest.Key]uint64{}
	for k, n := range c.stats() {
		stats[k] = n
	}
	// Series everybody graphs, present from the first scrape.
	zero := []ingest.Key{
		{Rule: ingest.RuleMessage, Result: ingest.Processed},
		{Rule: ingest.RuleJournal, Result: ingest.Journaled},
		{Rule: ingest.RuleJournal, Result: ingest.Failed},
	}
	for k := range ingestSingles {
		zero = append(zero, k)
	}
	for _, k := range zero {
		if _, ok := stats[k]; !ok {
			stats[k] = 0
		}
	}
	s := sender{ch: ch}
	for k, n := range stats {
		v := float64(n)
		if d, ok := ingestSingles[k]; ok {
			s.counter(d, v)
			continue
		}
		switch k.Rule {
		case ingest.RuleJournal:
			s.counter(ingestJournalDesc, v, k.Result)
		case ingest.RuleHistory, ingest.RuleState:
			s.counter(ingestPipelineDesc, v, k.Rule, k.Result)
		default:
			s.counter(ingestMessagesDesc, v, k.Rule, k.Result)
		}
	}
	if c.latency != nil {
		s.histogram(ingestJournalLatencyDesc, c.latency())
	}
	if c.batch != nil {
		s.histogram(ingestJournalBatchDesc, c.batch())
	}
	if c.failing != nil {
		for stage, failing := range c.failing() {
			s.gauge(ingestWriteFailingDesc, b2f(failing), stage)
		}
	}
	return s.err
}

// histogram sends a snapshot as a Prometheus histogram.
func (s *sender) histogram(d *prometheus.Desc, h ingest.HistogramSnapshot) {
	buckets := make(map[float64]uint64, len(h.Buckets))
	for i, le := range h.Buckets {
		if i < len(h.Counts) {
			buckets[le] = h.Counts[i]
		}
	}
	m, err := prometheus.NewConstHistogram(d, h.Count, h.Sum, buckets)
	if err != nil {
		if s.err == nil {
			s.err = err
		}
		return
	}
	s.ch <- m
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
