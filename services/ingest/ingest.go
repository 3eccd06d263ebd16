// Package ingest turns MQTT publishes under org/# into thing state and
// history, following the original PIOT server's rules (reference §6.2)
// with its flaws fixed.
//
// The path of a message:
//
//  1. The broker hook (OnPublish) routes the topic through an in-memory
//     topic → things index; messages no thing listens on are counted and
//     dropped here. The rest are appended to the journal (group commit);
//     for QoS > 0 the hook returns, and the broker acknowledges, only once
//     the record is on disk.
//  2. After each fsync the journal hands the records, in order, to the
//     applier, which runs the rules (Process): thing state changes in core
//     at once (core.UpdateThingState), accepted readings are queued for
//     the history.
//  3. The history writer stores queued points in batches as fast as the
//     store takes them; the flusher writes changed thing state every
//     FlushInterval (core.FlushState).
//  4. The journal checkpoint advances to the last record whose state and
//     history are both stored; older segments are deleted. At Start the
//     records after the checkpoint are replayed, so a crash loses nothing
//     that was acknowledged; replayed history points are recognized by
//     their journal sequence number and stored once.
package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/piot-appliance/piot/internal/journal"
	"github.com/piot-appliance/piot/services/core"
	"github.com/piot-appliance/piot/services/history"
)

// Defaults.
const (
	// DefaultFlushInterval: writing a thing's state costs FerretDB about
	// 1 ms (store BenchmarkThingSetMany1000), so with 1 000 things
	// reporting every second a 1 s flush took a whole core (mqttbench
	// -sustained over 1 000 things: 40 000 acknowledged msg/s at 1 s,
	// 48 600–49 900 at 5 s, 46 100–54 000 at 15 s); things reporting less
	// often than this cost the same either way. The journal holds what
	// the store does not yet.
	DefaultFlushInterval     = 15 * time.Second
	DefaultRetentionInterval = time.Hour
	DefaultMaxPendingPoints  = 100_000
	// DefaultBusyCommitInterval: 1 000 things, 16 publishers (mqttbench,
	// -repeats 3, ratio to mosquitto in the same sitting): 0.85, 0.87 and
	// 0.94 with commits back to back, 0.89 at 1 ms, 0.97–1.02 at 2 ms,
	// 0.97 at 4 ms. Spacing regardless of the publishers cost a lone
	// publisher a quarter of its rate (0.72 → 0.56), hence the count.
	DefaultBusyCommitInterval = 2 * time.Millisecond
	// MaxBusyCommitInterval bounds Config.BusyCommitInterval.
	MaxBusyCommitInterval = journal.MaxBusyCommitInterval
)

// ErrNotRunning is returned for messages that arrive before Start or
// after Stop.
var ErrNotRunning = errors.New("ingest: not running")

// Config tunes the ingest.
type Config struct {
	// DataDir is the appliance data directory; the journal lives in
	// DataDir/journal.
	DataDir string
	// FlushInterval is how often changed thing state is written to the
	// store (default DefaultFlushInterval).
	FlushInterval time.Duration
	// HistoryInterval is the least time between two history writes
	// (default 1 s; negative writes continuously).
	HistoryInterval time.Duration
	// MaxPayload is the largest payload processed (default 64 KiB).
	MaxPayload int
	// SegmentBytes is the journal segment size (default 16 MiB).
	SegmentBytes int64
	// BusyCommitInterval spaces the journal's commits under load
	// (journal.Options.BusyCommitInterval; 0: back to back).
	BusyCommitInterval time.Duration
	// RetentionInterval is how often the history retention runs (default
	// 1 h; negative disables it).
	RetentionInterval time.Duration
	// MaxPendingPoints bounds the history queue; when the store falls this
	// far behind, applying (and so acknowledging) waits.
	MaxPendingPoints int
	Logger           *slog.Logger
}

// Deps are the services the ingest works with.
type Deps struct {
	Core    *core.Core
	History *history.Store
}

// Ingest is the service.
type Ingest struct {
	cfg  Config
	core *core.Core
	hist *history.Store
	log  *slog.Logger
	idx  *index
	j    *journal.Journal
	jh   journalHistograms
	hook *Hook
	mk   *marks

	stats counters
	// histFail and stateFail: the store does not take history points or
	// thing state now (a full disk, say).
	histFail, stateFail failing
	deliver             deliverer // Publish's live delivery

	running  atomic.Bool
	lifeMu   sync.Mutex
	started  bool
	stopped  bool
	unsub    func()
	ready    chan struct{} // closed once the index is built
	applyCh  chan []journal.Record
	applied  atomic.Uint64 // last record applied
	stateSeq atomic.Uint64 // records up to here have their state stored
	histSeq  atomic.Uint64 // records up to here have their points stored

	qmu   sync.Mutex
	qcond *sync.Cond
	queue []history.Point
	// spare is the queue the writer stored last, emptied: the next queue
	// fills it instead of growing a new slice at every write.
	spare   []history.Point
	qmark   uint64 // records up to here have their points queued
	qclosed bool

	ctx       context.Context // cancelled by Stop once its deadline passes
	cancel    context.CancelFunc
	applierWG sync.WaitGroup
	writerWG  sync.WaitGroup
	flushWG   sync.WaitGroup
	flushStop chan struct{}

	// noFlush keeps state and history out of the store (tests simulating a
	// crash before anything was flushed).
	noFlush bool
}

// New opens the journal; nothing is processed before Start.
func New(cfg Config, deps Deps) (*Ingest, error) {
	if deps.Core == nil || deps.History == nil {
		return nil, errors.New("ingest: core and history are required")
	}
	if cfg.DataDir == "" {
		return nil, errors.New("ingest: data directory is required")
	}
	if cfg.HistoryInterval == 0 {
		cfg.HistoryInterval = time.Second
	}
	if cfg.FlushInterval <= 0 {
		cfg.FlushInterval = DefaultFlushInterval
	}
	if cfg.MaxPayload <= 0 {
		cfg.MaxPayload = DefaultMaxPayload
	}
	if cfg.RetentionInterval == 0 {
		cfg.RetentionInterval = DefaultRetentionInterval
	}
	if cfg.MaxPendingPoints <= 0 {
		cfg.MaxPendingPoints = DefaultMaxPendingPoints
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	i := &Ingest{
		cfg: cfg, core: deps.Core, hist: deps.History, log: cfg.Logger.With("service", "ingest"),
		idx: newIndex(), ready: make(chan struct{}), applyCh: make(chan []journal.Record, 256),
		flushStop: make(chan struct{}), jh: newJournalHistograms(),
	}
	i.qcond = sync.NewCond(&i.qmu)
	i.histFail.what, i.histFail.log = "writing history to the store", i.log
	i.stateFail.what, i.stateFail.log = "storing thing state and the journal checkpoint", i.log
	i.hook = &Hook{i: i}
	mk, err := loadMarks(filepath.Join(cfg.DataDir, "journal.marks"))
	if err != nil {
		return nil, err
	}
	i.mk = mk
	j, err := journal.Open(filepath.Join(cfg.DataDir, "journal"), journal.Options{
		SegmentBytes:       cfg.SegmentBytes,
		Preallocate:        true,
		BusyCommitInterval: cfg.BusyCommitInterval,
		OnDurable:          func(recs []journal.Record) { i.applyCh <- recs },
		OnCommit:           i.jh.onCommit,
		Logger:             i.log,
	})
	if err != nil {
		return nil, fmt.Errorf("ingest: %w", err)
	}
	i.j = j
	cp := j.Checkpoint()
	i.applied.Store(cp)
	i.stateSeq.Store(cp)
	i.histSeq.Store(cp)
	i.qmark = cp
	return i, nil
}

// Name names the service for the supervisor.
func (i *Ingest) Name() string { return "ingest" }

// Hook is the broker hook; add it to the broker before the broker starts.
func (i *Ingest) Hook() mqtt.Hook { return i.hook }

// Stats returns the counters by rule and result.
func (i *Ingest) Stats() map[Key]uint64 { return i.stats.snapshot() }

// JournalLatency returns the histogram of the seconds each journal record
// waited from append to durable (group commit and fsync).
func (i *Ingest) JournalLatency() HistogramSnapshot { return i.jh.latency.snapshot() }

// JournalBatchSize returns the histogram of the records made durable by
// one journal commit (one fsync).
func (i *Ingest) JournalBatchSize() HistogramSnapshot { return i.jh.batch.snapshot() }

// Start builds the topic index, replays the journal records after the
// checkpoint and starts the pipeline. Start it before the broker accepts
// clients.
func (i *Ingest) Start(ctx context.Context) error {
	i.lifeMu.Lock()
	defer i.lifeMu.Unlock()
	if i.started {
		return errors.New("ingest: already started")
	}
	i.started = true
	i.ctx, i.cancel = context.WithCancel(context.Background())

	// Subscribe before taking the snapshot: every change after it arrives
	// as an event, handled once the snapshot is in place. Inline: a thing
	// enabled through the API is routed before the API call returns.
	i.unsub = i.core.SubscribeInline(i.onEvent)
	i.idx.reset(i.core.AllThings())
	close(i.ready)

	i.writerWG.Add(1)
	go i.writeHistory()

	from := i.j.Checkpoint()
	start := time.Now()
	var n uint64
	err := i.j.Replay(from, func(r journal.Record) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		i.apply(r)
		n++
		return nil
	})
	if err != nil {
		i.abort()
		return fmt.Errorf("ingest: replay journal: %w", err)
	}
	i.stats.add(RuleJournal, Replayed, n)
	if n > 0 {
		i.log.Info("journal replayed", "records", n, "after", from, "took", time.Since(start).Round(time.Millisecond))
	}

	i.applierWG.Add(1)
	go i.applyLoop()
	i.flushWG.Add(1)
	go i.flushLoop()
	i.running.Store(true)
	return nil
}

// abort stops the goroutines Start began, without flushing.
func (i *Ingest) abort() {
	i.qmu.Lock()
	i.qclosed = true
	i.qcond.Broadcast()
	i.qmu.Unlock()
	i.cancel()
	i.writerWG.Wait()
	if i.unsub != nil {
		i.unsub()
	}
	_ = i.j.Close()
}

// Stop stops taking messages, applies what the journal holds, stores the
// history and state, and advances the checkpoint. If ctx ends first, what
// is not stored stays in the journal for the next start.
func (i *Ingest) Stop(ctx context.Context) error {
	i.lifeMu.Lock()
	defer i.lifeMu.Unlock()
	if i.stopped {
		return nil
	}
	i.stopped = true
	if !i.started {
		return i.j.Close()
	}
	i.running.Store(false)
	done := make(chan error, 1)
	go func() { done <- i.drain(ctx) }()
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		// Give up on the store; unblock whatever waits for it.
		i.cancel()
		i.qmu.Lock()
		i.qclosed = true
		i.qcond.Broadcast()
		i.qmu.Unlock()
		err = errors.Join(<-done, ctx.Err())
	}
	i.cancel()
	i.unsub()
	return err
}

// drain runs the shutdown sequence: journal, applier, flusher, history
// writer, final flush.
func (i *Ingest) drain(ctx context.Context) error {
	// The journal's last batch goes to the applier, then nothing more.
	jerr := i.j.Close()
	close(i.applyCh)
	i.applierWG.Wait()
	close(i.flushStop)
	i.flushWG.Wait()
	i.qmu.Lock()
	i.qclosed = true
	i.qcond.Broadcast()
	i.qmu.Unlock()
	i.writerWG.Wait()
	if i.noFlush || ctx.Err() != nil {
		return jerr
	}
	return errors.Join(jerr, i.flush(ctx))
}

// submit routes a publish and journals it if some thing listens on its
// topic. The returned durability, nil when nothing was journaled, says
// when the record is on disk. src is who waits for it (the publisher's
// connection; nil for none), for the journal's commit spacing.
func (i *Ingest) submit(src any, topic string, payload []byte, at time.Time) (*durability, error) {
	if IsMark(topic) { // marks come only with what they cover, through SubmitAll
		i.stats.inc(RuleMessage, IgnoredNotOrg)
		return nil, nil
	}
	rec, rt, err := i.prepare(topic, payload, at)
	if rec == nil || err != nil {
		return nil, err
	}
	if err := i.histFail.get(); err != nil {
		// Taking more would only fill the journal (and the memory
		// between it and the store) with what cannot be stored.
		i.stats.inc(RuleJournal, Failed)
		return nil, refusal(err)
	}
	t, err := i.j.AppendFrom(src, [][]byte{rec}, []any{rt})
	if err != nil {
		i.stats.inc(RuleJournal, Failed)
		return nil, writeRefusal(err)
	}
	i.stats.inc(RuleJournal, Journaled)
	return &durability{i: i, t: t}, nil
}

// prepare returns the journal record for a message and its routing, or
// no record when there is nothing to store (the message is then counted
// the way the rules would). Marks have no routing.
func (i *Ingest) prepare(topic string, payload []byte, at time.Time) ([]byte, *routing, error) {
	if !i.running.Load() {
		i.stats.inc(RuleJournal, Failed)
		return nil, nil, ErrNotRunning
	}
	if IsMark(topic) {
		if !validMarkKey(topic[len(markPrefix):]) {
			return nil, nil, fmt.Errorf("ingest: invalid mark %q", topic)
		}
		return encodeRecord(topic, payload, at), nil, nil
	}
	if len(topic) < 4 || topic[:4] != "org/" {
		i.stats.inc(RuleMessage, IgnoredNotOrg)
		return nil, nil, nil
	}
	rt := i.route(topic, len(payload))
	if !rt.journaled() {
		i.process(rt, payload, at.Unix(), 0)
		return nil, nil, nil
	}
	return encodeRecord(topic, payload, at), rt, nil
}

// durability is a journaled record's claim on being on disk.
type durability struct {
	i *Ingest
	t journal.Ticket
}

// Ready reports, without blocking, whether the record is on disk.
func (d *durability) Ready() bool { return d.i.j.Durable() >= d.t.Seq() }

// Wait blocks until the record is on disk or could not be written.
func (d *durability) Wait() error {
	if err := d.t.Wait(); err != nil {
		d.i.stats.inc(RuleJournal, Failed)
		return writeRefusal(err)
	}
	return nil
}

// wait is Wait for a possibly absent record.
func (d *durability) wait() error {
	if d == nil {
		return nil
	}
	return d.Wait()
}

// Submit journals a message as if it had been published, waiting until
// it is durable; for in-process producers that bypass the broker.
func (i *Ingest) Submit(topic string, payload []byte, at time.Time) error {
	d, err := i.submit(nil, topic, payload, at)
	if err != nil {
		return err
	}
	return d.wait()
}

// Message is one message for SubmitAll.
type Message struct {
	Topic   string
	Payload []byte
	At      time.Time
}

// LastMark returns the highest sequence number journaled for key with
// Mark (0: none).
func (i *Ingest) LastMark(key string) uint64 { return i.mk.get(key) }

// SubmitAll journals messages in order, all or none, and waits until they
// are durable: a device packet of many messages costs one group commit,
// and a packet refused (say, at shutdown) leaves nothing behind that its
// resend would store a second time.
func (i *Ingest) SubmitAll(msgs []Message) error {
	recs := make([][]byte, 0, len(msgs))
	notes := make([]any, 0, len(msgs))
	for _, m := range msgs {
		rec, rt, err := i.prepare(m.Topic, m.Payload, m.At)
		if err != nil {
			return err
		}
		if rec != nil {
			recs = append(recs, rec)
			notes = append(notes, rt)
		}
	}
	if len(recs) == 0 {
		return nil
	}
	if err := i.histFail.get(); err != nil {
		i.stats.add(RuleJournal, Failed, uint64(len(recs)))
		return refusal(err)
	}
	t, err := i.j.AppendNoted(recs, notes)
	if err != nil {
		i.stats.add(RuleJournal, Failed, uint64(len(recs)))
		return writeRefusal(err)
	}
	i.stats.add(RuleJournal, Journaled, uint64(len(recs)))
	return (&durability{i: i, t: t}).Wait()
}

func (i *Ingest) applyLoop() {
	defer i.applierWG.Done()
	for recs := range i.applyCh {
		for _, r := range recs {
			i.apply(r)
		}
	}
}

// apply runs the rules on one journal record and queues its points.
func (i *Ingest) apply(r journal.Record) {
	topic, payload, at, err := decodeRecord(r.Data)
	var pts []history.Point
	switch {
	case err != nil:
		i.log.Error("skipping malformed journal record", "seq", r.Seq, "err", err)
	case IsMark(topic):
		if err := i.mk.apply(topic, payload); err != nil {
			i.log.Error("skipping malformed journal record", "seq", r.Seq, "err", err)
		}
	default:
		rt, ok := r.Note.(*routing)
		if !ok || rt == nil { // replayed: routed now
			rt = i.route(topic, len(payload))
		}
		pts = i.process(rt, payload, at.Unix(), r.Seq).Points
	}
	i.enqueue(pts, r.Seq)
	i.applied.Store(r.Seq)
}

// enqueue adds points to the history queue, waiting while it is full.
func (i *Ingest) enqueue(pts []history.Point, seq uint64) {
	i.qmu.Lock()
	for len(i.queue) >= i.cfg.MaxPendingPoints && !i.qclosed {
		i.qcond.Wait()
	}
	if i.queue == nil && len(pts) > 0 {
		i.queue, i.spare = i.spare, nil
	}
	i.queue = append(i.queue, pts...)
	i.qmark = seq
	i.qmu.Unlock()
	i.qcond.Broadcast()
	if len(pts) > 0 {
		i.stats.add(RuleHistory, PointsQueued, uint64(len(pts)))
	}
}

// writeHistory stores queued points in batches: whatever accumulated
// since the last write goes into the next, and writes start at most once
// per HistoryInterval. Each append costs the store a write per series
// touched, so fewer, larger appends cost less than many small ones; thing
// state is live in memory meanwhile, and the journal keeps the points
// durable.
func (i *Ingest) writeHistory() {
	defer i.writerWG.Done()
	backoff := 100 * time.Millisecond
	var last time.Time
	for {
		if wait := i.cfg.HistoryInterval - time.Since(last); !last.IsZero() && wait > 0 {
			select {
			case <-time.After(wait):
			case <-i.flushStop:
			case <-i.ctx.Done():
			}
		}
		last = time.Now()
		i.qmu.Lock()
		for len(i.queue) == 0 && i.qmark == i.histSeq.Load() && !i.qclosed {
			i.qcond.Wait()
		}
		pts, mark, closed := i.queue, i.qmark, i.qclosed
		i.queue = nil
		i.qmu.Unlock()
		i.qcond.Broadcast()

		if len(pts) == 0 && closed && mark == i.histSeq.Load() {
			return
		}
		for len(pts) > 0 && !i.noFlush {
			err := i.hist.Append(i.ctx, pts)
			if err == nil {
				i.histFail.set(nil)
				i.stats.add(RuleHistory, PointsStored, uint64(len(pts)))
				backoff = 100 * time.Millisecond
				break
			}
			i.stats.inc(RuleHistory, StoreFailed)
			if i.ctx.Err() != nil {
				return
			}
			i.histFail.set(err)
			select {
			case <-time.After(backoff):
			case <-i.ctx.Done():
				return
			}
			backoff = min(backoff*2, 30*time.Second)
		}
		i.histSeq.Store(mark)
		if cap(pts) > 0 {
			clear(pts) // the points' strings go with them
			i.qmu.Lock()
			i.spare = pts[:0]
			i.qmu.Unlock()
		}
	}
}

func (i *Ingest) flushLoop() {
	defer i.flushWG.Done()
	t := time.NewTicker(i.cfg.FlushInterval)
	defer t.Stop()
	var lastRetention, next time.Time
	for {
		select {
		case <-i.flushStop:
			return
		case <-t.C:
		}
		if i.noFlush || time.Now().Before(next) {
			continue
		}
		t0 := time.Now()
		i.stateFail.set(i.flush(i.ctx))
		// A flush of 10 000 changed things takes about 0.1 s (64 state
		// pages); spaced out like this it takes at most 1/flushDuty of
		// the time even on a slow board, and the broker the rest. The
		// state is live in memory and durable in the journal meanwhile.
		next = t0.Add(flushDuty * time.Since(t0))
		if err := i.hist.Settle(i.ctx); err != nil {
			i.log.Warn("history: settling the last hour failed", "err", err)
		}
		if i.cfg.RetentionInterval > 0 && time.Since(lastRetention) >= i.cfg.RetentionInterval {
			lastRetention = time.Now()
			dropped, err := i.hist.Enforce(i.ctx)
			if err != nil {
				i.log.Warn("history retention failed", "err", err)
			}
			i.stats.add(RuleHistory, PartitionsDrop, uint64(len(dropped)))
		}
	}
}

// flushDuty spaces out long flushes (flushLoop).
const flushDuty = 5

// flush writes changed thing state and advances the journal checkpoint to
// what is stored on both sides.
func (i *Ingest) flush(ctx context.Context) error {
	seq := i.applied.Load()
	n, err := i.core.FlushState(ctx)
	if err != nil {
		i.stats.inc(RuleState, StoreFailed)
		return err
	}
	i.stats.add(RuleState, Flushed, uint64(n))
	i.stateSeq.Store(seq)
	// Marks applied up to seq are saved before the checkpoint passes them.
	if err := i.mk.save(); err != nil {
		return err
	}
	cp := min(i.stateSeq.Load(), i.histSeq.Load())
	if cp > i.j.Checkpoint() {
		// The store acknowledges writes before they are fsynced (see
		// store.Sync): what the checkpoint lets the journal drop is made
		// durable first, in one sync for the whole second's writes.
		if err := i.hist.Sync(ctx); err != nil {
			return err
		}
		if err := i.j.SetCheckpoint(cp); err != nil {
			return err
		}
	}
	return nil
}

// onEvent keeps the topic index current. It runs inline in core's
// writers; it waits for ready only while Start takes its snapshot, which
// needs no writer.
func (i *Ingest) onEvent(e core.Event) {
	<-i.ready
	switch e.Kind {
	case core.ThingChanged:
		t, err := i.core.Thing(core.System(), e.ID)
		if err != nil {
			i.idx.remove(e.ID)
			return
		}
		i.idx.put(t)
	case core.ThingDeleted:
		i.idx.remove(e.ID)
	}
}
