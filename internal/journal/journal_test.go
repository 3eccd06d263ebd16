package journal

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"
)

func open(t testing.TB, dir string, opt Options) *Journal {
	t.Helper()
	j, err := Open(dir, opt)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return j
}

func payload(i int) []byte {
	return []byte(fmt.Sprintf("record-%06d-%s", i, bytes.Repeat([]byte{'x'}, i%37)))
}

func replayAll(t testing.TB, j *Journal, after uint64) []Record {
	t.Helper()
	var out []Record
	if err := j.Replay(after, func(r Record) error {
		out = append(out, Record{Seq: r.Seq, Data: append([]byte(nil), r.Data...)})
		return nil
	}); err != nil {
		t.Fatalf("replay: %v", err)
	}
	return out
}

func segmentFiles(t testing.TB, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*"+segmentExt))
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(m)
	return m
}

func TestAppendReplayAcrossReopen(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "journal")
	var durable []Record
	var mu sync.Mutex
	j := open(t, dir, Options{OnDurable: func(rs []Record) {
		mu.Lock()
		durable = append(durable, rs...)
		mu.Unlock()
	}})
	var seqs []uint64
	for i := 0; i < 100; i++ {
		seq, err := j.AppendSync(payload(i))
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, seq)
	}
	for i := 1; i < len(seqs); i++ {
		if seqs[i] != seqs[i-1]+1 {
			t.Fatalf("sequence not contiguous: %d after %d", seqs[i], seqs[i-1])
		}
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	if len(durable) != 100 {
		t.Fatalf("OnDurable saw %d records, want 100", len(durable))
	}
	for i, r := range durable {
		if r.Seq != seqs[i] || !bytes.Equal(r.Data, payload(i)) {
			t.Fatalf("OnDurable record %d = %d %q", i, r.Seq, r.Data)
		}
	}
	mu.Unlock()
	if _, err := j.Append([]byte("late")); err != ErrClosed {
		t.Fatalf("append after close: %v", err)
	}

	j2 := open(t, dir, Options{})
	defer j2.Close()
	got := replayAll(t, j2, 0)
	if len(got) != 100 {
		t.Fatalf("replayed %d records, want 100", len(got))
	}
	for i, r := range got {
		if r.Seq != seqs[i] || !bytes.Equal(r.Data, payload(i)) {
			t.Fatalf("record %d = %d %q, want %d %q", i, r.Seq, r.Data, seqs[i], payload(i))
		}
	}
	if got := replayAll(t, j2, seqs[49]); len(got) != 50 || got[0].Seq != seqs[50] {
		t.Fatalf("replay after %d: %d records", seqs[49], len(got))
	}
	seq, err := j2.AppendSync([]byte("next"))
	if err != nil || seq != seqs[99]+1 {
		t.Fatalf("append after reopen: seq %d err %v, want %d", seq, err, seqs[99]+1)
	}
	// Records appended by this process are not replayed by it.
	if got := replayAll(t, j2, 0); len(got) != 100 {
		t.Fatalf("replay includes new records: %d", len(got))
	}

	st, err := os.Stat(dir)
	if err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("dir mode %v %v", st.Mode().Perm(), err)
	}
	for _, f := range segmentFiles(t, dir) {
		st, err := os.Stat(f)
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("%s mode %v %v", f, st.Mode().Perm(), err)
		}
	}
}

func TestEmptyAndHugeRecordsRefused(t *testing.T) {
	j := open(t, t.TempDir(), Options{})
	defer j.Close()
	if _, err := j.Append(nil); err != ErrEmptyRecord {
		t.Fatalf("empty: %v", err)
	}
	if _, err := j.Append(make([]byte, MaxRecordBytes+1)); err != ErrTooLarge {
		t.Fatalf("huge: %v", err)
	}
}

func TestFreshJournalSeedsSequenceFromClock(t *testing.T) {
	now := time.Date(2026, 11, 7, 12, 0, 0, 0, time.UTC)
	j := open(t, t.TempDir(), Options{Now: func() time.Time { return now }})
	defer j.Close()
	seq, err := j.AppendSync([]byte("a"))
	if err != nil {
		t.Fatal(err)
	}
	if seq != uint64(now.UnixMicro()) {
		t.Fatalf("first seq %d, want %d", seq, now.UnixMicro())
	}
}

// A crash in the middle of a write leaves a partial record; Open cuts it
// off and the journal continues after the last whole record.
func TestTornWriteIsCutOff(t *testing.T) {
	dir := t.TempDir()
	j := open(t, dir, Options{})
	var seqs []uint64
	for i := 0; i < 10; i++ {
		s, err := j.AppendSync(payload(i))
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, s)
	}
	j.Close()
	files := segmentFiles(t, dir)
	if len(files) != 1 {
		t.Fatalf("%d segments", len(files))
	}
	st, _ := os.Stat(files[0])
	// Cut the last record in half.
	cut := st.Size() - int64(len(payload(9)))/2
	if err := os.Truncate(files[0], cut); err != nil {
		t.Fatal(err)
	}
	j2 := open(t, dir, Options{})
	got := replayAll(t, j2, 0)
	if len(got) != 9 || got[8].Seq != seqs[8] {
		t.Fatalf("after torn write: %d records", len(got))
	}
	if j2.Stats().Truncated == 0 {
		t.Fatal("truncation not counted")
	}
	st2, _ := os.Stat(files[0])
	if st2.Size() != st.Size()-int64(headerSize+len(payload(9))) {
		t.Fatalf("file not cut to the record boundary: %d", st2.Size())
	}
	// The lost record's number is reused: it was never acknowledged.
	s, err := j2.AppendSync([]byte("after"))
	if err != nil || s != seqs[9] {
		t.Fatalf("append after repair: %d %v", s, err)
	}
	j2.Close()
	j3 := open(t, dir, Options{})
	defer j3.Close()
	got = replayAll(t, j3, 0)
	if len(got) != 10 || string(got[9].Data) != "after" {
		t.Fatalf("after repair and append: %d records, last %q", len(got), got[len(got)-1].Data)
	}
}

// A file system may extend a file with zeroes it never got to fill.
func TestZeroTailIsNotARecord(t *testing.T) {
	dir := t.TempDir()
	j := open(t, dir, Options{})
	for i := 0; i < 3; i++ {
		if _, err := j.AppendSync(payload(i)); err != nil {
			t.Fatal(err)
		}
	}
	j.Close()
	f, _ := os.OpenFile(segmentFiles(t, dir)[0], os.O_WRONLY|os.O_APPEND, 0)
	f.Write(make([]byte, 4096))
	f.Close()
	j2 := open(t, dir, Options{})
	defer j2.Close()
	if got := replayAll(t, j2, 0); len(got) != 3 {
		t.Fatalf("%d records", len(got))
	}
}

// corruptTail damages the end of the only segment in one of several ways
// and checks that Open keeps exactly the records before the damage.
func TestCorruptTailRandomized(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := 0; round < 60; round++ {
		dir := t.TempDir()
		j := open(t, dir, Options{})
		n := 1 + rng.IntN(30)
		var ends []int64 // file size after each record
		var size int64
		for i := 0; i < n; i++ {
			p := payload(rng.IntN(1000))
			if _, err := j.AppendSync(p); err != nil {
				t.Fatal(err)
			}
			size += int64(headerSize + len(p))
			ends = append(ends, size)
		}
		j.Close()
		file := segmentFiles(t, dir)[0]
		data, _ := os.ReadFile(file)
		mode := rng.IntN(4)
		var damageAt int64
		switch mode {
		case 0: // cut anywhere
			damageAt = rng.Int64N(size + 1)
			data = data[:damageAt]
		case 1: // flip a byte anywhere in the last record
			start := int64(0)
			if n > 1 {
				start = ends[n-2]
			}
			damageAt = start + rng.Int64N(size-start)
			data[damageAt] ^= byte(1 + rng.IntN(255))
		case 2: // random garbage after the last record
			damageAt = size
			g := make([]byte, 1+rng.IntN(64))
			for i := range g {
				g[i] = byte(rng.IntN(256))
			}
			data = append(data, g...)
		case 3: // a plausible header promising more than is there
			damageAt = size
			data = append(data, 0xff, 0x00, 0x00, 0x00, 1, 2, 3, 4, 'x')
		}
		if err := os.WriteFile(file, data, 0o600); err != nil {
			t.Fatal(err)
		}
		want := 0
		for _, e := range ends {
			if e <= damageAt {
				want++
			}
		}
		j2 := open(t, dir, Options{})
		got := replayAll(t, j2, 0)
		if len(got) != want {
			t.Fatalf("round %d mode %d: kept %d records, want %d", round, mode, len(got), want)
		}
		// The journal works normally afterwards.
		if _, err := j2.AppendSync([]byte("more")); err != nil {
			t.Fatal(err)
		}
		j2.Close()
		j3 := open(t, dir, Options{})
		if got := replayAll(t, j3, 0); len(got) != want+1 || string(got[want].Data) != "more" {
			t.Fatalf("round %d: after append %d records", round, len(got))
		}
		j3.Close()
	}
}

// FuzzOpenCorruptTail feeds arbitrary bytes after valid records: Open must
// never fail or invent records, only keep a prefix.
func FuzzOpenCorruptTail(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{5, 0, 0, 0, 1, 2, 3, 4, 'a', 'b', 'c', 'd', 'e'})
	f.Add(bytes.Repeat([]byte{0xff}, 40))
	f.Fuzz(func(t *testing.T, tail []byte) {
		dir := t.TempDir()
		j := open(t, dir, Options{})
		for i := 0; i < 3; i++ {
			if _, err := j.AppendSync(payload(i)); err != nil {
				t.Fatal(err)
			}
		}
		j.Close()
		file := segmentFiles(t, dir)[0]
		fh, _ := os.OpenFile(file, os.O_WRONLY|os.O_APPEND, 0)
		fh.Write(tail)
		fh.Close()
		j2 := open(t, dir, Options{})
		defer j2.Close()
		got := replayAll(t, j2, 0)
		if len(got) < 3 {
			t.Fatalf("lost valid records: %d", len(got))
		}
		for i := 0; i < 3; i++ {
			if !bytes.Equal(got[i].Data, payload(i)) {
				t.Fatalf("record %d changed", i)
			}
		}
	})
}

func TestRotationAndCheckpoint(t *testing.T) {
	dir := t.TempDir()
	j := open(t, dir, Options{SegmentBytes: 1024})
	var seqs []uint64
	for i := 0; i < 200; i++ {
		s, err := j.AppendSync(payload(i))
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, s)
	}
	nseg := j.Segments()
	if nseg < 5 {
		t.Fatalf("only %d segments", nseg)
	}
	for _, f := range segmentFiles(t, dir) {
		st, _ := os.Stat(f)
		if st.Size() > 1024 {
			t.Fatalf("%s is %d bytes", f, st.Size())
		}
	}
	if err := j.SetCheckpoint(seqs[149]); err != nil {
		t.Fatal(err)
	}
	if j.Segments() >= nseg {
		t.Fatalf("checkpoint deleted nothing: %d segments", j.Segments())
	}
	j.Close()

	j2 := open(t, dir, Options{SegmentBytes: 1024})
	defer j2.Close()
	if j2.Checkpoint() != seqs[149] {
		t.Fatalf("checkpoint %d", j2.Checkpoint())
	}
	got := replayAll(t, j2, j2.Checkpoint())
	if len(got) != 50 || got[0].Seq != seqs[150] {
		t.Fatalf("replay after checkpoint: %d records", len(got))
	}
	// Everything after the checkpoint is still there, in order.
	for i, r := range got {
		if !bytes.Equal(r.Data, payload(150+i)) {
			t.Fatalf("record %d: %q", r.Seq, r.Data)
		}
	}
	// A checkpoint past everything keeps the active segment.
	if err := j2.SetCheckpoint(seqs[199]); err != nil {
		t.Fatal(err)
	}
	if j2.Segments() != 1 {
		t.Fatalf("%d segments after full checkpoint", j2.Segments())
	}
}

func TestCheckpointWithoutSegmentsKeepsSequenceGrowing(t *testing.T) {
	dir := t.TempDir()
	j := open(t, dir, Options{})
	s, _ := j.AppendSync([]byte("a"))
	if err := j.SetCheckpoint(s + 1000); err != nil {
		t.Fatal(err)
	}
	j.Close()
	for _, f := range segmentFiles(t, dir) {
		os.Remove(f)
	}
	j2 := open(t, dir, Options{Now: func() time.Time { return time.Unix(0, 0) }})
	defer j2.Close()
	s2, _ := j2.AppendSync([]byte("b"))
	if s2 <= s+1000 {
		t.Fatalf("sequence went back: %d after checkpoint %d", s2, s+1000)
	}
}

// Many writers waiting at once share fsyncs.
func TestGroupCommitSharesFsyncs(t *testing.T) {
	j := open(t, t.TempDir(), Options{})
	defer j.Close()
	var wg sync.WaitGroup
	for w := 0; w < 32; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				if _, err := j.AppendSync(payload(i)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	st := j.Stats()
	if st.Appended != 1600 {
		t.Fatalf("appended %d", st.Appended)
	}
	if st.Commits >= st.Appended {
		t.Fatalf("no group commit: %d fsyncs for %d records", st.Commits, st.Appended)
	}
	t.Logf("%d records in %d fsyncs", st.Appended, st.Commits)
}

func TestOnCommitReportsEveryRecord(t *testing.T) {
	var mu sync.Mutex
	var records, commits int
	j := open(t, t.TempDir(), Options{OnCommit: func(waited []time.Duration) {
		mu.Lock()
		defer mu.Unlock()
		commits++
		records += len(waited)
		for _, d := range waited {
			if d < 0 || d > time.Minute {
				t.Errorf("waited %v", d)
			}
		}
	}})
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Go(func() {
			for i := 0; i < 25; i++ {
				if _, err := j.AppendSync(payload(i)); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if records != 200 || uint64(commits) != j.Stats().Commits {
		t.Fatalf("OnCommit saw %d records in %d commits; journal: %+v", records, commits, j.Stats())
	}
}

// A batch is appended whole or not at all: a refused record anywhere in
// it, or a closed journal, leaves the journal as it was.
func TestAppendBatchIsAllOrNothing(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "journal")
	j := open(t, dir, Options{})
	first, err := j.AppendSync([]byte("before"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := j.AppendBatch([][]byte{[]byte("a"), make([]byte, MaxRecordBytes+1)}); err != ErrTooLarge {
		t.Fatalf("oversize record in a batch: %v", err)
	}
	if _, err := j.AppendBatch([][]byte{[]byte("a"), nil}); err != ErrEmptyRecord {
		t.Fatalf("empty record in a batch: %v", err)
	}
	tk, err := j.AppendBatch([][]byte{[]byte("b1"), []byte("b2"), []byte("b3")})
	if err != nil {
		t.Fatal(err)
	}
	if err := tk.Wait(); err != nil {
		t.Fatal(err)
	}
	if tk.Seq() != first+3 || j.Durable() != first+3 {
		t.Fatalf("batch ticket %d, durable %d, want %d", tk.Seq(), j.Durable(), first+3)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := j.AppendBatch([][]byte{[]byte("late")}); err != ErrClosed {
		t.Fatalf("append after close: %v", err)
	}
	j = open(t, dir, Options{})
	defer j.Close()
	var got []string
	for _, r := range replayAll(t, j, first-1) {
		got = append(got, fmt.Sprintf("%d:%s", r.Seq-first, r.Data))
	}
	if g := fmt.Sprint(got); g != "[0:before 1:b1 2:b2 3:b3]" {
		t.Fatalf("journal holds %s", g)
	}
}

// A unit whose last record is torn off is cut off whole at Open, and a
// unit never straddles two segments.
func TestTornUnitIsCutWhole(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "journal")
	j := open(t, dir, Options{SegmentBytes: 200})
	first, err := j.AppendSync([]byte("alone"))
	if err != nil {
		t.Fatal(err)
	}
	for u := 0; u < 20; u++ {
		tk, err := j.AppendBatch([][]byte{[]byte(fmt.Sprintf("u%d-a", u)), []byte(fmt.Sprintf("u%d-b", u)), bytes.Repeat([]byte{'c'}, 30)})
		if err != nil {
			t.Fatal(err)
		}
		if err := tk.Wait(); err != nil {
			t.Fatal(err)
		}
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	files := segmentFiles(t, dir)
	if len(files) < 5 {
		t.Fatalf("%d segments, want several", len(files))
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if _, good := scan(data, nil); good != len(data) {
			t.Fatalf("%s ends inside a unit (%d of %d bytes complete)", filepath.Base(f), good, len(data))
		}
	}
	// A crash while the last unit was being written: its last record is
	// incomplete, the first two are intact.
	last := files[len(files)-1]
	data, _ := os.ReadFile(last)
	if err := os.WriteFile(last, data[:len(data)-5], 0o600); err != nil {
		t.Fatal(err)
	}
	j = open(t, dir, Options{})
	recs := replayAll(t, j, first-1)
	if n := len(recs); n != 1+19*3 || string(recs[n-1].Data) != string(bytes.Repeat([]byte{'c'}, 30)) || string(recs[n-3].Data) != "u18-a" {
		t.Fatalf("replayed %d records, last %q", n, recs[n-1].Data)
	}
	if next := j.NextSeq(); next != first+1+19*3 {
		t.Fatalf("next sequence %d, want %d", next, first+1+19*3)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
}

// Notes reach OnDurable beside their records, in order, and never the
// disk: a replay has none.
func TestNotesTravelToOnDurableOnly(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "journal")
	var mu sync.Mutex
	var seen []Record
	j := open(t, dir, Options{OnDurable: func(rs []Record) {
		mu.Lock()
		seen = append(seen, rs...)
		mu.Unlock()
	}})
	if _, err := j.AppendNoted([][]byte{[]byte("a")}, []any{"note-a", "extra"}); err == nil {
		t.Fatal("more notes than records accepted")
	}
	tk, err := j.AppendNoted([][]byte{[]byte("a"), []byte("b")}, []any{"note-a", 7})
	if err != nil {
		t.Fatal(err)
	}
	if err := tk.Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := j.AppendSync([]byte("c")); err != nil {
		t.Fatal(err)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	want := []any{"note-a", 7, nil}
	if len(seen) != len(want) {
		t.Fatalf("OnDurable saw %d records, want %d", len(seen), len(want))
	}
	for k, r := range seen {
		if r.Note != want[k] {
			t.Fatalf("record %d (%q) note %v, want %v", k, r.Data, r.Note, want[k])
		}
	}
	j2 := open(t, dir, Options{})
	defer j2.Close()
	if err := j2.Replay(0, func(r Record) error {
		if r.Note != nil {
			t.Fatalf("replayed record %q has note %v", r.Data, r.Note)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// Under load (a commit of BusyCommitRecords or more from
// BusyCommitSources sources or more) the next commit waits until
// BusyCommitInterval after the busy one started; after a commit of fewer
// records or fewer sources the next one does not wait.
func TestBusyCommitsAreSpaced(t *testing.T) {
	const interval = 100 * time.Millisecond
	// batch commits records (from the given sources; 0: from none) in
	// one batch: the committer is held in OnDurable of a first record
	// while they are appended.
	batch := func(t *testing.T, sources, records int) *Journal {
		entered, gate := make(chan struct{}), make(chan struct{})
		var once sync.Once
		j := open(t, t.TempDir(), Options{BusyCommitInterval: interval, OnDurable: func([]Record) {
			once.Do(func() { close(entered); <-gate })
		}})
		t.Cleanup(func() { j.Close() })
		if _, err := j.Append(payload(0)); err != nil {
			t.Fatal(err)
		}
		<-entered
		var last Ticket
		for k := range records {
			var src any
			if sources > 0 {
				src = k % sources
			}
			tk, err := j.AppendFrom(src, [][]byte{payload(k)}, nil)
			if err != nil {
				t.Fatal(err)
			}
			last = tk
		}
		start := time.Now()
		close(gate)
		if err := last.Wait(); err != nil {
			t.Fatal(err)
		}
		if _, err := j.AppendSync(payload(1)); err != nil {
			t.Fatal(err)
		}
		if st := j.Stats(); st.Commits != 3 {
			t.Fatalf("%d commits, want 3: the records were not in one batch", st.Commits)
		}
		if j.Stats().Spaced == 1 {
			if took := time.Since(start); took < interval {
				t.Fatalf("the commit after a busy one came %v after it, want at least %v", took, interval)
			}
		}
		return j
	}

	j := batch(t, BusyCommitSources, BusyCommitRecords)
	if st := j.Stats(); st.Spaced != 1 {
		t.Fatalf("after a busy commit and a small one: %+v, want 1 spaced", st)
	}
	// Small commits follow each other as fast as the disk allows.
	for i := range 5 {
		if _, err := j.AppendSync(payload(6 + i)); err != nil {
			t.Fatal(err)
		}
	}
	if st := j.Stats(); st.Spaced != 1 || st.Commits != 8 {
		t.Fatalf("after small commits: %+v, want still 1 spaced of 8", st)
	}

	for _, c := range []struct{ sources, records int }{
		{BusyCommitSources - 1, 4 * BusyCommitRecords}, // too few sources
		{0, 4 * BusyCommitRecords},                     // no one in particular
		{BusyCommitSources, BusyCommitRecords - 1},     // too few records
	} {
		if st := batch(t, c.sources, c.records).Stats(); st.Spaced != 0 {
			t.Fatalf("%d records from %d sources: %+v, want none spaced", c.records, c.sources, st)
		}
	}

	if _, err := Open(t.TempDir(), Options{BusyCommitInterval: MaxBusyCommitInterval + 1}); err == nil {
		t.Fatal("a busy commit interval above the maximum was accepted")
	}
}
