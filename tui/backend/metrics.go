// Package backend is the console's backend: its optional collaborators
// (tui.Deps: Metrics, Health, Live, History, Alarms, System) on top of
// core and the appliance's services. The console decides nothing by
// itself beyond hiding screens: every operation here that exposes data of
// orgs or acts on the appliance has core decide for the actor again
// (authz_matrix_test.go runs each as every kind of actor).
package backend

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/piot-appliance/piot/services/broker"
	"github.com/piot-appliance/piot/services/ingest"
	"github.com/piot-appliance/piot/tui"
)

// BrokerStats is what Metrics reads from the broker.
type BrokerStats interface {
	Stats() broker.Stats
}

// IngestStats is what Metrics reads from the ingest.
type IngestStats interface {
	Stats() map[ingest.Key]uint64
	JournalDepth() int64
}

// Metrics defaults.
const (
	DefaultSampleInterval = time.Second
	// DefaultRateSamples is how many intervals a rate is averaged over.
	DefaultRateSamples = 3
)

// Metrics samples the broker's and the ingest's counters on a goroutine
// of its own and turns them into rates; Snapshot only loads the latest
// result, so it never blocks.
type Metrics struct {
	broker   BrokerStats
	ingest   IngestStats
	interval time.Duration
	window   int

	cur  atomic.Pointer[tui.MetricsSnapshot]
	ring []sample // owned by the sampler

	started atomic.Bool
	once    sync.Once
	stop    chan struct{}
	done    chan struct{}
}

type sample struct {
	at       time.Time
	received int64
	ingested uint64
}

// NewMetrics builds the sampler; either source may be nil (its numbers
// stay zero). interval <= 0 means DefaultSampleInterval.
func NewMetrics(b BrokerStats, i IngestStats, interval time.Duration) *Metrics {
	if interval <= 0 {
		interval = DefaultSampleInterval
	}
	m := &Metrics{
		broker: b, ingest: i, interval: interval, window: DefaultRateSamples,
		stop: make(chan struct{}), done: make(chan struct{}),
	}
	m.cur.Store(&tui.MetricsSnapshot{})
	return m
}

// Start takes the first sample and starts sampling.
func (m *Metrics) Start() {
	if m.started.Swap(true) {
		return
	}
	m.sample()
	go m.loop()
}

// Stop ends the sampling; Snapshot keeps returning the last numbers.
func (m *Metrics) Stop() {
	m.once.Do(func() { close(m.stop) })
	if m.started.Load() {
		<-m.done
	}
}

// Snapshot implements tui.Metrics.
func (m *Metrics) Snapshot() tui.MetricsSnapshot { return *m.cur.Load() }

func (m *Metrics) loop() {
	defer close(m.done)
	t := time.NewTicker(m.interval)
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-t.C:
			m.sample()
		}
	}
}

func (m *Metrics) sample() {
	s := sample{at: time.Now()}
	var snap tui.MetricsSnapshot
	if m.broker != nil {
		bs := m.broker.Stats()
		s.received = bs.MessagesReceived
		snap.ConnectedClients = int(bs.ClientsConnected)
	}
	if m.ingest != nil {
		s.ingested = Ingested(m.ingest.Stats())
		snap.JournalDepth = m.ingest.JournalDepth()
	}
	m.ring = append(m.ring, s)
	if len(m.ring) > m.window+1 {
		m.ring = append(m.ring[:0], m.ring[len(m.ring)-m.window-1:]...)
	}
	first := m.ring[0]
	if dt := s.at.Sub(first.at).Seconds(); dt > 0 {
		if s.received > first.received {
			snap.MessagesPerSecond = float64(s.received-first.received) / dt
		}
		if s.ingested > first.ingested {
			snap.IngestPerSecond = float64(s.ingested-first.ingested) / dt
		}
	}
	m.cur.Store(&snap)
}

// Ingested is how many messages the ingest has applied to things: those
// that matched at least one thing's topic (journal replays included).
func Ingested(stats map[ingest.Key]uint64) uint64 {
	return stats[ingest.Key{Rule: ingest.RuleMessage, Result: ingest.Processed}]
}
