package journal

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// copyDir copies a journal directory as it is on disk: what a power cut
// would leave of a running journal (its records are fsynced).
func copyDir(t *testing.T, from string) string {
	t.Helper()
	to := t.TempDir()
	entries, err := os.ReadDir(from)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(from, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, e.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return to
}

// Preallocated segments: files keep their size while records go in;
// after a crash the zero tails are cut silently and every record is
// there; garbage after the last record is still a torn tail.
func TestPreallocatedSegments(t *testing.T) {
	dir := t.TempDir()
	const seg = 4096
	j := open(t, dir, Options{SegmentBytes: seg, Preallocate: true})
	var seqs []uint64
	for i := 0; i < 400; i++ { // several segments
		seq, err := j.AppendSync(payload(i))
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, seq)
	}
	files := segmentFiles(t, dir)
	if len(files) < 3 {
		t.Fatalf("%d segments, want several", len(files))
	}
	for _, f := range files {
		if st, err := os.Stat(f); err != nil || st.Size() != seg {
			t.Fatalf("%s: size %v, want the preallocated %d (%v)", f, st.Size(), seg, err)
		}
	}
	crashed := copyDir(t, dir) // taken while the journal is open
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}

	for _, d := range []string{dir, crashed} {
		j := open(t, d, Options{SegmentBytes: seg, Preallocate: true})
		got := replayAll(t, j, 0)
		if len(got) != len(seqs) {
			t.Fatalf("%s: %d records, want %d", d, len(got), len(seqs))
		}
		for i, r := range got {
			if r.Seq != seqs[i] || !bytes.Equal(r.Data, payload(i)) {
				t.Fatalf("record %d: %d %q", i, r.Seq, r.Data)
			}
		}
		if st := j.Stats(); st.Truncated != 0 {
			t.Fatalf("zero tails counted as torn: %+v", st)
		}
		// Appending after the restart goes after the last record.
		if _, err := j.AppendSync(payload(999)); err != nil {
			t.Fatal(err)
		}
		if err := j.Close(); err != nil {
			t.Fatal(err)
		}
		j = open(t, d, Options{SegmentBytes: seg, Preallocate: true})
		if got := replayAll(t, j, 0); len(got) != len(seqs)+1 || !bytes.Equal(got[len(got)-1].Data, payload(999)) {
			t.Fatalf("%s: after a restart and one more record: %d records", d, len(got))
		}
		j.Close()
	}

	// Garbage in the unused part is a torn write, counted.
	files = segmentFiles(t, crashed)
	last := files[len(files)-1]
	b, err := os.ReadFile(last)
	if err != nil {
		t.Fatal(err)
	}
	b = append(b, 0x13, 0x37, 0, 0, 1, 2, 3)
	if err := os.WriteFile(last, b, 0o600); err != nil {
		t.Fatal(err)
	}
	j = open(t, crashed, Options{SegmentBytes: seg, Preallocate: true})
	defer j.Close()
	if st := j.Stats(); st.Truncated == 0 {
		t.Fatalf("garbage tail not counted: %+v", st)
	}
	if got := replayAll(t, j, 0); len(got) != len(seqs)+1 {
		t.Fatalf("%d records after a garbage tail", len(got))
	}
}
