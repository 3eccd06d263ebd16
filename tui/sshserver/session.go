package sshserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	tea "charm.land/bubbletea/v2"
	"charm.land/ssh"
	"github.com/charmbracelet/colorprofile"
	"github.com/piot-appliance/piot/services/core"
	"github.com/piot-appliance/piot/tui"
)

// handle runs one console session: verify who it is, require a terminal,
// run the Bubble Tea program until the user quits, the session idles out
// or the connection ends.
func (s *Server) handle(sess ssh.Session) {
	loggedIn(sess.Context())
	remote := hostOf(sess.RemoteAddr())
	var exts map[string]string
	if p := sess.Permissions(); p.Permissions != nil {
		exts = p.Extensions
	}
	who, actor, err := s.verify(exts, sess.PublicKey())
	if err != nil {
		s.log.Warn("ssh session refused", "remote", remote, "err", err)
		fmt.Fprint(sess.Stderr(), "Permission denied.\r\n")
		_ = sess.Exit(1)
		return
	}
	log := s.log.With("remote", remote, "user", actor.Email)
	if sess.Subsystem() != "" {
		// Refused already by the session request callback; kept as a
		// second lock on the same door.
		fmt.Fprint(sess.Stderr(), "The PIOT console runs no subsystems.\r\n")
		_ = sess.Exit(1)
		return
	}
	if sess.RawCommand() != "" {
		s.runCommand(sess, actor, log)
		return
	}
	pty, winCh, ok := sess.Pty()
	if !ok {
		log.Info("ssh session without a terminal refused")
		fmt.Fprint(sess.Stderr(), "The PIOT console needs a terminal: connect with ssh -t.\r\n")
		_ = sess.Exit(1)
		return
	}
	start := time.Now()
	log.Info("console session started")

	ctx, cancel := context.WithCancel(sess.Context())
	defer cancel()
	in := &activityReader{r: sess}
	in.touch()
	cols, rows := clampWindow(pty.Window)
	env := append(sess.Environ(), "TERM="+pty.Term)
	deps := s.deps
	deps.Source = core.Source{Via: core.ViaConsole, Addr: remote}
	model := tui.NewModel(deps, who)
	defer model.Close()
	prog := tea.NewProgram(model,
		tea.WithContext(ctx),
		tea.WithInput(in),
		tea.WithOutput(sess),
		tea.WithEnvironment(env),
		tea.WithColorProfile(colorprofile.Env(env)),
		tea.WithWindowSize(cols, rows),
		tea.WithoutSignalHandler(),
		tea.WithFilter(func(_ tea.Model, msg tea.Msg) tea.Msg {
			if _, ok := msg.(tea.SuspendMsg); ok {
				return tea.ResumeMsg{} // there is no shell to suspend to
			}
			return msg
		}),
	)

	var why atomic.Value // string: why the server ended the session
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-ctx.Done():
				return
			case w, ok := <-winCh:
				if !ok {
					return
				}
				if c, r := clampWindow(w); c > 0 {
					prog.Send(tea.WindowSizeMsg{Width: c, Height: r})
				}
			}
		}
	}()
	go func() {
		defer wg.Done()
		s.watchTimeouts(ctx, in, start, func(reason string) {
			why.Store(reason)
			prog.Quit()
		})
	}()

	_, runErr := prog.Run()
	cancel()
	wg.Wait()
	model.Close()

	reason, _ := why.Load().(string)
	if reason == "" {
		reason = model.Ended()
	}
	switch {
	case reason != "":
		log.Info("console session ended by the server", "reason", reason, "duration", time.Since(start).Round(time.Second))
		fmt.Fprintf(sess, "PIOT console: %s\r\n", reason)
		_ = sess.Exit(1)
	case runErr != nil && !errors.Is(runErr, tea.ErrProgramKilled):
		log.Warn("console session failed", "err", runErr)
		_ = sess.Exit(1)
	default:
		log.Info("console session ended", "duration", time.Since(start).Round(time.Second))
		_ = sess.Exit(0)
	}
}

// watchTimeouts ends the session after IdleTimeout without keyboard input
// or after MaxTimeout in all.
func (s *Server) watchTimeouts(ctx context.Context, in *activityReader, start time.Time, end func(reason string)) {
	idle, maxT := s.cfg.IdleTimeout, s.cfg.MaxTimeout
	if idle <= 0 && maxT <= 0 {
		return
	}
	every := 5 * time.Second
	for _, d := range []time.Duration{idle, maxT} {
		if d > 0 {
			every = min(every, max(d/10, 50*time.Millisecond))
		}
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			switch {
			case idle > 0 && now.Sub(in.last()) >= idle:
				end(fmt.Sprintf("closed after %s without input", idle))
				return
			case maxT > 0 && now.Sub(start) >= maxT:
				end(fmt.Sprintf("closed after the maximum session time of %s", maxT))
				return
			}
		}
	}
}

// activityReader records when the user last typed.
type activityReader struct {
	r    io.Reader
	nano atomic.Int64
}

func (a *activityReader) Read(p []byte) (int, error) {
	n, err := a.r.Read(p)
	if n > 0 {
		a.touch()
	}
	return n, err
}

func (a *activityReader) touch()          { a.nano.Store(time.Now().UnixNano()) }
func (a *activityReader) last() time.Time { return time.Unix(0, a.nano.Load()) }
