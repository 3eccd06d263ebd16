package tui

import (
	"fmt"
	"strings"
	"time"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"
	"github.com/piot-appliance/piot/services/core"
)

// auditScreen shows core's audit trail (admins only: core refuses it to
// members, and the tab is not offered to them): the last changes, newest
// first, filtered by text (/) and by the front end they came through (v).
type auditScreen struct {
	env     *env
	list    *list
	entries map[string]core.AuditEntry
	shown   []core.AuditEntry // what was loaded, before the source filter
	loaded  bool
	refused string
	// seen is how many entries core had recorded at the last load: a tick
	// reloads only when it changed, the trail being a scan of the store.
	seen uint64
	via  int    // index into auditSources
	open string // key of the entry shown whole
}

// auditSources are the source filter's steps; "" is every source.
var auditSources = []string{"", core.ViaAPI, core.ViaCLI, core.ViaConsole, core.ViaWeb, core.ViaAdapter}

type auditMsg struct {
	entries []core.AuditEntry
	seen    uint64
	refused string
}

var (
	keyAuditSource = key.NewBinding(key.WithKeys("v"), key.WithHelp("v", "source"))
	keyAuditOpen   = key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "whole entry"))
)

func newAudit(e *env) *auditScreen {
	l := newList([]column{
		{title: "Time (UTC)", width: 11},
		{title: "Actor", width: 10, flex: 1},
		{title: "Action", width: 16, flex: 1},
		{title: "Target", width: 14, flex: 4},
		{title: "Source", width: 9, flex: 1, drop: 1},
	}, "no changes recorded")
	return &auditScreen{env: e, list: l, entries: map[string]core.AuditEntry{}}
}

func (s *auditScreen) title() string   { return "Audit" }
func (s *auditScreen) adminOnly() bool { return true }
func (s *auditScreen) capturing() bool { return s.list.capturing() }
func (s *auditScreen) keys() []key.Binding {
	if s.open != "" {
		return []key.Binding{keyListBack}
	}
	return append([]key.Binding{keyAuditOpen, keyAuditSource}, s.list.keys()...)
}

func (s *auditScreen) refresh() tea.Cmd {
	e := s.env
	if !e.actor.IsAdministrator() {
		return nil
	}
	if s.loaded && s.refused == "" && auditTotal(e.core) == s.seen {
		return nil
	}
	return func() tea.Msg {
		a, err := e.who()
		if err != nil {
			return endMsg{reason: err.Error()}
		}
		seen := auditTotal(e.core)
		list, err := e.core.AuditLog(e.ctx, a, core.AuditQuery{})
		if err != nil {
			return auditMsg{refused: core.Message(err)}
		}
		return auditMsg{entries: list, seen: seen}
	}
}

// auditTotal is how many entries core recorded since start.
func auditTotal(c *core.Core) uint64 {
	recorded, failed := c.AuditCounts()
	n := failed
	for _, v := range recorded {
		n += v
	}
	return n
}

func (s *auditScreen) update(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case auditMsg:
		s.loaded, s.refused, s.seen = true, msg.refused, msg.seen
		s.shown = msg.entries
		s.fill()
		return nil
	case tea.KeyPressMsg:
		return s.key(msg)
	case tea.PasteMsg:
		_, cmd := s.list.update(msg, 10)
		return cmd
	}
	return nil
}

// fill shows the loaded entries of the chosen source, newest first.
func (s *auditScreen) fill() {
	via := auditSources[s.via]
	s.entries = make(map[string]core.AuditEntry, len(s.shown))
	rows := make([]row, 0, len(s.shown))
	for i, en := range s.shown {
		if via != "" && en.Source != via && !strings.HasPrefix(en.Source, via+" ") {
			continue
		}
		// Entries have no id; their position from the oldest loaded one
		// stays put while newer ones arrive on top.
		k := fmt.Sprintf("%d/%d", en.TS, len(s.shown)-i)
		s.entries[k] = en
		rows = append(rows, row{key: k, cells: []string{
			time.Unix(en.TS, 0).UTC().Format("01-02 15:04"),
			printable(en.Actor), printable(en.Action), printable(en.Target), printable(en.Source),
		}})
	}
	s.list.setRows(rows)
	if _, ok := s.entries[s.open]; !ok {
		s.open = ""
	}
}

func (s *auditScreen) key(k tea.KeyPressMsg) tea.Cmd {
	if s.open != "" {
		if key.Matches(k, keyListBack) || k.String() == "enter" {
			s.open = ""
		}
		return nil
	}
	if used, cmd := s.list.update(k, 10); used {
		return cmd
	}
	switch {
	case key.Matches(k, keyAuditSource):
		s.via = (s.via + 1) % len(auditSources)
		s.fill()
	case key.Matches(k, keyAuditOpen):
		if r, ok := s.list.selected(); ok {
			s.open = r.key
		}
	}
	return nil
}

func (s *auditScreen) view(width, height int) string {
	switch {
	case !s.env.actor.IsAdministrator():
		return styleErr.Render(cut("only admins may "+string(core.ActReadAudit), width))
	case !s.loaded:
		return styleDim.Render("loading…")
	case s.refused != "":
		return styleErr.Render(cut(s.refused, width))
	}
	if en, ok := s.entries[s.open]; ok && s.open != "" {
		var b strings.Builder
		b.WriteString(styleTitle.Render("Change") + "\n")
		for _, f := range [][2]string{
			{"time", time.Unix(en.TS, 0).UTC().Format("2006-01-02 15:04:05 UTC")},
			{"actor", en.Actor}, {"action", en.Action}, {"target", en.Target}, {"source", en.Source},
		} {
			b.WriteString(ansi.Wrap(pad(f[0], 7)+" "+printable(f[1]), max(width, 1), " ") + "\n")
		}
		b.WriteString(styleDim.Render(cut("esc or enter closes", width)))
		return b.String()
	}
	source := "all sources"
	if v := auditSources[s.via]; v != "" {
		source = "source " + v
	}
	head := fmt.Sprintf("Audit trail • %d of the last %d changes, newest first • %s", s.list.len(), len(s.shown), source)
	return cut(head, width) + "\n" + s.list.view(width, max(height-1, 1))
}
