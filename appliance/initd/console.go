package initd

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"
)

// console is the box's own screen and serial port. Init writes its
// notices there; on each terminal a banner tells where the appliance is
// reachable and Enter opens the console (the same Bubble Tea console as
// over SSH, via `piot console`). Nothing is drawn until someone asks, so
// an unattended box spends no CPU on a screen nobody looks at.
type console struct {
	procs *procs
	log   *slog.Logger
	out   io.Writer // /dev/console
	// banner is the text shown on each terminal.
	banner func() string
	tz     func() string
	// ttys lists the terminals (terminals; tests have none).
	ttys func() []string

	mu       sync.Mutex
	sessions map[string]int // tty -> pid of piot console
	closed   bool
}

func newConsole(p *procs, log *slog.Logger, out io.Writer, banner, tz func() string) *console {
	return &console{procs: p, log: log, out: out, banner: banner, tz: tz, ttys: terminals, sessions: map[string]int{}}
}

// notice prints a message for the admin on every terminal: the kernel's
// /dev/console is only the last console= of the command line, and the
// admin may be looking at the screen or at the serial port.
func (c *console) notice(msg string) {
	text := fmt.Sprintf("\r\n*** piot: %s\r\n", strings.ReplaceAll(strings.TrimRight(msg, "\n"), "\n", "\r\n"))
	ttys := c.ttys()
	for _, t := range ttys {
		if f, err := os.OpenFile(t, os.O_WRONLY|syscall.O_NOCTTY, 0); err == nil {
			_, _ = f.WriteString(text)
			f.Close()
		}
	}
	if len(ttys) == 0 {
		_, _ = io.WriteString(c.out, text)
	}
}

// terminals are the consoles of this machine: the serial port and the
// first virtual terminal, where present.
func terminals() []string {
	var out []string
	for _, t := range []string{"/dev/ttyS0", "/dev/tty1", "/dev/ttyAMA0"} {
		f, err := os.OpenFile(t, os.O_RDWR|syscall.O_NOCTTY|syscall.O_NONBLOCK, 0)
		if err != nil {
			continue
		}
		// A serial port without a UART behind it fails termios calls.
		_, terr := ioctlGetTermios(int(f.Fd()))
		f.Close()
		if terr == nil {
			out = append(out, t)
		}
	}
	return out
}

// serve runs the banner-and-console loop on every terminal.
func (c *console) serve() {
	for _, t := range c.ttys() {
		go c.serveTTY(t)
	}
}

func (c *console) serveTTY(tty string) {
	for {
		c.mu.Lock()
		closed := c.closed
		c.mu.Unlock()
		if closed {
			return
		}
		if err := c.session(tty); err != nil {
			c.log.Warn("local console", "tty", tty, "err", err)
			time.Sleep(5 * time.Second)
		}
	}
}

// session shows the banner, waits for Enter and runs one console.
func (c *console) session(tty string) error {
	f, err := os.OpenFile(tty, os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	// The banner names the first boot's password, which piot run writes
	// when it starts: wait for its console to listen.
	for !consoleUp() {
		time.Sleep(500 * time.Millisecond)
	}
	fmt.Fprint(f, "\r\n"+strings.ReplaceAll(c.banner(), "\n", "\r\n")+"\r\nPress Enter to open the console.\r\n")
	if _, err := bufio.NewReader(f).ReadString('\n'); err != nil {
		return err
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	term := "linux"
	if !strings.HasPrefix(tty, "/dev/tty") || strings.HasPrefix(tty, "/dev/ttyS") || strings.HasPrefix(tty, "/dev/ttyAMA") {
		term = "vt100"
	}
	ch, err := c.procs.start([]string{"/proc/self/exe", "console", "--data-dir", dataDir, "--ssh-addr", localSSH},
		[]string{"TERM=" + term, "HOME=" + dataDir, "TZ=" + c.tz()}, []*os.File{f, f, f},
		&syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0})
	if err == nil {
		c.sessions[tty] = ch.Pid
	}
	c.mu.Unlock()
	if err != nil {
		return err
	}
	ws := <-ch.Done
	c.mu.Lock()
	delete(c.sessions, tty)
	c.mu.Unlock()
	if ws.ExitStatus() != 0 {
		fmt.Fprintf(f, "\r\nThe console ended: %s. Is the appliance still starting?\r\n", describe(ws))
		time.Sleep(2 * time.Second)
	}
	return nil
}

// consoleUp tells whether piot run's SSH console accepts connections.
func consoleUp() bool {
	c, err := net.DialTimeout("tcp", localSSH, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// close ends the console sessions (before power off).
func (c *console) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	for _, pid := range c.sessions {
		_ = syscall.Kill(-pid, syscall.SIGHUP)
	}
}
