package tui

import (
	"fmt"
	"strings"
	"time"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
	"github.com/piot-appliance/piot/services/core"
)

// alarmsScreen shows active and recent alarms. Without the monitor it
// falls back to the alarm flags core keeps on things.
type alarmsScreen struct {
	env      *env
	active   *list
	recent   *list
	ov       overlay
	loaded   bool
	fromCore bool
	// thingOf maps an active alarm's id to its thing's.
	thingOf map[string]core.ID
	// open counts the active alarms for the tab's badge. The dashboard's
	// sample, taken on every tick whatever the screen, keeps it current
	// while this screen is not shown.
	open int
}

type alarmsMsg struct {
	active   []Alarm
	recent   []Alarm
	fromCore bool
}

var (
	keyAck       = key.NewBinding(key.WithKeys("a"), key.WithHelp("a", "acknowledge"))
	keyAlarmOpen = key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "open thing"))
)

func alarmColumns() []column {
	return []column{
		{title: "Since", width: 14},
		{title: "Thing", width: 10, flex: 1},
		{title: "Org", width: 8, drop: 2},
		{title: "Kind", width: 9, drop: 3},
		{title: "Message", width: 10, flex: 2, drop: 1},
		{title: "Ack", width: 8, drop: 4},
	}
}

func newAlarms(e *env) *alarmsScreen {
	recent := newList(alarmColumns(), "no recent alarms")
	recent.passive = true
	return &alarmsScreen{env: e,
		active: newList(alarmColumns(), "no active alarms"),
		recent: recent,
		ov:     overlay{tag: "alarms", env: e}}
}

func (s *alarmsScreen) title() string   { return "Alarms" }
func (s *alarmsScreen) adminOnly() bool { return false }
func (s *alarmsScreen) capturing() bool { return s.ov.active() || s.active.capturing() }
func (s *alarmsScreen) keys() []key.Binding {
	ks := []key.Binding{keyAlarmOpen}
	if !s.fromCore {
		ks = append(ks, keyAck)
	}
	return append(ks, s.active.keys()...)
}

func (s *alarmsScreen) badge() string {
	if s.open == 0 {
		return ""
	}
	return fmt.Sprintf("(%d)", s.open)
}

func (s *alarmsScreen) refresh() tea.Cmd {
	e := s.env
	return e.run(func(a core.Actor) (tea.Msg, error) {
		if e.deps.Alarms != nil {
			act, err := e.deps.Alarms.Active(e.ctx, a)
			if err != nil {
				return nil, err
			}
			rec, err := e.deps.Alarms.Recent(e.ctx, a, 100)
			if err != nil {
				return nil, err
			}
			return alarmsMsg{active: act, recent: rec}, nil
		}
		page, err := e.core.Things(a, core.ThingQuery{All: a.IsAdministrator()})
		if err != nil {
			return nil, err
		}
		var act []Alarm
		for _, t := range page.Items {
			if t.AlarmActive {
				org, _ := e.core.OrgNameOf(t.OrgID)
				act = append(act, Alarm{ID: t.ID.Hex(), ThingID: t.ID, Thing: t.Name, Org: org, Kind: "thing",
					Message: "alarm flag set on the thing", Raised: time.Unix(t.AlarmActivated, 0)})
			}
		}
		return alarmsMsg{active: act, fromCore: true}, nil
	})
}

func (s *alarmsScreen) rows(as []Alarm) []row {
	now := s.env.now()
	rows := make([]row, 0, len(as))
	for _, al := range as {
		ack := ""
		if al.AckedBy != "" {
			ack = al.AckedBy
		}
		since := ago(now, al.Raised.Unix())
		if !al.Cleared.IsZero() {
			since = "cleared " + ago(now, al.Cleared.Unix())
		}
		rows = append(rows, row{key: al.ID,
			cells: []string{since, al.Thing, al.Org, al.Kind, strings.TrimSpace(al.Severity + " " + al.Message), ack},
			sort:  []string{fmt.Sprintf("%020d", al.Raised.Unix())}})
	}
	return rows
}

func (s *alarmsScreen) update(msg tea.Msg) tea.Cmd {
	if handled, cmd := s.ov.update(msg); handled {
		return cmd
	} else if d, ok := msg.(doneMsg); ok && d.tag == s.ov.tag {
		return tea.Batch(cmd, s.refresh())
	}
	switch msg := msg.(type) {
	case alarmsMsg:
		s.loaded, s.fromCore, s.open = true, msg.fromCore, len(msg.active)
		s.thingOf = make(map[string]core.ID, len(msg.active))
		for _, al := range msg.active {
			s.thingOf[al.ID] = al.ThingID
		}
		s.active.setRows(s.rows(msg.active))
		s.recent.setRows(s.rows(msg.recent))
	case dashSampleMsg:
		s.open = msg.alarms
	case tea.KeyPressMsg:
		if used, cmd := s.active.update(msg, 5); used {
			return cmd
		}
		if key.Matches(msg, keyAlarmOpen) {
			r, ok := s.active.selected()
			if !ok {
				return nil
			}
			id := s.thingOf[r.key]
			if id.IsZero() {
				return func() tea.Msg { return statusMsg{text: "this alarm names no thing", err: true} }
			}
			return func() tea.Msg { return openThingMsg{thing: id.Hex()} }
		}
		if key.Matches(msg, keyAck) {
			if s.fromCore || s.env.deps.Alarms == nil {
				return func() tea.Msg {
					return statusMsg{text: "acknowledging needs the alarm service, which is not connected", err: true}
				}
			}
			r, ok := s.active.selected()
			if !ok {
				return nil
			}
			id, e := r.key, s.env
			return s.ov.exec(func(a core.Actor) (string, error) {
				if err := e.deps.Alarms.Acknowledge(e.ctx, a, id); err != nil {
					return "", err
				}
				return "alarm acknowledged", nil
			}, nil)
		}
	}
	return nil
}

func (s *alarmsScreen) view(width, height int) string {
	if !s.loaded {
		return styleDim.Render("loading…")
	}
	var b strings.Builder
	if s.fromCore {
		b.WriteString(styleDim.Render(cut("The alarm service is not connected: showing the alarm flags of things.", width)) + "\n")
		height--
	}
	activeH := max(height/2, 4)
	if s.fromCore {
		activeH = height - 1
	}
	b.WriteString(styleTitle.Render(fmt.Sprintf("Active (%d)", s.active.len())) + "\n")
	b.WriteString(fitLines(s.active.view(width, activeH-1), width, activeH-1))
	if !s.fromCore {
		b.WriteString("\n" + styleTitle.Render("Recent") + "\n")
		b.WriteString(s.recent.view(width, height-activeH-1))
	}
	return b.String()
}
