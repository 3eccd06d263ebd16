package tui

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"
	"github.com/piot-appliance/piot/services/core"
	"github.com/piot-appliance/piot/services/core/coretest"
)

// world is a real core on a real embedded store, with an admin and a
// member of org "acme".
type world struct {
	core   *core.Core
	admin  core.Actor
	member core.Actor
	acme   core.Org
}

var testNow = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

func newWorld(t *testing.T) *world {
	t.Helper()
	fx := coretest.Open(t, coretest.Options{AdminEmail: "admin@piot.local", AdminPassword: "admin-password", Org: "acme", OrgDescription: "the first org"})
	c, admin, acme := fx.Core, fx.Admin, fx.Org
	member := fx.Member(t, "member@acme.test", "member-password")
	return &world{core: c, admin: admin, member: member, acme: acme}
}

func (w *world) thing(t *testing.T, name, typ string, org core.ID) core.Thing {
	t.Helper()
	ctx := context.Background()
	th, err := w.core.CreateThing(ctx, w.admin, name, typ)
	if err != nil {
		t.Fatal(err)
	}
	on := true
	th, err = w.core.UpdateThing(ctx, w.admin, core.ThingUpdate{ID: th.ID, SetOrg: !org.IsZero(), OrgID: org, Enabled: &on})
	if err != nil {
		t.Fatal(err)
	}
	return th
}

// harness drives a Model the way Bubble Tea does, with commands run on
// goroutines and their messages fed back through Update.
type harness struct {
	t    *testing.T
	m    *Model
	msgs chan tea.Msg
	quit bool
}

func newHarness(t *testing.T, deps Deps, a core.Actor, w, h int) *harness {
	t.Helper()
	if deps.Now == nil {
		deps.Now = func() time.Time { return testNow }
	}
	if deps.Refresh == 0 {
		deps.Refresh = time.Hour // ticks are sent by the tests
	}
	if deps.StatusFor == 0 {
		deps.StatusFor = time.Hour // a test reads the line at its own pace
	}
	m := NewModel(deps, ProfileIdentity(deps.Core, a))
	t.Cleanup(m.Close)
	hs := &harness{t: t, m: m, msgs: make(chan tea.Msg, 1024)}
	hs.send(tea.WindowSizeMsg{Width: w, Height: h})
	hs.exec(m.Init())
	return hs
}

func (h *harness) exec(cmd tea.Cmd) {
	if cmd == nil {
		return
	}
	go func() {
		if msg := cmd(); msg != nil {
			h.msgs <- msg
		}
	}()
}

func (h *harness) send(msg tea.Msg) {
	switch msg := msg.(type) {
	case tea.BatchMsg:
		for _, c := range msg {
			h.exec(c)
		}
		return
	case tea.QuitMsg:
		h.quit = true
		return
	}
	_, cmd := h.m.Update(msg)
	h.exec(cmd)
}

// key types keys: single runes as text, names ("enter", "esc", "tab",
// "up", "ctrl+s") as special keys.
func (h *harness) key(keys ...string) {
	for _, k := range keys {
		h.send(keyMsg(k))
		h.settle()
	}
}

// typeText types a string rune by rune.
func (h *harness) typeText(s string) {
	for _, r := range s {
		h.send(tea.KeyPressMsg{Code: r, Text: string(r)})
	}
	h.settle()
}

func keyMsg(k string) tea.KeyPressMsg {
	special := map[string]rune{
		"enter": tea.KeyEnter, "esc": tea.KeyEscape, "tab": tea.KeyTab, "up": tea.KeyUp,
		"down": tea.KeyDown, "left": tea.KeyLeft, "right": tea.KeyRight, "space": tea.KeySpace,
		"backspace": tea.KeyBackspace,
	}
	if c, ok := special[k]; ok {
		if k == "space" {
			return tea.KeyPressMsg{Code: c, Text: " "}
		}
		return tea.KeyPressMsg{Code: c}
	}
	if strings.HasPrefix(k, "ctrl+") {
		return tea.KeyPressMsg{Code: rune(k[5]), Mod: tea.ModCtrl}
	}
	if k == "shift+tab" {
		return tea.KeyPressMsg{Code: tea.KeyTab, Mod: tea.ModShift}
	}
	r := []rune(k)[0]
	return tea.KeyPressMsg{Code: r, Text: k}
}

// settle feeds messages until none arrives for a short while.
func (h *harness) settle() {
	for {
		select {
		case msg := <-h.msgs:
			h.send(msg)
		case <-time.After(20 * time.Millisecond):
			return
		}
	}
}

// screen is the plain text the terminal would show.
func (h *harness) screen() string {
	return ansi.Strip(h.m.View().Content)
}

// waitFor processes messages until the screen contains all of want.
func (h *harness) waitFor(want ...string) string {
	h.t.Helper()
	return h.waitUntil(fmt.Sprintf("screen never showed %q", want), func(s string) bool {
		return containsAll(s, want)
	})
}

// waitRow waits until the screen's first line containing needle also
// contains every want: a list reloads a moment after the status line of
// the action that changed it.
func (h *harness) waitRow(needle string, want ...string) string {
	h.t.Helper()
	return h.waitUntil(fmt.Sprintf("the row of %q never showed %q", needle, want), func(s string) bool {
		return containsAll(lineWith(s, needle), want)
	})
}

// waitUntil processes messages until the screen satisfies done, failing
// with what after 5 seconds.
func (h *harness) waitUntil(what string, done func(screen string) bool) string {
	h.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		s := h.screen()
		if done(s) {
			return s
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("%s:\n%s", what, s)
		}
		select {
		case msg := <-h.msgs:
			h.send(msg)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func containsAll(s string, want []string) bool {
	for _, w := range want {
		if !strings.Contains(s, w) {
			return false
		}
	}
	return true
}

// refresh simulates the periodic tick.
func (h *harness) refresh() {
	h.send(tickMsg(testNow))
	h.settle()
}

// checkFits asserts the frame is exactly the window: h lines of at most w
// cells, so nothing scrolls or wraps.
func checkFits(t *testing.T, screen string, w, h int) {
	t.Helper()
	lines := strings.Split(screen, "\n")
	if len(lines) != h {
		t.Errorf("frame has %d lines, want %d:\n%s", len(lines), h, screen)
	}
	for i, l := range lines {
		if n := ansi.StringWidth(l); n > w {
			t.Errorf("line %d is %d cells wide (max %d): %q", i+1, n, w, l)
		}
	}
}
