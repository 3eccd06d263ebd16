package sshserver

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"charm.land/ssh"
	"github.com/piot-appliance/piot/services/core"
	"github.com/piot-appliance/piot/tui"
)

// The commands are the only exec requests the server accepts: they take
// backups off the box with the console's key,
//
//	ssh -p 2222 admin@appliance backup > piot.jsonl   a fresh backup
//	ssh -p 2222 admin@appliance backups               the backups directory
//	ssh -p 2222 admin@appliance backup <name>         one file of it
//
// Core decides who may run them; anything else is refused before a
// handler runs, as it was before they existed.
const (
	cmdBackup  = "backup"
	cmdBackups = "backups"
)

// isCommand reports whether an exec request names one of the commands.
func isCommand(raw string) bool {
	args := strings.Fields(raw)
	switch {
	case len(args) == 0:
		return false
	case args[0] == cmdBackups:
		return len(args) == 1
	case args[0] == cmdBackup:
		return len(args) <= 2
	}
	return false
}

// runCommand runs an accepted command: its output on stdout, a failure
// as one line on stderr with exit status 1.
func (s *Server) runCommand(sess ssh.Session, a core.Actor, log *slog.Logger) {
	raw := sess.RawCommand()
	fail := func(status int, msg string) {
		fmt.Fprintf(sess.Stderr(), "piot: %s\n", msg)
		_ = sess.Exit(status)
	}
	if !isCommand(raw) {
		// Refused already by the session request callback; kept as a
		// second lock on the same door.
		fail(1, "the PIOT console runs no commands but backup and backups")
		return
	}
	if _, _, tty := sess.Pty(); tty {
		// A terminal would turn every newline of the file into CR LF.
		fail(2, "a backup goes to standard output: run it without -t")
		return
	}
	b := s.deps.Backups
	if b == nil {
		fail(1, "backups are not available on this appliance")
		return
	}
	ctx := core.WithSource(sess.Context(), core.Source{Via: core.ViaConsole, Addr: hostOf(sess.RemoteAddr())})
	start := time.Now()
	args := strings.Fields(raw)
	var err error
	switch {
	case args[0] == cmdBackups:
		var files []tui.BackupFile
		if files, err = b.List(ctx, a); err == nil {
			err = listBackups(sess, files)
		}
	case len(args) == 1:
		err = b.Export(ctx, a, sess)
	default:
		var rc io.ReadCloser
		if rc, err = b.Open(ctx, a, args[1]); err == nil {
			_, err = io.Copy(sess, rc)
			rc.Close()
		}
	}
	if err != nil {
		log.Warn("ssh command failed", "command", raw, "err", err)
		fail(1, commandError(err))
		return
	}
	log.Info("ssh command done", "command", raw, "duration", time.Since(start).Round(time.Millisecond))
	_ = sess.Exit(0)
}

// listBackups writes one line per file: name, size in bytes, time
// modified (UTC, RFC 3339), tab-separated for cut and awk.
func listBackups(w io.Writer, files []tui.BackupFile) error {
	for _, f := range files {
		if _, err := fmt.Fprintf(w, "%s\t%d\t%s\n", f.Name, f.Size, f.Modified.UTC().Format(time.RFC3339)); err != nil {
			return fmt.Errorf("write the list: %w", err)
		}
	}
	return nil
}

// commandError is the stderr line of a failure: core's refusals carry
// messages safe for anybody; anything else is in the appliance's log.
func commandError(err error) string {
	var ce *core.Error
	switch {
	case errors.As(err, &ce):
		return fmt.Sprintf("%s (%s)", ce.Msg, ce.Code)
	case errors.Is(err, tui.ErrUnsupported):
		return err.Error()
	}
	return "the command failed; the appliance log says why"
}
