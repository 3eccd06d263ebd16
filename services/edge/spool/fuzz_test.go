package spool

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"
)

// FuzzRecover replaces the tail of one segment of a closed spool with
// arbitrary bytes (from byte cut on) and reopens it: Open must not fail or
// panic, every record Next returns must be one that was appended (same
// number, time and data) and not acknowledged, and every record wholly
// before the damage must survive.
func FuzzRecover(f *testing.F) {
	const (
		records = 20
		acked   = 4
		recSize = recordOverhead + len("packet-0000")
	)
	// The spool is built once; each run damages a copy of its files.
	tmpl := f.TempDir()
	clk := newClock()
	s := openSpool(f, tmpl, Options{SegmentBytes: 256, Now: clk.Now})
	var seqs []uint64
	at := map[uint64]time.Time{}
	for i := 0; i < records; i++ {
		seqs = append(seqs, appendAll(f, s, i, 1)[0])
		at[seqs[i]] = clk.Now()
		clk.Advance(time.Second)
	}
	if err := s.Ack(seqs[acked-1]); err != nil {
		f.Fatal(err)
	}
	if err := s.Close(); err != nil {
		f.Fatal(err)
	}
	entries, err := os.ReadDir(tmpl)
	if err != nil {
		f.Fatal(err)
	}
	files := map[string][]byte{}
	var segs []string
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(tmpl, e.Name()))
		if err != nil {
			f.Fatal(err)
		}
		files[e.Name()] = b
		if filepath.Ext(e.Name()) == ".wal" {
			segs = append(segs, e.Name())
		}
	}
	sort.Strings(segs)
	if len(segs) < 3 {
		f.Fatalf("only %d segments", len(segs))
	}
	// index of a record: which segment, and where it ends in it.
	where := map[uint64][2]int{}
	k := 0
	for si, name := range segs {
		for off := recSize; off <= len(files[name]); off += recSize {
			where[seqs[k]] = [2]int{si, off}
			k++
		}
	}
	if k != records {
		f.Fatalf("template holds %d records", k)
	}

	last := uint8(len(segs) - 1)
	f.Add(last, uint16(65535), []byte{})                            // nothing damaged
	f.Add(last, uint16(recSize+5), []byte{})                        // torn mid-record
	f.Add(last, uint16(recSize+5), []byte("garbage after a crash")) // torn, then garbage
	f.Add(last, uint16(65535), make([]byte, 64))                    // zeroes after the end
	f.Add(last, uint16(0), []byte{0x13, 0, 0, 0, 1, 2, 3, 4})       // a header with a wrong checksum
	f.Add(uint8(0), uint16(2*recSize+3), bytes.Repeat([]byte{0xff}, 30))
	f.Add(uint8(1), uint16(recSize), []byte{})
	f.Fuzz(func(t *testing.T, which uint8, cut uint16, tail []byte) {
		dir := t.TempDir()
		victim := segs[int(which)%len(segs)]
		for name, b := range files {
			if name == victim {
				c := min(int(cut), len(b))
				b = append(b[:c:c], tail...)
			}
			if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		s, err := Open(dir, Options{SegmentBytes: 256, Now: clk.Now, Logger: quiet()})
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		defer s.Close()
		want := s.Stats().Records
		var got []Record
		after := uint64(0)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for uint64(len(got)) < want {
			recs, err := s.Next(ctx, after, 16)
			if err != nil {
				t.Fatalf("next after %d (%d of %d read): %v", after, len(got), want, err)
			}
			got = append(got, recs...)
			after = recs[len(recs)-1].Seq
		}
		seen := map[uint64]bool{}
		for i, r := range got {
			idx := -1
			for n, seq := range seqs {
				if seq == r.Seq {
					idx = n
				}
			}
			if idx < 0 || !bytes.Equal(r.Data, data(idx)) || !r.At.Equal(at[r.Seq]) {
				t.Fatalf("record %d %q %v was never appended", r.Seq, r.Data, r.At)
			}
			if idx < acked {
				t.Fatalf("acknowledged record %d came back", r.Seq)
			}
			if i > 0 && r.Seq <= got[i-1].Seq {
				t.Fatalf("out of order: %d after %d", r.Seq, got[i-1].Seq)
			}
			seen[r.Seq] = true
		}
		vi := int(which) % len(segs)
		for n, seq := range seqs[acked:] {
			w := where[seq]
			intact := w[0] != vi || w[1] <= int(cut)
			if intact && !seen[seq] {
				t.Fatalf("undamaged record %d (%d) lost", seq, acked+n)
			}
		}
	})
}
