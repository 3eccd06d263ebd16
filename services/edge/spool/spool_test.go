package spool

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/piot-appliance/piot/internal/testclock"
)

// logBuffer collects log output from concurrent goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// clock is a settable time source.
func newClock() *testclock.Clock { return testclock.New(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)) }

func openSpool(t testing.TB, dir string, opt Options) *Spool {
	t.Helper()
	if opt.Logger == nil {
		opt.Logger = quiet()
	}
	s, err := Open(dir, opt)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return s
}

func data(i int) []byte { return []byte(fmt.Sprintf("packet-%04d", i)) }

func appendAll(t testing.TB, s *Spool, from, n int) []uint64 {
	t.Helper()
	seqs := make([]uint64, 0, n)
	for i := from; i < from+n; i++ {
		seq, err := s.Append(context.Background(), data(i))
		if err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
		seqs = append(seqs, seq)
	}
	return seqs
}

// drain returns every record Next has after after, without waiting for
// more.
func drain(t testing.TB, s *Spool, after uint64) []Record {
	t.Helper()
	var out []Record
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		recs, err := s.Next(ctx, after, 7)
		cancel()
		if errors.Is(err, context.DeadlineExceeded) {
			return out
		}
		if err != nil {
			t.Fatalf("next after %d: %v", after, err)
		}
		out = append(out, recs...)
		after = recs[len(recs)-1].Seq
	}
}

func segmentBytesOnDisk(t testing.TB, dir string) int64 {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.wal"))
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, f := range files {
		st, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		n += st.Size()
	}
	return n
}

func TestAppendNextAckAcrossReopen(t *testing.T) {
	dir := t.TempDir()
	clk := newClock()
	s := openSpool(t, dir, Options{Now: clk.Now})
	seqs := appendAll(t, s, 0, 10)
	got := drain(t, s, 0)
	if len(got) != 10 {
		t.Fatalf("next returned %d records, want 10", len(got))
	}
	for i, r := range got {
		if r.Seq != seqs[i] || !bytes.Equal(r.Data, data(i)) || !r.At.Equal(clk.Now()) {
			t.Fatalf("record %d = %d %q %v", i, r.Seq, r.Data, r.At)
		}
	}
	if recs, err := s.Next(context.Background(), seqs[5], 100); err != nil || len(recs) != 4 || recs[0].Seq != seqs[6] {
		t.Fatalf("next after %d: %d records, %v", seqs[5], len(recs), err)
	}
	if err := s.Ack(seqs[3]); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Records != 6 || st.Acked != 4 || st.Appended != 10 {
		t.Fatalf("stats %+v", st)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(context.Background(), data(99)); !errors.Is(err, ErrClosed) {
		t.Fatalf("append after close: %v", err)
	}

	clk.Advance(time.Hour)
	s = openSpool(t, dir, Options{Now: clk.Now})
	if st := s.Stats(); st.Records != 6 || !st.Oldest.Equal(clk.Now().Add(-time.Hour)) {
		t.Fatalf("stats after reopen %+v", st)
	}
	got = drain(t, s, 0)
	if len(got) != 6 {
		t.Fatalf("after reopen: %d records, want the 6 unacknowledged", len(got))
	}
	for k, r := range got {
		if r.Seq != seqs[4+k] || !bytes.Equal(r.Data, data(4+k)) {
			t.Fatalf("record %d = %d %q", k, r.Seq, r.Data)
		}
	}
	// Acknowledging again, or below the checkpoint, changes nothing.
	if err := s.Ack(seqs[2]); err != nil {
		t.Fatal(err)
	}
	if err := s.Ack(seqs[9]); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Records != 0 || !st.Oldest.IsZero() || st.Acked != 6 {
		t.Fatalf("stats after ack of everything %+v", st)
	}
	s.Close()

	s = openSpool(t, dir, Options{Now: clk.Now})
	defer s.Close()
	if got := drain(t, s, 0); len(got) != 0 {
		t.Fatalf("acknowledged records came back: %d", len(got))
	}
	seq := appendAll(t, s, 10, 1)[0]
	if seq <= seqs[9] {
		t.Fatalf("sequence went back: %d after %d", seq, seqs[9])
	}
	if got := drain(t, s, 0); len(got) != 1 || got[0].Seq != seq {
		t.Fatalf("new record: %+v", got)
	}
}

func TestTornTailIsCut(t *testing.T) {
	for _, tc := range []struct {
		name string
		tear func(b []byte) []byte
	}{
		{"truncated mid-record", func(b []byte) []byte { return b[:len(b)-5] }},
		{"truncated and garbage appended", func(b []byte) []byte {
			return append(b[:len(b)-5], []byte("\x17\x00\x00\x00garbage after a crash")...)
		}},
		{"zeroes appended", func(b []byte) []byte { return append(b, make([]byte, 4096)...) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s := openSpool(t, dir, Options{})
			seqs := appendAll(t, s, 0, 20)
			s.Close()
			files, _ := filepath.Glob(filepath.Join(dir, "*.wal"))
			sort.Strings(files)
			last := files[len(files)-1]
			b, err := os.ReadFile(last)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(last, tc.tear(b), 0o600); err != nil {
				t.Fatal(err)
			}
			s = openSpool(t, dir, Options{})
			defer s.Close()
			if s.j.Stats().Truncated == 0 {
				t.Fatal("nothing truncated")
			}
			keep := 19
			if strings.HasPrefix(tc.name, "zeroes") {
				keep = 20
			}
			got := drain(t, s, 0)
			if len(got) != keep {
				t.Fatalf("%d records survived, want %d", len(got), keep)
			}
			for i, r := range got {
				if r.Seq != seqs[i] || !bytes.Equal(r.Data, data(i)) {
					t.Fatalf("record %d = %d %q", i, r.Seq, r.Data)
				}
			}
			// The spool goes on after the cut.
			seq := appendAll(t, s, 100, 1)[0]
			if got := drain(t, s, got[len(got)-1].Seq); len(got) != 1 || got[0].Seq != seq || !bytes.Equal(got[0].Data, data(100)) {
				t.Fatalf("after the cut: %+v", got)
			}
		})
	}
}

func TestConcurrentAppendersShareFsyncs(t *testing.T) {
	s := openSpool(t, t.TempDir(), Options{SegmentBytes: 4096})
	defer s.Close()
	const writers, per = 16, 50
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Go(func() {
			for i := 0; i < per; i++ {
				if _, err := s.Append(context.Background(), []byte(fmt.Sprintf("w%02d-%03d", w, i))); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	js := s.j.Stats()
	if js.Appended != writers*per || js.Commits >= js.Appended {
		t.Fatalf("no group commit: %d fsyncs for %d records", js.Commits, js.Appended)
	}
	t.Logf("%d records in %d fsyncs", js.Appended, js.Commits)
	got := drain(t, s, 0)
	if len(got) != writers*per {
		t.Fatalf("next returned %d records", len(got))
	}
	seen := map[string]bool{}
	lastPerWriter := map[string]string{}
	for i, r := range got {
		if i > 0 && r.Seq != got[i-1].Seq+1 {
			t.Fatalf("sequence gap: %d after %d", r.Seq, got[i-1].Seq)
		}
		k := string(r.Data)
		if seen[k] {
			t.Fatalf("duplicate %s", k)
		}
		seen[k] = true
		// Each writer's records keep their order.
		w := k[:3]
		if prev, ok := lastPerWriter[w]; ok && prev > k {
			t.Fatalf("%s after %s", k, prev)
		}
		lastPerWriter[w] = k
	}
	if st := s.Stats(); st.Appended != writers*per || st.Records != writers*per {
		t.Fatalf("stats %+v", st)
	}
}

// 100 data bytes take 116 bytes on disk: eight records fill a 1024-byte
// segment, and 4096 bytes hold at most four segments.
func smallOptions(p Policy, logs io.Writer) Options {
	return Options{MaxBytes: 4096, SegmentBytes: 1024, Policy: p, Logger: slog.New(slog.NewTextHandler(logs, nil))}
}

func TestDropOldestByBytes(t *testing.T) {
	dir := t.TempDir()
	var logs logBuffer
	s := openSpool(t, dir, smallOptions(DropOldest, &logs))
	defer s.Close()
	rec := bytes.Repeat([]byte{'d'}, 100)
	var last uint64
	for i := 0; i < 100; i++ {
		seq, err := s.Append(context.Background(), rec)
		if err != nil {
			t.Fatal(err)
		}
		last = seq
		st := s.Stats()
		if st.Bytes > 4096 || segmentBytesOnDisk(t, dir) > 4096 {
			t.Fatalf("after %d appends: %d bytes accounted, %d on disk", i+1, st.Bytes, segmentBytesOnDisk(t, dir))
		}
		if st.Records+st.Dropped != st.Appended {
			t.Fatalf("records unaccounted for: %+v", st)
		}
	}
	st := s.Stats()
	if st.Dropped == 0 || st.DroppedBytes != st.Dropped*100 || st.Rejected != 0 || st.Appended != 100 {
		t.Fatalf("stats %+v", st)
	}
	got := drain(t, s, 0)
	if uint64(len(got)) != st.Records || got[len(got)-1].Seq != last || got[0].Seq != last-st.Records+1 {
		t.Fatalf("next: %d records from %d to %d; stats %+v, last %d", len(got), got[0].Seq, got[len(got)-1].Seq, st, last)
	}
	if strings.Count(logs.String(), "spool dropped records") == 0 || !strings.Contains(logs.String(), "reason=\"spool full\"") {
		t.Fatalf("no warning logged:\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), "records=8 ") || !strings.Contains(logs.String(), "oldest_age=") {
		t.Fatalf("warning lacks how many and how old:\n%s", logs.String())
	}
}

func TestRejectNewByBytes(t *testing.T) {
	dir := t.TempDir()
	var logs logBuffer
	s := openSpool(t, dir, smallOptions(RejectNew, &logs))
	defer s.Close()
	rec := bytes.Repeat([]byte{'r'}, 100)
	var accepted []uint64
	for {
		seq, err := s.Append(context.Background(), rec)
		if errors.Is(err, ErrFull) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		accepted = append(accepted, seq)
		if len(accepted) > 100 {
			t.Fatal("never full")
		}
	}
	if _, err := s.Append(context.Background(), rec); !errors.Is(err, ErrFull) {
		t.Fatalf("second append: %v", err)
	}
	st := s.Stats()
	if st.Rejected != 2 || st.Dropped != 0 || st.Records != uint64(len(accepted)) || st.Bytes > 4096 || st.Bytes+116 <= 4096 {
		t.Fatalf("stats %+v after %d accepted", st, len(accepted))
	}
	if strings.Count(logs.String(), "rejecting new records") != 1 {
		t.Fatalf("want one warning:\n%s", logs.String())
	}
	if got := drain(t, s, 0); len(got) != len(accepted) || got[0].Seq != accepted[0] {
		t.Fatalf("next returned %d records", len(got))
	}
	// Delivering frees whole segments, and appends are accepted again.
	if err := s.Ack(accepted[len(accepted)-1]); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(context.Background(), rec); err != nil {
		t.Fatalf("append after ack: %v", err)
	}
	if !strings.Contains(logs.String(), "spool has room again") {
		t.Fatalf("recovery not logged:\n%s", logs.String())
	}
}

func TestDropByAge(t *testing.T) {
	dir := t.TempDir()
	clk := newClock()
	var logs logBuffer
	opt := Options{MaxAge: time.Hour, Now: clk.Now, Logger: slog.New(slog.NewTextHandler(&logs, nil))}
	s := openSpool(t, dir, opt)
	old := appendAll(t, s, 0, 5)
	clk.Advance(30 * time.Minute)
	mid := appendAll(t, s, 5, 5)
	clk.Advance(31 * time.Minute) // the first five are 61 minutes old
	if st := s.Stats(); st.Dropped != 0 || st.Records != 10 {
		t.Fatalf("dropped before a check: %+v", st)
	}
	fresh := appendAll(t, s, 10, 1)
	st := s.Stats()
	if st.Dropped != 5 || st.DroppedBytes != uint64(5*len(data(0))) || st.Records != 6 || !st.Oldest.Equal(clk.Now().Add(-31*time.Minute)) {
		t.Fatalf("after append: %+v", st)
	}
	if !strings.Contains(logs.String(), "older than 1h0m0s") || !strings.Contains(logs.String(), "oldest_age=1h1m0s") {
		t.Fatalf("drop not logged:\n%s", logs.String())
	}
	// A forwarder still holding the dropped records gets what is left.
	recs, err := s.Next(context.Background(), old[1], 100)
	if err != nil || len(recs) != 6 || recs[0].Seq != mid[0] {
		t.Fatalf("next: %d records, %v", len(recs), err)
	}
	// Next applies the bound too.
	clk.Advance(30 * time.Minute) // mid: 61 minutes, fresh: 30
	recs, err = s.Next(context.Background(), 0, 100)
	if err != nil || len(recs) != 1 || recs[0].Seq != fresh[0] {
		t.Fatalf("next after more time: %+v, %v", recs, err)
	}
	if st := s.Stats(); st.Dropped != 10 || st.Records != 1 {
		t.Fatalf("stats %+v", st)
	}
	// Ages survive a restart: the last record expires while the spool
	// is closed and is dropped at Open.
	s.Close()
	clk.Advance(31 * time.Minute)
	logs = logBuffer{}
	s = openSpool(t, dir, opt)
	defer s.Close()
	if st := s.Stats(); st.Dropped != 1 || st.Records != 0 {
		t.Fatalf("after reopen: %+v", st)
	}
	if !strings.Contains(logs.String(), "spool dropped records") {
		t.Fatalf("drop at open not logged:\n%s", logs.String())
	}
}

func TestNextBlocksUntilAppendAndHonoursContext(t *testing.T) {
	s := openSpool(t, t.TempDir(), Options{})
	type result struct {
		recs []Record
		err  error
	}
	res := make(chan result, 1)
	go func() {
		recs, err := s.Next(context.Background(), 0, 10)
		res <- result{recs, err}
	}()
	time.Sleep(30 * time.Millisecond)
	select {
	case r := <-res:
		t.Fatalf("Next returned on an empty spool: %+v", r)
	default:
	}
	seq := appendAll(t, s, 0, 1)[0]
	select {
	case r := <-res:
		if r.err != nil || len(r.recs) != 1 || r.recs[0].Seq != seq {
			t.Fatalf("Next: %+v", r)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Next did not return after an Append")
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := s.Next(ctx, seq, 10); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Next with an ending context: %v", err)
	}
	ctx, cancel = context.WithCancel(context.Background())
	cancel()
	if _, err := s.Next(ctx, seq, 10); !errors.Is(err, context.Canceled) {
		t.Fatalf("Next with a cancelled context: %v", err)
	}
	if _, err := s.Next(context.Background(), 0, 0); err == nil {
		t.Fatal("Next with limit 0 succeeded")
	}

	go func() {
		recs, err := s.Next(context.Background(), seq, 10)
		res <- result{recs, err}
	}()
	time.Sleep(20 * time.Millisecond)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if r := <-res; !errors.Is(r.err, ErrClosed) {
		t.Fatalf("Next blocked across Close: %+v", r)
	}
}

func TestNextSkipsDroppedRecords(t *testing.T) {
	s := openSpool(t, t.TempDir(), smallOptions(DropOldest, io.Discard))
	defer s.Close()
	rec := bytes.Repeat([]byte{'n'}, 100)
	for i := 0; i < 20; i++ {
		if _, err := s.Append(context.Background(), rec); err != nil {
			t.Fatal(err)
		}
	}
	// The forwarder takes three records in flight...
	inflight, err := s.Next(context.Background(), 0, 3)
	if err != nil || len(inflight) != 3 {
		t.Fatalf("next: %d records, %v", len(inflight), err)
	}
	// ...and while the uplink is down, appends push them out.
	for i := 0; i < 20; i++ {
		if _, err := s.Append(context.Background(), rec); err != nil {
			t.Fatal(err)
		}
	}
	st := s.Stats()
	if st.Dropped == 0 {
		t.Fatalf("nothing dropped: %+v", st)
	}
	cp := s.j.Checkpoint()
	recs, err := s.Next(context.Background(), inflight[2].Seq, 100)
	if err != nil || len(recs) == 0 || recs[0].Seq != cp+1 {
		t.Fatalf("next after a drop: first %v, checkpoint %d, %v", recs, cp, err)
	}
	for _, r := range recs {
		if r.Seq <= cp {
			t.Fatalf("dropped record %d offered", r.Seq)
		}
	}
	// The late Ack of dropped records is harmless.
	if err := s.Ack(inflight[2].Seq); err != nil {
		t.Fatal(err)
	}
	if st2 := s.Stats(); st2.Acked != 0 || st2.Records != st.Records {
		t.Fatalf("late ack changed %+v to %+v", st, st2)
	}
}

func TestOptionsAndLimits(t *testing.T) {
	dir := t.TempDir()
	for _, opt := range []Options{
		{MaxBytes: 1000, SegmentBytes: 1000},
		{Policy: "keep-everything"},
		{MaxAge: -time.Second},
		{SegmentBytes: 16},
	} {
		if s, err := Open(dir, opt); err == nil {
			s.Close()
			t.Errorf("Open accepted %+v", opt)
		}
	}
	s := openSpool(t, dir, Options{MaxBytes: 4096})
	defer s.Close()
	if s.opt.SegmentBytes != 1024 || s.opt.Policy != DropOldest {
		t.Fatalf("defaults: %+v", s.opt)
	}
	if _, err := s.Append(context.Background(), make([]byte, 1024-16+1)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversized record: %v", err)
	}
	if _, err := s.Append(context.Background(), make([]byte, 1024-16)); err != nil {
		t.Fatalf("largest record: %v", err)
	}
	if _, err := s.Append(context.Background(), nil); err != nil {
		t.Fatalf("empty record: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Append(ctx, data(0)); !errors.Is(err, context.Canceled) {
		t.Fatalf("append with a cancelled context: %v", err)
	}
}
