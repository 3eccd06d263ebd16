package tui

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/piot-appliance/piot/services/core"
)

type fakeMetrics struct{ n int }

func (f *fakeMetrics) Snapshot() MetricsSnapshot {
	f.n++
	return MetricsSnapshot{ConnectedClients: 7, MessagesPerSecond: float64(f.n), IngestPerSecond: 2.5, JournalDepth: 3}
}

type fakeHealth struct{}

func (fakeHealth) Services() []ServiceStatus {
	return []ServiceStatus{{Name: "store", OK: true, Detail: "running"}, {Name: "broker", OK: false, Detail: "listen :8883: in use"}}
}

func TestDashboardAt80x24(t *testing.T) {
	w := newWorld(t)
	h := newHarness(t, Deps{Core: w.core, Version: "v9.9.9", Started: testNow.Add(-3 * time.Hour)}, w.admin, 80, 24)
	s := h.waitFor("Dashboard", "v9.9.9", "3h 0m", "admin@piot.local (admin)", "0 things, 1 orgs, 2 users")
	for _, want := range []string{"Services", "Traffic", "not available", "Resources", "? help", "q quit"} {
		if !strings.Contains(s, want) {
			t.Errorf("dashboard lacks %q:\n%s", want, s)
		}
	}
	checkFits(t, s, 80, 24)
}

func TestDashboardMetricsAndHealth(t *testing.T) {
	w := newWorld(t)
	deps := Deps{Core: w.core, Metrics: &fakeMetrics{}, Health: fakeHealth{}}
	h := newHarness(t, deps, w.admin, 100, 30)
	h.waitFor("clients", "7")
	h.refresh()
	h.refresh()
	s := h.waitFor("ok   store", "DOWN broker", "listen :8883: in use", "messages/s", "ingest/s", "3 pending")
	// Three samples of a rising rate draw a rising sparkline.
	if !strings.Contains(s, "▁") || !strings.Contains(s, "█") {
		t.Errorf("no sparkline:\n%s", s)
	}
	checkFits(t, s, 100, 30)
}

func TestNavigationHelpQuit(t *testing.T) {
	w := newWorld(t)
	h := newHarness(t, Deps{Core: w.core}, w.admin, 80, 24)
	h.waitFor("[1 Dashboard]")
	h.key("tab")
	h.waitFor("[2 Things]", "no things")
	h.key("7")
	h.waitFor("[7 System]", "Network", "Listeners")
	h.key("shift+tab")
	h.waitFor("[6 Alarms]")
	h.key("?")
	s := h.waitFor("Keys — Alarms", "next screen", "quit")
	checkFits(t, s, 80, 24)
	h.key("?")
	h.waitFor("Active (0)")
	h.key("q")
	if !h.quit {
		t.Fatal("q did not quit")
	}
}

// The dashboard lists refresh among its own keys; its help shows it once
// (it used to list "r refresh" twice).
func TestHelpListsEachKeyOnce(t *testing.T) {
	w := newWorld(t)
	h := newHarness(t, Deps{Core: w.core}, w.admin, 80, 24)
	h.waitFor("[1 Dashboard]")
	h.key("?")
	s := h.waitFor("Keys — Dashboard", "next screen")
	// The last line is the status bar, which names the screen's keys.
	body := s[:strings.LastIndex(strings.TrimRight(s, "\n"), "\n")]
	if n := strings.Count(body, "refresh"); n != 1 {
		t.Fatalf("refresh listed %d times in the help:\n%s", n, s)
	}
}

func TestResizeRedraws(t *testing.T) {
	w := newWorld(t)
	w.thing(t, "a-rather-long-thing-name-that-needs-room", "sensor", w.acme.ID)
	h := newHarness(t, Deps{Core: w.core}, w.admin, 80, 24)
	h.key("2")
	for _, size := range [][2]int{{80, 24}, {132, 43}, {60, 15}, {200, 60}, {80, 24}} {
		h.send(tea.WindowSizeMsg{Width: size[0], Height: size[1]})
		s := h.waitFor("Things", "Last seen")
		checkFits(t, s, size[0], size[1])
	}
	h.send(tea.WindowSizeMsg{Width: 30, Height: 8})
	s := h.waitFor("too small")
	checkFits(t, s, 30, 8)
	h.send(tea.WindowSizeMsg{Width: 200, Height: 24})
	h.waitFor("a-rather-long-thing-name-that-needs-room")
}

func TestNonAdminSeesOnlyTheirOrg(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	other, err := w.core.CreateOrg(ctx, w.admin, "globex", "")
	if err != nil {
		t.Fatal(err)
	}
	w.thing(t, "acme-sensor", "sensor", w.acme.ID)
	w.thing(t, "globex-sensor", "sensor", other.ID)
	h := newHarness(t, Deps{Core: w.core}, w.member, 80, 24)
	s := h.waitFor("member@acme.test", "1 Dashboard", "6 Alarms")
	for _, hidden := range []string{"Users", "System"} {
		if strings.Contains(s, hidden) {
			t.Errorf("a member sees the %s tab:\n%s", hidden, s)
		}
	}
	h.key("4") // Users: not for members, nothing happens
	h.waitFor("[1 Dashboard]")
	h.key("2")
	s = h.waitFor("acme-sensor", "things of your organization")
	if strings.Contains(s, "globex") {
		t.Fatalf("a member sees another org's thing:\n%s", s)
	}
	// Admin-only actions answer with a status line, not a crash.
	h.key("d")
	h.waitFor("only admins may delete things")
	h.key("o")
	h.waitFor("only admins may assign things")
	h.key("3")
	s = h.waitFor("acme", "* acme")
	if strings.Contains(s, "globex") {
		t.Fatalf("a member sees another org:\n%s", s)
	}
	h.key("m")
	h.waitFor("only admins may set MQTT credentials")
}

func TestSessionEndsWhenUserDeleted(t *testing.T) {
	w := newWorld(t)
	h := newHarness(t, Deps{Core: w.core}, w.member, 80, 24)
	h.waitFor("member@acme.test")
	p, err := w.core.Profile(w.member)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.core.DeleteUser(context.Background(), w.admin, p.ID); err != nil {
		t.Fatal(err)
	}
	h.refresh()
	if !h.quit || !strings.Contains(h.m.Ended(), "no longer exists") {
		t.Fatalf("session went on after the user was deleted: quit=%v ended=%q", h.quit, h.m.Ended())
	}
}

func TestRevokedAdminLosesAdminTabs(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	u, err := w.core.CreateUser(ctx, w.admin, "second@piot.local", "second-password", true)
	if err != nil {
		t.Fatal(err)
	}
	second, err := w.core.Login(ctx, "second@piot.local", "second-password")
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, Deps{Core: w.core}, second, 80, 24)
	h.key("4")
	h.waitFor("[4 Users]", "second@piot.local (admin)")
	no := false
	if _, err := w.core.UpdateUser(ctx, w.admin, core.UserUpdate{ID: u.ID, IsAdmin: &no}); err != nil {
		t.Fatal(err)
	}
	h.refresh()
	s := h.waitFor("[1 Dashboard]")
	if strings.Contains(s, "Users") || strings.Contains(s, "(admin)") {
		t.Fatalf("revoked admin still sees admin tabs:\n%s", s)
	}
}

func TestRunLocal(t *testing.T) {
	w := newWorld(t)
	in, typer := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- RunLocal(context.Background(), Deps{Core: w.core}, w.admin, tea.WithInput(in), tea.WithOutput(io.Discard), tea.WithWindowSize(80, 24))
	}()
	time.Sleep(300 * time.Millisecond)
	if _, err := typer.Write([]byte("q")); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("RunLocal did not end on q")
	}
	// Cancelling the context ends it too, without an error.
	ctx, cancel := context.WithCancel(context.Background())
	in2, _ := io.Pipe()
	go func() {
		done <- RunLocal(ctx, Deps{Core: w.core}, w.admin, tea.WithInput(in2), tea.WithOutput(io.Discard))
	}()
	time.Sleep(200 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("RunLocal did not end with its context")
	}
	if err := RunLocal(context.Background(), Deps{Core: w.core}, core.Anonymous()); err == nil {
		t.Fatal("RunLocal ran without a user")
	}
}
