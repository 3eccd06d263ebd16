package ingest

import (
	"sync"
	"sync/atomic"
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
	AcceptedOlder        = "accepted_older"        // location older than the current fix: history only
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
