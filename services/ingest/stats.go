package ingest

import (
	"sync"
	"sync/atomic"
	"time"
)

// Rules (the first half of a counter's key).
const (
	RuleMessage      = "message" // the message as a whole
	RuleBattery      = "battery"
	RuleAvailability = "availability"
	RuleTelemetry    = "telemetry"
	RuleLocation     = "location"
	RuleSensor       = "sensor"
	RuleSensorUnit   = "sensor_unit"
	RuleSwitch       = "switch"
	RuleJournal      = "journal"
	RuleHistory      = "history"
	RuleState        = "state"
)

// Results (the second half of a counter's key).
const (
	// Message outcomes.
	Processed         = "processed"           // matched at least one thing role
	IgnoredNotOrg     = "ignored_not_org"     // topic not under org/<org>/…
	IgnoredUnknownOrg = "ignored_unknown_org" // no such org
	IgnoredNoMatch    = "ignored_no_match"    // no thing listens on the topic
	IgnoredTooLarge   = "ignored_too_large"   // payload over MaxPayload

	// Rule outcomes.
	Accepted             = "accepted"
	AcceptedOlder        = "accepted_older"        // location or sensor reading older than the current one: history only
	IgnoredDisabled      = "ignored_disabled"      // thing disabled
	IgnoredUnassigned    = "ignored_unassigned"    // thing left its org meanwhile
	IgnoredUnknownState  = "ignored_unknown_state" // switch payload is neither state_on nor state_off
	IgnoredNotConfigured = "ignored_not_configured"
	RejectedBadJSON      = "rejected_bad_json"
	RejectedMissingValue = "rejected_missing_value" // gjson path not found, or empty value
	RejectedUnparsable   = "rejected_unparsable"
	RejectedOutOfRange   = "rejected_out_of_range"
	RejectedTooLarge     = "rejected_too_large"
	RejectedBadEncoding  = "rejected_bad_encoding" // not UTF-8

	// Pipeline outcomes.
	Journaled      = "appended"
	Replayed       = "replayed"
	Failed         = "failed"
	PointsQueued   = "points_queued"
	PointsStored   = "points_stored"
	StoreFailed    = "store_failed"
	PartitionsDrop = "partitions_dropped"
	Flushed        = "things_flushed"
)

// Key names one counter: which rule, which result.
type Key struct {
	Rule   string
	Result string
}

// counters are lock-free after a key's first use.
type counters struct {
	m sync.Map // Key -> *atomic.Uint64
}

func (c *counters) add(rule, result string, n uint64) {
	k := Key{rule, result}
	v, ok := c.m.Load(k)
	if !ok {
		v, _ = c.m.LoadOrStore(k, new(atomic.Uint64))
	}
	v.(*atomic.Uint64).Add(n)
}

func (c *counters) inc(rule, result string) { c.add(rule, result, 1) }

func (c *counters) snapshot() map[Key]uint64 {
	out := map[Key]uint64{}
	c.m.Range(func(k, v any) bool {
		out[k.(Key)] = v.(*atomic.Uint64).Load()
		return true
	})
	return out
}

// HistogramSnapshot is a copy of a fixed-bucket histogram, in Prometheus
// terms: Counts[i] is the number of observations <= Buckets[i]
// (cumulative), Count the number of all of them (the +Inf bucket).
type HistogramSnapshot struct {
	Buckets []float64
	Counts  []uint64
	Sum     float64
	Count   uint64
}

// Bucket bounds of the journal histograms.
var (
	// JournalLatencyBuckets bound the wait from append to durable, in
	// seconds: an fsync takes from well under a millisecond (NVMe) to
	// hundreds of milliseconds (SD cards).
	JournalLatencyBuckets = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5}
	// JournalBatchBuckets bound the records made durable by one fsync.
	JournalBatchBuckets = []float64{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024}
)

// histogram is a fixed-bucket histogram; observations are taken in
// batches (one lock per journal commit), so a mutex costs little.
type histogram struct {
	mu     sync.Mutex
	bounds []float64
	counts []uint64 // per bucket, not cumulative; the last is +Inf
	sum    float64
	count  uint64
}

func newHistogram(bounds []float64) *histogram {
	return &histogram{bounds: bounds, counts: make([]uint64, len(bounds)+1)}
}

// bucket returns the index of the first bound >= v (len(bounds) for +Inf).
func (h *histogram) bucket(v float64) int {
	i := 0
	for i < len(h.bounds) && v > h.bounds[i] {
		i++
	}
	return i
}

// observeLocked records one value; h.mu must be held.
func (h *histogram) observeLocked(v float64) {
	h.counts[h.bucket(v)]++
	h.sum += v
	h.count++
}

func (h *histogram) observe(v float64) {
	h.mu.Lock()
	h.observeLocked(v)
	h.mu.Unlock()
}

func (h *histogram) snapshot() HistogramSnapshot {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := HistogramSnapshot{
		Buckets: append([]float64(nil), h.bounds...),
		Counts:  make([]uint64, len(h.bounds)),
		Sum:     h.sum,
		Count:   h.count,
	}
	var cum uint64
	for i := range h.bounds {
		cum += h.counts[i]
		s.Counts[i] = cum
	}
	return s
}

// journalHistograms are the journal's commit latency and batch size.
type journalHistograms struct {
	latency *histogram
	batch   *histogram
}

func newJournalHistograms() journalHistograms {
	return journalHistograms{latency: newHistogram(JournalLatencyBuckets), batch: newHistogram(JournalBatchBuckets)}
}

// onCommit is the journal's OnCommit: one batch, one lock per histogram.
func (h journalHistograms) onCommit(waited []time.Duration) {
	h.latency.mu.Lock()
	for _, d := range waited {
		h.latency.observeLocked(d.Seconds())
	}
	h.latency.mu.Unlock()
	h.batch.observe(float64(len(waited)))
}
