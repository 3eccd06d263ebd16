package tui

import (
	"strings"
	"testing"

	tea "charm.land/bubbletea/v2"
)

func logsHarness(t *testing.T, w, h int) (*harness, *fakeSystem) {
	t.Helper()
	wd := newWorld(t)
	sys := &fakeSystem{}
	hs := newHarness(t, Deps{Core: wd.core, System: sys}, wd.admin, w, h)
	hs.key("8")
	hs.waitFor("following", "of 301 lines")
	return hs, sys
}

func TestLogsFollowAndPause(t *testing.T) {
	h, sys := logsHarness(t, 80, 24)
	s := h.screen()
	checkFits(t, s, 80, 24)
	if !strings.Contains(lineWith(s, "> "), "a long line") {
		t.Fatalf("following selects the newest line:\n%s", s)
	}
	h.key("space")
	h.waitFor("paused, 0 new")
	sys.logMore(3)
	h.refresh()
	s = h.waitFor("paused, 3 new")
	if strings.Contains(s, "later") || !strings.Contains(lineWith(s, "> "), "a long line") {
		t.Fatalf("a paused view moved:\n%s", s)
	}
	h.key("space")
	s = h.waitFor("following", "of 304 lines")
	if !strings.Contains(lineWith(s, "> "), "later 304") {
		t.Fatalf("resuming jumps to the newest line:\n%s", s)
	}
	// Scrolling back pauses: the line being read stays put.
	h.key("up", "up")
	s = h.waitFor("paused")
	if !strings.Contains(lineWith(s, "> "), "later 302") {
		t.Fatalf("up twice from the newest:\n%s", s)
	}
	h.key("g")
	if s = h.screen(); !strings.Contains(lineWith(s, "> "), `"event 0"`) {
		t.Fatalf("g scrolls back to the oldest kept line:\n%s", s)
	}

	// A line opened while following stays open as lines arrive.
	h.key("space", "G")
	h.waitFor("following")
	h.key("enter")
	h.waitFor("Line 304 of 304", "later 304")
	sys.logMore(1)
	h.refresh()
	if s = h.screen(); !strings.Contains(s, "Line 304 of 304") || !strings.Contains(s, "later 304") {
		t.Fatalf("the open line changed:\n%s", s)
	}
	h.key("esc")
	h.waitFor("paused, 1 new")
}

func TestLogsSearchLevelAndFullLine(t *testing.T) {
	h, _ := logsHarness(t, 80, 24)
	h.key("/")
	h.typeText("event 12")
	h.key("enter")
	s := h.waitFor(`search "event 12"`, "paused")
	if !strings.Contains(lineWith(s, "> "), `"event 12"`) {
		t.Fatalf("the first match after the newest line wraps to event 12:\n%s", s)
	}
	h.key("n")
	if s = h.screen(); !strings.Contains(lineWith(s, "> "), `"event 120"`) {
		t.Fatalf("n goes to the next match:\n%s", s)
	}
	h.key("N")
	if s = h.screen(); !strings.Contains(lineWith(s, "> "), `"event 12"`) {
		t.Fatalf("N goes back:\n%s", s)
	}
	h.key("/")
	h.typeText("no such text")
	h.key("enter")
	h.waitFor(`no line contains "event 12no such text"`)
	h.key("esc")

	// Levels: warn shows WARN and ERROR only.
	h.key("l", "l")
	s = h.waitFor("level ≥ WARN", "of 301 lines")
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, "level=INFO") || strings.Contains(l, "level=DEBUG") {
			t.Fatalf("an INFO or DEBUG line at level WARN: %q\n%s", l, s)
		}
	}
	if !strings.Contains(s, "121 of 301") {
		t.Errorf("WARN and ERROR are 2 in 5 of 300, plus the long line:\n%s", s)
	}
	h.key("l", "l")
	h.waitFor("level ≥ DEBUG", "301 of 301")

	// enter opens the long line wrapped, whole.
	h.key("G", "enter")
	s = h.waitFor("Line 301 of 301", "esc or enter closes")
	checkFits(t, s, 80, 24)
	if !strings.Contains(s, "END") {
		t.Fatalf("the full view shows the end of the line:\n%s", s)
	}
	h.key("esc")
	h.waitFor("of 301 lines")
}

// A member is refused by core: the reason, and not one line.
func TestLogsMemberSeesNoLines(t *testing.T) {
	wd := newWorld(t)
	h := newHarness(t, Deps{Core: wd.core, System: &fakeSystem{}}, wd.member, 80, 24)
	h.key("8")
	s := h.waitFor("only admins may read the appliance's logs", "shown to admins only")
	if strings.Contains(s, "level=") || strings.Contains(s, "event") {
		t.Fatalf("a member sees log lines:\n%s", s)
	}
	h.key("G", "enter", "/")
	h.typeText("event")
	h.key("enter")
	if s := h.screen(); strings.Contains(s, "level=") {
		t.Fatalf("a member sees log lines after searching:\n%s", s)
	}
}

// Every size down to 1×1, and 5 000 pasted characters in the search.
func TestLogsResizeAndPaste(t *testing.T) {
	h, _ := logsHarness(t, 120, 35)
	checkFits(t, h.screen(), 120, 35)
	h.key("/")
	h.send(tea.PasteMsg{Content: strings.Repeat("x", 5000)})
	h.key("enter")
	for _, sz := range [][2]int{{80, 24}, {40, 10}, {20, 5}, {1, 1}, {120, 35}} {
		h.send(tea.WindowSizeMsg{Width: sz[0], Height: sz[1]})
		h.key("enter")
		checkFits(t, h.screen(), sz[0], sz[1])
		h.key("esc")
	}
}
