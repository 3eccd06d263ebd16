package main

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"
)

// proc is one server process the benchmark started.
type proc struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	logFile *os.File
	done    chan struct{}
	err     error // exit status, valid once done is closed
}

// procs holds every process started, so that they are stopped on any exit.
var procs struct {
	mu   sync.Mutex
	list []*proc
}

// startProc starts a server with its output in logPath. The child gets its
// own process group (a terminal's Ctrl-C reaches only the benchmark, which
// stops it in order) and is killed if the benchmark dies (see proc_linux.go).
func startProc(name, logPath, bin string, env []string, args ...string) (*proc, error) {
	lf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.Env = env
	setProcAttr(cmd)
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, logPath: logPath, logFile: lf, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		lf.Close()
		close(p.done)
	}()
	procs.mu.Lock()
	procs.list = append(procs.list, p)
	procs.mu.Unlock()
	return p, nil
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends sig, waits up to grace and kills the process after that.
func (p *proc) stop(sig os.Signal, grace time.Duration) error {
	if p.exited() {
		return p.err
	}
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
		return p.err
	case <-time.After(grace):
		_ = p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("%s did not stop within %s; killed", p.name, grace)
	}
}

// logTail returns the end of the process's log, for error messages.
func (p *proc) logTail() string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return ""
	}
	if len(b) > 3000 {
		b = b[len(b)-3000:]
	}
	return string(b)
}

// stopAll stops every process still running, gracefully first.
func stopAll(grace time.Duration) {
	procs.mu.Lock()
	list := append([]*proc(nil), procs.list...)
	procs.mu.Unlock()
	var wg sync.WaitGroup
	for _, p := range list {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = p.stop(os.Interrupt, grace)
		}()
	}
	wg.Wait()
}

// freeAddr returns a loopback address with a port that was free a moment ago.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// cpuTime returns the user+system CPU time a process has used so far
// (/proc/<pid>/stat, in clock ticks of 10 ms).
func cpuTime(pid string) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return 0, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, errors.New("unexpected /proc stat format")
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, errors.New("unexpected /proc stat format")
	}
	// After the command: state(0) ... utime(11) stime(12).
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, errors.New("unexpected /proc stat format")
	}
	const tick = 10 * time.Millisecond // USER_HZ is 100 on Linux
	return time.Duration(ut+st) * tick, nil
}

// machineBusy returns the CPU time all processors have spent busy
// (/proc/stat: user, nice, system, irq, softirq, steal).
func machineBusy() (time.Duration, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0, errors.New("unexpected /proc/stat format")
	}
	var busy int64
	for _, i := range []int{1, 2, 3, 6, 7, 8} {
		v, err := strconv.ParseInt(f[i], 10, 64)
		if err != nil {
			return 0, errors.New("unexpected /proc/stat format")
		}
		busy += v
	}
	return time.Duration(busy) * 10 * time.Millisecond, nil
}

// otherLoad returns the CPU cores used over d by processes other than the
// broker and this program (other jobs on a shared machine).
func otherLoad(pid string, d time.Duration) float64 {
	m := startCPU(pid)
	time.Sleep(d)
	_, _, other := m.cores()
	return other
}

// waitQuiet waits up to limit until other processes use less than max
// cores, and returns the last measurement.
func waitQuiet(pid string, maxCores float64, limit time.Duration) float64 {
	start := time.Now()
	for {
		o := otherLoad(pid, time.Second)
		if o < maxCores || time.Since(start) >= limit {
			return o
		}
	}
}

// waitIdle waits until the process uses less than 5 % of a core over half
// a second (its background work after a case, e.g. the appliance writing
// history, is done) and returns how long that took.
func waitIdle(pid string, limit time.Duration) (time.Duration, bool) {
	start := time.Now()
	for time.Since(start) < limit {
		c0, err := cpuTime(pid)
		if err != nil {
			return time.Since(start), false
		}
		time.Sleep(500 * time.Millisecond)
		c1, err := cpuTime(pid)
		if err != nil {
			return time.Since(start), false
		}
		if c1-c0 <= 25*time.Millisecond {
			return time.Since(start), true
		}
	}
	return time.Since(start), false
}

// fsType returns the file system type of the mount holding dir.
func fsType(dir string) string {
	f, err := os.Open("/proc/mounts")
	if err != nil {
		return "unknown"
	}
	defer f.Close()
	best, typ := -1, "unknown"
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fl := strings.Fields(sc.Text())
		if len(fl) < 3 {
			continue
		}
		mp := fl[1]
		if (dir == mp || strings.HasPrefix(dir, strings.TrimSuffix(mp, "/")+"/")) && len(mp) > best {
			best, typ = len(mp), fl[2]+" ("+fl[0]+")"
		}
	}
	return typ
}

// fsyncProbe measures write+fsync of a small record in dir, the cost the
// appliance's journal pays once per group commit.
func fsyncProbe(dir string, n int) (p50, p99 time.Duration, err error) {
	f, err := os.CreateTemp(dir, "fsync-probe-")
	if err != nil {
		return 0, 0, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	rec := make([]byte, 256)
	var ds []time.Duration
	for range n {
		t := time.Now()
		if _, err := f.Write(rec); err != nil {
			return 0, 0, err
		}
		if err := f.Sync(); err != nil {
			return 0, 0, err
		}
		ds = append(ds, time.Since(t))
	}
	return percentile(ds, 50), percentile(ds, 99), nil
}

// cpuModel reads the processor model name.
func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	for l := range strings.SplitSeq(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

func kernel() string {
	b, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(b))
}

// firstLine runs a command and returns the first line of its output.
func firstLine(bin string, args ...string) string {
	out, _ := exec.Command(bin, args...).CombinedOutput()
	l, _, _ := strings.Cut(string(out), "\n")
	return strings.TrimSpace(l)
}
