package journal

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/piot-appliance/piot/internal/fileutil/testdisk"
)

type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// A full disk makes appends fail with the cause (once logged), and the
// journal writes again by itself when space returns, keeping exactly the
// records it acknowledged, in order (issue 11, DoS 4).
func TestFullDiskFailsAndRecovers(t *testing.T) {
	disk := testdisk.Mount(t, 2<<20)
	dir := filepath.Join(disk, "journal")
	var logs lockedBuf
	j := open(t, dir, Options{SegmentBytes: 256 << 10, Preallocate: true,
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))})
	defer j.Close()
	if _, err := j.AppendSync(payload(0)); err != nil {
		t.Fatal(err)
	}
	filler := filepath.Join(disk, "filler")
	testdisk.Fill(t, filler)

	var acked []uint64
	var failures int
	for i := 1; failures < 50; i++ {
		seq, err := j.AppendSync(payload(i))
		if err == nil {
			acked = append(acked, seq)
			continue
		}
		if !errors.Is(err, syscall.ENOSPC) {
			t.Fatalf("append %d: %v, want ENOSPC", i, err)
		}
		failures++
		if j.Err() == nil {
			t.Fatal("Err is nil while appends fail")
		}
	}
	if n := strings.Count(logs.String(), "journal cannot write"); n != 1 {
		t.Fatalf("the failure was logged %d times, want once:\n%s", n, logs.String())
	}

	// Still full after a retry: still refused, not logged again.
	time.Sleep(RetryInterval + 200*time.Millisecond)
	if _, err := j.AppendSync([]byte("still full")); err == nil {
		t.Fatal("append succeeded on a full disk")
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * RetryInterval)
	for {
		seq, err := j.AppendSync([]byte("after"))
		if err == nil {
			acked = append(acked, seq)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still failing after space returned: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if j.Err() != nil || !strings.Contains(logs.String(), "journal writable again") {
		t.Fatalf("Err %v; logs:\n%s", j.Err(), logs.String())
	}
	if n := strings.Count(logs.String(), "journal cannot write"); n != 1 {
		t.Fatalf("the failure was logged %d times, want once", n)
	}
	if err := j.Close(); err != nil {
		t.Fatalf("close after recovery: %v", err)
	}

	// What is on disk is what was acknowledged, numbered without gaps.
	j2 := open(t, dir, Options{SegmentBytes: 256 << 10, Preallocate: true})
	defer j2.Close()
	got := replayAll(t, j2, 0)
	if len(got) != len(acked)+1 {
		t.Fatalf("replayed %d records, acknowledged %d (+1 before the disk filled)", len(got), len(acked))
	}
	for k, r := range got[1:] {
		if r.Seq != acked[k] {
			t.Fatalf("record %d has seq %d, acknowledged as %d", k, r.Seq, acked[k])
		}
		if r.Seq != got[k].Seq+1 {
			t.Fatalf("gap before seq %d", r.Seq)
		}
	}
	if string(got[len(got)-1].Data) != "after" {
		t.Fatalf("last record %q", got[len(got)-1].Data)
	}
}
