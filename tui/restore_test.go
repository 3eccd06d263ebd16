package tui

import (
	"context"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/piot-appliance/piot/services/core"
)

// fakeBackups keeps a scheduled restore in memory and has core decide, as
// the real adapter does.
type fakeBackups struct {
	mu      sync.Mutex
	pending PendingRestore
	applied int
}

func (f *fakeBackups) schedule(canApply bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pending = PendingRestore{Pending: true, Scheduled: testNow, Created: testNow.Add(-26 * time.Hour), CanApply: canApply}
}

func (f *fakeBackups) Export(_ context.Context, a core.Actor, w io.Writer) error {
	if err := core.AuthorizeAdmin(a, core.ActBackup); err != nil {
		return err
	}
	_, err := io.WriteString(w, "{}\n")
	return err
}

func (f *fakeBackups) List(_ context.Context, a core.Actor) ([]BackupFile, error) {
	return nil, core.AuthorizeAdmin(a, core.ActBackup)
}

func (f *fakeBackups) Open(_ context.Context, a core.Actor, _ string) (io.ReadCloser, error) {
	if err := core.AuthorizeAdmin(a, core.ActBackup); err != nil {
		return nil, err
	}
	return nil, core.NewError(core.CodeNotFound, "no such backup")
}

func (f *fakeBackups) PendingRestore(_ context.Context, a core.Actor) (PendingRestore, error) {
	if err := core.AuthorizeAdmin(a, core.ActRestore); err != nil {
		return PendingRestore{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.pending, nil
}

func (f *fakeBackups) CancelRestore(_ context.Context, a core.Actor) error {
	if err := core.AuthorizeAdmin(a, core.ActRestore); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.pending.Pending {
		return core.NewError(core.CodeNotFound, "no restore is pending")
	}
	f.pending = PendingRestore{}
	return nil
}

func (f *fakeBackups) ApplyRestore(_ context.Context, a core.Actor) error {
	if err := core.AuthorizeAdmin(a, core.ActRestore); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.pending.CanApply {
		return ErrUnsupported
	}
	f.applied++
	return nil
}

// bannerRow is the frame's second row, under the tab bar.
func bannerRow(s string) string {
	lines := strings.Split(s, "\n")
	if len(lines) < 2 {
		return ""
	}
	return lines[1]
}

// A pending restore puts a banner under the tab bar of every screen, for
// admins only; outside the image it says how to apply it, x on the System
// screen cancels it.
func TestRestorePendingBanner(t *testing.T) {
	w := newWorld(t)
	bk := &fakeBackups{}
	h := newHarness(t, Deps{Core: w.core, System: &fakeSystem{}, Backups: bk}, w.admin, 80, 24)
	s := h.waitFor("Dashboard")
	if strings.Contains(s, "RESTORE PENDING") {
		t.Fatalf("banner without a restore:\n%s", s)
	}
	bk.schedule(false)
	h.refresh()
	s = h.waitFor("RESTORE PENDING: restart `piot run` to apply it; System x cancels")
	if !strings.Contains(bannerRow(s), "RESTORE PENDING") {
		t.Fatalf("the banner is not under the tab bar:\n%s", s)
	}
	checkFits(t, s, 80, 24)
	for _, screen := range []string{"2", "7", "0"} {
		h.key(screen)
		s = h.screen()
		if !strings.Contains(bannerRow(s), "RESTORE PENDING") {
			t.Fatalf("screen %s has no banner:\n%s", screen, s)
		}
		checkFits(t, s, 80, 24)
	}

	// Outside the image A says how instead.
	h.key("7", "A")
	h.waitFor("Restart the appliance's services now")
	h.key("y")
	h.waitFor("error: not supported on this appliance")
	h.key("x")
	h.waitFor("Cancel the pending restore?")
	h.key("n")
	h.waitFor("cancelled")
	if !strings.Contains(bannerRow(h.screen()), "RESTORE PENDING") {
		t.Fatal("answering no cancelled the restore")
	}
	h.key("x", "y")
	h.waitFor("pending restore cancelled")
	h.waitUntil("the banner stays after the cancel", func(s string) bool { return !strings.Contains(s, "RESTORE PENDING") })
	checkFits(t, h.screen(), 80, 24)

	// Nothing left to cancel: core's answer in the status line.
	h.key("x", "y")
	h.waitFor("error: no restore is pending (NOT_FOUND)")

	// A member gets no banner, and the screen keeps its rows.
	m := newHarness(t, Deps{Core: w.core, System: &fakeSystem{}, Backups: bk}, w.member, 80, 24)
	bk.schedule(true)
	m.refresh()
	s = m.waitFor("Dashboard", "member@acme.test")
	if strings.Contains(s, "RESTORE") {
		t.Fatalf("the member sees the restore banner:\n%s", s)
	}
	checkFits(t, s, 80, 24)
}

// In the image A has init restart the services; the wide banner names the
// backup's date.
func TestRestorePendingApplyInImage(t *testing.T) {
	w := newWorld(t)
	bk := &fakeBackups{}
	bk.schedule(true)
	h := newHarness(t, Deps{Core: w.core, System: &fakeSystem{}, Backups: bk}, w.admin, 120, 35)
	s := h.waitFor("RESTORE PENDING (backup of 2026-04-30 10:00): System A applies it now, x cancels")
	checkFits(t, s, 120, 35)
	h.key("7", "A", "y")
	h.waitFor("restarting to apply the restore…")
	bk.mu.Lock()
	defer bk.mu.Unlock()
	if bk.applied != 1 {
		t.Fatalf("applied %d times", bk.applied)
	}
}
