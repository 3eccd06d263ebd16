package initd

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// A child that exits before the reaper listens for SIGCHLD (its goroutine
// started late, on a loaded machine) is still reaped and its exit
// delivered: its signal came before anyone listened.
func TestReapFindsChildrenThatExitedBeforeIt(t *testing.T) {
	p := newProcs()
	c, err := p.start([]string{"/bin/sh", "-c", "exit 7"}, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	stat := fmt.Sprintf("/proc/%d/stat", c.Pid)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		b, err := os.ReadFile(stat)
		if err != nil {
			t.Fatal(err)
		}
		// The state follows the command name in parentheses.
		if f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:])); len(f) > 0 && f[0] == "Z" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the child did not exit: %s", b)
		}
	}
	go p.reap(t.Context())
	select {
	case ws := <-c.Done:
		if ws.ExitStatus() != 7 {
			t.Fatalf("exit status %d, want 7", ws.ExitStatus())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a child that exited before the reaper started was never reaped")
	}
}
