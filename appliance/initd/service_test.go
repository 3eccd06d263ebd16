package initd

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// A program that keeps failing is restarted with a growing delay, and
// each failure is shown on the console with its last output: the crash
// loop is visible where the admin looks.
func TestServiceShowsACrashLoop(t *testing.T) {
	p := newProcs()
	go p.reap(t.Context())
	out := &lockedBuffer{}
	con := newConsole(p, slog.New(slog.DiscardHandler), out, nil, func() string { return "UTC" })
	con.ttys = func() []string { return nil }
	svc := newService(p, slog.New(slog.DiscardHandler), con, func() string { return "UTC" })
	svc.argv = []string{"/bin/sh", "-c", "echo 'config file: unknown key \"colour\"'; exit 3"}
	start := time.Now()
	go svc.loop()
	for !strings.Contains(out.String(), "restart 3 in a row") {
		if time.Since(start) > 30*time.Second {
			t.Fatalf("no crash loop on the console:\n%s", out)
		}
		time.Sleep(50 * time.Millisecond)
	}
	took := time.Since(start)
	svc.stop(5 * time.Second)
	s := out.String()
	for _, want := range []string{"exit status 3", `unknown key "colour"`, "restart 1 in a row in 1s", "restart 2 in a row in 2s"} {
		if !strings.Contains(s, want) {
			t.Errorf("console lacks %q:\n%s", want, s)
		}
	}
	// 1 s + 2 s of backoff before the third start.
	if took < 3*time.Second {
		t.Errorf("three failures in %s: no backoff", took)
	}
	if n := svc.Restarts(); n < 3 {
		t.Errorf("Restarts() = %d", n)
	}
}
