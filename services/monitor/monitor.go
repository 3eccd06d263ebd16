// Package monitor watches when things last reported. A thing with a
// last_seen_interval, enabled and assigned to an org, that stays silent
// longer than the interval becomes unavailable: its alarm is raised once
// (a stored alarm record, the thing's alarm state in core, one
// notification) and cleared once when it reports again (one recovery
// notification). Notifications go by e-mail and to the org's webhook
// from worker goroutines, so nothing here ever blocks ingest.
//
// Deadlines sit in a min-heap behind a single timer. Ingest is never on
// the hook for them: a due thing is re-read and, if it reported in the
// meantime, pushed back. Only things with an active alarm are woken by
// core's state observer, to clear as soon as they report.
//
// A thing's silence is counted from the later of its last_seen and the
// moment the monitor began watching it (monitor start, or when the thing
// became eligible by being enabled, assigned or given an interval). A
// thing never seen therefore alarms one interval after monitoring began,
// and a restart of the appliance gives every device one interval to
// reconnect before anything is raised; alarms already raised are stored
// and survive the restart without being raised (or mailed) again.
package monitor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/piot-appliance/piot/services/core"
	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/bson/primitive"
	"go.mongodb.org/mongo-driver/mongo"
)

// Deps are the services the monitor uses.
type Deps struct {
	Core  *core.Core
	Store Store
}

// Store is the database the alarms are kept in, beside core's documents;
// the appliance's *store.Store provides it. The monitor owns its
// collection and its documents, so it needs the database, not the store's
// types.
type Store interface {
	Database() *mongo.Database
	// EnsureIDIndex creates a collection so that its `_id` lookups stay
	// index searches ((*store.Store).EnsureIDIndex).
	EnsureIDIndex(ctx context.Context, coll string) error
	// Sync makes the writes so far survive a power cut
	// ((*store.Store).Sync).
	Sync(ctx context.Context) error
}

// Monitor is the last-seen watchdog service.
type Monitor struct {
	cfg  Config
	core *core.Core
	st   Store
	log  *slog.Logger
	now  func() time.Time

	// mu guards the alarm records, read by the API.
	mu     sync.Mutex
	alarms map[string]*Alarm
	active map[core.ID]*Alarm // by thing

	// obsMu guards what the observer and event callbacks hand to the
	// loop; they only touch these maps and never wait.
	obsMu    sync.Mutex
	alarmed  map[core.ID]bool // things with an active alarm
	pending  map[core.ID]bool
	resync   bool
	wake     chan struct{}
	lifeMu   sync.Mutex
	running  bool
	cancel   context.CancelFunc
	unsub    func()
	unwatch  func() // core.WatchState
	wg       sync.WaitGroup
	loopDone chan struct{}

	// loop-owned
	dl    *deadlines
	since map[core.ID]time.Time // when watching began

	notifier *notifier
	stats    counters
}

// Stats are the monitor's counters.
type Stats struct {
	Watched         int // things with a deadline
	ActiveAlarms    int
	Raised, Cleared uint64
	EmailsSent      uint64
	EmailsFailed    uint64
	EmailsRetried   uint64
	WebhooksSent    uint64
	WebhooksFailed  uint64
	WebhooksRetried uint64
	// Dropped counts notifications lost because a queue was full.
	Dropped uint64
	// StoreErrors counts failed alarm writes (retried).
	StoreErrors uint64
}

type counters struct {
	watched                                       atomic.Int64
	raised, cleared                               atomic.Uint64
	emailsSent, emailsFailed, emailsRetried       atomic.Uint64
	webhooksSent, webhooksFailed, webhooksRetried atomic.Uint64
	dropped, storeErrors                          atomic.Uint64
}

// retryStoreAfter is how soon a transition whose store write failed is
// tried again.
const retryStoreAfter = 5 * time.Second

// pruneEvery is how often old cleared alarms are deleted.
const pruneEvery = time.Hour

// New checks the configuration and builds a stopped monitor.
func New(cfg Config, deps Deps) (*Monitor, error) {
	if deps.Core == nil || deps.Store == nil {
		return nil, errors.New("monitor: core and store are required")
	}
	if err := cfg.SMTP.Validate(); err != nil {
		return nil, fmt.Errorf("monitor: %w", err)
	}
	if cfg.WebhookTimeout <= 0 {
		cfg.WebhookTimeout = 10 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	m := &Monitor{
		cfg: cfg, core: deps.Core, st: deps.Store, now: cfg.Now,
		log:    cfg.Logger.With("service", "monitor"),
		alarms: map[string]*Alarm{}, active: map[core.ID]*Alarm{},
		alarmed: map[core.ID]bool{}, pending: map[core.ID]bool{},
		wake: make(chan struct{}, 1),
	}
	m.notifier = newNotifier(m)
	return m, nil
}

// Name names the service for the supervisor.
func (m *Monitor) Name() string { return "monitor" }

// Stats returns the counters.
func (m *Monitor) Stats() Stats {
	m.mu.Lock()
	n := len(m.active)
	m.mu.Unlock()
	s := &m.stats
	return Stats{
		Watched: int(s.watched.Load()), ActiveAlarms: n,
		Raised: s.raised.Load(), Cleared: s.cleared.Load(),
		EmailsSent: s.emailsSent.Load(), EmailsFailed: s.emailsFailed.Load(), EmailsRetried: s.emailsRetried.Load(),
		WebhooksSent: s.webhooksSent.Load(), WebhooksFailed: s.webhooksFailed.Load(), WebhooksRetried: s.webhooksRetried.Load(),
		Dropped: s.dropped.Load(), StoreErrors: s.storeErrors.Load(),
	}
}

// Start loads the stored alarms, reconciles them with the things and
// starts watching. Start it after core (and before ingest, so no report
// is missed; a report missed anyway is seen at the next deadline).
func (m *Monitor) Start(ctx context.Context) error {
	m.lifeMu.Lock()
	defer m.lifeMu.Unlock()
	if m.running {
		return errors.New("monitor: already started")
	}
	if err := m.loadAlarms(ctx); err != nil {
		return err
	}
	m.reconcileState()
	m.mu.Lock()
	m.obsMu.Lock()
	for id := range m.active {
		m.alarmed[id] = true
	}
	m.resync = true // the first loop pass looks at every thing
	m.obsMu.Unlock()
	m.mu.Unlock()

	runCtx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	m.dl = newDeadlines()
	m.since = map[core.ID]time.Time{}
	m.loopDone = make(chan struct{})
	// Subscribe before the loop's first snapshot: later changes arrive
	// as events.
	m.unsub = m.core.Subscribe(m.onEvent)
	m.unwatch = m.core.WatchState(m.observe)
	m.notifier.start()
	m.wg.Add(1)
	go m.loop(runCtx)
	m.running = true
	m.log.Info("monitor started", "active_alarms", len(m.alarmed), "email", m.cfg.SMTP.Enabled())
	return nil
}

// Stop stops watching and the notification workers; notifications
// still queued are given until ctx ends to go out.
func (m *Monitor) Stop(ctx context.Context) error {
	m.lifeMu.Lock()
	defer m.lifeMu.Unlock()
	if !m.running {
		return nil
	}
	m.running = false
	m.unwatch()
	m.unsub()
	m.cancel()
	m.wg.Wait() // the loop makes no more transitions
	// The workers deliver what is queued, until ctx ends.
	done := make(chan struct{})
	go func() { m.notifier.drain(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		m.notifier.abort()
		<-done
		return fmt.Errorf("monitor: stop: %w", ctx.Err())
	}
}

// observe is the monitor's core.WatchState callback: called for every
// state change, on ingest's path, so it only marks things with an active
// alarm.
func (m *Monitor) observe(id core.ID) {
	m.obsMu.Lock()
	if !m.alarmed[id] {
		m.obsMu.Unlock()
		return
	}
	m.pending[id] = true
	m.obsMu.Unlock()
	m.signal()
}

func (m *Monitor) onEvent(e core.Event) {
	m.obsMu.Lock()
	switch e.Kind {
	case core.ThingChanged, core.ThingDeleted:
		m.pending[e.ID] = true
	case core.OrgDeleted:
		m.resync = true // its things were unassigned
	default:
		m.obsMu.Unlock()
		return
	}
	m.obsMu.Unlock()
	m.signal()
}

func (m *Monitor) signal() {
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

func (m *Monitor) loop(ctx context.Context) {
	defer m.wg.Done()
	defer close(m.loopDone)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	prune := time.NewTicker(pruneEvery)
	defer prune.Stop()
	m.pruneAlarms(ctx)
	for {
		m.obsMu.Lock()
		pending, resync := m.pending, m.resync
		m.pending, m.resync = map[core.ID]bool{}, false
		m.obsMu.Unlock()
		if resync {
			for _, t := range m.core.AllThings() {
				pending[t.ID] = true
			}
			for id := range m.dl.byID {
				pending[id] = true
			}
			m.mu.Lock()
			for id := range m.active {
				pending[id] = true
			}
			m.mu.Unlock()
		}
		for id := range pending {
			m.evaluate(ctx, id)
		}
		for _, id := range m.dl.popDue(time.Now()) {
			m.evaluate(ctx, id)
		}
		m.stats.watched.Store(int64(m.dl.Len()))
		if at, ok := m.dl.next(); ok {
			timer.Reset(max(time.Until(at), 0))
		} else {
			timer.Stop()
		}
		select {
		case <-ctx.Done():
			return
		case <-m.wake:
		case <-timer.C:
		case <-prune.C:
			m.pruneAlarms(ctx)
		}
	}
}

// eligible reports whether a thing is watched at all.
func eligible(t *core.Thing) bool {
	return t.Enabled && !t.OrgID.IsZero() && t.LastSeenInterval > 0
}

// evaluate brings one thing up to date: raise, clear, or (re)schedule.
func (m *Monitor) evaluate(ctx context.Context, id core.ID) {
	t, err := m.core.Thing(core.System(), id)
	found := err == nil
	m.mu.Lock()
	al := m.active[id]
	m.mu.Unlock()

	if !found || !eligible(&t) {
		m.dl.remove(id)
		delete(m.since, id)
		if al != nil {
			reason := "thing deleted"
			if found {
				reason = "thing no longer monitored"
			}
			m.resolve(ctx, id, al, found, reason)
		}
		return
	}
	if al != nil && al.OrgID != t.OrgID {
		// moved to another org: that org has not heard of this alarm,
		// and the old one should not hear of its recovery
		m.resolve(ctx, id, al, true, "thing moved to another org")
		m.mu.Lock()
		al = m.active[id]
		m.mu.Unlock()
		if al != nil {
			return // store write failed; retried
		}
		delete(m.since, id)
	}
	now := time.Now()
	if al != nil {
		m.dl.remove(id)
		if t.LastSeen > al.LastSeen {
			m.clear(ctx, &t, al)
		}
		return
	}
	since, ok := m.since[id]
	if !ok {
		since = now
		m.since[id] = since
	}
	// last_seen is whole seconds: silent longer than the interval means
	// now.Unix() - last_seen > interval, the UI's own rule.
	due := time.Unix(t.LastSeen+t.LastSeenInterval+1, 0)
	if d := since.Add(time.Duration(t.LastSeenInterval) * time.Second); d.After(due) {
		due = d
	}
	if due.After(now) {
		m.dl.set(id, due)
		return
	}
	m.raise(ctx, &t)
}

func (m *Monitor) stamp() time.Time { return m.now().UTC().Truncate(time.Millisecond) }

// raise records the alarm first (so a crash cannot lose it and a restart
// cannot repeat it), then sets the thing's state and queues the
// notifications.
func (m *Monitor) raise(ctx context.Context, t *core.Thing) {
	orgName, _ := m.core.OrgNameOf(t.OrgID)
	now := m.stamp()
	al := &Alarm{
		ID: primitive.NewObjectID().Hex(), ThingID: t.ID, OrgID: t.OrgID,
		ThingName: t.Name, OrgName: orgName,
		LastSeen: t.LastSeen, Interval: t.LastSeenInterval, RaisedAt: now,
	}
	if err := m.insertAlarm(ctx, al); err != nil {
		m.storeFailed(t.ID, "raise", err)
		return
	}
	m.mu.Lock()
	m.alarms[al.ID] = al
	m.active[t.ID] = al
	m.mu.Unlock()
	m.obsMu.Lock()
	m.alarmed[t.ID] = true
	m.obsMu.Unlock()
	m.core.UpdateThingState(t.ID, func(s *core.Thing) bool {
		s.Available, s.AlarmActive, s.AlarmActivated = false, true, now.Unix()
		return true
	})
	m.stats.raised.Add(1)
	m.log.Warn("thing not available", "org", orgName, "thing", t.Name, "id", t.ID.Hex(), "last_seen", t.LastSeen, "interval", t.LastSeenInterval, "alarm", al.ID)
	m.notifier.enqueue(notification{event: EventRaised, alarm: *al, at: now})
	// a report that raced with the raise clears it at once
	if cur, err := m.core.Thing(core.System(), t.ID); err == nil && cur.LastSeen > al.LastSeen {
		m.obsMu.Lock()
		m.pending[t.ID] = true
		m.obsMu.Unlock()
		m.signal()
	}
}

// clear ends an alarm because the thing reported again.
func (m *Monitor) clear(ctx context.Context, t *core.Thing, al *Alarm) {
	now := m.stamp()
	if err := m.setAlarmFields(ctx, al.ID, bson.D{{Key: "cleared_at", Value: now}}); err != nil {
		m.storeFailed(t.ID, "clear", err)
		return
	}
	m.finish(al, now, "")
	m.core.UpdateThingState(t.ID, func(s *core.Thing) bool {
		s.Available, s.AlarmActive, s.AlarmActivated = true, false, now.Unix()
		return true
	})
	m.stats.cleared.Add(1)
	m.mu.Lock()
	done := *al
	m.mu.Unlock()
	m.log.Info("thing available again", "org", al.OrgName, "thing", t.Name, "id", t.ID.Hex(), "alarm", al.ID)
	m.notifier.enqueue(notification{event: EventCleared, alarm: done, at: now, thingName: t.Name})
	m.evaluate(ctx, t.ID) // schedule the next deadline
}

// resolve closes an alarm whose thing is gone or no longer monitored,
// without a recovery notification: the thing did not recover.
func (m *Monitor) resolve(ctx context.Context, id core.ID, al *Alarm, exists bool, reason string) {
	now := m.stamp()
	if err := m.setAlarmFields(ctx, al.ID, bson.D{{Key: "cleared_at", Value: now}, {Key: "clear_reason", Value: reason}}); err != nil {
		m.storeFailed(id, "resolve", err)
		return
	}
	m.finish(al, now, reason)
	if exists {
		m.core.UpdateThingState(id, func(s *core.Thing) bool {
			if !s.AlarmActive {
				return false
			}
			s.AlarmActive, s.AlarmActivated = false, now.Unix()
			return true
		})
	}
	m.log.Info("alarm closed", "alarm", al.ID, "thing", al.ThingName, "reason", reason)
}

func (m *Monitor) finish(al *Alarm, at time.Time, reason string) {
	m.mu.Lock()
	al.ClearedAt, al.ClearReason = &at, reason
	if m.active[al.ThingID] == al {
		delete(m.active, al.ThingID)
	}
	m.mu.Unlock()
	m.obsMu.Lock()
	delete(m.alarmed, al.ThingID)
	m.obsMu.Unlock()
}

// storeFailed logs a failed alarm write and tries the thing again later.
func (m *Monitor) storeFailed(id core.ID, op string, err error) {
	m.stats.storeErrors.Add(1)
	m.log.Error("alarm write failed", "op", op, "thing", id.Hex(), "err", err)
	m.dl.set(id, time.Now().Add(retryStoreAfter))
}

// reconcile makes core's state agree with the active alarms loaded at
// start (core's state is flushed in batches, so a crash may have lost
// the raise).
func (m *Monitor) reconcileState() {
	m.mu.Lock()
	act := make([]Alarm, 0, len(m.active))
	for _, a := range m.active {
		act = append(act, *a)
	}
	m.mu.Unlock()
	for _, a := range act {
		m.core.UpdateThingState(a.ThingID, func(s *core.Thing) bool {
			if s.AlarmActive && !s.Available {
				return false
			}
			s.Available, s.AlarmActive = false, true
			if s.AlarmActivated < a.RaisedAt.Unix() {
				s.AlarmActivated = a.RaisedAt.Unix()
			}
			return true
		})
	}
}
