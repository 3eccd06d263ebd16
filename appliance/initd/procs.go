package initd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// procs starts every child of init and reaps every process that dies:
// as PID 1, init inherits orphans, and a zombie nobody waits for stays
// forever. A single reaper with wait4(-1) would race os/exec's own Wait,
// so children are started here and their exits delivered to waiters.
type procs struct {
	mu      sync.Mutex
	waiters map[int]chan unix.WaitStatus
}

func newProcs() *procs { return &procs{waiters: map[int]chan unix.WaitStatus{}} }

// reap reaps on every SIGCHLD until ctx ends. Children that exited
// before it asked for the signal (it runs on its own goroutine, which may
// start late) are reaped at once: their SIGCHLD came before anyone
// listened, and without another child dying they would never be.
func (p *procs) reap(ctx context.Context) {
	sig := make(chan os.Signal, 16)
	signal.Notify(sig, syscall.SIGCHLD)
	defer signal.Stop(sig)
	p.reapAll()
	for {
		select {
		case <-ctx.Done():
			return
		case <-sig:
			p.reapAll()
		}
	}
}

func (p *procs) reapAll() {
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if pid <= 0 || err != nil {
			return
		}
		// start holds the lock until the child is registered, so a
		// child that exits at once is still delivered.
		p.mu.Lock()
		ch := p.waiters[pid]
		delete(p.waiters, pid)
		p.mu.Unlock()
		if ch != nil {
			ch <- ws
		}
	}
}

// child is a started process.
type child struct {
	Pid  int
	Done <-chan unix.WaitStatus
}

func (p *procs) start(argv []string, env []string, files []*os.File, sys *syscall.SysProcAttr) (child, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	proc, err := os.StartProcess(argv[0], argv, &os.ProcAttr{Env: env, Files: files, Sys: sys})
	if err != nil {
		return child{}, fmt.Errorf("start %s: %w", argv[0], err)
	}
	// Release sets proc.Pid to -1.
	pid := proc.Pid
	ch := make(chan unix.WaitStatus, 1)
	p.waiters[pid] = ch
	_ = proc.Release()
	return child{Pid: pid, Done: ch}, nil
}

// run runs a helper program to its end, its output to out.
func (p *procs) run(out *os.File, argv ...string) error {
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return err
	}
	defer devnull.Close()
	c, err := p.start(argv, []string{"PATH=/usr/sbin:/usr/bin"}, []*os.File{devnull, out, out}, nil)
	if err != nil {
		return err
	}
	ws := <-c.Done
	if ws.ExitStatus() != 0 || ws.Signaled() {
		return fmt.Errorf("%s: %s", argv[0], describe(ws))
	}
	return nil
}

func describe(ws unix.WaitStatus) string {
	if ws.Signaled() {
		return "killed by " + ws.Signal().String()
	}
	return fmt.Sprintf("exit status %d", ws.ExitStatus())
}
