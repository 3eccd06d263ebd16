package tui

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"

	"charm.land/bubbles/v2/key"
	"charm.land/bubbles/v2/textinput"
	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"
	"github.com/piot-appliance/piot/services/core"
)

// The messages a Live screen keeps, paused or not: beyond either bound
// the oldest go, and are counted, so a busy topic cannot grow a session
// without end.
const (
	liveKeep      = 500
	liveKeepBytes = 4 << 20
)

// liveScreen follows an MQTT topic filter through the LiveFeed, scrolls
// back over the kept messages, shows one in full and publishes.
//
// Messages are numbered in the order they arrive (seq), so the selection
// and a pause stay on the same messages when the oldest are dropped.
type liveScreen struct {
	env     *env
	input   textinput.Model
	editing bool
	started bool
	ov      overlay

	filter string
	gen    int
	cancel context.CancelFunc
	ch     <-chan LiveMessage
	state  string

	msgs    []LiveMessage
	first   int // seq of msgs[0]
	bytes   int // payload bytes kept
	dropped int // dropped beyond the bounds since the last clear

	cursor int  // seq of the selected message
	follow bool // the selection sticks to the newest message
	top    int  // seq of the first row shown
	pageH  int
	// paused freezes the rows at the messages before pausedAt while new
	// ones are still kept.
	paused   bool
	pausedAt int

	detail    *liveDetail
	sent      *form  // the publish form last opened
	lastTopic string // what the publish form offers next
}

// liveDetail is one message shown in full. It holds its own copy, so
// the message stays readable when the buffer drops it.
type liveDetail struct {
	seq    int
	m      LiveMessage
	hex    bool
	offset int
	pageH  int
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
	keyLiveFilter  = key.NewBinding(key.WithKeys("/", "f"), key.WithHelp("/", "topic filter"))
	keyLivePause   = key.NewBinding(key.WithKeys("space", "p"), key.WithHelp("space", "pause"))
	keyLiveClear   = key.NewBinding(key.WithKeys("c"), key.WithHelp("c", "clear"))
	keyLiveOpen    = key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "details"))
	keyLivePublish = key.NewBinding(key.WithKeys("s"), key.WithHelp("s", "publish"))
	keyLiveHex     = key.NewBinding(key.WithKeys("x"), key.WithHelp("x", "hex/text"))
	keyLiveOther   = key.NewBinding(key.WithKeys("left", "right"), key.WithHelp("←/→", "prev/next"))
	keyLiveBack    = key.NewBinding(key.WithKeys("esc", "enter", "backspace"), key.WithHelp("esc", "back"))
)

func newLive(e *env) *liveScreen {
	return &liveScreen{env: e, input: newInput("topic filter: ", "org/<org>/#"), ov: overlay{tag: "live", env: e}, follow: true, pageH: 10}
}

func (s *liveScreen) title() string   { return "Live" }
func (s *liveScreen) adminOnly() bool { return false }
func (s *liveScreen) capturing() bool { return s.editing || s.ov.active() }
func (s *liveScreen) keys() []key.Binding {
	switch {
	case s.ov.active():
		return nil // the form says its own keys
	case s.detail != nil:
		return []key.Binding{keyLiveBack, keyLiveHex, keyLiveOther, keyUp, keyDown, keyPgUp, keyPgDown, keyHome, keyEnd}
	}
	return []key.Binding{keyLiveOpen, keyLiveClients, keyLivePublish, keyLivePause, keyLiveFilter, keyLiveClear, keyUp, keyDown, keyPgUp, keyPgDown, keyHome, keyEnd}
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
	if handled, cmd := s.ov.update(msg); handled {
		return cmd
	} else if d, ok := msg.(doneMsg); ok && d.tag == s.ov.tag {
		if d.err == nil && s.sent != nil {
			s.lastTopic = strings.TrimSpace(s.sent.value("topic"))
		}
		return cmd
	}
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
		s.keep(msg.msgs)
		if msg.closed {
			s.state = "subscription ended"
			return nil
		}
		return wait(msg.gen, s.ch)
	case tea.PasteMsg:
		if s.editing {
			var cmd tea.Cmd
			s.input, cmd = s.input.Update(msg)
			return cmd
		}
	case tea.KeyPressMsg:
		return s.key(msg)
	}
	return nil
}

// end is the seq the next message will get.
func (s *liveScreen) end() int { return s.first + len(s.msgs) }

// shownEnd is the seq after the last message the rows show: the newest,
// or while paused the newest when the pause began.
func (s *liveScreen) shownEnd() int {
	if s.paused {
		return max(min(s.pausedAt, s.end()), s.first)
	}
	return s.end()
}

func (s *liveScreen) at(seq int) LiveMessage { return s.msgs[seq-s.first] }

// keep appends arrived messages and drops the oldest beyond the bounds.
func (s *liveScreen) keep(in []LiveMessage) {
	for _, m := range in {
		s.msgs = append(s.msgs, m)
		s.bytes += len(m.Payload)
	}
	drop := 0
	for len(s.msgs)-drop > liveKeep || (s.bytes > liveKeepBytes && len(s.msgs)-drop > 1) {
		s.bytes -= len(s.msgs[drop].Payload)
		drop++
	}
	if drop > 0 {
		// A fresh slice lets the dropped payloads go.
		s.msgs = append([]LiveMessage(nil), s.msgs[drop:]...)
		s.first += drop
		s.dropped += drop
	}
	if s.follow && !s.paused {
		s.cursor = s.end() - 1
	}
	s.cursor = max(s.cursor, s.first)
}

func (s *liveScreen) clear() {
	s.first += len(s.msgs)
	s.msgs, s.bytes, s.dropped = nil, 0, 0
	s.cursor, s.top, s.pausedAt, s.follow = s.first, s.first, s.first, true
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
			s.clear()
			s.paused = false
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
	if s.detail != nil {
		return s.detailKey(k)
	}
	end := s.shownEnd()
	switch d, scroll := scrollBy(k, s.pageH, len(s.msgs)); {
	case scroll:
		s.move(d)
	case key.Matches(k, keyLiveFilter):
		s.editing = true
		return s.input.Focus()
	case key.Matches(k, keyLivePause):
		s.paused = !s.paused
		s.pausedAt = s.end()
		if !s.paused && s.follow {
			s.cursor = max(s.end()-1, s.first)
		}
	case key.Matches(k, keyLiveClear):
		s.clear()
	case key.Matches(k, keyLiveClients):
		return openClients(s.env)
	case key.Matches(k, keyLiveOpen):
		if s.cursor >= s.first && s.cursor < end {
			s.detail = &liveDetail{seq: s.cursor, m: s.at(s.cursor), pageH: 10}
		}
	case key.Matches(k, keyLivePublish):
		return s.publish()
	}
	return nil
}

// move scrolls the selection; on the newest message shown it follows
// again, anywhere above it stays put while messages arrive.
func (s *liveScreen) move(d int) {
	end := s.shownEnd()
	if end <= s.first {
		return
	}
	s.cursor = min(max(s.cursor+d, s.first), end-1)
	s.follow = s.cursor == end-1
}

func (s *liveScreen) detailKey(k tea.KeyPressMsg) tea.Cmd {
	d := s.detail
	// The view clamps the offset to the message's lines.
	switch step, scroll := scrollBy(k, d.pageH, 1<<30); {
	case scroll:
		d.offset += step
	case key.Matches(k, keyLiveBack):
		s.detail = nil
	case key.Matches(k, keyLiveHex):
		d.hex, d.offset = !d.hex, 0
	case k.String() == "left" || k.String() == "right":
		seq := d.seq - 1
		if k.String() == "right" {
			seq = d.seq + 1
		}
		if seq >= s.first && seq < s.shownEnd() {
			s.detail = &liveDetail{seq: seq, m: s.at(seq), hex: d.hex, pageH: d.pageH}
			s.cursor = seq
			s.follow = seq == s.shownEnd()-1
		}
	}
	return nil
}

// publish opens the publish form; core decides the topic when it is sent.
func (s *liveScreen) publish() tea.Cmd {
	topic := s.lastTopic
	if topic == "" {
		// The followed filter up to its first wildcard: where the user
		// is looking is where they most likely publish.
		topic = s.filter
		if i := strings.IndexAny(topic, "+#"); i >= 0 {
			topic = topic[:i]
		}
	}
	f := newForm("Publish a message").
		text("topic", "Topic", topic, "topic").
		text("payload", "Payload", "", "payload").
		pick("qos", "QoS", []string{"0", "1", "2"}, []string{"0 at most once", "1 at least once", "2 exactly once"}, "0", "QoS").
		boolean("retain", "Retained", false)
	// The audit trail records the topic, not the payload, which may be a
	// device's secret.
	f.note = "Members publish only under org/<their org>/; the topic is audited."
	live := s.env.deps.Live
	ctx := s.env.ctx
	s.sent = f
	return s.ov.open(f, func(a core.Actor, f *form) (string, error) {
		m := LiveMessage{
			Topic: strings.TrimSpace(f.value("topic")), Payload: []byte(f.value("payload")),
			QoS: f.value("qos")[0] - '0', Retained: f.value("retain") == "yes",
		}
		if err := live.Publish(ctx, a, m); err != nil {
			return "", err
		}
		return fmt.Sprintf("published %d B to %s", len(m.Payload), printable(m.Topic)), nil
	})
}

func (s *liveScreen) view(width, height int) string {
	if s.env.deps.Live == nil {
		return "Live MQTT is not available: the broker is not connected to the console."
	}
	if s.ov.form != nil {
		return s.ov.view(width, height)
	}
	if s.detail != nil {
		return s.detailView(width, height)
	}
	var b strings.Builder
	end := s.shownEnd()
	if s.editing {
		b.WriteString(s.input.View() + "\n")
		b.WriteString(styleDim.Render(cut("enter follow • esc cancel • + and # are wildcards", width)) + "\n")
	} else {
		state := s.state
		switch {
		case s.paused:
			state = styleWarn.Render(fmt.Sprintf("PAUSED, %d new", s.end()-s.pausedAt))
		case !s.follow && s.cursor < end-1:
			state = styleWarn.Render(fmt.Sprintf("scrolled back, %d newer (G follows)", end-1-s.cursor))
		}
		b.WriteString(cut(fmt.Sprintf("%s  %s", styleTitle.Render(printable(orDash(s.filter))), state), width) + "\n")
		kept := fmt.Sprintf("%d messages kept (the last %d, at most %d MiB)", len(s.msgs), liveKeep, liveKeepBytes>>20)
		if s.dropped > 0 {
			kept += fmt.Sprintf(", %d older dropped", s.dropped)
		}
		b.WriteString(styleDim.Render(cut(kept, width)) + "\n")
	}
	rows := max(height-2, 1)
	s.pageH = max(rows-1, 1)
	if end <= s.first {
		wait := "waiting for messages…"
		if s.paused && len(s.msgs) > 0 {
			wait = "nothing from before the pause is kept; space shows the newest"
		}
		b.WriteString(styleDim.Render(cut(wait, width)))
		return b.String()
	}
	s.cursor = min(max(s.cursor, s.first), end-1)
	// Keep the selection in view with as little scrolling as possible.
	if s.cursor < s.top {
		s.top = s.cursor
	}
	if s.cursor >= s.top+rows {
		s.top = s.cursor - rows + 1
	}
	s.top = min(max(s.top, s.first), max(end-rows, s.first))
	for seq := s.top; seq < end && seq < s.top+rows; seq++ {
		m := s.at(seq)
		flags := " "
		if m.Retained {
			flags = "r"
		}
		head := fmt.Sprintf("%s %s%d %s ", m.Time.Format("15:04:05"), flags, m.QoS, printable(m.Topic))
		line := cut(head, max(width*2/3, 20))
		line += payloadText(m.Payload, max(width-2-len([]rune(line)), 8))
		if seq == s.cursor {
			b.WriteString(styleSelected.Render(cut("> "+line, width)))
		} else {
			b.WriteString(cut("  "+line, width))
		}
		if seq < end-1 && seq < s.top+rows-1 {
			b.WriteString("\n")
		}
	}
	return b.String()
}

func (s *liveScreen) detailView(width, height int) string {
	d := s.detail
	m := d.m
	retained := "no"
	if m.Retained {
		retained = "yes"
	}
	kind, body := payloadLines(m.Payload, d.hex, max(width, 1))
	head := []string{
		styleTitle.Render(cut(fmt.Sprintf("Message %d of %d", d.seq-s.first+1, s.shownEnd()-s.first), width)),
	}
	head = append(head, wrapHard("topic     "+printable(m.Topic), width)...)
	head = append(head,
		cut("time      "+m.Time.Format("2006-01-02 15:04:05.000 MST"), width),
		cut(fmt.Sprintf("QoS       %d    retained %s    size %d B", m.QoS, retained, len(m.Payload)), width),
		styleDim.Render(cut("payload   "+kind, width)),
	)
	room := max(height-len(head), 1)
	more := len(body) > room
	if more {
		room = max(room-1, 1) // the last row says where the rest is
	}
	d.pageH = max(room-1, 1)
	d.offset = min(max(d.offset, 0), max(len(body)-room, 0))
	shown := body[d.offset:min(d.offset+room, len(body))]
	if more {
		shown = append(shown, styleDim.Render(cut(fmt.Sprintf("lines %d–%d of %d (↑↓ pgup pgdn)", d.offset+1, d.offset+len(shown), len(body)), width)))
	}
	return fitLines(strings.Join(append(head, shown...), "\n"), width, height)
}

// payloadLines renders a payload for the detail view: pretty JSON when
// it parses as an object or array, text when it is UTF-8, a hex dump
// otherwise or when asked; every line fits width.
func payloadLines(p []byte, asHex bool, width int) (kind string, lines []string) {
	if len(p) == 0 {
		return "empty", []string{styleDim.Render("(no payload)")}
	}
	if asHex || !utf8.Valid(p) {
		kind = "hex dump (x shows text)"
		if !asHex {
			kind = "binary, hex dump"
		}
		return kind, hexDump(p, width)
	}
	text, kind := string(p), "text (x shows hex)"
	if pretty, ok := prettyJSON(p); ok {
		text, kind = pretty, "JSON, pretty-printed (x shows hex)"
	}
	for _, l := range strings.Split(text, "\n") {
		lines = append(lines, wrapHard(printable(l), width)...)
	}
	return kind, lines
}

// wrapHard breaks s into lines of at most width cells, anywhere: a
// payload has no words to keep whole.
func wrapHard(s string, width int) []string {
	return strings.Split(ansi.Hardwrap(s, max(width, 1), true), "\n")
}

// prettyJSON indents a JSON object or array; scalars read fine as they
// are.
func prettyJSON(p []byte) (string, bool) {
	t := bytes.TrimSpace(p)
	if len(t) == 0 || (t[0] != '{' && t[0] != '[') || !json.Valid(t) {
		return "", false
	}
	var b bytes.Buffer
	if err := json.Indent(&b, t, "", "  "); err != nil {
		return "", false
	}
	return b.String(), true
}

// hexDump is hex.Dump with as many bytes per line (a multiple of 8) as
// fit width.
func hexDump(p []byte, width int) []string {
	perLine := max((width-12)/4/8*8, 8)
	var out []string
	for off := 0; off < len(p); off += perLine {
		chunk := p[off:min(off+perLine, len(p))]
		h := hex.EncodeToString(chunk)
		var hb strings.Builder
		for i := 0; i < len(h); i += 2 {
			hb.WriteString(h[i:i+2] + " ")
		}
		text := make([]byte, len(chunk))
		for i, c := range chunk {
			text[i] = '.'
			if c >= 0x20 && c < 0x7f {
				text[i] = c
			}
		}
		out = append(out, cut(fmt.Sprintf("%08x  %-*s |%s|", off, perLine*3, hb.String(), text), width))
	}
	return out
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
