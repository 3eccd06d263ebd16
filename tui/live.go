package tui

import (
	"context"
	"encoding/hex"
	"fmt"
	"strings"
	"unicode/utf8"

	"charm.land/bubbles/v2/key"
	"charm.land/bubbles/v2/textinput"
	tea "charm.land/bubbletea/v2"
	"github.com/piot-appliance/piot/services/core"
)

const liveKeep = 500

// liveScreen follows an MQTT topic filter through the LiveFeed.
type liveScreen struct {
	env     *env
	input   textinput.Model
	editing bool
	started bool

	filter  string
	gen     int
	cancel  context.CancelFunc
	ch      <-chan LiveMessage
	msgs    []LiveMessage
	paused  bool
	skipped int
	state   string
}

type liveStartedMsg struct {
	gen    int
	filter string
	ch     <-chan LiveMessage
	cancel context.CancelFunc
}

type liveBatchMsg struct {
	gen    int
	msgs   []LiveMessage
	closed bool
}

type liveFailedMsg struct {
	gen int
	err error
}

var (
	keyLiveFilter = key.NewBinding(key.WithKeys("/", "f"), key.WithHelp("/", "topic filter"))
	keyLivePause  = key.NewBinding(key.WithKeys("space", "p"), key.WithHelp("space", "pause/resume"))
	keyLiveClear  = key.NewBinding(key.WithKeys("c"), key.WithHelp("c", "clear"))
)

func newLive(e *env) *liveScreen {
	return &liveScreen{env: e, input: newInput("topic filter: ", "org/<org>/#")}
}

func (s *liveScreen) title() string   { return "Live" }
func (s *liveScreen) adminOnly() bool { return false }
func (s *liveScreen) capturing() bool { return s.editing }
func (s *liveScreen) keys() []key.Binding {
	return []key.Binding{keyLiveFilter, keyLiveClients, keyLivePause, keyLiveClear}
}

// refresh starts following the default filter the first time the screen
// is shown.
func (s *liveScreen) refresh() tea.Cmd {
	if s.started || s.env.deps.Live == nil {
		return nil
	}
	s.started = true
	return s.subscribe("")
}

// subscribe replaces the subscription; an empty filter means everything
// the user may read: org/# for admins, their active org otherwise.
func (s *liveScreen) subscribe(filter string) tea.Cmd {
	if s.cancel != nil {
		s.cancel()
		s.cancel = nil
	}
	s.gen++
	gen, e := s.gen, s.env
	s.state = "subscribing…"
	return func() tea.Msg {
		a, err := e.who()
		if err != nil {
			return endMsg{reason: err.Error()}
		}
		if filter == "" {
			filter = "org/#"
			if !a.IsAdministrator() {
				org := e.core.ActiveOrg(a)
				name, ok := e.core.OrgNameOf(org)
				if org.IsZero() || !ok {
					return liveFailedMsg{gen: gen, err: &core.Error{Code: core.CodeForbidden, Msg: "you belong to no organization"}}
				}
				filter = "org/" + name + "/#"
			}
		}
		ctx, cancel := context.WithCancel(e.ctx)
		ch, err := e.deps.Live.Subscribe(ctx, a, filter)
		if err != nil {
			cancel()
			return liveFailedMsg{gen: gen, err: err}
		}
		return liveStartedMsg{gen: gen, filter: filter, ch: ch, cancel: cancel}
	}
}

// wait reads the next messages, as many as are ready (up to 200), so a
// busy topic costs one redraw per batch rather than per message.
func wait(gen int, ch <-chan LiveMessage) tea.Cmd {
	return func() tea.Msg {
		m, ok := <-ch
		if !ok {
			return liveBatchMsg{gen: gen, closed: true}
		}
		batch := []LiveMessage{m}
		for len(batch) < 200 {
			select {
			case m, ok := <-ch:
				if !ok {
					return liveBatchMsg{gen: gen, msgs: batch, closed: true}
				}
				batch = append(batch, m)
			default:
				return liveBatchMsg{gen: gen, msgs: batch}
			}
		}
		return liveBatchMsg{gen: gen, msgs: batch}
	}
}

func (s *liveScreen) update(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case liveStartedMsg:
		if msg.gen != s.gen {
			msg.cancel()
			return nil
		}
		s.filter, s.ch, s.cancel = msg.filter, msg.ch, msg.cancel
		s.state = "following"
		s.input.SetValue(msg.filter)
		return wait(msg.gen, msg.ch)
	case liveFailedMsg:
		if msg.gen == s.gen {
			s.state = "refused"
			return func() tea.Msg { return s.env.errMsg(msg.err, s.env.actor.IsAdministrator()) }
		}
	case liveBatchMsg:
		if msg.gen != s.gen {
			return nil
		}
		if s.paused {
			s.skipped += len(msg.msgs)
		} else {
			s.msgs = append(s.msgs, msg.msgs...)
			if len(s.msgs) > liveKeep {
				s.msgs = s.msgs[len(s.msgs)-liveKeep:]
			}
		}
		if msg.closed {
			s.state = "subscription ended"
			return nil
		}
		return wait(msg.gen, s.ch)
	case tea.KeyPressMsg:
		return s.key(msg)
	}
	return nil
}

func (s *liveScreen) key(k tea.KeyPressMsg) tea.Cmd {
	if s.env.deps.Live == nil {
		return nil
	}
	if s.editing {
		switch k.String() {
		case "enter":
			s.editing = false
			s.input.Blur()
			s.msgs, s.skipped, s.paused = nil, 0, false
			return s.subscribe(strings.TrimSpace(s.input.Value()))
		case "esc":
			s.editing = false
			s.input.Blur()
			s.input.SetValue(s.filter)
			return nil
		}
		var cmd tea.Cmd
		s.input, cmd = s.input.Update(k)
		return cmd
	}
	switch {
	case key.Matches(k, keyLiveFilter):
		s.editing = true
		return s.input.Focus()
	case key.Matches(k, keyLivePause):
		s.paused = !s.paused
		if !s.paused {
			s.skipped = 0
		}
	case key.Matches(k, keyLiveClear):
		s.msgs = nil
	case key.Matches(k, keyLiveClients):
		return openClients(s.env)
	}
	return nil
}

func (s *liveScreen) view(width, height int) string {
	if s.env.deps.Live == nil {
		return "Live MQTT is not available: the broker is not connected to the console."
	}
	var b strings.Builder
	if s.editing {
		b.WriteString(s.input.View() + "\n")
		b.WriteString(styleDim.Render(cut("enter follow • esc cancel • + and # are wildcards", width)) + "\n")
	} else {
		state := s.state
		if s.paused {
			state = fmt.Sprintf("PAUSED (%d skipped)", s.skipped)
		}
		b.WriteString(cut(fmt.Sprintf("%s  %s", styleTitle.Render(printable(orDash(s.filter))), state), width) + "\n")
		b.WriteString(styleDim.Render(cut(fmt.Sprintf("%d messages kept (last %d)", len(s.msgs), liveKeep), width)) + "\n")
	}
	rows := max(height-2, 1)
	start := max(len(s.msgs)-rows, 0)
	if len(s.msgs) == 0 {
		b.WriteString(styleDim.Render("waiting for messages…"))
	}
	for i := start; i < len(s.msgs); i++ {
		m := s.msgs[i]
		flags := " "
		if m.Retained {
			flags = "r"
		}
		head := fmt.Sprintf("%s %s%d %s ", m.Time.Format("15:04:05"), flags, m.QoS, printable(m.Topic))
		line := cut(head, max(width*2/3, 20))
		line += payloadText(m.Payload, max(width-len([]rune(line)), 8))
		b.WriteString(cut(line, width))
		if i < len(s.msgs)-1 {
			b.WriteString("\n")
		}
	}
	return b.String()
}

// payloadText shows text payloads as text and others as the start of
// their hex, always with the size when cut.
func payloadText(p []byte, width int) string {
	if utf8.Valid(p) {
		s := printable(string(p))
		if len([]rune(s)) <= width {
			return s
		}
		suffix := fmt.Sprintf(" …(%d B)", len(p))
		return cut(s, max(width-len(suffix), 1)) + suffix
	}
	h := hex.EncodeToString(p)
	return cut(fmt.Sprintf("<%d B> %s", len(p), h), width)
}
