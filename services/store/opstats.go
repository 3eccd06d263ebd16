package store

import (
	"context"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/event"
)

// OpBuckets are the upper bounds (seconds) of the operation latency
// histogram: FerretDB on SQLite answers in about a millisecond by `_id`
// and in tens to hundreds when it has to scan.
var OpBuckets = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5}

// knownOps bounds the operation label: every other command counts as
// "other".
var knownOps = map[string]bool{
	"find": true, "insert": true, "update": true, "delete": true, "aggregate": true,
	"count": true, "getMore": true, "ping": true, "listCollections": true, "create": true,
	"createIndexes": true, "drop": true, "killCursors": true,
}

// OpStat is the latency histogram and error count of one kind of command.
type OpStat struct {
	Name   string
	Counts []uint64 // per OpBuckets bound, not cumulative; last is +Inf
	Sum    float64
	Count  uint64
	Errors uint64
}

// opStats measures every command through the driver's command monitor, so
// no repository needs to time itself.
type opStats struct {
	mu  sync.Mutex
	ops map[string]*OpStat
}

func newOpStats() *opStats { return &opStats{ops: map[string]*OpStat{}} }

func (s *opStats) monitor() *event.CommandMonitor {
	return &event.CommandMonitor{
		Succeeded: func(_ context.Context, e *event.CommandSucceededEvent) {
			s.record(e.CommandName, e.Duration, false)
		},
		Failed: func(_ context.Context, e *event.CommandFailedEvent) {
			s.record(e.CommandName, e.Duration, true)
		},
	}
}

func (s *opStats) record(name string, d time.Duration, failed bool) {
	if !knownOps[name] {
		name = "other"
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.ops[name]
	if !ok {
		st = &OpStat{Name: name, Counts: make([]uint64, len(OpBuckets)+1)}
		s.ops[name] = st
	}
	sec := d.Seconds()
	i := 0
	for i < len(OpBuckets) && sec > OpBuckets[i] {
		i++
	}
	st.Counts[i]++
	st.Sum += sec
	st.Count++
	if failed {
		st.Errors++
	}
}

// OpStats returns a snapshot of every command's latency and errors.
func (s *Store) OpStats() []OpStat {
	s.ops.mu.Lock()
	defer s.ops.mu.Unlock()
	out := make([]OpStat, 0, len(s.ops.ops))
	for _, st := range s.ops.ops {
		c := *st
		c.Counts = append([]uint64(nil), st.Counts...)
		out = append(out, c)
	}
	return out
}
