package journal

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// readAll collects what ReadFrom hands out, copying the data it may reuse.
func readAll(t testing.TB, j *Journal, after uint64, limit int) ([]Record, uint64) {
	t.Helper()
	var out []Record
	last, err := j.ReadFrom(after, limit, func(r Record) error {
		out = append(out, Record{Seq: r.Seq, Data: append([]byte(nil), r.Data...)})
		return nil
	})
	if err != nil {
		t.Fatalf("ReadFrom(%d, %d): %v", after, limit, err)
	}
	return out, last
}

func appendN(t testing.TB, j *Journal, from, n int) []uint64 {
	t.Helper()
	seqs := make([]uint64, 0, n)
	for i := from; i < from+n; i++ {
		s, err := j.AppendSync(payload(i))
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, s)
	}
	return seqs
}

func TestReadFromReadsClosedAndActiveSegments(t *testing.T) {
	dir := t.TempDir()
	j := open(t, dir, Options{SegmentBytes: 1024})
	seqs := appendN(t, j, 0, 200)
	if j.Segments() < 5 {
		t.Fatalf("only %d segments", j.Segments())
	}
	check := func(got []Record, firstIdx int) {
		t.Helper()
		for k, r := range got {
			i := firstIdx + k
			if r.Seq != seqs[i] || !bytes.Equal(r.Data, payload(i)) {
				t.Fatalf("record %d = %d %q, want %d %q", k, r.Seq, r.Data, seqs[i], payload(i))
			}
		}
	}
	got, last := readAll(t, j, 0, 0)
	if len(got) != 200 || last != seqs[199] {
		t.Fatalf("read %d records up to %d", len(got), last)
	}
	check(got, 0)

	got, last = readAll(t, j, seqs[49], 10)
	if len(got) != 10 || last != seqs[59] {
		t.Fatalf("read %d records up to %d, want 10 up to %d", len(got), last, seqs[59])
	}
	check(got, 50)

	// A reader going in small steps, the way a forwarder does, crosses
	// segment boundaries and sees new records as they become durable.
	var all []Record
	after := uint64(0)
	for len(all) < 200 {
		got, next := readAll(t, j, after, 7)
		if len(got) == 0 {
			t.Fatalf("no progress after %d", after)
		}
		all = append(all, got...)
		after = next
	}
	check(all, 0)
	if got, next := readAll(t, j, after, 7); len(got) != 0 || next != after {
		t.Fatalf("read %d records past the end, next %d", len(got), next)
	}
	seqs = append(seqs, appendN(t, j, 200, 3)...)
	got, _ = readAll(t, j, after, 7)
	if len(got) != 3 {
		t.Fatalf("read %d new records, want 3", len(got))
	}
	check(got, 200)
	j.Close()

	// After a reopen the records come from recovered segments.
	j2 := open(t, dir, Options{SegmentBytes: 1024})
	defer j2.Close()
	got, _ = readAll(t, j2, seqs[100], 0)
	if len(got) != 102 {
		t.Fatalf("after reopen read %d records, want 102", len(got))
	}
	check(got, 101)
}

func TestReadFromSkipsCheckpointedSegments(t *testing.T) {
	j := open(t, t.TempDir(), Options{SegmentBytes: 1024})
	defer j.Close()
	seqs := appendN(t, j, 0, 200)
	// Leave a hint inside a segment that is about to be deleted.
	readAll(t, j, seqs[10], 5)
	if err := j.SetCheckpoint(seqs[149]); err != nil {
		t.Fatal(err)
	}
	got, last := readAll(t, j, 0, 0)
	if last != seqs[199] {
		t.Fatalf("last %d, want %d", last, seqs[199])
	}
	// What is left of the segment holding the checkpoint is still there;
	// everything above the checkpoint certainly is.
	if len(got) < 50 || got[len(got)-50].Seq != seqs[150] {
		t.Fatalf("read %d records", len(got))
	}
	for _, r := range got {
		i := int(r.Seq - seqs[0])
		if !bytes.Equal(r.Data, payload(i)) {
			t.Fatalf("record %d: %q", r.Seq, r.Data)
		}
	}
}

func TestReadFromReportsCorruptionAndMissingSegments(t *testing.T) {
	dir := t.TempDir()
	j := open(t, dir, Options{SegmentBytes: 1024})
	defer j.Close()
	appendN(t, j, 0, 100)
	files := segmentFiles(t, dir)
	data, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	data[headerSize+2] ^= 0xff // the first record's payload
	if err := os.WriteFile(files[0], data, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := j.ReadFrom(0, 0, func(Record) error { return nil }); err == nil || !strings.Contains(err.Error(), "checksum") {
		t.Fatalf("corrupt record: %v", err)
	}
	if err := os.Remove(files[1]); err != nil {
		t.Fatal(err)
	}
	first := j.SegmentList()[1].First
	if _, err := j.ReadFrom(first-1, 0, func(Record) error { return nil }); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("segment deleted behind the journal's back: %v", err)
	}
	stop := errors.New("stop")
	n := 0
	list := j.SegmentList()
	last, err := j.ReadFrom(list[len(list)-1].First, 0, func(Record) error { n++; return stop })
	if !errors.Is(err, stop) || n != 1 {
		t.Fatalf("fn's error: %v after %d records", err, n)
	}
	if last == 0 {
		t.Fatal("last is zero after a record was handed out")
	}
}

// A forwarder reading and checkpointing behind concurrent writers sees
// every record once, in order; a slow reader behind the checkpoint loses
// only records at or below it, and never fails.
func TestReadFromConcurrentWithAppendAndCheckpoint(t *testing.T) {
	j := open(t, t.TempDir(), Options{SegmentBytes: 2048})
	defer j.Close()
	const writers, per = 8, 150
	want := func(r Record) bool {
		var w, i int
		_, err := fmt.Sscanf(string(r.Data), "w%d-%d", &w, &i)
		return err == nil && w < writers && i < per
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var done atomic.Bool
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Go(func() {
			for i := 0; i < per; i++ {
				if _, err := j.AppendSync([]byte(fmt.Sprintf("w%d-%d", w, i))); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	var forwarded atomic.Uint64
	fwd := make(chan error, 1)
	go func() {
		after, n := uint64(0), 0
		for n < writers*per {
			next, err := j.ReadFrom(after, 13, func(r Record) error {
				if r.Seq <= after || !want(r) {
					return fmt.Errorf("record %d %q after %d", r.Seq, r.Data, after)
				}
				after = r.Seq
				n++
				return nil
			})
			if err != nil {
				fwd <- err
				return
			}
			after = next
			if err := j.SetCheckpoint(after); err != nil {
				fwd <- err
				return
			}
			forwarded.Store(uint64(n))
			if n == writers*per {
				break
			}
			if err := j.WaitDurable(ctx, after); err != nil {
				fwd <- err
				return
			}
		}
		fwd <- nil
	}()
	slow := make(chan error, 1)
	go func() {
		after := uint64(0)
		for !done.Load() {
			next, err := j.ReadFrom(after, 5, func(r Record) error {
				if r.Seq <= after || !want(r) {
					return fmt.Errorf("slow reader: record %d %q after %d", r.Seq, r.Data, after)
				}
				after = r.Seq
				time.Sleep(100 * time.Microsecond)
				return nil
			})
			if err != nil {
				slow <- err
				return
			}
			after = next
		}
		slow <- nil
	}()
	wg.Wait()
	if err := <-fwd; err != nil {
		t.Fatal(err)
	}
	done.Store(true)
	if err := <-slow; err != nil {
		t.Fatal(err)
	}
	if forwarded.Load() != writers*per {
		t.Fatalf("forwarded %d of %d", forwarded.Load(), writers*per)
	}
	if j.Segments() != 1 {
		t.Fatalf("%d segments left after everything was checkpointed", j.Segments())
	}
}

func TestWaitDurable(t *testing.T) {
	j := open(t, t.TempDir(), Options{})
	s := appendN(t, j, 0, 1)[0]
	if err := j.WaitDurable(context.Background(), s-1); err != nil {
		t.Fatalf("durable record: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := j.WaitDurable(ctx, s); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("nothing new: %v", err)
	}
	res := make(chan error, 1)
	go func() { res <- j.WaitDurable(context.Background(), s) }()
	time.Sleep(10 * time.Millisecond)
	select {
	case err := <-res:
		t.Fatalf("returned before an append: %v", err)
	default:
	}
	appendN(t, j, 1, 1)
	if err := <-res; err != nil {
		t.Fatalf("after an append: %v", err)
	}
	go func() { res <- j.WaitDurable(context.Background(), s+1) }()
	time.Sleep(10 * time.Millisecond)
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-res; !errors.Is(err, ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
}

func TestSegmentListAndSizeMatchTheFiles(t *testing.T) {
	dir := t.TempDir()
	j := open(t, dir, Options{SegmentBytes: 1024})
	seqs := appendN(t, j, 0, 200)
	match := func(j *Journal, records uint64) {
		t.Helper()
		files := segmentFiles(t, dir)
		list := j.SegmentList()
		if len(list) != len(files) {
			t.Fatalf("%d segments listed, %d files", len(list), len(files))
		}
		var total int64
		var n uint64
		for i, sg := range list {
			st, err := os.Stat(files[i])
			if err != nil {
				t.Fatal(err)
			}
			if st.Size() != sg.Bytes || !strings.Contains(files[i], fmt.Sprintf("%020d", sg.First)) {
				t.Fatalf("segment %d: %+v, file %s of %d bytes", i, sg, files[i], st.Size())
			}
			total += sg.Bytes
			n += sg.Records
		}
		if j.Size() != total || n != records {
			t.Fatalf("Size %d, files %d; %d records listed, want %d", j.Size(), total, n, records)
		}
	}
	match(j, 200)
	if err := j.SetCheckpoint(seqs[149]); err != nil {
		t.Fatal(err)
	}
	list := j.SegmentList()
	remaining := list[len(list)-1].First + list[len(list)-1].Records - list[0].First
	match(j, remaining)
	j.Close()
	j2 := open(t, dir, Options{SegmentBytes: 1024})
	defer j2.Close()
	match(j2, remaining)
}
