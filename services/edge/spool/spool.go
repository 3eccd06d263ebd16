// Package spool is the edge adapter's store-and-forward buffer: a device
// packet is on disk before the device gets its answer, and stays there
// until the appliance has acknowledged it over the uplink, however long the
// uplink is down and however often the adapter restarts meanwhile. It
// sits with the edge adapter, its only user: the appliance's relay takes
// what the uplink delivers straight into ingest's journal.
//
// A spool is a journal (internal/journal) used as a queue. Append is
// a durable journal append, so concurrent appenders share fsyncs; Next reads
// records back from the segment files rather than from memory, so a long
// outage costs disk, not RAM; Ack moves the journal checkpoint, which
// deletes the segments that hold only delivered records. What the spool
// adds are the bounds a remote site needs, on bytes and on age, and an
// account of every record it gives up: a drop moves the checkpoint past the
// oldest records, counts them and logs a warning saying how many and how
// old they were.
//
// Each record's payload in the journal is the append time (Unix
// nanoseconds, int64 little endian) followed by the data, so that ages
// survive restarts.
package spool

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/piot-appliance/piot/internal/journal"
)

// Policy says what Append does when the spool is at MaxBytes.
type Policy string

// Policies.
const (
	// DropOldest gives up the oldest records to make room (the default):
	// at a remote site the newest readings are usually worth the most.
	DropOldest Policy = "drop-oldest"
	// RejectNew refuses the new record with ErrFull, so that the device
	// keeps it and retries.
	RejectNew Policy = "reject-new"
)

const (
	// DefaultMaxBytes bounds the spool's segment files.
	DefaultMaxBytes = 256 << 20
	// DefaultSegmentBytes is small so that drops and deletions after an
	// Ack free space in fine steps.
	DefaultSegmentBytes = 1 << 20

	timeBytes = 8
	// recordOverhead is what a record takes on disk besides its data.
	recordOverhead = journal.HeaderBytes + timeBytes
	// readChunk is how many records a drop reads per journal call.
	readChunk = 1024
)

// Errors callers branch on.
var (
	ErrFull     = errors.New("spool: full")
	ErrClosed   = errors.New("spool: closed")
	ErrTooLarge = errors.New("spool: record too large")
)

// errStop ends a journal read early; it never leaves this package.
var errStop = errors.New("stop reading")

// Options tune a spool.
type Options struct {
	// MaxBytes bounds the spool on disk (default DefaultMaxBytes). The
	// unit is bytes of segment files, which is what fills the disk: every
	// record takes its data plus 16 bytes (journal header and append
	// time), and a segment is deleted only once every record in it has
	// been acknowledged or dropped, so acknowledged records of a partly
	// acknowledged segment still count. It must be at least twice
	// SegmentBytes, because the segment being written is never deleted.
	MaxBytes int64
	// MaxAge drops records older than this (0: no age bound). It is
	// checked on Append, on Next and periodically.
	MaxAge time.Duration
	// Policy applies when an Append would exceed MaxBytes (default
	// DropOldest).
	Policy Policy
	// SegmentBytes is the size of the segment files (default
	// DefaultSegmentBytes, at most a quarter of MaxBytes). A record's data
	// plus 16 bytes must fit in one segment.
	SegmentBytes int64
	// Now is the clock that stamps records and judges their age.
	Now    func() time.Time
	Logger *slog.Logger
}

// Record is one spooled packet.
type Record struct {
	Seq  uint64
	At   time.Time // when it was appended
	Data []byte
}

// Stats describe the spool's content and count its work since Open.
type Stats struct {
	Records      uint64    // unacknowledged records on disk
	Bytes        int64     // bytes of segment files, as bounded by MaxBytes, including the records being committed
	Oldest       time.Time // append time of the oldest unacknowledged record; zero if there is none
	Appended     uint64    // records appended
	Acked        uint64    // records acknowledged
	Dropped      uint64    // records given up by the byte or age bound
	DroppedBytes uint64    // data bytes of the dropped records
	Rejected     uint64    // appends refused with ErrFull
}

// Spool is an open spool. Its methods are safe for concurrent use.
type Spool struct {
	opt     Options
	log     *slog.Logger
	j       *journal.Journal
	maxData int

	// mu serialises the byte bound check with the append it admits, and
	// every move of the checkpoint (Ack and drops) with the counting of
	// the records it passes.
	mu        sync.Mutex
	first     firstRecord
	rejecting bool // the last Append was refused; logged on the edges only

	closed                                          atomic.Bool
	appended, acked, dropped, droppedBytes, rejects atomic.Uint64

	stop chan struct{}
	wg   sync.WaitGroup
}

// firstRecord caches the first record after checkpoint cp: it only
// changes when the checkpoint moves, and it is wanted on every Append when
// there is an age bound.
type firstRecord struct {
	ok      bool
	cp, seq uint64
	at      time.Time
}

// loss describes the records a drop gives up.
type loss struct {
	records, bytes uint64
	oldest, newest time.Time
	last           uint64 // the last of them
}

// Open opens (or creates) the spool in dir. It recovers what the previous
// process left: a torn tail is cut off, and acknowledged records are not
// returned again. The caller must Close it.
func Open(dir string, opt Options) (*Spool, error) {
	if opt.MaxBytes <= 0 {
		opt.MaxBytes = DefaultMaxBytes
	}
	if opt.SegmentBytes <= 0 {
		opt.SegmentBytes = min(DefaultSegmentBytes, opt.MaxBytes/4)
	}
	if opt.MaxBytes < 2*opt.SegmentBytes {
		return nil, fmt.Errorf("spool: MaxBytes %d is less than twice SegmentBytes %d", opt.MaxBytes, opt.SegmentBytes)
	}
	if opt.SegmentBytes <= recordOverhead {
		return nil, fmt.Errorf("spool: SegmentBytes %d leaves no room for data", opt.SegmentBytes)
	}
	if opt.MaxAge < 0 {
		return nil, fmt.Errorf("spool: negative MaxAge %v", opt.MaxAge)
	}
	switch opt.Policy {
	case "":
		opt.Policy = DropOldest
	case DropOldest, RejectNew:
	default:
		return nil, fmt.Errorf("spool: unknown policy %q (want %q or %q)", opt.Policy, DropOldest, RejectNew)
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	j, err := journal.Open(dir, journal.Options{SegmentBytes: opt.SegmentBytes, Now: opt.Now, Logger: opt.Logger})
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	s := &Spool{
		opt: opt, log: opt.Logger, j: j, stop: make(chan struct{}),
		maxData: int(min(opt.SegmentBytes, journal.MaxRecordBytes)) - recordOverhead,
	}
	s.mu.Lock()
	err = s.expireLocked(opt.Now())
	s.mu.Unlock()
	if err != nil {
		j.Close()
		return nil, err
	}
	st := s.Stats()
	s.log.Info("spool opened", "dir", dir, "records", st.Records, "bytes", st.Bytes,
		"oldest", st.Oldest, "truncated_bytes", j.Stats().Truncated, "policy", opt.Policy, "max_bytes", opt.MaxBytes)
	if opt.MaxAge > 0 {
		s.wg.Add(1)
		go s.expireLoop()
	}
	return s, nil
}

// Append writes a record and returns its sequence number once it is
// durable; concurrent appenders share fsyncs. ctx bounds only the wait for
// room under DropOldest: once the record is handed to the journal, Append
// waits for its fsync, because returning earlier would leave the caller
// unsure whether the record is kept.
func (s *Spool) Append(ctx context.Context, data []byte) (uint64, error) {
	if len(data) > s.maxData {
		return 0, fmt.Errorf("%w: %d bytes, at most %d", ErrTooLarge, len(data), s.maxData)
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	s.mu.Lock()
	if s.closed.Load() {
		s.mu.Unlock()
		return 0, ErrClosed
	}
	now := s.opt.Now()
	if err := s.expireLocked(now); err != nil {
		s.mu.Unlock()
		return 0, err
	}
	if err := s.makeRoomLocked(ctx, int64(recordOverhead+len(data))); err != nil {
		s.mu.Unlock()
		return 0, err
	}
	payload := make([]byte, timeBytes+len(data))
	binary.LittleEndian.PutUint64(payload, uint64(now.UnixNano()))
	copy(payload[timeBytes:], data)
	t, err := s.j.Append(payload)
	s.mu.Unlock()
	if err != nil {
		return 0, journalErr(err)
	}
	if err := t.Wait(); err != nil {
		return 0, journalErr(err)
	}
	s.appended.Add(1)
	return t.Seq(), nil
}

// makeRoomLocked makes sure that need more bytes keep the spool within
// MaxBytes, dropping the oldest segment at a time or refusing.
func (s *Spool) makeRoomLocked(ctx context.Context, need int64) error {
	for {
		if s.j.Size()+need <= s.opt.MaxBytes {
			if s.rejecting {
				s.rejecting = false
				s.log.Info("spool has room again", "rejected_total", s.rejects.Load())
			}
			return nil
		}
		if s.opt.Policy == RejectNew {
			s.rejects.Add(1)
			if !s.rejecting {
				s.rejecting = true
				s.log.Warn("spool full, rejecting new records", "bytes", s.j.Size(), "max_bytes", s.opt.MaxBytes)
			}
			return ErrFull
		}
		// The oldest segment holding an unacknowledged record, unless it
		// is the one being written, which cannot be deleted.
		segs := s.j.SegmentList()
		cp := s.j.Checkpoint()
		var through uint64
		for i := 0; i+1 < len(segs); i++ {
			if end := segs[i+1].First - 1; end > cp {
				through = end
				break
			}
		}
		durable := s.j.Durable()
		switch {
		case through > 0 && durable >= through:
			l, err := s.scanLocked(through, nil)
			if err != nil {
				return err
			}
			// Through, not l.last: numbers without a record (a tail cut
			// at Open) must be passed too for the segment to go.
			l.last = through
			if err := s.dropLocked("spool full", l); err != nil {
				return err
			}
		case through > 0 || s.j.NextSeq()-1 > durable:
			// Records are being committed: once they are, they either
			// completed a segment that can go or the sizes are final.
			if err := s.j.WaitDurable(ctx, durable); err != nil {
				return journalErr(err)
			}
		default:
			// Only the active segment is left (plus, after a crash in
			// the middle of a checkpoint, segments deleted by the next
			// one). It rotates before it outgrows SegmentBytes, so
			// this is a single overshoot.
			s.log.Warn("spool over its byte bound with nothing left to drop", "bytes", s.j.Size(), "max_bytes", s.opt.MaxBytes)
			return nil
		}
	}
}

// Next blocks until there are unacknowledged records above after that
// have not been dropped, or ctx ends, and returns up to limit of them in
// sequence order, read from disk. limit must be positive.
func (s *Spool) Next(ctx context.Context, after uint64, limit int) ([]Record, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("spool: Next limit %d is not positive", limit)
	}
	for {
		if s.closed.Load() {
			return nil, ErrClosed
		}
		if s.opt.MaxAge > 0 {
			s.mu.Lock()
			err := s.expireLocked(s.opt.Now())
			s.mu.Unlock()
			if err != nil {
				return nil, err
			}
		}
		from := max(after, s.j.Checkpoint())
		var out []Record
		next, err := s.j.ReadFrom(from, limit, func(r journal.Record) error {
			at, data, err := decode(r)
			if err != nil {
				return err
			}
			out = append(out, Record{Seq: r.Seq, At: at, Data: append([]byte(nil), data...)})
			return nil
		})
		if err != nil {
			return nil, journalErr(err)
		}
		// Records dropped while they were read are not offered.
		cp := s.j.Checkpoint()
		for len(out) > 0 && out[0].Seq <= cp {
			out = out[1:]
		}
		if len(out) > 0 {
			return out, nil
		}
		if next > from {
			after = next // what was read was dropped meanwhile, or numbers without records
			continue
		}
		if err := s.j.WaitDurable(ctx, next); err != nil {
			if ctxErr := ctx.Err(); ctxErr != nil {
				return nil, ctxErr
			}
			return nil, journalErr(err)
		}
	}
}

// Ack records that every record up to seq has been delivered. It persists
// that (the journal checkpoint) and deletes the segments that hold only
// delivered or dropped records. Acknowledging a record that was dropped in
// the meantime, or again, does nothing.
func (s *Spool) Ack(seq uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed.Load() {
		return ErrClosed
	}
	// Only a durable record can have been delivered.
	seq = min(seq, s.j.Durable())
	cp := s.j.Checkpoint()
	if seq <= cp {
		return nil
	}
	n := countRecords(s.j.SegmentList(), cp, seq)
	err := s.j.SetCheckpoint(seq)
	if s.j.Checkpoint() >= seq {
		// Stored, even if deleting a segment failed.
		s.acked.Add(n)
	}
	if err != nil {
		return fmt.Errorf("spool: ack %d: %w", seq, err)
	}
	return nil
}

// expireLocked drops the records older than MaxAge.
func (s *Spool) expireLocked(now time.Time) error {
	if s.opt.MaxAge <= 0 {
		return nil
	}
	_, at, ok, err := s.firstLocked()
	if err != nil || !ok {
		return err
	}
	cutoff := now.Add(-s.opt.MaxAge)
	if !at.Before(cutoff) {
		return nil
	}
	// Records are in append order, so the expired ones are a prefix;
	// after a clock step back the scan stops at the first young record.
	l, err := s.scanLocked(s.j.Durable(), func(at time.Time) bool { return at.Before(cutoff) })
	if err != nil || l.records == 0 {
		return err
	}
	return s.dropLocked(fmt.Sprintf("older than %v", s.opt.MaxAge), l)
}

// expireLoop applies the age bound while nothing is appended.
func (s *Spool) expireLoop() {
	defer s.wg.Done()
	t := time.NewTicker(min(max(s.opt.MaxAge/8, time.Second), time.Minute))
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.mu.Lock()
			err := s.expireLocked(s.opt.Now())
			s.mu.Unlock()
			if err != nil {
				s.log.Error("spool age check failed", "err", err)
			}
		}
	}
}

// scanLocked reads the unacknowledged records up to through for as long
// as old says they are to go (all of them if old is nil).
func (s *Spool) scanLocked(through uint64, old func(time.Time) bool) (loss, error) {
	l := loss{last: s.j.Checkpoint()}
	after := l.last
	for after < through {
		next, err := s.j.ReadFrom(after, readChunk, func(r journal.Record) error {
			if r.Seq > through {
				return errStop
			}
			at, data, err := decode(r)
			if err != nil {
				return err
			}
			if old != nil && !old(at) {
				return errStop
			}
			if l.records == 0 {
				l.oldest = at
			}
			l.records++
			l.bytes += uint64(len(data))
			l.newest, l.last = at, r.Seq
			return nil
		})
		if errors.Is(err, errStop) {
			break
		}
		if err != nil {
			return l, journalErr(err)
		}
		if next <= after {
			break
		}
		after = next
	}
	return l, nil
}

// dropLocked moves the checkpoint past the records of l, counts them and
// says so in the log.
func (s *Spool) dropLocked(reason string, l loss) error {
	err := s.j.SetCheckpoint(l.last)
	if s.j.Checkpoint() >= l.last {
		s.dropped.Add(l.records)
		s.droppedBytes.Add(l.bytes)
		now := s.opt.Now()
		s.log.Warn("spool dropped records", "reason", reason, "records", l.records, "bytes", l.bytes,
			"oldest_age", now.Sub(l.oldest).Round(time.Second), "newest_age", now.Sub(l.newest).Round(time.Second),
			"through_seq", l.last, "dropped_total", s.dropped.Load())
	}
	if err != nil {
		return fmt.Errorf("spool: drop: %w", err)
	}
	return nil
}

// firstLocked returns the first unacknowledged durable record's number
// and append time.
func (s *Spool) firstLocked() (seq uint64, at time.Time, ok bool, err error) {
	cp := s.j.Checkpoint()
	if s.first.ok && s.first.cp == cp {
		return s.first.seq, s.first.at, true, nil
	}
	_, err = s.j.ReadFrom(cp, 1, func(r journal.Record) error {
		t, _, err := decode(r)
		if err != nil {
			return err
		}
		s.first = firstRecord{ok: true, cp: cp, seq: r.Seq, at: t}
		return nil
	})
	if err != nil {
		return 0, time.Time{}, false, journalErr(err)
	}
	if !s.first.ok || s.first.cp != cp {
		return 0, time.Time{}, false, nil
	}
	return s.first.seq, s.first.at, true, nil
}

// Stats returns the spool's content and counters.
func (s *Spool) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := Stats{
		Records:      countRecords(s.j.SegmentList(), s.j.Checkpoint(), s.j.Durable()),
		Bytes:        s.j.Size(),
		Appended:     s.appended.Load(),
		Acked:        s.acked.Load(),
		Dropped:      s.dropped.Load(),
		DroppedBytes: s.droppedBytes.Load(),
		Rejected:     s.rejects.Load(),
	}
	if st.Records > 0 {
		_, at, ok, err := s.firstLocked()
		if err != nil {
			s.log.Warn("spool: reading the oldest record", "err", err)
		}
		if ok {
			st.Oldest = at
		}
	}
	return st
}

// Close stops the spool; records appended before are durable. Blocked
// Next calls return ErrClosed.
func (s *Spool) Close() error {
	if !s.closed.CompareAndSwap(false, true) {
		return nil
	}
	close(s.stop)
	s.wg.Wait()
	if err := s.j.Close(); err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	return nil
}

// countRecords counts the records numbered in (after, through]. Within a
// segment the numbers are contiguous; between segments they may skip
// (a corrupt tail cut at Open), so the count comes from the segments.
func countRecords(segs []journal.SegmentInfo, after, through uint64) uint64 {
	var n uint64
	for _, sg := range segs {
		if sg.Records == 0 {
			continue
		}
		lo, hi := max(sg.First, after+1), min(sg.First+sg.Records-1, through)
		if hi >= lo {
			n += hi - lo + 1
		}
	}
	return n
}

func decode(r journal.Record) (time.Time, []byte, error) {
	if len(r.Data) < timeBytes {
		return time.Time{}, nil, fmt.Errorf("record %d is %d bytes, shorter than its timestamp", r.Seq, len(r.Data))
	}
	return time.Unix(0, int64(binary.LittleEndian.Uint64(r.Data))), r.Data[timeBytes:], nil
}

func journalErr(err error) error {
	if errors.Is(err, journal.ErrClosed) {
		return ErrClosed
	}
	return fmt.Errorf("spool: %w", err)
}
