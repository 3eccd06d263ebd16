package tui

import (
	"fmt"
	"strings"

	"charm.land/bubbles/v2/key"
	"charm.land/bubbles/v2/textinput"
	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"
	"github.com/piot-appliance/piot/services/core"
)

// logLevels are the level filter's steps: a line is shown when its level
// is at or above the chosen one.
var logLevels = []string{"DEBUG", "INFO", "WARN", "ERROR"}

// logsScreen scrolls, searches and filters the appliance's kept log. It
// is shown to everybody: core refuses the lines to non-admins, and the
// refusal is what a member reads here.
type logsScreen struct {
	env *env

	loaded  bool
	refused string
	lines   []string
	total   uint64

	// Paused freezes lines; latest counts what arrived since.
	paused bool
	latest uint64

	level   int // index into logLevels
	cursor  int // index into the filtered lines
	offset  int
	full    bool // the selected line, wrapped, over the whole screen
	search  textinput.Model
	editing bool
	query   string
	pageH   int
}

type logsMsg struct {
	snap    LogSnapshot
	refused string
}

var (
	keyLogsFollow = key.NewBinding(key.WithKeys("space", "f"), key.WithHelp("space", "follow/pause"))
	keyLogsLevel  = key.NewBinding(key.WithKeys("l"), key.WithHelp("l", "level"))
	keyLogsSearch = key.NewBinding(key.WithKeys("/"), key.WithHelp("/", "search"))
	keyLogsNext   = key.NewBinding(key.WithKeys("n"), key.WithHelp("n/N", "next/prev match"))
	keyLogsPrev   = key.NewBinding(key.WithKeys("N"))
	keyLogsOpen   = key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "full line"))
)

func newLogs(e *env) *logsScreen {
	return &logsScreen{env: e, search: newInput("search: ", "text in the line"), pageH: 10}
}

func (s *logsScreen) title() string   { return "Logs" }
func (s *logsScreen) adminOnly() bool { return false }
func (s *logsScreen) capturing() bool { return s.editing }
func (s *logsScreen) keys() []key.Binding {
	return []key.Binding{keyLogsFollow, keyLogsSearch, keyLogsNext, keyLogsLevel, keyLogsOpen, keyUp, keyDown, keyPgUp, keyHome, keyEnd}
}

func (s *logsScreen) refresh() tea.Cmd {
	e := s.env
	if e.deps.System == nil {
		return func() tea.Msg { return logsMsg{refused: "the log is not available"} }
	}
	return func() tea.Msg {
		a, err := e.who()
		if err != nil {
			return endMsg{reason: err.Error()}
		}
		snap, err := e.deps.System.Logs(e.ctx, a)
		if err != nil {
			return logsMsg{refused: core.Message(err)}
		}
		return logsMsg{snap: snap}
	}
}

// logLevel is the level= field of a logfmt line, "" if it has none.
func logLevel(line string) string {
	i := strings.Index(line, "level=")
	if i < 0 {
		return ""
	}
	lv := line[i+len("level="):]
	if j := strings.IndexByte(lv, ' '); j >= 0 {
		lv = lv[:j]
	}
	return lv
}

// levelRank places a level among logLevels; slog writes levels between
// the named ones as "INFO+2", which rank with their base.
func levelRank(lv string) int {
	for i := len(logLevels) - 1; i >= 0; i-- {
		if strings.HasPrefix(lv, logLevels[i]) {
			return i
		}
	}
	return 1
}

// visible are the lines that pass the level filter.
func (s *logsScreen) visible() []string {
	if s.level == 0 {
		return s.lines
	}
	var out []string
	for _, l := range s.lines {
		if levelRank(logLevel(l)) >= s.level {
			out = append(out, l)
		}
	}
	return out
}

func (s *logsScreen) update(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case logsMsg:
		s.loaded = true
		s.refused = msg.refused
		if msg.refused != "" {
			s.lines, s.total, s.latest = nil, 0, 0
			return nil
		}
		s.latest = msg.snap.Total
		if s.paused {
			return nil
		}
		s.lines, s.total = msg.snap.Lines, msg.snap.Total
		s.cursor = len(s.visible()) - 1
		return nil
	case tea.PasteMsg:
		if s.editing {
			var cmd tea.Cmd
			s.search, cmd = s.search.Update(msg)
			return cmd
		}
	case tea.KeyPressMsg:
		return s.key(msg)
	}
	return nil
}

func (s *logsScreen) key(k tea.KeyPressMsg) tea.Cmd {
	if s.editing {
		switch k.String() {
		case "enter":
			s.editing = false
			s.search.Blur()
			s.query = strings.TrimSpace(s.search.Value())
			return s.jump(-1, 1)
		case "esc":
			s.editing = false
			s.search.Blur()
			return nil
		}
		var cmd tea.Cmd
		s.search, cmd = s.search.Update(k)
		return cmd
	}
	if s.full {
		if k.String() == "esc" || k.String() == "enter" {
			s.full = false
		}
		return nil
	}
	n := len(s.visible())
	switch d, scroll := scrollBy(k, s.pageH, n); {
	case scroll:
		s.move(d)
	case key.Matches(k, keyLogsFollow):
		if s.paused {
			s.resume()
			return s.refresh()
		}
		s.pause()
	case key.Matches(k, keyLogsLevel):
		s.level = (s.level + 1) % len(logLevels)
		s.cursor = len(s.visible()) - 1
	case key.Matches(k, keyLogsSearch):
		s.editing = true
		s.search.SetValue(s.query)
		return s.search.Focus()
	case key.Matches(k, keyLogsNext):
		return s.jump(s.cursor, 1)
	case key.Matches(k, keyLogsPrev):
		return s.jump(s.cursor, -1)
	case key.Matches(k, keyLogsOpen):
		// The line being read must not be replaced by the next one to arrive.
		s.full = n > 0
		if s.full && !s.paused {
			s.pause()
		}
	case k.String() == "esc":
		s.query = ""
	}
	return nil
}

// move scrolls the selection; scrolling back pauses, as reading an older
// line while new ones push it away is useless.
func (s *logsScreen) move(d int) {
	n := len(s.visible())
	s.cursor = min(max(s.cursor+d, 0), max(n-1, 0))
	if d < 0 && !s.paused {
		s.pause()
	}
}

func (s *logsScreen) pause() {
	s.paused = true
	s.latest = s.total
}

func (s *logsScreen) resume() {
	s.paused = false
	s.cursor = len(s.visible()) - 1
}

// jump selects the next line after from (dir 1) or before it (dir -1)
// that contains the query, wrapping around.
func (s *logsScreen) jump(from, dir int) tea.Cmd {
	if s.query == "" {
		return nil
	}
	vis := s.visible()
	needle := strings.ToLower(s.query)
	for i := 1; i <= len(vis); i++ {
		j := ((from+dir*i)%len(vis) + len(vis)) % len(vis)
		if strings.Contains(strings.ToLower(vis[j]), needle) {
			s.cursor = j
			if !s.paused {
				s.pause()
			}
			return nil
		}
	}
	return func() tea.Msg { return statusMsg{text: fmt.Sprintf("no line contains %q", s.query)} }
}

func (s *logsScreen) view(width, height int) string {
	if !s.loaded {
		return styleDim.Render("loading…")
	}
	if s.refused != "" {
		return styleErr.Render(cut(s.refused, width)) + "\n" + styleDim.Render(cut("The appliance's log is shown to admins only.", width))
	}
	vis := s.visible()
	if s.full && s.cursor >= 0 && s.cursor < len(vis) {
		body := ansi.Wrap(printable(vis[s.cursor]), max(width, 1), " ")
		return styleTitle.Render(cut(fmt.Sprintf("Line %d of %d", s.cursor+1, len(vis)), width)) + "\n" +
			fitLines(body, width, max(height-2, 0)) + "\n" + styleDim.Render(cut("esc or enter closes", width))
	}
	state := styleOK.Render("following")
	if s.paused {
		state = styleWarn.Render(fmt.Sprintf("paused, %d new", s.latest-s.total))
	}
	head := fmt.Sprintf("%s • level ≥ %s • %d of %d lines", state, logLevels[s.level], len(vis), len(s.lines))
	if s.query != "" {
		head += fmt.Sprintf(" • search %q", s.query)
	}
	lines := []string{cut(head, width)}
	if s.editing {
		s.search.SetWidth(max(width-10, 1))
		lines = append(lines, cut(s.search.View(), width))
	}
	room := max(height-len(lines), 0)
	s.pageH = max(room-1, 1)
	if len(vis) == 0 {
		lines = append(lines, styleDim.Render("no log lines at this level"))
		return strings.Join(lines, "\n")
	}
	s.cursor = min(max(s.cursor, 0), len(vis)-1)
	// Keep the selection in view with as little scrolling as possible.
	if s.cursor < s.offset {
		s.offset = s.cursor
	}
	if room > 0 && s.cursor >= s.offset+room {
		s.offset = s.cursor - room + 1
	}
	s.offset = min(s.offset, max(len(vis)-room, 0))
	for i := s.offset; i < len(vis) && i < s.offset+room; i++ {
		l := cut(printable(vis[i]), max(width-2, 0))
		switch {
		case i == s.cursor:
			lines = append(lines, styleSelected.Render("> "+l))
		case s.query != "" && strings.Contains(strings.ToLower(vis[i]), strings.ToLower(s.query)):
			lines = append(lines, "* "+l)
		default:
			lines = append(lines, "  "+l)
		}
	}
	return strings.Join(lines, "\n")
}
