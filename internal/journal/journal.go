// Package journal is a write-ahead log: an append-only sequence of
// checksummed records in segment files, made durable by group commit.
//
// It lives under internal/ because it has two users and neither may own
// it: ingest (services/ingest) journals every message before it is
// acknowledged, and the edge adapter's spool, which runs without the
// appliance and so must not import ingest, uses it as an on-disk queue.
//
// Every record gets a sequence number. Writers append to an in-memory batch
// and, if they need durability, wait on their ticket; one committer
// goroutine writes the batch and fsyncs once for every writer that was
// waiting at that moment, so the cost of an fsync is shared by all of them.
// After each fsync the committer hands the now durable records, in sequence
// order, to Options.OnDurable.
//
// On disk a segment is named after the sequence number of its first record
// and holds records of the form
//
//	more bit | len 31 bits, uint32 LE | crc32c(len bytes ‖ payload) uint32 LE | payload
//
// The checksum covers the length too, so a tail of zeroes (what a file
// system may leave after a crash that extended the file but not its data)
// is never mistaken for a record. Open cuts a torn or corrupt tail off.
// The more bit ties a record to the next one: the records of one
// AppendBatch form a unit that is in one segment and survives a crash
// whole or not at all.
//
// A checkpoint (a sequence number, in the file "checkpoint") says up to
// where the records have been applied and stored elsewhere; segments whose
// records are all at or below it are deleted.
//
// Besides Replay (the records found at Open) and OnDurable (the records
// made durable since), ReadFrom reads any durable record back from the
// segment files, so that a consumer far behind the writers (an uplink that
// was down for a day) does not need the backlog in memory; WaitDurable
// tells it when there is more.
package journal

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/piot-appliance/piot/internal/fileutil"
)

const (
	// DefaultSegmentBytes is the size at which a new segment is started.
	DefaultSegmentBytes = 16 << 20
	// MaxRecordBytes bounds one record's payload.
	MaxRecordBytes = 8 << 20
	// moreFlag in a record's length says that the next record belongs to
	// the same unit (AppendBatch); lengths never reach it.
	moreFlag = 1 << 31

	// HeaderBytes is the size of a record's header: a record of n payload
	// bytes takes HeaderBytes+n bytes of its segment file.
	HeaderBytes = headerSize

	headerSize     = 8
	segmentExt     = ".wal"
	checkpointName = "checkpoint"

	// readHints is how many reading positions ReadFrom remembers: one per
	// reader that keeps coming back (a forwarder, a look at the oldest
	// record, a scan before a checkpoint) is enough to avoid walking a
	// segment from its start on every call.
	readHints = 4
	// readBufferBytes sizes the buffered reader of ReadFrom.
	readBufferBytes = 64 << 10

	// BusyCommitRecords and BusyCommitSources are what makes a commit
	// one under load (Options.BusyCommitInterval): at least this many
	// records from at least this many sources.
	BusyCommitRecords = 32
	BusyCommitSources = 8
	// MaxBusyCommitInterval bounds Options.BusyCommitInterval: it is
	// added to the wait of every record appended under load.
	MaxBusyCommitInterval = 100 * time.Millisecond
)

// Errors callers branch on.
var (
	ErrClosed      = errors.New("journal: closed")
	ErrEmptyRecord = errors.New("journal: empty record")
	ErrTooLarge    = errors.New("journal: record too large")
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Record is one journal entry.
type Record struct {
	Seq  uint64
	Data []byte
	// Note is what the appender passed along with the record to
	// OnDurable (AppendNoted), so that work done before journaling is
	// not done again after it. It lives in memory only: records from
	// Replay and ReadFrom have none.
	Note any
}

// Options tune a journal.
type Options struct {
	// SegmentBytes starts a new segment once the current one would grow
	// beyond it (default DefaultSegmentBytes).
	SegmentBytes int64
	// OnDurable receives every record after it has been fsynced, in
	// sequence order, on the committer goroutine; it may keep the slices.
	// A slow OnDurable slows the committer down, which is the intended
	// back pressure.
	OnDurable func([]Record)
	// OnCommit, if set, receives after each group commit how long every
	// record of the batch waited from Append to durable (so its length is
	// the batch size), on the committer goroutine before OnDurable. The
	// slice is reused: it is valid only during the call.
	OnCommit func(waited []time.Duration)
	// Preallocate fills each new segment with SegmentBytes of zeros before
	// use, so that appending does not change the file's size and a
	// commit's fdatasync flushes data only; otherwise every commit also
	// commits the file system's metadata (the new size), which costs the
	// ingest about a millisecond per batch. The zero tail is cut at Open,
	// silently. Segment sizes (Size, SegmentList) stay the bytes of
	// records.
	Preallocate bool
	// BusyCommitInterval, when set, spaces commits under load: after a
	// commit of at least BusyCommitRecords records from at least
	// BusyCommitSources sources (AppendFrom), the next one starts no
	// sooner than BusyCommitInterval after it started. Commits back to
	// back cost a write, an fdatasync and a wake-up of every waiter each,
	// and under load they come as fast as the disk answers (about 600 a
	// second here, 65 records each); spaced, they carry more records for
	// the same cost. Small commits are not delayed, and neither are
	// commits of a few sources: a source with all it may have in flight
	// in the batch (one MQTT publisher with a window of 100, say) could
	// only wait, and loses throughput instead. At most
	// MaxBusyCommitInterval.
	BusyCommitInterval time.Duration
	// Now is the clock used to seed the sequence of an empty journal.
	Now    func() time.Time
	Logger *slog.Logger
}

// Stats count the journal's work since Open.
type Stats struct {
	Appended  uint64 // records appended
	Commits   uint64 // fsyncs that made batches durable
	Bytes     uint64 // bytes written
	Replayed  uint64 // records handed to Replay callbacks
	Truncated uint64 // bytes cut off torn or corrupt tails at Open
	Deleted   uint64 // segments deleted after checkpoints
	Spaced    uint64 // commits that waited for Options.BusyCommitInterval
}

type segment struct {
	base    uint64 // sequence number of the first record
	path    string
	records uint64 // records written to the file
	size    int64  // bytes written to the file
}

// SegmentInfo describes one segment file.
type SegmentInfo struct {
	First   uint64 // sequence number of its first record (the file's name)
	Records uint64 // records in it, numbered First, First+1, …
	Bytes   int64  // its length
}

// readHint says that record seq of the segment starting at base starts at
// byte off of its file.
type readHint struct {
	base, seq uint64
	off       int64
	used      uint64 // for replacing the least recently used hint
}

// segmentReader is a pooled buffered reader with a payload buffer.
type segmentReader struct {
	r       *bufio.Reader
	payload []byte
}

// recRef locates one record inside a batch buffer.
type recRef struct {
	seq  uint64
	off  int // start of the header
	n    int // payload length
	at   time.Time
	more bool // the next record belongs to the same unit
	note any
}

// batch is the group of records one fsync makes durable.
type batch struct {
	buf  []byte
	recs []recRef
	// The batch's distinct sources (AppendFrom), up to BusyCommitSources.
	srcs [BusyCommitSources]any
	nsrc int
	done chan struct{}
	err  error
}

func newBatch() *batch { return &batch{done: make(chan struct{})} }

// nextBatch is an empty batch with room for a little more than prev
// held: under a steady load batches are alike, and growing each from
// nothing copied and allocated its records about twice over.
func nextBatch(prev *batch) *batch {
	return &batch{
		buf:  make([]byte, 0, len(prev.buf)+len(prev.buf)/4),
		recs: make([]recRef, 0, len(prev.recs)+len(prev.recs)/4),
		done: make(chan struct{}),
	}
}

// Ticket is a writer's claim on the durability of its record.
type Ticket struct {
	b   *batch
	seq uint64
}

// Seq is the record's sequence number.
func (t Ticket) Seq() uint64 { return t.seq }

// Wait blocks until the record is on disk or could not be written.
func (t Ticket) Wait() error {
	<-t.b.done
	return t.b.err
}

// Journal is an open write-ahead log.
type Journal struct {
	dir string
	opt Options
	log *slog.Logger

	mu      sync.Mutex
	cur     *batch
	nextSeq uint64
	closed  bool
	// err refuses appends after a failed write or fsync, until repair has
	// cut the files back to what is durable (every RetryInterval).
	err error
	// failure is the write error while the journal cannot write, from the
	// first failed commit until a repair or commit succeeds; Err reports it.
	failure atomic.Pointer[error]

	kick chan struct{}
	done chan struct{}

	waited []time.Duration // OnCommit's buffer, owned by the committer

	// The active segment; owned by the committer after Open.
	f        *os.File
	fBase    uint64
	fSize    int64
	fOff     int64 // where the next write goes in j.f
	fRecords uint64

	segMu    sync.Mutex
	segments []segment
	size     atomic.Int64 // bytes in segment files plus appended, not yet written

	// cpMu serialises SetCheckpoint: the checkpoint file is written
	// through one temporary file and the checkpoint must not go back.
	cpMu sync.Mutex

	// WaitDurable's wake-up: closed and cleared by the committer after
	// each commit, created only when someone waits.
	waitMu     sync.Mutex
	durableCh  chan struct{}
	waitClosed bool

	hintMu   sync.Mutex
	hints    [readHints]readHint
	hintTick uint64
	readers  sync.Pool // *segmentReader

	replayEnd  uint64 // first sequence number appended by this process
	checkpoint atomic.Uint64
	durable    atomic.Uint64

	appended, commits, bytes, replayed, truncated, deleted, spaced atomic.Uint64
}

// Open opens (or creates) the journal in dir, repairs a torn tail and
// starts the committer. The caller must Close it.
func Open(dir string, opt Options) (*Journal, error) {
	if opt.SegmentBytes <= 0 {
		opt.SegmentBytes = DefaultSegmentBytes
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.BusyCommitInterval < 0 || opt.BusyCommitInterval > MaxBusyCommitInterval {
		return nil, fmt.Errorf("journal: busy commit interval %v is not between 0 and %v", opt.BusyCommitInterval, MaxBusyCommitInterval)
	}
	j := &Journal{dir: dir, opt: opt, log: opt.Logger, cur: newBatch(), kick: make(chan struct{}, 1), done: make(chan struct{})}
	j.readers.New = func() any { return &segmentReader{r: bufio.NewReaderSize(nil, readBufferBytes)} }
	if j.log == nil {
		j.log = slog.Default()
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("journal: create %s: %w", dir, err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	cp, err := readCheckpoint(filepath.Join(dir, checkpointName))
	if err != nil {
		// Replaying from the start is always safe: consumers are idempotent.
		j.log.Warn("journal checkpoint unreadable, replaying every segment", "err", err)
		cp = 0
	}
	j.checkpoint.Store(cp)
	if err := j.recover(); err != nil {
		return nil, err
	}
	if j.nextSeq <= cp {
		j.nextSeq = cp + 1
	}
	j.replayEnd = j.nextSeq
	j.durable.Store(j.nextSeq - 1)
	go j.commitLoop()
	return j, nil
}

// recover scans the segments, cuts off a torn tail and finds the next
// sequence number.
func (j *Journal) recover() error {
	entries, err := os.ReadDir(j.dir)
	if err != nil {
		return fmt.Errorf("journal: read %s: %w", j.dir, err)
	}
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, segmentExt) {
			continue
		}
		base, err := strconv.ParseUint(strings.TrimSuffix(name, segmentExt), 10, 64)
		if err != nil {
			continue
		}
		j.segments = append(j.segments, segment{base: base, path: filepath.Join(j.dir, name)})
	}
	sort.Slice(j.segments, func(a, b int) bool { return j.segments[a].base < j.segments[b].base })
	if len(j.segments) == 0 {
		// Seed the sequence from the clock (microseconds) so that numbers
		// keep growing even if the journal directory is ever lost:
		// consumers deduplicate by sequence number.
		j.nextSeq = max(uint64(j.opt.Now().UnixMicro()), 1)
		return nil
	}
	var next uint64
	for i, s := range j.segments {
		if i > 0 && s.base < next {
			return fmt.Errorf("journal: segment %s overlaps the previous one (expected first sequence ≥ %d)", filepath.Base(s.path), next)
		}
		data, err := os.ReadFile(s.path)
		if err != nil {
			return fmt.Errorf("journal: read %s: %w", s.path, err)
		}
		n, good := scan(data, nil)
		if good < len(data) && j.opt.Preallocate && allZero(data[good:]) {
			// The unused part of a preallocated segment: nothing was lost.
			if err := truncateFile(s.path, int64(good)); err != nil {
				return err
			}
		} else if good < len(data) {
			last := i == len(j.segments)-1
			level := slog.LevelWarn
			if !last {
				level = slog.LevelError // not a torn write: media corruption
			}
			j.log.Log(context.Background(), level, "journal: cutting off a torn or corrupt tail",
				"segment", filepath.Base(s.path), "valid_records", n, "bytes_dropped", len(data)-good)
			if err := truncateFile(s.path, int64(good)); err != nil {
				return err
			}
			j.truncated.Add(uint64(len(data) - good))
		}
		next = s.base + uint64(n)
		j.segments[i].records, j.segments[i].size = uint64(n), int64(good)
		j.size.Add(int64(good))
		if i == len(j.segments)-1 {
			f, err := os.OpenFile(s.path, os.O_WRONLY, 0o600)
			if err != nil {
				return fmt.Errorf("journal: open %s: %w", s.path, err)
			}
			j.f, j.fBase, j.fSize, j.fOff, j.fRecords = f, s.base, int64(good), int64(good), uint64(n)
		}
	}
	j.nextSeq = next
	return nil
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

func truncateFile(path string, size int64) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("journal: open %s: %w", path, err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		return fmt.Errorf("journal: truncate %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("journal: sync %s: %w", path, err)
	}
	return nil
}

// scan walks the records of a segment, calling fn (if not nil) for each
// valid one with its index, and returns how many are valid and the length
// of the valid prefix. It stops at the first record that is incomplete or
// fails its checksum; the records of a unit (AppendBatch) count only once
// its last one is valid, so a torn unit is cut off whole.
func scan(data []byte, fn func(i int, payload []byte)) (n, good int) {
	off, k := 0, 0
	var unit [][]byte
	for {
		if len(data)-off < headerSize {
			return n, good
		}
		raw := binary.LittleEndian.Uint32(data[off:])
		l := raw &^ moreFlag
		sum := binary.LittleEndian.Uint32(data[off+4:])
		if l == 0 || l > MaxRecordBytes || int64(l) > int64(len(data)-off-headerSize) {
			return n, good
		}
		payload := data[off+headerSize : off+headerSize+int(l)]
		if checksum(data[off:off+4], payload) != sum {
			return n, good
		}
		unit = append(unit, payload)
		k++
		off += headerSize + int(l)
		if raw&moreFlag != 0 {
			continue
		}
		if fn != nil {
			for x, p := range unit {
				fn(n+x, p)
			}
		}
		unit = unit[:0]
		n, good = k, off
	}
}

func checksum(lenBytes, payload []byte) uint32 {
	c := crc32.Update(0, castagnoli, lenBytes)
	return crc32.Update(c, castagnoli, payload)
}

// Append adds a record. It returns at once; Wait on the ticket for
// durability.
func (j *Journal) Append(data []byte) (Ticket, error) {
	return j.AppendBatch([][]byte{data})
}

// AppendBatch appends records as one unit: all of them go into the same
// commit, or none is appended. The ticket is the last record's; its
// sequence number minus len(records)-1 is the first's. Callers that
// journal a device packet of several messages use it so that a shutdown
// cannot journal half a packet, which a resend would then store twice.
func (j *Journal) AppendBatch(records [][]byte) (Ticket, error) {
	return j.AppendNoted(records, nil)
}

// AppendNoted is AppendBatch that hands notes[k] to OnDurable with
// records[k] (Record.Note); notes may be nil or as long as records.
func (j *Journal) AppendNoted(records [][]byte, notes []any) (Ticket, error) {
	return j.AppendFrom(nil, records, notes)
}

// AppendFrom is AppendNoted for records from src, a comparable value
// naming who will wait for them (an MQTT connection, say; nil: no one in
// particular), which Options.BusyCommitInterval counts.
func (j *Journal) AppendFrom(src any, records [][]byte, notes []any) (Ticket, error) {
	if notes != nil && len(notes) != len(records) {
		return Ticket{}, fmt.Errorf("journal: %d notes for %d records", len(notes), len(records))
	}
	if len(records) == 0 {
		return Ticket{}, ErrEmptyRecord
	}
	var total int64
	for _, data := range records {
		if len(data) == 0 {
			return Ticket{}, ErrEmptyRecord
		}
		if len(data) > MaxRecordBytes {
			return Ticket{}, ErrTooLarge
		}
		total += int64(headerSize + len(data))
	}
	var at time.Time
	if j.opt.OnCommit != nil {
		at = time.Now()
	}
	// The headers (and their checksums) are made before taking the lock
	// that every publisher's append waits for.
	var one [1][headerSize]byte
	hdrs := one[:]
	if len(records) > 1 {
		hdrs = make([][headerSize]byte, len(records))
	}
	for k, data := range records {
		l := uint32(len(data))
		if k < len(records)-1 {
			l |= moreFlag
		}
		binary.LittleEndian.PutUint32(hdrs[k][:4], l)
		binary.LittleEndian.PutUint32(hdrs[k][4:], checksum(hdrs[k][:4], data))
	}
	j.mu.Lock()
	if j.closed {
		j.mu.Unlock()
		return Ticket{}, ErrClosed
	}
	if j.err != nil {
		err := j.err
		j.mu.Unlock()
		return Ticket{}, err
	}
	b := j.cur
	if src != nil && b.nsrc < len(b.srcs) && !slices.Contains(b.srcs[:b.nsrc], src) {
		b.srcs[b.nsrc] = src
		b.nsrc++
	}
	var seq uint64
	for k, data := range records {
		seq = j.nextSeq
		j.nextSeq++
		off := len(b.buf)
		more := k < len(records)-1
		b.buf = append(b.buf, hdrs[k][:]...)
		b.buf = append(b.buf, data...)
		var note any
		if notes != nil {
			note = notes[k]
		}
		b.recs = append(b.recs, recRef{seq: seq, off: off, n: len(data), at: at, more: more, note: note})
	}
	j.size.Add(total)
	j.mu.Unlock()
	j.appended.Add(uint64(len(records)))
	select {
	case j.kick <- struct{}{}:
	default:
	}
	return Ticket{b: b, seq: seq}, nil
}

// AppendSync appends a record and waits until it is durable.
func (j *Journal) AppendSync(data []byte) (uint64, error) {
	t, err := j.Append(data)
	if err != nil {
		return 0, err
	}
	return t.seq, t.Wait()
}

// RetryInterval is how often a journal that could not write (a full
// disk, say) tries to repair itself and write again.
const RetryInterval = time.Second

// Err is why the journal cannot write now (for example "no space left on
// device"), or nil. Appends fail meanwhile; the journal retries by itself
// every RetryInterval.
func (j *Journal) Err() error {
	if p := j.failure.Load(); p != nil {
		return *p
	}
	return nil
}

func (j *Journal) commitLoop() {
	defer close(j.done)
	var busySince time.Time // start of the last commit if it was under load
	for {
		if !busySince.IsZero() {
			if d := j.opt.BusyCommitInterval - time.Since(busySince); d > 0 {
				time.Sleep(d)
				j.spaced.Add(1)
			}
		}
		j.mu.Lock()
		for len(j.cur.recs) == 0 && !j.closed {
			failed := j.err != nil
			j.mu.Unlock()
			if failed {
				select {
				case <-j.kick:
				case <-time.After(RetryInterval):
					j.repair()
				}
			} else {
				<-j.kick
			}
			j.mu.Lock()
		}
		if len(j.cur.recs) == 0 {
			j.mu.Unlock()
			return
		}
		b := j.cur
		j.cur = nextBatch(b)
		busySince = time.Time{}
		if j.opt.BusyCommitInterval > 0 && len(b.recs) >= BusyCommitRecords && b.nsrc >= BusyCommitSources {
			busySince = time.Now()
		}
		failed := j.err
		j.mu.Unlock()

		if failed != nil {
			b.err = failed
			close(b.done)
			continue
		}
		if err := j.write(b); err != nil {
			err = fmt.Errorf("journal: %w", err)
			if j.failure.Swap(&err) == nil {
				// Once per failure, not per batch: it lasts until repaired.
				j.log.Error("journal cannot write; refusing new records until it can", "err", err)
			}
			j.mu.Lock()
			j.err = err
			j.mu.Unlock()
			b.err = err
			close(b.done)
			j.wakeWaiters(false)
			continue
		}
		if j.failure.Swap(nil) != nil {
			j.log.Info("journal writable again")
		}
		j.commits.Add(1)
		j.durable.Store(b.recs[len(b.recs)-1].seq)
		close(b.done)
		j.wakeWaiters(false)
		if j.opt.OnCommit != nil {
			now := time.Now()
			j.waited = j.waited[:0]
			for _, r := range b.recs {
				j.waited = append(j.waited, now.Sub(r.at))
			}
			j.opt.OnCommit(j.waited)
		}
		if j.opt.OnDurable != nil {
			recs := make([]Record, len(b.recs))
			for i, r := range b.recs {
				recs[i] = Record{Seq: r.seq, Data: b.buf[r.off+headerSize : r.off+headerSize+r.n : r.off+headerSize+r.n], Note: r.note}
			}
			j.opt.OnDurable(recs)
		}
	}
}

// repair makes a failed journal writable again, if it can: records
// above Durable were never acknowledged, so every segment is cut back to
// Durable (a segment whose creation failed goes entirely), the active
// segment is reopened there and the sequence continues from it. It runs
// on the committer.
func (j *Journal) repair() {
	good := j.durable.Load()
	if j.f != nil {
		_ = j.f.Close()
		j.f = nil
	}
	err := j.cutBack(good)
	if err == nil && j.f != nil && j.opt.SegmentBytes-j.fSize < j.opt.SegmentBytes/4 {
		// Nearly full: the next writes would need a new segment soon, and
		// whether there is space for one is what must be known.
		err = j.f.Close()
		j.f = nil
	}
	if err == nil && j.f == nil {
		// Try what the next write would: a new segment needs its space.
		err = j.createSegment(good + 1)
	}
	if err != nil {
		err = fmt.Errorf("journal: %w", err)
		j.failure.Store(&err)
		j.log.Debug("journal still cannot write", "err", err)
		return
	}
	var size int64
	j.segMu.Lock()
	for _, sg := range j.segments {
		size += sg.size
	}
	j.segMu.Unlock()
	j.mu.Lock()
	j.nextSeq = good + 1
	j.err = nil
	j.size.Store(size) // what the failed batches had added is gone
	j.mu.Unlock()
	if j.failure.Swap(nil) != nil {
		j.log.Info("journal writable again")
	}
}

// cutBack removes the records above good from the segment files and
// reopens the last segment for writing (j.f stays nil if none is left).
func (j *Journal) cutBack(good uint64) error {
	entries, err := os.ReadDir(j.dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		base, err := strconv.ParseUint(strings.TrimSuffix(e.Name(), segmentExt), 10, 64)
		if err != nil || !strings.HasSuffix(e.Name(), segmentExt) || base <= good {
			continue
		}
		if err := os.Remove(filepath.Join(j.dir, e.Name())); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	j.segMu.Lock()
	for len(j.segments) > 0 && j.segments[len(j.segments)-1].base > good {
		j.segments = j.segments[:len(j.segments)-1]
	}
	var last segment
	if n := len(j.segments); n > 0 {
		last = j.segments[n-1]
	}
	j.segMu.Unlock()
	if last.path == "" {
		return nil
	}
	data, err := os.ReadFile(last.path)
	if err != nil {
		return err
	}
	keep := good - last.base + 1
	end := 0
	n, _ := scan(data, func(i int, payload []byte) {
		if uint64(i) < keep {
			end += headerSize + len(payload)
		}
	})
	n = min(n, int(keep))
	f, err := os.OpenFile(last.path, os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if tail := data[end:]; j.opt.Preallocate && !allZero(tail) {
		// Overwrite rather than truncate: the space stays the file's.
		_, err = f.WriteAt(make([]byte, len(tail)), int64(end))
	} else if !j.opt.Preallocate {
		err = f.Truncate(int64(end))
	}
	if err == nil {
		err = f.Sync()
	}
	if err != nil {
		f.Close()
		return err
	}
	j.f, j.fBase, j.fSize, j.fOff, j.fRecords = f, last.base, int64(end), int64(end), uint64(n)
	j.noteWritten()
	return nil
}

// write puts a batch into the segment files, rotating as needed, and
// fsyncs.
func (j *Journal) write(b *batch) error {
	start := 0 // start of the run not yet written to j.f
	inUnit := false
	for k, r := range b.recs {
		size := int64(headerSize + r.n)
		// A unit is never split across segments: the earlier segment is
		// synced on rotation, and half a unit must not become durable.
		unitSize := int64(0)
		if !inUnit {
			for _, u := range b.recs[k:] {
				unitSize += int64(headerSize + u.n)
				if !u.more {
					break
				}
			}
		}
		inUnit = r.more
		if unitSize > 0 && j.f != nil && j.fSize > 0 && j.fSize+unitSize > j.opt.SegmentBytes {
			if err := j.flushRun(b.buf[start:r.off]); err != nil {
				return err
			}
			start = r.off
			j.noteWritten()
			if err := j.f.Sync(); err != nil {
				return fmt.Errorf("sync segment: %w", err)
			}
			if err := j.f.Close(); err != nil {
				return fmt.Errorf("close segment: %w", err)
			}
			j.f = nil
		}
		if j.f == nil {
			if err := j.flushRun(b.buf[start:r.off]); err != nil {
				return err
			}
			start = r.off
			if err := j.createSegment(r.seq); err != nil {
				return err
			}
		}
		j.fSize += size
		j.fRecords++
	}
	if err := j.flushRun(b.buf[start:]); err != nil {
		return err
	}
	j.noteWritten()
	if err := datasync(j.f); err != nil {
		return fmt.Errorf("sync segment: %w", err)
	}
	return nil
}

func (j *Journal) flushRun(p []byte) error {
	if len(p) == 0 {
		return nil
	}
	if _, err := j.f.WriteAt(p, j.fOff); err != nil {
		return fmt.Errorf("write segment: %w", err)
	}
	j.fOff += int64(len(p))
	j.bytes.Add(uint64(len(p)))
	return nil
}

func (j *Journal) createSegment(base uint64) error {
	path := filepath.Join(j.dir, fmt.Sprintf("%020d%s", base, segmentExt))
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("create segment: %w", err)
	}
	if j.opt.Preallocate {
		if err := zeroFill(f, j.opt.SegmentBytes); err != nil {
			f.Close()
			_ = os.Remove(path) // give the space back; repair would anyway
			return fmt.Errorf("create segment: %w", err)
		}
	}
	if err := syncDir(j.dir); err != nil {
		f.Close()
		return err
	}
	j.f, j.fBase, j.fSize, j.fOff, j.fRecords = f, base, 0, 0, 0
	j.segMu.Lock()
	j.segments = append(j.segments, segment{base: base, path: path})
	j.segMu.Unlock()
	return nil
}

// zeroFill writes size zero bytes into f and makes them durable. Writing
// them, rather than fallocate, leaves no unwritten extents whose
// conversion on first write would be a metadata change again.
func zeroFill(f *os.File, size int64) error {
	zeros := make([]byte, 1<<20)
	for off := int64(0); off < size; off += int64(len(zeros)) {
		n := min(int64(len(zeros)), size-off)
		if _, err := f.WriteAt(zeros[:n], off); err != nil {
			return err
		}
	}
	return f.Sync()
}

func syncDir(dir string) error { return fileutil.SyncDir(dir) }

// Replay calls fn, in sequence order, for every record that was in the
// journal when it was opened and whose sequence number is above after.
// It is meant to run once, before new records are consumed.
func (j *Journal) Replay(after uint64, fn func(Record) error) error {
	j.segMu.Lock()
	segs := append([]segment(nil), j.segments...)
	j.segMu.Unlock()
	for i, s := range segs {
		if s.base >= j.replayEnd {
			break
		}
		if i+1 < len(segs) && segs[i+1].base <= after+1 {
			continue // every record of this segment is at or below after
		}
		data, err := os.ReadFile(s.path)
		if err != nil {
			return fmt.Errorf("journal: read %s: %w", s.path, err)
		}
		var ferr error
		scan(data, func(k int, payload []byte) {
			seq := s.base + uint64(k)
			if ferr != nil || seq <= after || seq >= j.replayEnd {
				return
			}
			j.replayed.Add(1)
			ferr = fn(Record{Seq: seq, Data: payload})
		})
		if ferr != nil {
			return ferr
		}
	}
	return nil
}

// Checkpoint returns the last saved checkpoint.
func (j *Journal) Checkpoint() uint64 { return j.checkpoint.Load() }

// Durable returns the highest sequence number known to be on disk.
func (j *Journal) Durable() uint64 { return j.durable.Load() }

// NextSeq returns the sequence number the next record will get.
func (j *Journal) NextSeq() uint64 {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.nextSeq
}

// SetCheckpoint records that every record up to seq has been applied and
// stored, and deletes the segments that hold nothing newer. The active
// segment is never deleted.
func (j *Journal) SetCheckpoint(seq uint64) error {
	j.cpMu.Lock()
	defer j.cpMu.Unlock()
	if seq <= j.checkpoint.Load() {
		return nil
	}
	if err := writeCheckpoint(j.dir, seq); err != nil {
		return err
	}
	j.checkpoint.Store(seq)

	j.segMu.Lock()
	var drop []segment
	keep := j.segments[:0:0]
	for i, s := range j.segments {
		if i+1 < len(j.segments) && j.segments[i+1].base <= seq+1 {
			drop = append(drop, s)
			// Not the active segment, so its size is final.
			j.size.Add(-s.size)
			continue
		}
		keep = append(keep, s)
	}
	j.segments = keep
	j.segMu.Unlock()
	for _, s := range drop {
		if err := os.Remove(s.path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("journal: delete %s: %w", s.path, err)
		}
		j.deleted.Add(1)
	}
	if len(drop) > 0 {
		return syncDir(j.dir)
	}
	return nil
}

func readCheckpoint(path string) (uint64, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
}

func writeCheckpoint(dir string, seq uint64) error {
	if err := fileutil.WriteFile(filepath.Join(dir, checkpointName), []byte(strconv.FormatUint(seq, 10)+"\n"), 0o600); err != nil {
		return fmt.Errorf("journal: checkpoint: %w", err)
	}
	return nil
}

// Segments returns the number of segment files.
func (j *Journal) Segments() int {
	j.segMu.Lock()
	defer j.segMu.Unlock()
	return len(j.segments)
}

// Stats returns counters since Open.
func (j *Journal) Stats() Stats {
	return Stats{
		Appended: j.appended.Load(), Commits: j.commits.Load(), Bytes: j.bytes.Load(),
		Replayed: j.replayed.Load(), Truncated: j.truncated.Load(), Deleted: j.deleted.Load(),
		Spaced: j.spaced.Load(),
	}
}

// Close commits what was appended, stops the committer and closes the
// files. Appends after Close fail with ErrClosed.
func (j *Journal) Close() error {
	j.mu.Lock()
	if j.closed {
		j.mu.Unlock()
		<-j.done
		return nil
	}
	j.closed = true
	j.mu.Unlock()
	select {
	case j.kick <- struct{}{}:
	default:
	}
	<-j.done
	j.wakeWaiters(true)
	var err error
	if j.f != nil {
		err = j.f.Close()
		j.f = nil
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.err != nil {
		return j.err
	}
	if err != nil {
		return fmt.Errorf("journal: close: %w", err)
	}
	return nil
}

// noteWritten records the active segment's length and record count in the
// segment list; it runs on the committer before the fsync that makes the
// records durable, so the list never describes less than Durable.
func (j *Journal) noteWritten() {
	j.segMu.Lock()
	if n := len(j.segments); n > 0 {
		j.segments[n-1].records, j.segments[n-1].size = j.fRecords, j.fSize
	}
	j.segMu.Unlock()
}

// wakeWaiters releases the goroutines in WaitDurable so that they look at
// Durable again; closed says that no commit will follow.
func (j *Journal) wakeWaiters(closed bool) {
	j.waitMu.Lock()
	if j.durableCh != nil {
		close(j.durableCh)
		j.durableCh = nil
	}
	if closed {
		j.waitClosed = true
	}
	j.waitMu.Unlock()
}

// WaitDurable returns when a record above after is durable (Durable() >
// after), when ctx ends (ctx.Err()), when the journal is closed (ErrClosed)
// or when it failed (the error that stopped the committer).
func (j *Journal) WaitDurable(ctx context.Context, after uint64) error {
	for {
		if j.durable.Load() > after {
			return nil
		}
		j.mu.Lock()
		failed := j.err
		j.mu.Unlock()
		if failed != nil {
			return failed
		}
		j.waitMu.Lock()
		if j.waitClosed {
			j.waitMu.Unlock()
			return ErrClosed
		}
		if j.durableCh == nil {
			j.durableCh = make(chan struct{})
		}
		ch := j.durableCh
		j.waitMu.Unlock()
		// The committer stores Durable before it closes the channel: a
		// commit between the first look and taking ch is seen here.
		if j.durable.Load() > after {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// ReadFrom calls fn, in sequence order, for up to limit (no bound if limit
// ≤ 0) durable records whose sequence number is above after, reading them
// from the segment files, the active one included. Record.Data is valid
// only during the call to fn.
//
// It returns the after of the next call: the last record handed to fn if
// limit was reached (or fn failed), otherwise the durable sequence number
// it read up to, which skips numbers that have no record (lost with a
// corrupt segment tail at Open).
//
// It is safe to call concurrently with everything else. Records at or
// below the checkpoint may be gone: SetCheckpoint deletes their segments,
// also while ReadFrom reads, and ReadFrom skips what is gone. A reader
// continuing where its last call stopped seeks straight there.
func (j *Journal) ReadFrom(after uint64, limit int, fn func(Record) error) (uint64, error) {
	durable := j.durable.Load()
	if after >= durable {
		return after, nil
	}
	// Every segment holding a record ≤ durable was listed before durable
	// was stored, so this snapshot lacks only deleted segments.
	j.segMu.Lock()
	i := sort.Search(len(j.segments), func(k int) bool { return j.segments[k].base > after+1 })
	segs := append([]segment(nil), j.segments[max(i-1, 0):]...)
	j.segMu.Unlock()

	last, n := after, 0
	for k, s := range segs {
		if s.base > durable {
			break
		}
		end := durable
		if k+1 < len(segs) {
			end = min(end, segs[k+1].base-1)
		}
		if end <= last {
			continue
		}
		remaining := -1
		if limit > 0 {
			remaining = limit - n
		}
		got, seq, err := j.readSegment(s, last, end, remaining, fn)
		if got > 0 {
			last, n = seq, n+got
		}
		if err != nil {
			return last, err
		}
		if limit > 0 && n >= limit {
			return last, nil
		}
	}
	return durable, nil
}

// readSegment hands fn up to remaining (no bound if negative) records of
// segment s numbered in (after, end], all durable, and returns how many it
// handed and the last one's number.
func (j *Journal) readSegment(s segment, after, end uint64, remaining int, fn func(Record) error) (n int, last uint64, err error) {
	f, err := os.Open(s.path)
	if errors.Is(err, os.ErrNotExist) {
		// SetCheckpoint stores the checkpoint before it deletes a
		// segment, and deletes only segments wholly at or below it.
		if cp := j.checkpoint.Load(); end > cp {
			return 0, 0, fmt.Errorf("journal: segment %s is missing (checkpoint %d, records up to %d)", filepath.Base(s.path), cp, end)
		}
		return 0, 0, nil
	}
	if err != nil {
		return 0, 0, fmt.Errorf("journal: read segment: %w", err)
	}
	defer f.Close()
	seq, off := j.findHint(s.base, after+1)
	if off > 0 {
		if _, err := f.Seek(off, io.SeekStart); err != nil {
			return 0, 0, fmt.Errorf("journal: read %s: %w", s.path, err)
		}
	}
	sr := j.readers.Get().(*segmentReader)
	sr.r.Reset(f)
	defer func() {
		sr.r.Reset(nil)
		j.readers.Put(sr)
		j.storeHint(s.base, seq, off)
	}()
	var hdr [headerSize]byte
	for seq <= end && (remaining < 0 || n < remaining) {
		if _, err := io.ReadFull(sr.r, hdr[:]); err != nil {
			if err == io.EOF {
				// The segment ends before end: its tail was cut at
				// Open, and those numbers have no record.
				return n, last, nil
			}
			return n, last, fmt.Errorf("journal: read %s, record %d: %w", filepath.Base(s.path), seq, err)
		}
		l := binary.LittleEndian.Uint32(hdr[:4]) &^ moreFlag
		if l == 0 || l > MaxRecordBytes {
			return n, last, fmt.Errorf("journal: read %s, record %d: corrupt length %d", filepath.Base(s.path), seq, l)
		}
		if seq <= after {
			if _, err := sr.r.Discard(int(l)); err != nil {
				return n, last, fmt.Errorf("journal: read %s, record %d: %w", filepath.Base(s.path), seq, err)
			}
			seq, off = seq+1, off+headerSize+int64(l)
			continue
		}
		if cap(sr.payload) < int(l) {
			sr.payload = make([]byte, l)
		}
		p := sr.payload[:l]
		if _, err := io.ReadFull(sr.r, p); err != nil {
			return n, last, fmt.Errorf("journal: read %s, record %d: %w", filepath.Base(s.path), seq, err)
		}
		if checksum(hdr[:4], p) != binary.LittleEndian.Uint32(hdr[4:]) {
			return n, last, fmt.Errorf("journal: read %s, record %d: checksum mismatch", filepath.Base(s.path), seq)
		}
		rec := Record{Seq: seq, Data: p}
		seq, off = seq+1, off+headerSize+int64(l)
		n, last = n+1, rec.Seq
		if err := fn(rec); err != nil {
			return n, last, err
		}
	}
	return n, last, nil
}

// findHint returns the remembered position nearest before record want of
// the segment starting at base, or the segment's start.
func (j *Journal) findHint(base, want uint64) (seq uint64, off int64) {
	j.hintMu.Lock()
	defer j.hintMu.Unlock()
	seq, best := base, -1
	for i, h := range j.hints {
		if h.base == base && h.seq <= want && h.seq >= seq && h.used > 0 {
			seq, off, best = h.seq, h.off, i
		}
	}
	if best >= 0 {
		j.hintTick++
		j.hints[best].used = j.hintTick
	}
	return seq, off
}

// storeHint remembers that record seq of the segment starting at base
// starts at off, replacing the least recently used position.
func (j *Journal) storeHint(base, seq uint64, off int64) {
	if off == 0 {
		return
	}
	j.hintMu.Lock()
	defer j.hintMu.Unlock()
	j.hintTick++
	victim := 0
	for i, h := range j.hints {
		if h.base == base && h.seq == seq {
			victim = i
			break
		}
		if h.used < j.hints[victim].used {
			victim = i
		}
	}
	j.hints[victim] = readHint{base: base, seq: seq, off: off, used: j.hintTick}
}

// SegmentList describes the segment files, oldest first; the last one is
// the segment being written.
func (j *Journal) SegmentList() []SegmentInfo {
	j.segMu.Lock()
	defer j.segMu.Unlock()
	out := make([]SegmentInfo, len(j.segments))
	for i, s := range j.segments {
		out[i] = SegmentInfo{First: s.base, Records: s.records, Bytes: s.size}
	}
	return out
}

// Size returns the bytes in the segment files plus those of the records
// appended but not yet written: what the journal occupies on disk once the
// pending commit is done. A caller bounding the journal checks it before
// Append.
func (j *Journal) Size() int64 { return j.size.Load() }
