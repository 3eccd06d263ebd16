package initd

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/piot-appliance/piot/appliance/osctl"
	"golang.org/x/sys/unix"
)

// service keeps `piot run` running: restarted with a growing delay when
// it exits, the reason shown on the console so that a crash loop is
// visible where the admin looks.
type service struct {
	procs   *procs
	log     *slog.Logger
	console *console
	tz      func() string
	argv    []string

	mu       sync.Mutex
	pid      int
	stopping bool
	restart  bool
	restarts int
	wake     chan struct{}
	exited   chan struct{} // closed when the loop has ended
	// exits tells the trial of a new slot (watchTrial) why piot run
	// stopped; nobody reads it on a trusted slot, so sends never wait.
	exits chan exit
}

// exit is why piot run stopped, and the last line it wrote.
type exit struct{ why, last string }

const (
	minBackoff = time.Second
	maxBackoff = 30 * time.Second
	// stableAfter of running resets the backoff.
	stableAfter = time.Minute
	// logFile keeps piot run's output for the console's System screen
	// and for support; on tmpfs, bounded by logFileMax.
	logFile    = runDir + "/piot.log"
	logFileMax = 4 << 20
	// memoryBudget is piot run's --memory-budget in the image: 48 MiB.
	memoryBudget = "50331648"
)

func newService(p *procs, log *slog.Logger, con *console, tz func() string) *service {
	return &service{procs: p, log: log, console: con, tz: tz, wake: make(chan struct{}, 1), exited: make(chan struct{}), exits: make(chan exit, 8),
		argv: []string{"/proc/self/exe", "run", "--config", configFile, "--data-dir", dataDir}}
}

// loop runs until stop.
func (s *service) loop() {
	defer close(s.exited)
	backoff := minBackoff
	crashes := 0
	for {
		started := time.Now()
		ws, tail, err := s.runOnce()
		s.mu.Lock()
		stopping, restart := s.stopping, s.restart
		s.restart = false
		s.restarts++
		s.mu.Unlock()
		if stopping {
			return
		}
		if restart {
			backoff, crashes = minBackoff, 0
			continue
		}
		if time.Since(started) > stableAfter {
			backoff, crashes = minBackoff, 0
		}
		crashes++
		why := "could not start: " + fmt.Sprint(err)
		if err == nil {
			why = describe(ws)
		}
		s.log.Error("piot run exited; restarting", "why", why, "in", backoff, "crashes_in_a_row", crashes)
		s.console.notice(fmt.Sprintf("piot run stopped (%s); restart %d in a row in %s. Last output:\n%s", why, crashes, backoff, tail))
		select {
		case s.exits <- exit{why, lastLine(tail)}:
		default:
		}
		select {
		case <-time.After(backoff):
		case <-s.wake:
		}
		backoff = min(backoff*2, maxBackoff)
	}
}

// runOnce starts piot run and waits for it; tail is its last output.
func (s *service) runOnce() (ws unix.WaitStatus, tail string, err error) {
	r, w, err := os.Pipe()
	if err != nil {
		return ws, "", err
	}
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return ws, "", err
	}
	env := []string{
		"PATH=/usr/bin:/usr/sbin",
		"HOME=" + dataDir,
		"TERM=linux",
		"TZ=" + s.tz(),
		// The image runs on boards with little memory: Go's default
		// collector pace instead of piot run's 200 %, and a budget near
		// which the collector works harder instead of growing (until the
		// live data needs more than half of it).
		"GOGC=100",
		"PIOT_MEMORY_BUDGET=" + memoryBudget,
		osctl.SocketEnv + "=" + controlSocket,
	}
	s.mu.Lock()
	if s.stopping {
		s.mu.Unlock()
		r.Close()
		w.Close()
		devnull.Close()
		return ws, "", nil
	}
	c, err := s.procs.start(s.argv, env, []*os.File{devnull, w, w}, &syscall.SysProcAttr{Setpgid: true})
	if err == nil {
		s.pid = c.Pid
	}
	s.mu.Unlock()
	w.Close()
	devnull.Close()
	if err != nil {
		r.Close()
		return ws, "", err
	}
	lines := newTail(12)
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		s.copyLog(r, lines)
	}()
	ws = <-c.Done
	<-copied
	s.mu.Lock()
	s.pid = 0
	s.mu.Unlock()
	return ws, lines.String(), nil
}

// copyLog keeps piot run's output in logFile, rotating it once.
func (s *service) copyLog(r io.ReadCloser, t *tail) {
	defer r.Close()
	f, _ := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	var size int64
	if f != nil {
		if st, err := f.Stat(); err == nil {
			size = st.Size()
		}
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		t.add(line)
		if f == nil {
			continue
		}
		n, _ := f.WriteString(line + "\n")
		size += int64(n)
		if size > logFileMax {
			f.Close()
			_ = os.Rename(logFile, logFile+".1")
			f, _ = os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
			size = 0
		}
	}
	if f != nil {
		f.Close()
	}
}

// signal sends sig to piot run if it runs.
func (s *service) signal(sig syscall.Signal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pid > 0 {
		_ = syscall.Kill(s.pid, sig)
	}
}

// Restart stops piot run and starts it again at once.
func (s *service) Restart() {
	s.mu.Lock()
	s.restart = true
	s.mu.Unlock()
	s.signal(syscall.SIGTERM)
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Restarts counts exits since boot.
func (s *service) Restarts() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.restarts
}

// stop ends piot run: SIGTERM, then SIGKILL after grace.
func (s *service) stop(grace time.Duration) {
	s.mu.Lock()
	s.stopping = true
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
	s.signal(syscall.SIGTERM)
	select {
	case <-s.exited:
		return
	case <-time.After(grace):
	}
	s.log.Warn("piot run did not stop in time; killing it", "grace", grace)
	s.mu.Lock()
	if s.pid > 0 {
		_ = syscall.Kill(-s.pid, syscall.SIGKILL)
	}
	s.mu.Unlock()
	select {
	case <-s.exited:
	case <-time.After(5 * time.Second):
	}
}

// lastLine is the last line of a tail.
func lastLine(tail string) string {
	lines := strings.Split(strings.TrimSpace(tail), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// tail keeps the last lines of output.
type tail struct {
	mu    sync.Mutex
	lines []string
	n     int
}

func newTail(n int) *tail { return &tail{n: n} }

func (t *tail) add(l string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.lines = append(t.lines, l)
	if len(t.lines) > t.n {
		t.lines = t.lines[1:]
	}
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := ""
	for _, l := range t.lines {
		out += "  " + l + "\n"
	}
	return out
}
