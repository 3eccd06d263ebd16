package tui

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"
	"github.com/piot-appliance/piot/services/core"
)

// Identity resolves the logged-in user afresh. The console calls it before
// every action and on every refresh, so deleting the user, revoking admin
// rights or removing the SSH key takes effect in running sessions too. It
// must be safe for concurrent use.
type Identity func() (core.Actor, error)

// ProfileIdentity follows a user by id through core: the session ends when
// the user is deleted, and admin rights follow the current user record.
func ProfileIdentity(c *core.Core, a core.Actor) Identity {
	return func() (core.Actor, error) {
		p, err := c.Profile(a)
		if err != nil {
			return core.Anonymous(), fmt.Errorf("your account no longer exists: %w", err)
		}
		return core.Actor{UserID: p.ID, Email: p.Email, Admin: p.IsAdmin, TokenVersion: a.TokenVersion}, nil
	}
}

// env is what every screen shares: the dependencies, the identity and the
// clock.
type env struct {
	deps Deps
	core *core.Core
	who  Identity
	ctx  context.Context
	now  func() time.Time

	// actor is the identity as last resolved, read only from Update/View
	// (the UI goroutine) to decide what to show; actions resolve afresh.
	actor core.Actor
}

// Messages shared by the screens.
type (
	tickMsg      time.Time
	coreEventMsg struct{}
	// identityMsg carries a freshly resolved actor.
	identityMsg struct{ actor core.Actor }
	// endMsg ends the session with a reason shown to the user.
	endMsg struct{ reason string }
	// statusMsg sets the status line.
	statusMsg struct {
		text string
		err  bool
	}
	// clearStatusMsg clears the status line if no newer message was set
	// since (gen is the generation of the line it was started for).
	clearStatusMsg struct{ gen int }
)

// errMsg turns an error into a status line. Core errors carry messages
// safe for anybody; other errors come from the appliance's own services
// and are shown to admins only.
func (e *env) errMsg(err error, admin bool) tea.Msg {
	var ce *core.Error
	switch {
	case errors.As(err, &ce):
		return statusMsg{text: fmt.Sprintf("%s (%s)", ce.Msg, ce.Code), err: true}
	case errors.Is(err, ErrUnsupported):
		return statusMsg{text: err.Error(), err: true}
	case admin:
		return statusMsg{text: err.Error(), err: true}
	default:
		return statusMsg{text: "internal error", err: true}
	}
}

// refuse shows core's refusal of an action in the status line.
func (e *env) refuse(err error) tea.Cmd {
	return func() tea.Msg { return e.errMsg(err, false) }
}

// run makes a command that resolves the caller and runs fn off the UI
// goroutine; an error becomes the status line.
func (e *env) run(fn func(a core.Actor) (tea.Msg, error)) tea.Cmd {
	return func() tea.Msg {
		a, err := e.who()
		if err != nil {
			return endMsg{reason: err.Error()}
		}
		msg, err := fn(a)
		if err != nil {
			return e.errMsg(err, a.IsAdministrator())
		}
		return msg
	}
}

// screen is one tab of the console.
type screen interface {
	title() string
	adminOnly() bool
	// refresh reloads the screen's data without blocking.
	refresh() tea.Cmd
	// update receives keys when the screen is shown and every other
	// message always.
	update(msg tea.Msg) tea.Cmd
	view(width, height int) string
	keys() []key.Binding
	// capturing reports whether a text input has the keyboard, so global
	// keys (q, tab, digits) are typed instead of acted upon.
	capturing() bool
}

// badged is a screen whose tab shows a count, as "Alarms(3)".
type badged interface{ badge() string }

// Model is the console's root model: a tab bar, the active screen, a
// status line and a key hint line.
type Model struct {
	env     *env
	screens []screen
	active  int
	width   int
	height  int

	// pushed is a view shown over the active tab (the Clients view over
	// Live); nil when none.
	pushed screen

	status    string
	statusErr bool
	// statusGen counts status lines, so the timer of an old line does not
	// clear a newer one.
	statusGen int
	showHelp  bool
	ended     string
	restore   PendingRestore // shown as a banner to admins

	events      chan struct{}
	unsubscribe func()
	cancel      context.CancelFunc
	closeOnce   sync.Once
}

var (
	keyQuit    = key.NewBinding(key.WithKeys("q", "ctrl+c"), key.WithHelp("q", "quit"))
	keyHelp    = key.NewBinding(key.WithKeys("?"), key.WithHelp("?", "help"))
	keyNext    = key.NewBinding(key.WithKeys("tab"), key.WithHelp("tab/1-9/0", "next screen"))
	keyPrev    = key.NewBinding(key.WithKeys("shift+tab"), key.WithHelp("shift+tab", "previous screen"))
	keyRefresh = key.NewBinding(key.WithKeys("r"), key.WithHelp("r", "refresh"))
)

// NewModel builds the console for the user that who resolves. Call Close
// when the program has ended.
func NewModel(deps Deps, who Identity) *Model {
	if deps.Now == nil {
		deps.Now = time.Now
	}
	if deps.Refresh <= 0 {
		deps.Refresh = 2 * time.Second
	}
	if deps.Source.Via == "" {
		deps.Source.Via = core.ViaConsole
	}
	if deps.StatusFor <= 0 {
		deps.StatusFor = 6 * time.Second
	}
	ctx, cancel := context.WithCancel(core.WithSource(context.Background(), deps.Source))
	e := &env{deps: deps, core: deps.Core, who: who, ctx: ctx, now: deps.Now}
	if a, err := who(); err == nil {
		e.actor = a
	}
	m := &Model{env: e, cancel: cancel, width: 80, height: 24, events: make(chan struct{}, 1)}
	m.screens = []screen{
		newDashboard(e),
		newThings(e),
		newOrgs(e),
		newUsers(e),
		newLive(e),
		newAlarms(e),
		newSystem(e),
		newLogs(e),
		newHistory(e),
		newAudit(e),
	}
	if deps.Core != nil {
		m.unsubscribe = deps.Core.Subscribe(func(core.Event) {
			select {
			case m.events <- struct{}{}:
			default: // a refresh is already pending
			}
		})
	}
	return m
}

// Close releases the model's subscriptions (core events, live feed).
func (m *Model) Close() {
	m.closeOnce.Do(func() {
		if m.unsubscribe != nil {
			m.unsubscribe()
		}
		m.cancel()
	})
}

// Ended returns why the session was ended by the console itself (account
// deleted, key revoked), empty if the user quit.
func (m *Model) Ended() string { return m.ended }

func (m *Model) tick() tea.Cmd {
	return tea.Tick(m.env.deps.Refresh, func(t time.Time) tea.Msg { return tickMsg(t) })
}

func (m *Model) waitEvent() tea.Cmd {
	ctx := m.env.ctx
	return func() tea.Msg {
		select {
		case <-m.events:
			return coreEventMsg{}
		case <-ctx.Done():
			return nil
		}
	}
}

func (m *Model) resolve() tea.Cmd {
	who := m.env.who
	return func() tea.Msg {
		a, err := who()
		if err != nil {
			return endMsg{reason: err.Error()}
		}
		return identityMsg{actor: a}
	}
}

// Init implements tea.Model.
func (m *Model) Init() tea.Cmd {
	cmds := []tea.Cmd{m.tick(), m.waitEvent(), m.resolve(), m.screens[m.active].refresh(), m.checkRestore()}
	if d, ok := m.screens[0].(*dashboard); ok && m.active != 0 {
		cmds = append(cmds, d.refresh())
	}
	return tea.Batch(cmds...)
}

// visible reports whether the current user may see screen i.
func (m *Model) visible(i int) bool {
	return !m.screens[i].adminOnly() || m.env.actor.IsAdministrator()
}

func (m *Model) switchTo(i int) tea.Cmd {
	if i < 0 || i >= len(m.screens) || !m.visible(i) {
		return nil
	}
	m.active = i
	m.showHelp = false
	m.pushed = nil
	return m.screens[i].refresh()
}

// current is the screen that has the keyboard and the body.
func (m *Model) current() screen {
	if m.pushed != nil {
		return m.pushed
	}
	return m.screens[m.active]
}

// thingOpener is a screen that shows one thing on request (H on a thing
// opens History, enter on an alarm opens Things).
type thingOpener interface {
	screen
	showWhenListed(id string) tea.Cmd
}

// openIn switches to the screen of type S, if the user may see it, and
// has it show the thing.
func openIn[S thingOpener](m *Model, id string) tea.Cmd {
	for i, s := range m.screens {
		if o, ok := s.(S); ok && m.visible(i) {
			return tea.Batch(m.switchTo(i), o.showWhenListed(id))
		}
	}
	return nil
}

func (m *Model) step(dir int) tea.Cmd {
	n := len(m.screens)
	for i, j := 0, m.active; i < n; i++ {
		j = (j + dir + n) % n
		if m.visible(j) {
			return m.switchTo(j)
		}
	}
	return nil
}

// Update implements tea.Model.
func (m *Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
		return m, nil
	case endMsg:
		m.ended = msg.reason
		return m, tea.Quit
	case identityMsg:
		m.env.actor = msg.actor
		if !m.visible(m.active) {
			m.active, m.pushed = 0, nil
		}
		return m, nil
	case statusMsg:
		m.status, m.statusErr = msg.text, msg.err
		m.statusGen++
		gen := m.statusGen
		return m, tea.Tick(m.env.deps.StatusFor, func(time.Time) tea.Msg { return clearStatusMsg{gen: gen} })
	case clearStatusMsg:
		if msg.gen == m.statusGen {
			m.status, m.statusErr = "", false
		}
		return m, nil
	case tickMsg:
		cmds := []tea.Cmd{m.tick(), m.resolve(), m.current().refresh(), m.checkRestore()}
		if d, ok := m.screens[0].(*dashboard); ok && m.active != 0 {
			cmds = append(cmds, d.sample())
		}
		return m, tea.Batch(cmds...)
	case coreEventMsg:
		return m, tea.Batch(m.waitEvent(), m.resolve(), m.current().refresh())
	case restoreMsg:
		m.restore = msg.p
		return m, nil
	case openHistoryMsg:
		return m, openIn[*historyScreen](m, msg.thing)
	case openThingMsg:
		return m, openIn[*thingsScreen](m, msg.thing)
	case pushMsg:
		m.pushed, m.showHelp = msg.s, false
		return m, msg.s.refresh()
	case popMsg:
		return m, m.switchTo(m.active)
	case tea.KeyPressMsg:
		return m, m.key(msg)
	case tea.PasteMsg:
		// Pasted text (an SSH key, a topic) goes where the keyboard goes.
		return m, m.current().update(msg)
	}
	var cmds []tea.Cmd
	for _, s := range m.screens {
		cmds = append(cmds, s.update(msg))
	}
	if m.pushed != nil {
		cmds = append(cmds, m.pushed.update(msg))
	}
	if d, ok := msg.(doneMsg); ok && d.err == nil {
		// The list shows the action's effect now, not at the next event.
		cmds = append(cmds, m.current().refresh(), m.checkRestore())
	}
	return m, tea.Batch(cmds...)
}

func (m *Model) key(k tea.KeyPressMsg) tea.Cmd {
	if k.String() == "ctrl+c" {
		return tea.Quit
	}
	cur := m.current()
	if cur.capturing() {
		return cur.update(k)
	}
	if m.showHelp {
		m.showHelp = false
		if k.String() == "?" || k.String() == "esc" {
			return nil
		}
	}
	if m.pushed != nil && (key.Matches(k, keyNext) || k.String() == "esc") {
		// A pushed view uses tab for its own lists and esc to close.
		return cur.update(k)
	}
	switch s := k.String(); {
	case key.Matches(k, keyQuit):
		return tea.Quit
	case key.Matches(k, keyHelp):
		m.showHelp = true
		return nil
	case key.Matches(k, keyNext):
		return m.step(1)
	case key.Matches(k, keyPrev):
		return m.step(-1)
	case len(s) == 1 && s[0] >= '1' && s[0] <= '9':
		return m.switchTo(int(s[0] - '1'))
	case s == "0":
		return m.switchTo(9)
	case key.Matches(k, keyRefresh):
		m.status = ""
		return cur.refresh()
	}
	return cur.update(k)
}

// View implements tea.Model.
func (m *Model) View() tea.View {
	v := tea.NewView(m.render())
	v.AltScreen = true
	v.WindowTitle = "PIOT console"
	return v
}

func (m *Model) render() string {
	w, h := m.width, m.height
	if w < 40 || h < 10 {
		return fitLines(fmt.Sprintf("The terminal is too small (%d×%d);\nthe console needs at least 40×10.\nq quits.", w, h), w, h)
	}
	var b strings.Builder
	b.WriteString(m.tabs(w) + "\n")
	bodyH := h - 3
	if banner := m.restoreBanner(w); banner != "" {
		b.WriteString(banner + "\n")
		bodyH--
	}
	if m.showHelp {
		b.WriteString(fitLines(m.helpView(w), w, bodyH))
	} else {
		b.WriteString(fitLines(m.current().view(w, bodyH), w, bodyH))
	}
	b.WriteString("\n")
	switch {
	case m.statusErr:
		b.WriteString(styleErr.Render(cut("error: "+printable(m.status), w)))
	case m.status != "":
		b.WriteString(styleInfo.Render(cut(printable(m.status), w)))
	}
	b.WriteString("\n")
	b.WriteString(m.footer(w))
	return b.String()
}

func (m *Model) tabs(w int) string {
	// Ten tabs do not fit 80 columns with their names: the others shrink
	// to three letters, then lose the space after them, then shrink to
	// their keys; the active one stays whole. The tenth tab's key is 0.
	var bar string
	for _, step := range []struct {
		keep int
		gap  string
	}{{-1, " "}, {3, " "}, {3, ""}, {0, " "}, {0, ""}} {
		var parts []string
		for i, s := range m.screens {
			if !m.visible(i) {
				continue
			}
			name := []rune(s.title())
			if i != m.active && step.keep >= 0 {
				name = name[:min(step.keep, len(name))]
			}
			label := strings.TrimSpace(fmt.Sprintf("%d %s", (i+1)%10, string(name)))
			if b, ok := s.(badged); ok {
				label += b.badge()
			}
			if i == m.active {
				parts = append(parts, styleTabOn.Render("["+label+"]"))
			} else {
				parts = append(parts, styleTabOff.Render(" "+label+step.gap))
			}
		}
		bar = styleTitle.Render("PIOT") + " " + strings.Join(parts, "")
		if ansi.StringWidth(bar) <= w {
			return bar
		}
	}
	return cut(bar, w)
}

func (m *Model) footer(w int) string {
	who := m.env.actor.Email
	if m.env.actor.IsAdministrator() {
		who += " (admin)"
	}
	const always = "? help • q quit"
	room := w - len([]rune(who)) - 1
	if room < len(always)+10 {
		who, room = "", w
	}
	// As many of the screen's own keys as fit, then help and quit.
	left := ""
	for _, k := range m.current().keys() {
		h := k.Help()
		if h.Key == "" {
			continue
		}
		next := left + h.Key + " " + h.Desc + " • "
		if len([]rune(next))+len(always) > room {
			break
		}
		left = next
	}
	left += always
	if who == "" {
		return styleDim.Render(cut(left, w))
	}
	return styleDim.Render(pad(left, room) + " " + who)
}

func (m *Model) helpView(w int) string {
	var b strings.Builder
	b.WriteString(styleTitle.Render("Keys — "+m.current().title()) + "\n\n")
	line := func(k key.Binding) {
		h := k.Help()
		if h.Key == "" {
			return
		}
		b.WriteString(cut("  "+styleKey.Render(pad(h.Key, 12))+" "+h.Desc, w) + "\n")
	}
	own := m.current().keys()
	for _, k := range own {
		line(k)
	}
	b.WriteString("\n")
	for _, k := range []key.Binding{keyNext, keyPrev, keyRefresh, keyHelp, keyQuit} {
		// A screen that lists a global key among its own (the dashboard's
		// refresh) shows it once.
		if !slices.ContainsFunc(own, func(o key.Binding) bool { return o.Help() == k.Help() }) {
			line(k)
		}
	}
	b.WriteString(styleDim.Render("  ctrl+c       quit from anywhere") + "\n")
	b.WriteString(styleDim.Render("  (any key closes this help)"))
	return b.String()
}
